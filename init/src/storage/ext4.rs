//! Reading an ext4 superblock: is it ext4, was it cleanly unmounted, how big is it. Used to
//! decide on e2fsck and growth, and by tests to check the image after poweroff.

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
}

impl Superblock {
    pub fn size_bytes(&self) -> u64 {
        self.block_size * self.blocks
    }

    /// Parses the 1024-byte superblock; None when the magic is not ext2/3/4's.
    pub fn parse(sb: &[u8; 1024]) -> Option<Self> {
        let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
        if u16_at(0x38) != 0xEF53 {
            return None;
        }
        let incompat = u32_at(0x60);
        let mut blocks = u32_at(0x04) as u64;
        if incompat & 0x80 != 0 {
            blocks |= (u32_at(0x150) as u64) << 32;
        }
        Some(Superblock {
            block_size: 1024u64 << u32_at(0x18).min(6),
            blocks,
            clean: u16_at(0x3A) & 1 != 0,
            needs_recovery: incompat & 0x4 != 0,
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

    #[test]
    fn zeroes_are_not_a_filesystem() {
        assert_eq!(Superblock::parse(&[0u8; 1024]), None);
    }
}
