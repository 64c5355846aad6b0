# Sourced by the other scripts: paths, and installing what the build needs when it is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DIR="${FLUXNODE_ARTIFACTS:-$TARGET_DIR/fluxnode/out}"
HOST_TRIPLE=x86_64-unknown-linux-gnu
KERNEL_PKG=linux-source-6.1
KERNEL_VERSION="$(tr -d '[:space:]' < "$ROOT/kernel-config/VERSION")"
APT_PACKAGES=(build-essential flex bison libelf-dev libssl-dev bc cpio zstd xz-utils kmod
  systemd-boot-efi ovmf qemu-system-x86 e2fsprogs gdisk dosfstools mtools pkg-config
  libseccomp-dev busybox-static buildah nftables docker-registry skopeo)

say() { echo "==> $*" >&2; }

apt_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

ensure_packages() {
  local missing
  missing="$(apt_missing "${APT_PACKAGES[@]}")"
  local have
  have="$(dpkg-query -W -f='${Version}' "$KERNEL_PKG" 2>/dev/null || true)"
  if [ "$have" != "$KERNEL_VERSION" ]; then
    missing="$missing $KERNEL_PKG=$KERNEL_VERSION"
  fi
  missing="$(echo "$missing" | xargs)"
  if [ -n "$missing" ]; then
    say "installing with apt: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
      echo "error: apt could not install: $missing" >&2
      echo "  (kernel-config/VERSION pins $KERNEL_PKG $KERNEL_VERSION; apt offers: $(apt-cache policy $KERNEL_PKG | awk '/Candidate/{print $2}'))" >&2
      exit 1
    fi
  fi
  if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed 2>/dev/null | grep -qx "$HOST_TRIPLE" || rustup target add "$HOST_TRIPLE"
  fi
}

cargo_release() {
  (cd "$ROOT" && cargo build --release --locked "$@")
}
