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

/// Bytes free to an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, String> {
    let st =
        nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {}: {e}", path.display()))?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}
