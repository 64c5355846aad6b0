//! ext4 project quotas: the disk size an app is sold, enforced on its instance's overlay
//! directories on /data (DESIGN.md section 5).
//!
//! A project id is a number stored in each inode. A directory with the PROJINHERIT flag
//! gives its id to everything created in it, and the kernel refuses (EXDEV) to rename or
//! link into it anything of another project, so once a directory is tagged, all that ever
//! lands under it counts against its project. The quota itself (a block limit per project
//! id) lives in the filesystem's hidden quota inode and is set with quotactl(2).
//!
//! The filesystem needs the `quota` and `project` features (mke2fs/tune2fs) and a kernel with
//! CONFIG_QUOTA and CONFIG_QFMT_V2; limits are only *enforced* when it is mounted with the
//! `prjquota` option (without it the kernel keeps usage but lets writes through, which
//! [`state`] tells apart).
//!
//! For an instance `/data/apps/<id>`, in this order, before its overlay is mounted:
//!
//! ```text
//! let id = quota::project_id(inst.dir())?;        // the directory's inode number
//! quota::set_project(&inst.dir().join("upper"), id)?;
//! quota::set_project(&inst.dir().join("work"), id)?;
//! quota::set_limit(Path::new("/data"), id, app.disk_bytes)?;
//! ```
//!
//! Both the upperdir and the workdir: overlayfs copies a file up by creating it in the
//! workdir and renaming it into the upperdir, and ext4 refuses that rename (EXDEV) when the
//! two differ in project. And the project before the limit: moving what a directory already
//! holds into a project whose limit it exceeds fails with EDQUOT.
//!
//! A process with CAP_SYS_RESOURCE is not held to a hard limit (the kernel's
//! `ignore_hardlimit`): PID1 itself writes past quotas. overlayfs drops that capability for
//! the writes it makes on a process's behalf, so what an app writes through its overlay is
//! always held, whatever capabilities its container has.
//!
//! A container whose root may issue FS_IOC_FSSETXATTR or FS_IOC_SETFLAGS (no user
//! namespace) could move its files out of the project or clear PROJINHERIT; the kernel only
//! forbids that from inside a user namespace, so the container's seccomp profile must refuse
//! those two ioctls for the quota to hold against a hostile app.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// linux/fs.h `struct fsxattr`, the argument of FS_IOC_FSGETXATTR and FS_IOC_FSSETXATTR.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FsXattr {
    fsx_xflags: u32,
    fsx_extsize: u32,
    fsx_nextents: u32,
    fsx_projid: u32,
    fsx_cowextsize: u32,
    fsx_pad: [u8; 8],
}

/// linux/fs.h: the directory gives its project id to what is created in it.
const FS_XFLAG_PROJINHERIT: u32 = 0x0000_0200;

// _IOR('X', 31, struct fsxattr) and _IOW('X', 32, struct fsxattr).
nix::ioctl_read!(fs_ioc_fsgetxattr, b'X', 31, FsXattr);
nix::ioctl_write_ptr!(fs_ioc_fssetxattr, b'X', 32, FsXattr);

/// linux/quota.h `struct if_dqblk`, the argument of Q_GETQUOTA and Q_SETQUOTA.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct IfDqblk {
    /// In QIF_DQBLKSIZE (1 KiB) blocks.
    dqb_bhardlimit: u64,
    dqb_bsoftlimit: u64,
    /// In bytes.
    dqb_curspace: u64,
    dqb_ihardlimit: u64,
    dqb_isoftlimit: u64,
    dqb_curinodes: u64,
    dqb_btime: u64,
    dqb_itime: u64,
    dqb_valid: u32,
}

/// linux/dqblk_xfs.h `struct fs_qfilestatv`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsQfilestatv {
    qfs_ino: u64,
    qfs_nblks: u64,
    qfs_nextents: u32,
    qfs_pad: u32,
}

