#!/usr/bin/env bash
# Every test: formatting and lints, host unit and integration tests, then the image is built
# and booted in QEMU by qemu-tests. Installs what it needs on a fresh Debian 12 machine.
source "$(dirname "$0")/common.sh"
ensure_packages
cd "$ROOT"
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings
say "host tests"
cargo test --locked
say "building the image"
"$ROOT/scripts/build-image.sh"
say "qemu tests"
FLUXNODE_ARTIFACTS="$OUT_DIR" cargo test --locked -p fluxnode-qemu-tests
