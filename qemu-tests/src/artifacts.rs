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
    /// The static `fluxnode` binary the initramfs was built around.
    pub init: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl Artifacts {
    /// The artifacts in `$FLUXNODE_ARTIFACTS`, else `<cargo target dir>/fluxnode/out`.
    pub fn locate() -> Result<Self, String> {
        let dir = std::env::var_os("FLUXNODE_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace_root().join("target"))
                    .join("fluxnode/out")
            });
        let a = Artifacts {
            kernel: dir.join("bzImage"),
            initrd: dir.join(image::pipeline::INITRAMFS),
            uki: dir.join(image::pipeline::UKI),
            disk: dir.join(image::pipeline::DISK),
            init: dir.join("fluxnode"),
            dir,
        };
        for p in [&a.kernel, &a.initrd, &a.uki, &a.disk, &a.init] {
            if !p.exists() {
                return Err(format!(
                    "{} is missing: run ./scripts/build-image.sh (or ./scripts/test.sh) first",
                    p.display()
                ));
            }
        }
        Ok(a)
    }
}
