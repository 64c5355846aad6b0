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
# The release keys the image trusts: a development key made here once (kept in the build
# output, never committed; the tests sign their update bundles with it) plus the files in
# $FLUXNODE_RELEASE_KEYS (space-separated .pub files, for real releases).
dev_key="$TARGET_DIR/fluxnode/release-dev"
if [ ! -f "$dev_key.key" ]; then
  say "making a development release key $dev_key.key"
  "$tool" keygen --out "$dev_key" >/dev/null
fi
cp "$dev_key.key" "$dev_key.pub" "$OUT_DIR/"
keys=(--release-keys "$dev_key.pub")
for k in ${FLUXNODE_RELEASE_KEYS:-}; do keys+=(--release-keys "$k"); done
if [ -f "$OUT_DIR/fluxnode.img" ] && [ "$OUT_DIR/fluxnode.img" -nt "$init" ] \
   && [ "$OUT_DIR/fluxnode.img" -nt "$kernel" ] && [ "$OUT_DIR/fluxnode.img" -nt "$tool" ] \
   && [ "$OUT_DIR/fluxnode.img" -nt "$dev_key.pub" ] && [ -z "${FLUXNODE_RELEASE_KEYS:-}" ] \
   && cmp -s "$kernel" "$OUT_DIR/bzImage"; then
  say "image is up to date: $OUT_DIR/fluxnode.img"
  exit 0
fi
say "building initramfs, UKI and disk image in $OUT_DIR"
cp "$kernel" "$OUT_DIR/bzImage"
cp "$(dirname "$kernel")/vmlinux.size" "$OUT_DIR/vmlinux.size" 2>/dev/null || true
cp "$init" "$OUT_DIR/fluxnode"
"$tool" all --kernel "$OUT_DIR/bzImage" --init "$OUT_DIR/fluxnode" --out-dir "$OUT_DIR" "${keys[@]}"
