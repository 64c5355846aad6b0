//! Where the built image lives: `scripts/build-image.sh` writes it to one directory
//! (`target/fluxnode/out`, or `$FLUXNODE_ARTIFACTS`), and everything here reads it there.

use std::path::{Path, PathBuf};

/// Paths of the built image parts.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub uki: PathBuf,
    pub disk: PathBuf,
    /// The metal image and its kernel (server drivers), built beside the qemu one.
    pub metal_disk: PathBuf,
    pub metal_kernel: PathBuf,
    pub metal_initrd: PathBuf,
    /// The static `fluxnode` binary the initramfs was built around.
    pub init: PathBuf,
    /// The development release key the image trusts: its private half stays in
    /// `<target>/fluxnode/release-dev.key` (`$FLUXNODE_DEV_KEY`), never beside the
    /// artifacts; `release-dev.pub` is beside it there.
    pub release_key: PathBuf,
    /// The `fluxnode-image` tool that built them (`$FLUXNODE_IMAGE_TOOL`, else
    /// `<target>/release/fluxnode-image`).
    pub tool: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

impl Artifacts {
    /// The artifacts in `$FLUXNODE_ARTIFACTS`, else `<cargo target dir>/fluxnode/out`.
    pub fn locate() -> Result<Self, String> {
        let dir = std::env::var_os("FLUXNODE_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("fluxnode/out"));
        let a = Artifacts {
            kernel: dir.join("bzImage"),
            initrd: dir.join(image::pipeline::INITRAMFS),
            uki: dir.join(image::pipeline::UKI),
            disk: dir.join(image::pipeline::DISK),
            metal_disk: dir.join(image::pipeline::METAL_DISK),
            metal_kernel: dir.join("metal/bzImage"),
            metal_initrd: dir.join("metal").join(image::pipeline::INITRAMFS),
            init: dir.join("fluxnode"),
            release_key: std::env::var_os("FLUXNODE_DEV_KEY")
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir().join("fluxnode/release-dev.key")),
            tool: std::env::var_os("FLUXNODE_IMAGE_TOOL")
                .map(PathBuf::from)
                .unwrap_or_else(|| target_dir().join("release/fluxnode-image")),
            dir,
        };
        for p in [
            &a.kernel,
            &a.initrd,
            &a.uki,
            &a.disk,
            &a.init,
            &a.metal_disk,
            &a.metal_kernel,
        ] {
            if !p.exists() {
                return Err(format!(
                    "{} is missing: run ./scripts/build-image.sh (or ./scripts/test.sh) first",
                    p.display()
                ));
            }
        }
        Ok(a)
    }

    /// The release key pair's paths (key, pub), or why they are missing.
    pub fn require_release_key(&self) -> Result<(PathBuf, PathBuf), String> {
        let public = self.release_key.with_extension("pub");
        for p in [&self.release_key, &public, &self.tool] {
            if !p.exists() {
                return Err(format!(
                    "{} is missing: run ./scripts/build-image.sh",
                    p.display()
                ));
            }
        }
        Ok((self.release_key.clone(), public))
    }
}
