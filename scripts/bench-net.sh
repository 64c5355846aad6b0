#!/usr/bin/env bash
# What app networking costs, measured inside the image in one VM run: TCP bulk throughput
# and the rate of short connections from the node to a small server (net_bench, static C
# in qemu-tests/probe) in a container behind a published port (DNAT through the nftables
# table and the bridge), against the same server run directly on the node; interleaved
# rounds, medians and the ratios published/direct. Under TCG the absolute figures are
# slow; the ratio is the point.
#   ./scripts/bench-net.sh [--rounds 3] [--secs 5]
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/build-image.sh" >&2
cargo_release -q -p fluxnode-qemu-tests --bin fluxnode-vm
FLUXNODE_ARTIFACTS="$OUT_DIR" exec "$TARGET_DIR/release/fluxnode-vm" bench-net "$@"
