//! The FLUXDATA filesystem, made at build time by `mke2fs -E offset=` straight into the disk
//! image (no root, loop device or mount). A fixed UUID, hash seed and clock make it
//! reproducible; PID1 grows it to the disk's end on first boot.

use std::path::Path;
use std::process::Command;

use crate::error::{run_tool, Result};

pub const LABEL: &str = "FLUXDATA";
pub const UUID: &str = "8f1d3c2a-6b5e-4a7d-9c0b-f1f1f1f1f103";
const HASH_SEED: &str = "8f1d3c2a-6b5e-4a7d-9c0b-f1f1f1f1f104";
/// The clock mke2fs stamps into the superblock (2024-01-01T00:00:00Z).
const FAKE_TIME: &str = "1704067200";

/// Makes an ext4 filesystem of `size` bytes at byte `offset` of `image`.
pub fn format(image: &Path, offset: u64, size: u64) -> Result<()> {
    let mut cmd = Command::new("mke2fs");
    cmd.env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
        // 4 KiB blocks and the default (not "small") profile, so that a first boot can grow
        // this small filesystem to a disk of many TiB.
        .args([
            "-q", "-F", "-t", "ext4", "-T", "default", "-b", "4096", "-L", LABEL, "-U", UUID, "-E",
        ])
        .arg(format!(
            "offset={offset},hash_seed={HASH_SEED},nodiscard,root_owner=0:0"
        ))
        .arg(image)
        .arg(format!("{}k", size / 1024));
    run_tool(&mut cmd)?;
    Ok(())
}
