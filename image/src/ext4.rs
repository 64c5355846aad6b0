//! The FLUXDATA filesystem, made at build time by `mke2fs -E offset=` straight into the disk
//! image (no root, loop device or mount). A fixed UUID, hash seed and clock make it
//! reproducible; PID1 grows it to the disk's end on first boot. It has ext4 project quotas
//! (the `quota` and `project` features, a project quota inode only), which cap each app
//! instance's overlay directories at the disk size it was sold (runtime::quota).

use std::path::Path;
use std::process::Command;

use crate::error::{run_tool, Result};

pub const LABEL: &str = "FLUXDATA";
pub const UUID: &str = "8f1d3c2a-6b5e-4a7d-9c0b-f1f1f1f1f103";
const HASH_SEED: &str = "8f1d3c2a-6b5e-4a7d-9c0b-f1f1f1f1f104";
/// The clock mke2fs stamps into the superblock (2024-01-01T00:00:00Z).
const FAKE_TIME: &str = "1704067200";
/// Project quotas (with `quotatype=prjquota`, no user or group quota inodes: nothing here
/// limits by uid or gid). PID1 turns the same on, with tune2fs, on a disk made before.
pub const FEATURES: &str = "quota,project";

/// Makes an ext4 filesystem of `size` bytes at byte `offset` of `image`.
pub fn format(image: &Path, offset: u64, size: u64) -> Result<()> {
    let mut cmd = Command::new("mke2fs");
    cmd.env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        // 4 KiB blocks and the default (not "small") profile, so that a first boot can grow
        // this small filesystem to a disk of many TiB. Its 256-byte inodes hold project ids.
        .args([
            "-q", "-F", "-t", "ext4", "-T", "default", "-b", "4096", "-L", LABEL, "-U", UUID, "-O",
            FEATURES, "-E",
        ])
        .arg(format!(
            "offset={offset},hash_seed={HASH_SEED},nodiscard,root_owner=0:0,quotatype=prjquota"
        ))
        .arg(image)
        .arg(format!("{}k", size / 1024));
    run_tool(&mut cmd)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluxdata_has_project_quotas_and_no_user_or_group_quota() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(72 << 20)
            .unwrap();
        format(&img, 4 << 20, 64 << 20).unwrap();
        let out = Command::new("dumpe2fs")
            .arg("-h")
            .arg(format!("{}?offset={}", img.display(), 4 << 20))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let features = text
            .lines()
            .find_map(|l| l.strip_prefix("Filesystem features:"))
            .unwrap_or_else(|| panic!("no features in {text}"));
        let features: Vec<&str> = features.split_whitespace().collect();
        assert!(
            features.contains(&"quota") && features.contains(&"project"),
            "{features:?}"
        );
        assert!(text.contains("Project quota inode:"), "{text}");
        assert!(!text.contains("User quota inode:"), "{text}");
        assert!(!text.contains("Group quota inode:"), "{text}");
        assert!(text.contains("Inode size:\t          256"), "{text}");
    }
}
