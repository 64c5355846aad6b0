#!/usr/bin/env bash
# Boot a fluxnode in QEMU: builds whatever is missing, then boots the GPT disk image through
# OVMF with the serial console here. Ctrl-A X leaves.
#   ./scripts/run-qemu.sh [--disk-size 8G] [--fresh] [--memory 2048]
source "$(dirname "$0")/common.sh"
"$ROOT/scripts/build-image.sh" >&2
cargo_release -q -p fluxnode-qemu-tests --bin fluxnode-vm
FLUXNODE_ARTIFACTS="$OUT_DIR" exec "$TARGET_DIR/release/fluxnode-vm" run "$@"
