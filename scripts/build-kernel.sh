#!/usr/bin/env bash
# Build (or take from the cache) the fluxnode kernel: ./scripts/build-kernel.sh [qemu|metal]
# Prints the bzImage path on the last line.
source "$(dirname "$0")/common.sh"
flavor="${1:-qemu}"
case "$flavor" in qemu|metal) ;; *) echo "usage: $0 [qemu|metal]" >&2; exit 2 ;; esac
ensure_packages
cargo_release -q -p fluxnode-image
"$TARGET_DIR/release/fluxnode-image" kernel "$flavor" --config-dir "$ROOT/kernel-config"
