#!/usr/bin/env bash
# Boot the image 5 times each way (direct kernel, OVMF disk) and print the median ready-time
# (guest ms and wall s) and the artifact sizes, compressed and not.
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/build-image.sh" >&2
cargo_release -q -p fluxnode-qemu-tests --bin fluxnode-vm
FLUXNODE_ARTIFACTS="$OUT_DIR" "$TARGET_DIR/release/fluxnode-vm" bench-boot --runs "${RUNS:-5}"
