#!/usr/bin/env bash
# Build both node images into target/fluxnode/out (or $FLUXNODE_ARTIFACTS), each from its
# kernel (cached by a hash of the source version and its fragments) and the same static
# fluxnode binary: fluxnode-qemu.img (virtio drivers; what CI boots) with its initramfs and
# UKI in the directory itself, and fluxnode-metal.img (server NICs, HBAs, NVMe, AHCI, USB
# keyboard, EFI framebuffer, two serial ports, hardware watchdogs; what a server owner
# flashes) with its own in metal/.
source "$(dirname "$0")/common.sh"
kernel="$("$ROOT/scripts/build-kernel.sh" qemu | tail -n 1)"
metal_kernel="$("$ROOT/scripts/build-kernel.sh" metal | tail -n 1)"
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
# build FLAVOR KERNEL DIR DISK [all's flags]: one image, unless it is newer than its inputs.
build() {
  local flavor="$1" k="$2" dir="$3" disk="$3/$4"
  shift 4
  mkdir -p "$dir"
  if [ -f "$disk" ] && [ "$disk" -nt "$init" ] && [ "$disk" -nt "$k" ] && [ "$disk" -nt "$tool" ] \
     && [ "$disk" -nt "$dev_key.pub" ] && [ -z "${FLUXNODE_RELEASE_KEYS:-}" ] \
     && [ "${FLUXNODE_RELEASE:-0}" != 1 ] && cmp -s "$k" "$dir/bzImage"; then
    say "$flavor image is up to date: $disk"
    return 0
  fi
  say "building the $flavor initramfs, UKI and disk image in $dir"
  cp "$k" "$dir/bzImage"
  cp "$(dirname "$k")/vmlinux.size" "$dir/vmlinux.size" 2>/dev/null || true
  cp "$init" "$dir/fluxnode"
  "$tool" all --kernel "$dir/bzImage" --init "$dir/fluxnode" --out-dir "$dir" "${keys[@]}" "$@"
}
build qemu "$kernel" "$OUT_DIR" fluxnode-qemu.img
build metal "$metal_kernel" "$OUT_DIR/metal" fluxnode-metal.img --metal
ln -f "$OUT_DIR/metal/fluxnode-metal.img" "$OUT_DIR/fluxnode-metal.img"
# The name the README used before there were two images.
rm -f "$OUT_DIR/fluxnode.img"
