#!/usr/bin/env bash
# The chain's throughput on this host (chain/src/bin/fluxnode-bench-chain.rs says how each is
# measured): ring's Ed25519 verification rate on one core, the import rate of blocks full of
# transfers (decode + Ledger::apply + sled commit, and apply alone), their ratio (the goal is
# at least 0.7: every transfer needs one signature check, so verification is the ceiling),
# the time for an empty node to sync 10,000 blocks from a peer over 127.0.0.1, and at a
# height of 10,000 the time of a 99-block reorganisation against importing 99 blocks
# (goal: at most 2x), and what one peer asking as fast as its message limit allows is served.
# Extra arguments go to the driver (--help lists them), e.g. --rounds 9 or --sync-blocks 0.
#
# `--scale` instead prints the scale table: per network size (1,000 to 15,000 confirmed
# nodes, 100 and 2,000 apps of 3 instances), validate + apply of a block, producing it, the
# produce loop's rank (once per tip and slot) and tick, a block that confirms a new node and
# one that registers an app, `listfluxnodes`, and the peak memory; then the goals at 15,000
# nodes and 2,000 apps (apply <= 50 ms, tick <= 1 ms, listfluxnodes <= 1 s, <= 500 MB).
# `--scale-sizes 1000x100,5000x2000` picks the sizes.
#
# To see where import time goes beyond the driver's own breakdown:
#   perf record -g target/release/fluxnode-bench-chain --sync-blocks 0
source "$(dirname "$0")/common.sh"
driver="$TARGET_DIR/release/fluxnode-bench-chain"
say "building fluxnode-bench-chain (feature bench)"
cargo_release -q -p fluxnode-chain --features bench --bin fluxnode-bench-chain
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$driver" "$@" | tee "$out"
result() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$out"; }
if [[ " $* " == *" --scale "* ]]; then
  big="$(result scale_15000x2000_apply_secs)"
  [ -n "$big" ] || { echo "(no 15000x2000 row: goals not checked)"; exit 0; }
  echo
  goal() { # name value limit unit
    if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v >= 0 && v <= l) }'; then m=met; else m="NOT met"; fi
    echo "goal at 15,000 nodes and 2,000 apps: $1 $2 $4 <= $3 $4: $m"
  }
  goal "validate + apply" "$big" 0.05 s
  goal "produce-loop tick" "$(result scale_15000x2000_tick_secs)" 0.001 s
  goal "listfluxnodes" "$(result scale_15000x2000_list_secs)" 1 s
  goal "peak memory" "$(result scale_15000x2000_peak_rss_bytes)" 500000000 B
  exit 0
fi
verify="$(result verify_per_sec)"
import="$(result import_tx_per_sec)"
ratio="$(result ratio)"
[ -n "$ratio" ] || { echo "error: the driver printed no ratio" >&2; exit 1; }
echo
echo "Ed25519 verify (ring, one core): $verify /s"
echo "import (decode + apply + commit): $import tx/s"
echo "ratio import / verify: $ratio (apply alone: $(result ratio_apply))"
if awk -v r="$ratio" 'BEGIN { exit !(r >= 0.7) }'; then
  echo "goal ratio >= 0.7: met"
else
  echo "goal ratio >= 0.7: NOT met"
fi
if [ -n "$(result reorg_ratio)" ]; then
  echo "reorganisation of $(result reorg_depth) blocks: $(result reorg_secs) s;" \
    "importing them: $(result reorg_import_secs) s; ratio $(result reorg_ratio)"
  if awk -v r="$(result reorg_ratio)" 'BEGIN { exit !(r <= 2) }'; then
    echo "goal reorganisation <= 2x import: met"
  else
    echo "goal reorganisation <= 2x import: NOT met"
  fi
fi
if [ -n "$(result amplify_reads_per_sec)" ]; then
  echo "one hostile peer at the message limit was served $(result amplify_reads_per_sec)" \
    "store reads/s (its budget: 20,000/s); unasked headers are refused before any signature check"
fi
if [ -n "$(result sync_secs)" ]; then
  echo "sync of $(result sync_blocks) blocks over loopback: $(result sync_secs) s" \
    "(B's height stood still for at most $(result sync_longest_stall_secs) s)"
fi
