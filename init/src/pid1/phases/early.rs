//! Phase early: the kernel filesystems (and the /dev/fd, /dev/stdin... links a devtmpfs
//! lacks), cgroup2 with the node's controllers, hostname,
//! rlimits, the power button, and Ctrl-Alt-Del delivered as a signal instead of an instant
//! reboot.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::resource::{setrlimit, Resource};
use tracing::{info, warn};

use crate::pid1::{Boot, Cmdline};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

struct Mount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: &'static str,
}

const fn m(
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: &'static str,
) -> Mount {
    Mount {
        source,
        target,
        fstype,
        flags,
        data,
    }
}

const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);
const NOSUID_NODEV_NOEXEC: MsFlags = NOSUID_NODEV.union(MsFlags::MS_NOEXEC);

/// The kernel filesystems every node mounts, in order (parents before children).
const MOUNTS: [Mount; 8] = [
    m("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, ""),
    m("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ""),
    m(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        "mode=0755",
    ),
    m(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        "mode=0620,ptmxmode=0666,gid=5",
    ),
    m("shm", "/dev/shm", "tmpfs", NOSUID_NODEV, "mode=1777"),
    m("run", "/run", "tmpfs", NOSUID_NODEV, "mode=0755"),
    m("tmp", "/tmp", "tmpfs", NOSUID_NODEV, "mode=1777"),
    m(
        "cgroup2",
        CGROUP_ROOT,
        "cgroup2",
        NOSUID_NODEV_NOEXEC,
        "nsdelegate",
    ),
];

fn mount_all() -> Result<()> {
    for mnt in &MOUNTS {
        fs::create_dir_all(mnt.target).with_context(|| format!("mkdir {}", mnt.target))?;
        let data = (!mnt.data.is_empty()).then_some(mnt.data);
        mount(
            Some(mnt.source),
            mnt.target,
            Some(mnt.fstype),
            mnt.flags,
            data,
        )
        .with_context(|| format!("mount {} on {}", mnt.fstype, mnt.target))?;
    }
    Ok(())
}

/// The symlinks a devtmpfs lacks and programs expect (udev makes them elsewhere): `nft -f -`
/// opens /dev/stdin, shells use /dev/fd.
const DEV_LINKS: [(&str, &str); 4] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

fn dev_links() {
    for (link, target) in DEV_LINKS {
        if let Err(e) = std::os::unix::fs::symlink(target, link) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                tracing::warn!("{link} -> {target}: {e}");
            }
        }
    }
}

/// Makes sure fds 0-2 are the console, in case the initramfs had no /dev/console node.
fn attach_console() {
    if nix::fcntl::fcntl(1, nix::fcntl::FcntlArg::F_GETFD).is_ok() {
        return;
    }
    if let Ok(console) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(console.as_raw_fd(), fd);
        }
    }
}

fn enable_cgroup_controllers() -> Result<()> {
    let root = Path::new(CGROUP_ROOT);
    let outcome = runtime::cgroup::enable_controllers(root, &runtime::cgroup::NODE_CONTROLLERS)?;
    for failure in &outcome.failed {
        warn!("{failure}");
    }
    info!("cgroup controllers: {}", outcome.enabled.join(" "));
    Ok(())
}

fn set_limits() {
    // Containers and the chain node hold many files; the kernel default of 1024 is too few.
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, 1 << 20, 1 << 20) {
        warn!("rlimit nofile: {e}");
    }
}

pub fn run(boot: &mut Boot) -> Result<()> {
    mount_all()?;
    dev_links();
    attach_console();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = crate::pid1::root::root_fstype(&mountinfo).unwrap_or_else(|| "unknown".into());
    info!("root: / is {root}");
    boot.cmdline = Cmdline::read();
    enable_cgroup_controllers()?;
    if let Err(e) = nix::unistd::sethostname("fluxnode") {
        warn!("hostname: {e}");
    }
    set_limits();
    boot.power_buttons = crate::pid1::power_button::open_all();
    // From now on Ctrl-Alt-Del sends SIGINT to PID1 instead of rebooting at once.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        warn!("ctrl-alt-del: {e}");
    }
    Ok(())
}
