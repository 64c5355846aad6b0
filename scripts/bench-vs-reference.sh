#!/usr/bin/env bash
# Our benchmark against the reference tools, on this machine, in one go:
#   CPU EPS vs `sysbench cpu --cpu-max-prime=60000` (1 thread and all threads),
#   sequential write vs `fio --rw=write --bs=1M --direct=1 --iodepth=32 --ioengine=io_uring`,
#   and vs Flux's `dd bs=64k count=16k conv=fdatasync`.
# Prints each pair and the ratio ours/reference. BENCH_DIR picks the disk (default target/).
source "$(dirname "$0")/common.sh"
missing="$(apt_missing sysbench fio jq)"
if [ -n "$missing" ]; then
  say "installing with apt: $missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
cargo_release -q -p fluxnode-init
dir="${BENCH_DIR:-$TARGET_DIR/fluxnode/benchdir}"
mkdir -p "$dir"
threads="$(nproc)"

say "fluxnode bench (full run) in $dir"
ours="$("$TARGET_DIR/release/fluxnode" bench --json --dir "$dir")"
eps1="$(jq -r .report.cpu.eps_single <<<"$ours")"
epsn="$(jq -r .report.cpu.eps_all <<<"$ours")"
seq="$(jq -r '.report.disk.seq_write_mbs // 0' <<<"$ours")"
ddours="$(jq -r .report.disk.dd_mbs <<<"$ours")"

sb() { sysbench cpu --cpu-max-prime=60000 --threads="$1" --time=10 run | awk '/events per second/{print $4}'; }
say "sysbench cpu, 1 thread"
ref1="$(sb 1)"
say "sysbench cpu, $threads threads"
refn="$(sb "$threads")"
say "fio sequential write, 1 GiB"
fiomb="$(fio --name=seq --filename="$dir/fio.test" --rw=write --bs=1M --direct=1 --iodepth=32 \
  --ioengine=io_uring --size=1G --output-format=json | jq '.jobs[0].write.bw_bytes / 1000000')"
rm -f "$dir/fio.test"
say "dd bs=64k count=16k conv=fdatasync"
ddsec="$(dd if=/dev/zero of="$dir/dd.test" bs=64k count=16k conv=fdatasync 2>&1 | awk -F', ' '/copied/{print $(NF-1)}' | awk '{print $1}')"
rm -f "$dir/dd.test"
ddref="$(awk -v s="$ddsec" 'BEGIN{printf "%.1f", 1073741824/1e6/s}')"

row() { awk -v n="$1" -v a="$2" -v b="$3" -v u="$4" 'BEGIN{printf "%-34s %12.1f %12.1f %8.3f  %s\n", n, a, b, (b>0? a/b : 0), u}'; }
printf '%-34s %12s %12s %8s\n' "figure" "fluxnode" "reference" "ratio"
row "cpu EPS, 1 thread (sysbench)" "$eps1" "$ref1" ""
row "cpu EPS, $threads threads (sysbench)" "$epsn" "$refn" ""
row "seq write MB/s (fio, O_DIRECT QD32)" "$seq" "$fiomb" ""
row "dd MB/s (64k, fdatasync)" "$ddours" "$ddref" ""
