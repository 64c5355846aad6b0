//! Phase 0, root: the initramfs root ("rootfs") can never be `pivot_root`ed away, and
//! libcontainer pivots into every container's root, so containers would fail with EINVAL.
//! When / is still rootfs, PID1 copies the tree into a fresh tmpfs, frees the old contents,
//! moves the tmpfs over / (MS_MOVE + chroot, as switch_root does) and re-executes itself.
//! Any failure before the move leaves the node booting on rootfs, and says so.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{mknod, Mode, SFlag};

const NEW_ROOT: &str = "/newroot";
/// Kernel filesystems that are mounted later and never copied.
const SKIP: [&str; 3] = ["proc", "sys", "newroot"];

/// The filesystem type of the mount at `/` in a mountinfo text (the last one wins).
pub fn root_fstype(mountinfo: &str) -> Option<String> {
    mountinfo
        .lines()
        .filter(|l| l.split_whitespace().nth(4) == Some("/"))
        .filter_map(|l| {
            l.split_once(" - ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
        })
        .map(str::to_owned)
        .next_back()
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if from == Path::new("/") && SKIP.iter().any(|s| name.as_bytes() == s.as_bytes()) {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        let meta = fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
            continue;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                SFlag::S_IFCHR
            } else {
                SFlag::S_IFBLK
            };
            mknod(
                &dst,
                kind,
                Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )
            .map_err(io::Error::from)?;
        } else {
            continue;
        }
        fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    Ok(())
}

/// Removes the old root's contents (same device as `/` only), keeping the new root.
fn free_old_root() {
    let Ok(root_dev) = fs::metadata("/").map(|m| m.dev()) else {
        return;
    };
    let Ok(entries) = fs::read_dir("/") else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == Path::new(NEW_ROOT)
            || fs::symlink_metadata(&path).map(|m| m.dev()).ok() != Some(root_dev)
        {
            continue;
        }
        let _ = if path.is_dir() && !path.is_symlink() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

fn switch() -> Result<(), String> {
    fs::create_dir_all(NEW_ROOT).map_err(|e| format!("mkdir {NEW_ROOT}: {e}"))?;
    mount(
        Some("root"),
        NEW_ROOT,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=0755"),
    )
    .map_err(|e| format!("mount tmpfs on {NEW_ROOT}: {e}"))?;
    copy_tree(Path::new("/"), Path::new(NEW_ROOT))
        .map_err(|e| format!("copy / to {NEW_ROOT}: {e}"))?;
    for dir in ["proc", "sys"] {
        let _ = fs::create_dir(Path::new(NEW_ROOT).join(dir));
    }
    free_old_root();
    std::env::set_current_dir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(|e| format!("move {NEW_ROOT} to /: {e}"))?;
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    Ok(())
}

/// Moves / onto a tmpfs and re-executes PID1 when / is still the initramfs rootfs. Returns
/// (only) when nothing had to be done, or when the switch failed before the move.
pub fn ensure_pivotable_root() {
    let _ = fs::create_dir_all("/proc");
    let mounted = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    )
    .is_ok();
    let fstype = fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| root_fstype(&m));
    if mounted {
        let _ = umount2("/proc", MntFlags::MNT_DETACH);
    }
    if fstype.as_deref() != Some("rootfs") {
        return;
    }
    if let Err(e) = switch() {
        println!(
            "fluxnode: root: staying on the initramfs rootfs ({e}); containers cannot pivot_root"
        );
        return;
    }
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let Err(e) = nix::unistd::execv(c"/init", &args);
    println!("fluxnode: root: re-exec of /init on the new root failed: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_filesystem_type_is_read_from_mountinfo() {
        let initramfs =
            "1 1 0:2 / / rw - rootfs rootfs rw\n20 1 0:19 / /proc rw,nosuid - proc proc rw\n";
        assert_eq!(root_fstype(initramfs).as_deref(), Some("rootfs"));
        let switched =
            "22 21 0:20 / / rw - tmpfs root rw,mode=755\n23 22 0:21 / /proc rw - proc proc rw\n";
        assert_eq!(root_fstype(switched).as_deref(), Some("tmpfs"));
        assert_eq!(root_fstype(""), None);
    }
}
