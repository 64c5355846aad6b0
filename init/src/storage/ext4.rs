//! Reading an ext4 superblock: is it ext4, was it cleanly unmounted, how big is it, does it
//! have project quotas. Used to decide on e2fsck, growth and turning quotas on, and by tests
//! to check the image after poweroff.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// What the superblock says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    pub block_size: u64,
    pub blocks: u64,
    /// The "valid" state bit: set on a clean unmount, cleared while mounted.
    pub clean: bool,
    /// The journal holds transactions to replay (after a power cut).
    pub needs_recovery: bool,
    /// Bytes per inode; a project id needs more than the old 128.
    pub inode_size: u16,
    /// The `quota` feature: quota files are hidden inodes kept by the filesystem.
    pub quota: bool,
    /// The `project` feature: inodes carry a project id.
    pub project: bool,
    /// The project quota inode (0: none).
    pub prj_quota_inode: u32,
}

/// What a filesystem needs to enforce ext4 project quotas, from its superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectQuotas {
    /// The quota and project features and a project quota inode.
    On,
    /// Not yet: [`ENABLE_PROJECT_QUOTAS`] turns them on.
    Off,
    /// They cannot be turned on here, and why.
    Impossible(&'static str),
}

/// The command that turns project quotas on in an unmounted filesystem (the device is
/// appended): the project feature, and the quota feature with a project quota inode only,
/// its usage counted from what the filesystem holds. Nothing else is changed.
pub const ENABLE_PROJECT_QUOTAS: [&str; 5] =
    ["/usr/sbin/tune2fs", "-O", "project", "-Q", "prjquota"];

const RO_COMPAT_QUOTA: u32 = 0x0100;
const RO_COMPAT_PROJECT: u32 = 0x2000;

impl Superblock {
    pub fn size_bytes(&self) -> u64 {
        self.block_size * self.blocks
    }

    pub fn project_quotas(&self) -> ProjectQuotas {
        if self.quota && self.project && self.prj_quota_inode != 0 {
            ProjectQuotas::On
        } else if self.inode_size <= 128 {
            ProjectQuotas::Impossible("its 128-byte inodes have no room for a project id")
        } else {
            ProjectQuotas::Off
        }
    }

    /// Parses the 1024-byte superblock; None when the magic is not ext2/3/4's.
    pub fn parse(sb: &[u8; 1024]) -> Option<Self> {
        let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
        if u16_at(0x38) != 0xEF53 {
            return None;
        }
        let incompat = u32_at(0x60);
        let ro_compat = u32_at(0x64);
        let mut blocks = u32_at(0x04) as u64;
        if incompat & 0x80 != 0 {
            blocks |= (u32_at(0x150) as u64) << 32;
        }
        Some(Superblock {
            block_size: 1024u64 << u32_at(0x18).min(6),
            blocks,
            clean: u16_at(0x3A) & 1 != 0,
            needs_recovery: incompat & 0x4 != 0,
            // s_inode_size exists from revision 1 (dynamic inode sizes) on.
            inode_size: if u32_at(0x4C) >= 1 { u16_at(0x58) } else { 128 },
            quota: ro_compat & RO_COMPAT_QUOTA != 0,
            project: ro_compat & RO_COMPAT_PROJECT != 0,
            prj_quota_inode: u32_at(0x26C),
        })
    }

    /// Reads the superblock of the filesystem starting at byte `offset` of `path`.
    pub fn read(path: &Path, offset: u64) -> io::Result<Option<Self>> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset + 1024))?;
        let mut sb = [0u8; 1024];
        f.read_exact(&mut sb)?;
        Ok(Self::parse(&sb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_mke2fs_filesystem_reads_clean_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        File::create(&img).unwrap().set_len(64 << 20).unwrap();
        let out = std::process::Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sb = Superblock::read(&img, 0).unwrap().expect("ext4 magic");
        assert_eq!(sb.size_bytes(), 64 << 20);
        assert!(sb.clean && !sb.needs_recovery);
    }

    fn mke2fs(img: &Path, args: &[&str]) {
        File::create(img).unwrap().set_len(64 << 20).unwrap();
        let out = std::process::Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-b", "4096"])
            .args(args)
            .arg(img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// FLUXDATA as nodes made before project quotas have it gains them from the command PID1
    /// runs, and stays consistent.
    #[test]
    fn project_quotas_are_read_and_turned_on_by_tune2fs() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        mke2fs(&img, &["-T", "default"]);
        let sb = Superblock::read(&img, 0).unwrap().unwrap();
        assert_eq!((sb.quota, sb.project, sb.inode_size), (false, false, 256));
        assert_eq!(sb.project_quotas(), ProjectQuotas::Off);
        let (tune2fs, args) = ENABLE_PROJECT_QUOTAS.split_first().unwrap();
        let out = std::process::Command::new(tune2fs)
            .args(args)
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sb = Superblock::read(&img, 0).unwrap().unwrap();
        assert_eq!(sb.project_quotas(), ProjectQuotas::On, "{sb:?}");
        let fsck = std::process::Command::new("e2fsck")
            .arg("-fn")
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        let dumpe2fs = std::process::Command::new("dumpe2fs")
            .arg("-h")
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&dumpe2fs.stdout);
        assert!(
            text.contains(&format!("Project quota inode:      {}", sb.prj_quota_inode)),
            "{text}"
        );
        assert!(!text.contains("User quota inode:"), "{text}");
    }

    #[test]
    fn a_filesystem_made_with_project_quotas_reads_on_and_small_inodes_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        mke2fs(&img, &["-O", "quota,project", "-E", "quotatype=prjquota"]);
        let sb = Superblock::read(&img, 0).unwrap().unwrap();
        assert_eq!(sb.project_quotas(), ProjectQuotas::On, "{sb:?}");
        mke2fs(&img, &["-I", "128"]);
        let sb = Superblock::read(&img, 0).unwrap().unwrap();
        assert!(
            matches!(sb.project_quotas(), ProjectQuotas::Impossible(_)),
            "{sb:?}"
        );
    }

    #[test]
    fn zeroes_are_not_a_filesystem() {
        assert_eq!(Superblock::parse(&[0u8; 1024]), None);
    }
}
