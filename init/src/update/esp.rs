//! The EFI system partition on the node: found by its GPT label, checked with
//! `fsck.fat -a` before it is mounted to be written (FAT has no journal, and a power cut
//! may have left it inconsistent), mounted at /run/fluxnode/esp and unmounted when the
//! handle goes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The ESP's GPT partition name (written by `fluxnode-image disk`).
pub const LABEL: &str = "ESP";
pub const MOUNTPOINT: &str = "/run/fluxnode/esp";
/// Where the UKIs are, relative to the ESP's root.
pub const ENTRIES: &str = "EFI/Linux";
const FSCK: [&str; 2] = ["/usr/sbin/fsck.fat", "/sbin/fsck.fat"];

/// The ESP's device node.
pub fn device() -> Result<PathBuf, String> {
    crate::storage::find::by_label(Path::new("/sys/class/block"), LABEL)
        .map(|p| p.device)
        .ok_or_else(|| format!("no partition labelled {LABEL}"))
}

/// `fsck.fat -a` on the (unmounted) ESP: repairs what a power cut left. Exit 0 (clean)
/// and 1 (repaired) are fine.
pub fn check(device: &Path) -> Result<(), String> {
    let prog = FSCK
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or("fsck.fat is not in the image")?;
    let out = Command::new(prog)
        .arg("-a")
        .arg(device)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    match out.status.code() {
        Some(0) | Some(1) => Ok(()),
        _ => Err(format!(
            "fsck.fat -a {}: {} {}",
            device.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A mounted ESP; unmounted on drop.
pub struct Mounted {
    root: PathBuf,
}

impl Mounted {
    /// Mounts `device` at [`MOUNTPOINT`], read-only unless `writable`.
    pub fn new(device: &Path, writable: bool) -> Result<Self, String> {
        let root = PathBuf::from(MOUNTPOINT);
        fs::create_dir_all(&root).map_err(|e| format!("{MOUNTPOINT}: {e}"))?;
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        flags |= MsFlags::MS_NOATIME;
        if !writable {
            flags |= MsFlags::MS_RDONLY;
        }
        mount(Some(device), &root, Some("vfat"), flags, None::<&str>)
            .map_err(|e| format!("mount {} on {MOUNTPOINT}: {e}", device.display()))?;
        Ok(Mounted { root })
    }

    /// The ESP's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding the UKIs.
    pub fn entries_dir(&self) -> PathBuf {
        self.root.join(ENTRIES)
    }

    /// Bytes free for new files.
    pub fn free_bytes(&self) -> Result<u64, String> {
        free_bytes(&self.root)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.root, MntFlags::empty()) {
            tracing::warn!("umount {}: {e}", self.root.display());
        }
    }
}

/// Removes the `FSCKnnnn.REC` files `fsck.fat -a` makes in the root from lost cluster
/// chains. On the ESP those can only be the start of a write a power cut interrupted
/// (staging writes through a temporary name), so they are litter, not data. Returns
/// the names removed.
pub fn remove_salvaged(root: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for item in rd.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let upper = name.to_ascii_uppercase();
        let salvaged = upper.len() == 12
            && upper.starts_with("FSCK")
            && upper.ends_with(".REC")
            && upper[4..8].bytes().all(|b| b.is_ascii_digit());
        if salvaged && fs::remove_file(item.path()).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// Bytes free to an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, String> {
    let st =
        nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fsck_salvage_files_are_removed() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "FSCK0000.REC",
            "fsck0001.rec",
            "FSCKXXXX.REC",
            "FSCK0000.RECX",
            "BOOT.REC",
        ] {
            fs::write(d.path().join(n), b"x").unwrap();
        }
        fs::create_dir(d.path().join("EFI")).unwrap();
        assert_eq!(remove_salvaged(d.path()), ["FSCK0000.REC", "fsck0001.rec"]);
        let mut left: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["BOOT.REC", "EFI", "FSCK0000.RECX", "FSCKXXXX.REC"]);
    }
}
