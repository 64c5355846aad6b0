//! Phase 0, root: the initramfs root ("rootfs") can never be `pivot_root`ed away, and
//! libcontainer pivots into every container's root, so containers would fail with EINVAL.
//! When / is still rootfs, PID1 copies the tree into a fresh tmpfs, moves the tmpfs over /
//! (MS_MOVE + chroot), then frees the old contents through a descriptor, in switch_root's
//! order, and re-executes itself. Any failure up to the move leaves the node booting on a
//! whole rootfs, and says so; it never goes on over an emptied root.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use std::os::fd::{AsRawFd, RawFd};

use nix::dir::Dir;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstatat, mknod, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

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

/// Removes everything under the directory `dir` (an open descriptor: after the move the
/// old root has no path) that lives on device `dev`, as switch_root does; other mounts
/// are left alone. Errors are skipped: what cannot be freed only costs memory.
fn remove_contents(dir: RawFd, dev: u64) {
    let Ok(mut listing) = Dir::openat(
        Some(dir),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        Mode::empty(),
    ) else {
        return;
    };
    let names: Vec<CString> = listing
        .iter()
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    drop(listing);
    for name in names {
        let Ok(st) = fstatat(Some(dir), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if st.st_dev != dev {
            continue;
        }
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir {
            let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY;
            if let Ok(sub) = openat(Some(dir), name.as_c_str(), flags, Mode::empty()) {
                remove_contents(sub, dev);
                let _ = nix::unistd::close(sub);
            }
        }
        let how = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        let _ = unlinkat(Some(dir), name.as_c_str(), how);
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
    // switch_root's order: hold the old root by a descriptor, move the new root over /,
    // and only then free the old tree. A move that fails leaves the old root whole.
    let old = fs::File::open("/").map_err(|e| format!("open /: {e}"))?;
    let old_dev = old.metadata().map_err(|e| format!("stat /: {e}"))?.dev();
    std::env::set_current_dir(NEW_ROOT).map_err(|e| format!("chdir {NEW_ROOT}: {e}"))?;
    if let Err(e) = mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>) {
        let _ = std::env::set_current_dir("/");
        let _ = umount2(NEW_ROOT, MntFlags::MNT_DETACH);
        return Err(format!("move {NEW_ROOT} to /: {e}"));
    }
    nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    remove_contents(old.as_raw_fd(), old_dev);
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

    #[test]
    fn the_old_tree_is_freed_through_a_descriptor_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("usr/sbin")).unwrap();
        fs::write(d.join("usr/sbin/e2fsck"), b"x").unwrap();
        fs::write(d.join("init"), b"y").unwrap();
        std::os::unix::fs::symlink("/nowhere", d.join("link")).unwrap();
        let fd = fs::File::open(d).unwrap();
        let dev = fd.metadata().unwrap().dev();
        remove_contents(fd.as_raw_fd(), dev);
        assert_eq!(fs::read_dir(d).unwrap().count(), 0);
        // Another device's entries are left alone (nothing here has another).
        remove_contents(fd.as_raw_fd(), dev + 1);
    }
}
