#!/usr/bin/env bash
# Container start latency on this host: CYCLES (default 200) cycles of create, start, wait and
# delete of /bin/true, for our in-process libcontainer path, `crun run` and `runc run`, on the
# same bundle (our secure runtime_spec config), interleaved in one run. Prints the median, the
# p90 and the ratio to crun of each, then our time per phase. Run as root on the host.
#
# crun on a cgroup v1 hybrid host: crun refuses to run while the cgroup2 hierarchy mounted at
# /sys/fs/cgroup/unified holds a controller ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"). Here it holds one, hugetlb, that no v1 hierarchy has taken.
# The way chosen (one of several): the whole driver runs in a private mount namespace
# (unshare(1)), where each controller that cgroup2 holds gets a v1 hierarchy of its own (here
# `mount -t cgroup -o hugetlb`). Binding a controller to a v1 hierarchy takes it out of
# cgroup2 for as long as that hierarchy lives; the mount dies with the namespace, and then the
# host's cgroup2 gets hugetlb back. All three runtimes are children of the driver, so they see
# the same hierarchies, and each puts its container into the hugetlb one as well. The
# namespace also gets a tmpfs at the work directory, where the bundle and the three state
# roots live alike.
#
# To see where our time goes, profile our path alone (no crun, so no namespace needed):
#   perf record -g target/release/fluxnode-bench-runtime --only fluxnode 200
#
# `--image [CYCLES]` (default 100) measures inside the image instead, on pure cgroup v2 as a
# node runs: the static driver and Debian's crun (with the libraries it loads, on the test
# disk only) are put on a copy of the node disk, the guest runs the same interleaved cycles
# of ours and `crun run`, and the report (medians, p90, ratio to crun) is printed here.
source "$(dirname "$0")/common.sh"
if [ "${1:-}" = "--image" ]; then
  cycles="${2:-100}"
  missing="$(apt_missing crun busybox-static)"
  if [ -n "$missing" ]; then
    say "installing with apt: $missing"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  "$ROOT/scripts/build-image.sh" >&2
  say "building the static fluxnode-bench-runtime for the image"
  LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$(gcc -dumpmachine)" \
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    cargo_release -q -p fluxnode-runtime --features host-v1 --bin fluxnode-bench-runtime \
    --target "$HOST_TRIPLE"
  cargo_release -q -p fluxnode-qemu-tests --bin fluxnode-vm
  FLUXNODE_ARTIFACTS="$OUT_DIR" exec "$TARGET_DIR/release/fluxnode-vm" bench-runtime \
    --driver "$TARGET_DIR/$HOST_TRIPLE/release/fluxnode-bench-runtime" "$cycles"
fi
cycles="${1:-200}"
driver="$TARGET_DIR/release/fluxnode-bench-runtime"

# The controllers to free: those cgroup2 holds, and those still bound to a v1 hierarchy that
# no mount shows. An earlier run's hugetlb hierarchy dies a moment after that run's namespace
# and only then hands hugetlb back to cgroup2; mounting it again waits for that and takes it.
# /proc/cgroups is read first, so that a controller moving meanwhile is not missed.
controllers_to_free() {
  awk 'NR == FNR { if (/ - cgroup /) { n = split($NF, o, ","); for (i = 1; i <= n; i++) seen[o[i]] = 1 }; next }
    !/^#/ && $2 != 0 && $4 == 1 && !($1 in seen) { print $1 }' /proc/self/mountinfo /proc/cgroups
  if [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    tr ' ' '\n' < /sys/fs/cgroup/unified/cgroup.controllers
  fi
}

if [ -n "${FLUXBENCH_NAMESPACE:-}" ]; then
  # Inside the private mount namespace (the script runs itself there, below).
  work="$FLUXBENCH_NAMESPACE"
  mount -t tmpfs -o mode=0700 fluxbench "$work"
  for c in $(controllers_to_free | grep . | sort -u); do
    mkdir "$work/$c"
    mount -t cgroup -o "$c" "fluxbench-$c" "$work/$c"
  done
  exec "$driver" --dir "$work" "$cycles"
fi

missing="$(apt_missing crun runc busybox-static libseccomp-dev pkg-config)"
if [ -n "$missing" ]; then
  say "installing with apt: $missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: containers need root: run as root" >&2
  exit 1
fi
say "building fluxnode-bench-runtime (feature host-v1: libcontainer's cgroup v1 support)"
cargo_release -q -p fluxnode-runtime --features host-v1 --bin fluxnode-bench-runtime
work="$(mktemp -d /tmp/fluxbench.XXXXXX)"
trap 'rmdir "$work" 2>/dev/null || true' EXIT
say "crun $(crun --version | awk 'NR==1{print $3}'), runc $(runc --version | awk 'NR==1{print $3}'):" \
  "$cycles cycles each, in a private mount namespace"
FLUXBENCH_NAMESPACE="$work" unshare --mount --propagation private -- bash "$0" "$cycles"
