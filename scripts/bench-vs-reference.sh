#!/usr/bin/env bash
# Our benchmark against the reference tools, on this machine, in one go:
#   CPU EPS vs `sysbench cpu --cpu-max-prime=60000` (1 thread and all threads),
#   sequential write vs `fio --rw=write --bs=1M --direct=1 --iodepth=32 --ioengine=io_uring`,
#   and vs Flux's `dd bs=64k count=16k conv=fdatasync`.
# The machine is shared and noisy, so ROUNDS (default 3) rounds alternate theirs and ours and
# the medians are compared. Prints each pair and the ratio ours/reference.
# BENCH_DIR picks the disk (default target/fluxnode/benchdir).
source "$(dirname "$0")/common.sh"
missing="$(apt_missing sysbench fio jq)"
if [ -n "$missing" ]; then
  say "installing with apt: $missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
cargo_release -q -p fluxnode-init
dir="${BENCH_DIR:-$TARGET_DIR/fluxnode/benchdir}"
rounds="${ROUNDS:-3}"
mkdir -p "$dir"
threads="$(nproc)"

sb() { sysbench cpu --cpu-max-prime=60000 --threads="$1" --time=10 run | awk '/events per second/{print $4}'; }
fio_mbs() {
  fio --name=seq --filename="$dir/fio.test" --rw=write --bs=1M --direct=1 --iodepth=32 \
    --ioengine=io_uring --size=1G --output-format=json | jq '.jobs[0].write.bw_bytes / 1000000'
  rm -f "$dir/fio.test"
}
dd_mbs() {
  local s
  s="$(dd if=/dev/zero of="$dir/dd.test" bs=64k count=16k conv=fdatasync 2>&1 \
    | awk -F', ' '/copied/{print $(NF-1)}' | awk '{print $1}')"
  rm -f "$dir/dd.test"
  awk -v s="$s" 'BEGIN{printf "%.1f\n", 1073741824/1e6/s}'
}

# Buffered writes (dd) run slower for a while after a process frees a lot of memory, as
# the RAM test at the end of our run does; so each round starts with the reference dd after
# a quiet pause, and our run (whose disk test comes first) follows the CPU-only sysbench.
declare -A v
for r in $(seq 1 "$rounds"); do
  [ "$r" -gt 1 ] && sleep 30
  say "round $r/$rounds: dd, fio, sysbench 1 and $threads threads"
  v[refdd]+="$(dd_mbs) "
  v[fio]+="$(fio_mbs) "
  v[ref1]+="$(sb 1) "
  v[refn]+="$(sb "$threads") "
  say "round $r/$rounds: fluxnode bench (full run) in $dir"
  ours="$("$TARGET_DIR/release/fluxnode" bench --json --dir "$dir")"
  v[eps1]+="$(jq -r .report.cpu.eps_single <<<"$ours") "
  v[epsn]+="$(jq -r .report.cpu.eps_all <<<"$ours") "
  v[seq]+="$(jq -r '.report.disk.seq_write_mbs // 0' <<<"$ours") "
  v[dd]+="$(jq -r .report.disk.dd_mbs <<<"$ours") "
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
row() {
  local a b
  a="$(median "${v[$2]}")"; b="$(median "${v[$3]}")"
  awk -v n="$1" -v a="$a" -v b="$b" 'BEGIN{printf "%-38s %10.1f %10.1f %7.3f\n", n, a, b, (b>0? a/b : 0)}'
}
echo "medians of $rounds rounds (each: the reference tools, then ours)"
printf '%-38s %10s %10s %7s\n' "figure" "fluxnode" "reference" "ratio"
row "cpu EPS, 1 thread (sysbench)" eps1 ref1
row "cpu EPS, $threads threads (sysbench)" epsn refn
row "seq write MB/s (fio O_DIRECT 1M QD32)" seq fio
row "dd MB/s (64k, fdatasync)" dd refdd
for k in eps1 ref1 epsn refn seq fio dd refdd; do echo "  $k: ${v[$k]}"; done