/// linux/dqblk_xfs.h `struct fs_quota_statv`, the argument of Q_XGETQSTATV (which the VFS
/// answers for ext4 too).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsQuotaStatv {
    qs_version: i8,
    qs_pad1: u8,
    qs_flags: u16,
    qs_incoredqs: u32,
    qs_uquota: FsQfilestatv,
    qs_gquota: FsQfilestatv,
    qs_pquota: FsQfilestatv,
    qs_btimelimit: i32,
    qs_itimelimit: i32,
    qs_rtbtimelimit: i32,
    qs_bwarnlimit: u16,
    qs_iwarnlimit: u16,
    qs_rtbwarnlimit: u16,
    qs_pad3: u16,
    qs_pad4: u32,
    qs_pad2: [u64; 7],
}

// linux/quota.h and linux/dqblk_xfs.h.
const Q_GETQUOTA: u32 = 0x80_0007;
const Q_SETQUOTA: u32 = 0x80_0008;
const Q_XGETQSTATV: u32 = ((b'X' as u32) << 8) + 8;
const PRJQUOTA: u32 = 2;
const QIF_BLIMITS: u32 = 1;
const QIF_DQBLKSIZE: u64 = 1024;
const FS_QSTATV_VERSION1: i8 = 1;
const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;

/// linux/quota.h `QCMD(cmd, type)`.
const fn qcmd(cmd: u32, kind: u32) -> u32 {
    (cmd << 8) | (kind & 0xff)
}

/// A quota step that failed, naming the path or filesystem and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The filesystem (or the kernel) has no project quotas: ENOTSUP/EOPNOTSUPP from the
    /// project ioctl, ESRCH or ENOSYS from quotactl, ENOTTY from a filesystem without the
    /// ioctl.
    #[error(
        "{path}: {op}: project quotas are off on this filesystem \
         (it needs the ext4 quota and project features, a kernel with CONFIG_QUOTA and \
         CONFIG_QFMT_V2, and the prjquota mount option to enforce limits): {source}"
    )]
    Off {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Tagging what a directory holds would take its project past its limit.
    #[error(
        "{path}: {op}: the project's limit is already exceeded by what this directory \
         holds (set the project before the limit): {source}"
    )]
    OverLimit {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{path}: inode number {ino} cannot be a project id (1 to 4294967294)")]
    BadId { path: String, ino: u64 },
    #[error("{path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl QuotaError {
    /// True when the error means "this filesystem has no (enforced) project quotas",
    /// rather than a fault of one path.
    pub fn is_off(&self) -> bool {
        matches!(self, QuotaError::Off { .. })
    }

    fn new(path: &Path, op: &'static str, source: io::Error) -> Self {
        let path = path.display().to_string();
        match source.raw_os_error() {
            Some(libc::EOPNOTSUPP | libc::ESRCH | libc::ENOSYS | libc::ENOTTY) => {
                QuotaError::Off { path, op, source }
            }
            Some(libc::EDQUOT) => QuotaError::OverLimit { path, op, source },
            _ => QuotaError::Io { path, op, source },
        }
    }
}

fn nix_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(Errno) -> QuotaError + 'a {
    move |e| QuotaError::new(path, op, io::Error::from(e))
}

/// A project's use of its filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of blocks its files hold (and have reserved for delayed allocation).
    pub bytes: u64,
    /// Its hard limit in bytes; 0 = none.
    pub limit: u64,
    /// Inodes it holds.
    pub files: u64,
}

/// Whether the filesystem keeps project usage, and whether it enforces the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub accounting: bool,
    pub enforced: bool,
}

/// The project id of an instance: the inode number of its directory (`/data/apps/<id>`).
///
/// Inode numbers are unique among the files that exist on one filesystem, so two live
/// instances never share an id, with no table to keep, lose or repair; the number stays
/// the same across reboots (PID1 only ever grows the filesystem, which renumbers nothing);
/// it is never 0 (ext4's first inode is 1, and 1 to 11 are reserved). An id whose directory
/// is purged may later be another instance's: that one sets its project and limit afresh.
pub fn project_id(dir: &Path) -> Result<u32, QuotaError> {
    let meta = std::fs::metadata(dir).map_err(|e| QuotaError::new(dir, "stat", e))?;
    id_from_ino(meta.ino()).ok_or_else(|| QuotaError::BadId {
        path: dir.display().to_string(),
        ino: meta.ino(),
    })
}

