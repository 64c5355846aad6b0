#!/usr/bin/env bash
# Fuzzes the decoders of untrusted bytes with cargo-fuzz (libFuzzer, AddressSanitizer, debug
# assertions and overflow checks), one fuzz crate per part of the node:
#   chain/fuzz    tx_decode, block_decode and frame_decode (p2p messages, and frames read
#                 from a stream that arrives in pieces)
#   runtime/fuzz  oci_json (an OCI image's index, manifest and config as the image store
#                 reads them) and tar_layer (layer blobs, plain, gzip or zstd, unpacked)
#   init/fuzz     config_toml (fluxnode.toml and fluxnode.* kernel command-line keys) and
#                 dhcp_packet (frames to the DHCP client, in each of its states)
# Each target runs RUNS executions (default 1000000), starting from seeds that its crate's
# examples/seeds.rs writes (valid inputs of every kind). A TARGET is a target's name, or a
# crate's (chain, runtime, init) for all of its targets; the default is every target, one
# after another. Prints libFuzzer's "Done N runs in S second(s)" line per target, and exits
# non-zero when a target crashed (or did not build); a crashing input is then under
# <crate>/fuzz/artifacts/<target>/ and its panic is printed. Not part of ./scripts/test.sh.
#
# The stable toolchain is enough: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags.
# Targets build in $FUZZ_TARGET_DIR (default target/fuzz); the corpus grows in
# <crate>/fuzz/corpus/ and is never committed.
#
#   ./scripts/fuzz.sh [RUNS] [TARGET|CRATE...]
source "$(dirname "$0")/common.sh"
runs="${1:-1000000}"
shift || true
all=(tx_decode block_decode frame_decode oci_json tar_layer config_toml dhcp_packet)
declare -A crate_of=(
  [tx_decode]=chain [block_decode]=chain [frame_decode]=chain
  [oci_json]=runtime [tar_layer]=runtime
  [config_toml]=init [dhcp_packet]=init
)
targets=()
for arg in "$@"; do
  case "$arg" in
    chain | runtime | init)
      for t in "${all[@]}"; do
        if [ "${crate_of[$t]}" = "$arg" ]; then targets+=("$t"); fi
      done
      ;;
    *)
      if [ -z "${crate_of[$arg]:-}" ]; then
        echo "error: no fuzz target or crate $arg (targets: ${all[*]}; crates: chain runtime init)" >&2
        exit 2
      fi
      targets+=("$arg")
      ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
fuzz_target_dir="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
log_dir="$fuzz_target_dir/logs"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
mkdir -p "$log_dir"

crates=()
for t in "${targets[@]}"; do
  c="${crate_of[$t]}"
  case " ${crates[*]} " in *" $c "*) ;; *) crates+=("$c") ;; esac
done
for c in "${crates[@]}"; do
  say "writing the seed corpus of $c/fuzz"
  (cd "$ROOT/$c/fuzz" && CARGO_TARGET_DIR="$fuzz_target_dir" cargo run -q --example seeds -- corpus)
done

failed=()
summary=()
for t in "${targets[@]}"; do
  c="${crate_of[$t]}"
  log="$log_dir/$t.log"
  say "fuzzing $t ($c/fuzz) for $runs runs (log: $log)"
  rc=0
  (cd "$ROOT/$c" && cargo fuzz run --target-dir "$fuzz_target_dir" "$t" -- \
    -runs="$runs" -print_final_stats=1) >"$log" 2>&1 || rc=$?
  done_line="$(grep -E '^Done [0-9]+ runs' "$log" | tail -n1 || true)"
  if [ "$rc" -ne 0 ] || [ -z "$done_line" ]; then
    failed+=("$t")
    last="$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)"
    summary+=("$t: FAILED (exit $rc) after ${last:-0} runs")
    echo "---- $t: what failed ----" >&2
    { grep -E -A3 "panicked at" "$log"; grep -E "ERROR: |SUMMARY: |Test unit written to" "$log"; } >&2 \
      || tail -n 40 "$log" >&2
  else
    summary+=("$t: $done_line")
  fi
done

echo
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    c="${crate_of[$t]}"
    echo "error: $t failed (crashing inputs under $ROOT/$c/fuzz/artifacts/$t/; reproduce with" \
      "RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $fuzz_target_dir $t <input>, from $c/)" >&2
  done
  exit 1
fi
