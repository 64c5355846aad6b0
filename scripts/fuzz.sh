#!/usr/bin/env bash
# Fuzzes the chain's decoders of untrusted bytes with cargo-fuzz (libFuzzer, AddressSanitizer,
# debug assertions and overflow checks): tx_decode, block_decode and frame_decode (p2p
# messages, and frames read from a stream that arrives in pieces). Each target runs RUNS
# executions (default 1000000), starting from seeds that examples/seeds.rs writes (valid
# encodings of every kind). Prints libFuzzer's "Done N runs in S second(s)" line per target,
# and exits non-zero when a target crashed (or did not build); a crashing input is then under
# chain/fuzz/artifacts/<target>/ and its panic is printed. Not part of ./scripts/test.sh.
#
# The stable toolchain is enough: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags.
# Targets build in $FUZZ_TARGET_DIR (default target/fuzz); the corpus grows in
# chain/fuzz/corpus/ and is never committed.
#
#   ./scripts/fuzz.sh [RUNS] [TARGET...]
source "$(dirname "$0")/common.sh"
runs="${1:-1000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tx_decode block_decode frame_decode)
fuzz_dir="$ROOT/chain/fuzz"
fuzz_target_dir="${FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
log_dir="$fuzz_target_dir/logs"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
mkdir -p "$log_dir"

say "writing the seed corpus"
(cd "$fuzz_dir" && CARGO_TARGET_DIR="$fuzz_target_dir" cargo run -q --example seeds -- corpus)

failed=()
summary=()
for t in "${targets[@]}"; do
  log="$log_dir/$t.log"
  say "fuzzing $t for $runs runs (log: $log)"
  rc=0
  (cd "$ROOT/chain" && cargo fuzz run --target-dir "$fuzz_target_dir" "$t" -- \
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
  echo "error: failed: ${failed[*]} (crashing inputs under $fuzz_dir/artifacts/; reproduce with" \
    "RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $fuzz_target_dir <target> <input>, from chain/)" >&2
  exit 1
fi