/// 0 is "no project", and (u32)-1 is the kernel's invalid id.
fn id_from_ino(ino: u64) -> Option<u32> {
    u32::try_from(ino)
        .ok()
        .filter(|id| *id != 0 && *id != u32::MAX)
}

fn get_xattr(fd: BorrowedFd<'_>, path: &Path) -> Result<FsXattr, QuotaError> {
    let mut x = FsXattr::default();
    // SAFETY: the ioctl writes one FsXattr, laid out as linux/fs.h's struct fsxattr.
    unsafe { fs_ioc_fsgetxattr(fd.as_raw_fd(), &mut x) }
        .map_err(nix_err(path, "FS_IOC_FSGETXATTR"))?;
    Ok(x)
}

/// Sets `id` on one open file (and PROJINHERIT when it is a directory), unless it has them.
fn tag(fd: BorrowedFd<'_>, path: &Path, id: u32, dir: bool) -> Result<(), QuotaError> {
    let mut x = get_xattr(fd, path)?;
    if x.fsx_projid == id && (!dir || x.fsx_xflags & FS_XFLAG_PROJINHERIT != 0) {
        return Ok(());
    }
    x.fsx_projid = id;
    if dir {
        x.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    }
    // SAFETY: the ioctl reads one FsXattr, laid out as linux/fs.h's struct fsxattr.
    unsafe { fs_ioc_fssetxattr(fd.as_raw_fd(), &x) }.map_err(nix_err(path, "FS_IOC_FSSETXATTR"))?;
    Ok(())
}

/// The project id of `path` and whether it carries PROJINHERIT.
pub fn project(path: &Path) -> Result<(u32, bool), QuotaError> {
    let f = File::open(path).map_err(|e| QuotaError::new(path, "open", e))?;
    let x = get_xattr(f.as_fd(), path)?;
    Ok((x.fsx_projid, x.fsx_xflags & FS_XFLAG_PROJINHERIT != 0))
}

fn open_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    flags: OFlag,
) -> Result<Option<OwnedFd>, QuotaError> {
    let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    match openat(Some(parent.as_raw_fd()), name, flags, Mode::empty()) {
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        // Gone since it was listed.
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(nix_err(path, "open")(e)),
    }
}

/// One directory being walked: its descriptor and the entries still to visit.
struct Frame {
    fd: OwnedFd,
    path: PathBuf,
    entries: Vec<Vec<u8>>,
}

impl Frame {
    fn open(fd: OwnedFd, path: PathBuf) -> Result<Self, QuotaError> {
        let dup = fd
            .try_clone()
            .map_err(|e| QuotaError::new(&path, "dup", e))?;
        let mut dir = nix::dir::Dir::from(dup).map_err(nix_err(&path, "opendir"))?;
        let mut entries = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(nix_err(&path, "readdir"))?;
            let name = e.file_name().to_bytes();
            if name != b"." && name != b".." {
                entries.push(name.to_vec());
            }
        }
        Ok(Frame { fd, path, entries })
    }
}

