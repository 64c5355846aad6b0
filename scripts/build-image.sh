#!/usr/bin/env bash
# Build everything the node image needs into target/fluxnode/out (or $FLUXNODE_ARTIFACTS):
# kernel, static fluxnode binary, initramfs, UKI and the GPT disk image fluxnode.img.
source "$(dirname "$0")/common.sh"
kernel="$("$ROOT/scripts/build-kernel.sh" qemu | tail -n 1)"
say "building the static fluxnode binary"
# libcontainer's seccomp goes in statically too (libseccomp.a from libseccomp-dev).
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$(gcc -dumpmachine)" \
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
  cargo_release -q -p fluxnode-init --target "$HOST_TRIPLE"
init="$TARGET_DIR/$HOST_TRIPLE/release/fluxnode"
tool="$TARGET_DIR/release/fluxnode-image"
mkdir -p "$OUT_DIR"
# The release keys the image trusts. A development or test build trusts a development key
# made here once (under target/, never committed, never copied next to the artifacts; the
# tests sign their update bundles with it), and the node says so at boot. A release build
# ($FLUXNODE_RELEASE_KEYS: space-separated .pub files, or FLUXNODE_RELEASE=1) trusts only
# the given keys, and the image tool refuses a development key there.
dev_key="$TARGET_DIR/fluxnode/release-dev"
if [ ! -f "$dev_key.key" ] || ! grep -q ' development ' "$dev_key.pub" 2>/dev/null; then
  say "making a development release key $dev_key.key"
  rm -f "$dev_key.key" "$dev_key.pub"
  "$tool" keygen --development --out "$dev_key" >/dev/null
fi
rm -f "$OUT_DIR/release-dev.key"
keys=()
if [ -n "${FLUXNODE_RELEASE_KEYS:-}" ] || [ "${FLUXNODE_RELEASE:-0}" = 1 ]; then
  say "release build: trusting only $FLUXNODE_RELEASE_KEYS"
  keys+=(--release)
else
  cp "$dev_key.pub" "$OUT_DIR/"
  keys+=(--release-keys "$dev_key.pub")
fi
for k in ${FLUXNODE_RELEASE_KEYS:-}; do keys+=(--release-keys "$k"); done
if [ -f "$OUT_DIR/fluxnode.img" ] && [ "$OUT_DIR/fluxnode.img" -nt "$init" ] \
   && [ "$OUT_DIR/fluxnode.img" -nt "$kernel" ] && [ "$OUT_DIR/fluxnode.img" -nt "$tool" ] \
   && [ "$OUT_DIR/fluxnode.img" -nt "$dev_key.pub" ] && [ -z "${FLUXNODE_RELEASE_KEYS:-}" ] \
   && [ "${FLUXNODE_RELEASE:-0}" != 1 ] \
   && cmp -s "$kernel" "$OUT_DIR/bzImage"; then
  say "image is up to date: $OUT_DIR/fluxnode.img"
  exit 0
fi
say "building initramfs, UKI and disk image in $OUT_DIR"
cp "$kernel" "$OUT_DIR/bzImage"
cp "$(dirname "$kernel")/vmlinux.size" "$OUT_DIR/vmlinux.size" 2>/dev/null || true
cp "$init" "$OUT_DIR/fluxnode"
"$tool" all --kernel "$OUT_DIR/bzImage" --init "$OUT_DIR/fluxnode" --out-dir "$OUT_DIR" "${keys[@]}"
