#!/usr/bin/env bash
# Pull rate from a registry on this host's loopback: the same image (one layer of ~100 MB of
# random bytes, so compression does not make it trivial) pulled by `fluxnode pull` (release
# build) and copied by `skopeo copy docker://... oci:...`, interleaved, ROUNDS times (default
# 5). Prints the median of each, their ratio, and the median of `fluxnode unpack` of the same
# image from a local layout: a pull also imports (unpacks the layer into the store and syncs
# it), which skopeo's copy to a layout does not, so pull minus unpack estimates the transfer
# alone. The registry is Debian's docker-registry (distribution 2.8) on 127.0.0.1, filled
# by skopeo from a layout that fluxnode-image builds.
#   scripts/bench-pull.sh [ROUNDS] [MEGABYTES]
source "$(dirname "$0")/common.sh"
rounds="${1:-5}"
mb="${2:-100}"
missing="$(apt_missing docker-registry skopeo)"
if [ -n "$missing" ]; then
  say "installing with apt: $missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
say "building fluxnode and fluxnode-image (release)"
cargo_release -q -p fluxnode-init --bin fluxnode
cargo_release -q -p fluxnode-image --bin fluxnode-image
fluxnode="$TARGET_DIR/release/fluxnode"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-pull.XXXXXX")"
registry_pid=
cleanup() {
  [ -z "$registry_pid" ] || kill -9 "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free port: nothing answers a connection to it.
port=5150
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
host="127.0.0.1:$port"
cat > "$work/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $host
EOF
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
disown "$registry_pid"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

say "building a ${mb} MB image and pushing it to $host"
mkdir -p "$work/tree/bin"
head -c "$((mb << 20))" /dev/urandom > "$work/tree/bin/data"
"$TARGET_DIR/release/fluxnode-image" oci --from-dir "$work/tree" --out "$work/layout" \
  --cmd /bin/data --tag bench >/dev/null
rm -rf "$work/tree"
skopeo copy -q --preserve-digests --dest-tls-verify=false \
  "oci:$work/layout:bench" "docker://$host/bench/img:1"
printf '[[registry]]\nhost = "%s"\ninsecure = true\n' "$host" > "$work/registries.toml"
bytes="$(du -sb "$work/layout/blobs" | cut -f1)"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: > "$work/pull.t"; : > "$work/skopeo.t"; : > "$work/unpack.t"
for i in $(seq "$rounds"); do
  rm -rf "$work/store" "$work/copy"
  t0="$(now)"
  digest="$("$fluxnode" pull --store "$work/store" --registries "$work/registries.toml" \
    "$host/bench/img:1")"
  t1="$(now)"
  skopeo copy -q --src-tls-verify=false "docker://$host/bench/img:1" "oci:$work/copy:1"
  t2="$(now)"
  rm -rf "$work/store"
  "$fluxnode" unpack --store "$work/store" "$work/layout" >/dev/null
  t3="$(now)"
  secs "$t0" "$t1" >> "$work/pull.t"
  secs "$t1" "$t2" >> "$work/skopeo.t"
  secs "$t2" "$t3" >> "$work/unpack.t"
  echo "round $i: fluxnode pull $(tail -1 "$work/pull.t") s, skopeo copy $(tail -1 "$work/skopeo.t") s, fluxnode unpack $(tail -1 "$work/unpack.t") s"
done
pull="$(median < "$work/pull.t")"
skopeo="$(median < "$work/skopeo.t")"
unpack="$(median < "$work/unpack.t")"
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f MB/s", b / s / 1e6 }'; }
echo
echo "image $digest: $bytes bytes of blobs, $rounds rounds, medians:"
echo "fluxnode pull (fetch + import):  $pull s ($(rate "$pull"))"
echo "skopeo copy docker:// -> oci:    $skopeo s ($(rate "$skopeo"))"
echo "fluxnode unpack (import alone):  $unpack s"
awk -v p="$pull" -v s="$skopeo" -v u="$unpack" 'BEGIN {
  printf "ratio pull / skopeo: %.2f; (pull - unpack) / skopeo, the transfer alone: %.2f\n", p / s, (p - u) / s }'