/// Puts `dir` and everything already in it into project `id`, and sets PROJINHERIT on it
/// and its subdirectories so that what is written there later joins the project too.
///
/// Symlinks are never followed (below `dir` itself). Only directories and regular files
/// are tagged: symlinks, device nodes (overlayfs whiteouts among them), fifos and sockets
/// cannot be opened for the ioctl and hold no blocks. A directory is tagged after its
/// contents, so a directory that already has `id` and PROJINHERIT holds nothing else
/// (what the kernel lets in there inherits it), and its subtree is skipped: calling this
/// again on every start costs one ioctl, and an interrupted walk resumes where it stopped.
pub fn set_project(dir: &Path, id: u32) -> Result<(), QuotaError> {
    let top: OwnedFd = File::open(dir)
        .map_err(|e| QuotaError::new(dir, "open", e))?
        .into();
    let meta = File::from(
        top.try_clone()
            .map_err(|e| QuotaError::new(dir, "dup", e))?,
    )
    .metadata()
    .map_err(|e| QuotaError::new(dir, "stat", e))?;
    if !meta.is_dir() {
        return Err(QuotaError::Io {
            path: dir.display().to_string(),
            op: "set project",
            source: io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    let x = get_xattr(top.as_fd(), dir)?;
    if x.fsx_projid == id && x.fsx_xflags & FS_XFLAG_PROJINHERIT != 0 {
        return Ok(());
    }
    let mut stack = vec![Frame::open(top, dir.to_path_buf())?];
    while let Some(frame) = stack.last_mut() {
        let Some(name) = frame.entries.pop() else {
            let done = stack.pop().expect("a frame");
            tag(done.fd.as_fd(), &done.path, id, true)?;
            continue;
        };
        let name = OsStr::from_bytes(&name);
        let path = frame.path.join(name);
        let st = match fstatat(
            Some(frame.fd.as_raw_fd()),
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(nix_err(&path, "stat")(e)),
        };
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFREG {
            let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK;
            if let Some(fd) = open_at(frame.fd.as_fd(), name, &path, flags)? {
                // Swapped for something else since the stat: leave it.
                let same = File::from(
                    fd.try_clone()
                        .map_err(|e| QuotaError::new(&path, "dup", e))?,
                )
                .metadata()
                .is_ok_and(|m| m.file_type().is_file() && m.ino() == st.st_ino);
                if same {
                    tag(fd.as_fd(), &path, id, false)?;
                }
            }
        } else if kind == SFlag::S_IFDIR {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
            if let Some(fd) = open_at(frame.fd.as_fd(), name, &path, flags)? {
                let x = get_xattr(fd.as_fd(), &path)?;
                if x.fsx_projid != id || x.fsx_xflags & FS_XFLAG_PROJINHERIT == 0 {
                    stack.push(Frame::open(fd, path)?);
                }
            }
        }
    }
    Ok(())
}

/// Runs quotactl `cmd` for project `id` on the filesystem `fs`: its block device
/// (quotactl(2)) or any path on it (quotactl_fd(2), Linux 5.14).
fn quotactl(
    fs: &Path,
    cmd: u32,
    id: u32,
    addr: *mut libc::c_char,
    op: &'static str,
) -> Result<(), QuotaError> {
    let meta = std::fs::metadata(fs).map_err(|e| QuotaError::new(fs, "stat", e))?;
    let rc = if meta.file_type().is_block_device() {
        let special = std::ffi::CString::new(fs.as_os_str().as_bytes())
            .map_err(|_| QuotaError::new(fs, op, io::Error::from_raw_os_error(libc::EINVAL)))?;
        // SAFETY: `special` is a C string and `addr` points at the structure `cmd` takes.
        unsafe {
            libc::quotactl(
                cmd as libc::c_int,
                special.as_ptr(),
                id as libc::c_int,
                addr,
            )
        }
    } else {
        let f = File::open(fs).map_err(|e| QuotaError::new(fs, "open", e))?;
        // SAFETY: as above, with a descriptor of a file on the filesystem.
        unsafe {
            libc::syscall(
                libc::SYS_quotactl_fd,
                f.as_raw_fd() as libc::c_uint,
                cmd as libc::c_uint,
                id as libc::c_uint,
                addr,
            ) as libc::c_int
        }
    };
    if rc < 0 {
        return Err(QuotaError::new(fs, op, io::Error::last_os_error()));
    }
    Ok(())
}

/// 1 KiB quota blocks for a limit in bytes, rounded up (a limit is never made smaller).
fn blocks_for(bytes: u64) -> u64 {
    bytes.div_ceil(QIF_DQBLKSIZE)
}

/// Sets project `id`'s block hard and soft limits on filesystem `fs` (its block device,
/// or any path on it) to `bytes` (0 = no limit). The inode limits are left as they are.
pub fn set_limit(fs: &Path, id: u32, bytes: u64) -> Result<(), QuotaError> {
    let blocks = blocks_for(bytes);
    let mut q = IfDqblk {
        dqb_bhardlimit: blocks,
        dqb_bsoftlimit: blocks,
        dqb_valid: QIF_BLIMITS,
        ..IfDqblk::default()
    };
    quotactl(
        fs,
        qcmd(Q_SETQUOTA, PRJQUOTA),
        id,
        (&mut q as *mut IfDqblk).cast(),
        "Q_SETQUOTA",
    )
}

/// What project `id` uses on filesystem `fs` (its block device, or any path on it).
pub fn usage(fs: &Path, id: u32) -> Result<Usage, QuotaError> {
    let mut q = IfDqblk::default();
    quotactl(
        fs,
        qcmd(Q_GETQUOTA, PRJQUOTA),
        id,
        (&mut q as *mut IfDqblk).cast(),
        "Q_GETQUOTA",
    )?;
    Ok(Usage {
        bytes: q.dqb_curspace,
        limit: q.dqb_bhardlimit.saturating_mul(QIF_DQBLKSIZE),
        files: q.dqb_curinodes,
    })
}

/// Whether filesystem `fs` (its block device, or any path on it) counts project usage
/// and enforces project limits. [`QuotaError::Off`] when it keeps no quota at all.
pub fn state(fs: &Path) -> Result<State, QuotaError> {
    let mut s = FsQuotaStatv {
        qs_version: FS_QSTATV_VERSION1,
        ..FsQuotaStatv::default()
    };
    quotactl(
        fs,
        qcmd(Q_XGETQSTATV, PRJQUOTA),
        0,
        (&mut s as *mut FsQuotaStatv).cast(),
        "Q_XGETQSTATV",
    )?;
    Ok(State {
        accounting: s.qs_flags & FS_QUOTA_PDQ_ACCT != 0,
        enforced: s.qs_flags & FS_QUOTA_PDQ_ENFD != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn project_ids_are_inode_numbers_that_fit_and_are_never_zero() {
        assert_eq!(id_from_ino(0), None);
        assert_eq!(id_from_ino(2), Some(2));
        assert_eq!(id_from_ino(123_456), Some(123_456));
        assert_eq!(id_from_ino(u32::MAX as u64 - 1), Some(u32::MAX - 1));
        assert_eq!(id_from_ino(u32::MAX as u64), None);
        assert_eq!(id_from_ino(1 << 40), None);
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let (ia, ib) = (project_id(&a).unwrap(), project_id(&b).unwrap());
        assert_ne!(ia, ib);
        assert_eq!(project_id(&a).unwrap(), ia, "stable");
        let err = project_id(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn limits_are_whole_kibibytes_rounded_up() {
        assert_eq!(blocks_for(0), 0);
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(1024), 1);
        assert_eq!(blocks_for(1025), 2);
        assert_eq!(blocks_for(2 << 30), 2 << 20);
    }

    #[test]
    fn quotactl_commands_are_those_of_linux_quota_h() {
        // QCMD(Q_GETQUOTA, PRJQUOTA) as quota-tools pass it.
        assert_eq!(qcmd(Q_GETQUOTA, PRJQUOTA), 0x8000_0702);
        assert_eq!(qcmd(Q_SETQUOTA, PRJQUOTA), 0x8000_0802);
        assert_eq!(Q_GETQUOTA as i32, libc::Q_GETQUOTA);
        assert_eq!(QIF_BLIMITS, libc::QIF_BLIMITS);
        assert_eq!(size_of::<IfDqblk>(), size_of::<libc::dqblk>());
    }

    #[test]
    fn errors_say_plainly_when_project_quotas_are_off() {
        for errno in [libc::EOPNOTSUPP, libc::ESRCH, libc::ENOSYS, libc::ENOTTY] {
            let e = QuotaError::new(
                Path::new("/data/apps/web-0/upper"),
                "FS_IOC_FSSETXATTR",
                io::Error::from_raw_os_error(errno),
            );
            assert!(e.is_off(), "{errno}: {e}");
            let text = e.to_string();
            assert!(text.starts_with("/data/apps/web-0/upper: FS_IOC_FSSETXATTR: project quotas are off on this filesystem"), "{text}");
            assert!(text.contains("prjquota"), "{text}");
        }
        let e = QuotaError::new(
            Path::new("/dev/vda2"),
            "Q_SETQUOTA",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert!(!e.is_off());
        assert!(e.to_string().starts_with("/dev/vda2: Q_SETQUOTA: "), "{e}");
        let e = QuotaError::new(
            Path::new("/d"),
            "FS_IOC_FSSETXATTR",
            io::Error::from_raw_os_error(libc::EDQUOT),
        );
        assert!(matches!(e, QuotaError::OverLimit { .. }), "{e}");
    }

    /// The layouts and numbers above, checked against the system's kernel headers by the C
    /// compiler.
    #[test]
    fn structures_and_numbers_match_the_kernel_headers() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("h.c");
        std::fs::write(
            &src,
            r#"
#include <stdio.h>
#include <stddef.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <linux/dqblk_xfs.h>
int main(void) {
    printf("fsxattr %zu %zu %zu\n", sizeof(struct fsxattr),
           offsetof(struct fsxattr, fsx_projid), offsetof(struct fsxattr, fsx_pad));
    printf("get %lx\nset %lx\ninherit %x\n", (unsigned long)FS_IOC_FSGETXATTR,
           (unsigned long)FS_IOC_FSSETXATTR, FS_XFLAG_PROJINHERIT);
    printf("if_dqblk %zu %zu %zu\n", sizeof(struct if_dqblk),
           offsetof(struct if_dqblk, dqb_curspace), offsetof(struct if_dqblk, dqb_valid));
    printf("qcmd %x %x %x\n", QCMD(Q_GETQUOTA, PRJQUOTA), QCMD(Q_SETQUOTA, PRJQUOTA),
           QCMD(Q_XGETQSTATV, PRJQUOTA));
    printf("blimits %d %d\n", QIF_BLIMITS, QIF_DQBLKSIZE);
    printf("statv %zu %zu %zu %d %d %d\n", sizeof(struct fs_quota_statv),
           offsetof(struct fs_quota_statv, qs_pquota),
           offsetof(struct fs_quota_statv, qs_pad2), FS_QSTATV_VERSION1,
           FS_QUOTA_PDQ_ACCT, FS_QUOTA_PDQ_ENFD);
    return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("h");
        let st = Command::new("cc")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .status()
            .expect("a C compiler (cc)");
        assert!(st.success());
        let out = Command::new(&exe).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let want = format!(
            "fsxattr {} {} {}\nget {:x}\nset {:x}\ninherit {:x}\n\
             if_dqblk {} {} {}\nqcmd {:x} {:x} {:x}\nblimits {} {}\n\
             statv {} {} {} {} {} {}\n",
            size_of::<FsXattr>(),
            std::mem::offset_of!(FsXattr, fsx_projid),
            std::mem::offset_of!(FsXattr, fsx_pad),
            nix::request_code_read!(b'X', 31, size_of::<FsXattr>()),
            nix::request_code_write!(b'X', 32, size_of::<FsXattr>()),
            FS_XFLAG_PROJINHERIT,
            size_of::<IfDqblk>(),
            std::mem::offset_of!(IfDqblk, dqb_curspace),
            std::mem::offset_of!(IfDqblk, dqb_valid),
            qcmd(Q_GETQUOTA, PRJQUOTA),
            qcmd(Q_SETQUOTA, PRJQUOTA),
            qcmd(Q_XGETQSTATV, PRJQUOTA),
            QIF_BLIMITS,
            QIF_DQBLKSIZE,
            size_of::<FsQuotaStatv>(),
            std::mem::offset_of!(FsQuotaStatv, qs_pquota),
            std::mem::offset_of!(FsQuotaStatv, qs_pad2),
            FS_QSTATV_VERSION1,
            FS_QUOTA_PDQ_ACCT,
            FS_QUOTA_PDQ_ENFD,
        );
        assert_eq!(text, want);
    }

    #[test]
    fn a_project_is_set_only_on_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let err = set_project(&f, 7).unwrap_err();
        assert!(err.to_string().contains("/f: set project"), "{err}");
        let err = set_project(&dir.path().join("missing"), 7).unwrap_err();
        assert!(err.to_string().contains("missing: open"), "{err}");
    }
}
