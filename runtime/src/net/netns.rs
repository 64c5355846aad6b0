//! An app's network namespace, made before its container (as netavark and Podman do) and
//! handed to libcontainer by path: a short-lived thread of PID1 unshares a new network
//! namespace for itself, bind-mounts it at `/run/fluxnode/netns/<id>`, and there creates
//! the veth pair (its `eth0`, the peer straight into the node's namespace), brings up `lo`
//! and `eth0` with the app's address and a default route through the bridge. PID1's own
//! thread never leaves the node's namespace, and the thread has ended before any container
//! is created (libcontainer wants a single-threaded parent).

use std::net::Ipv4Addr;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::link::Rtnl;

/// What the child sets up in the new namespace.
pub struct Plan<'a> {
    pub path: &'a Path,
    /// The peer's name in the node's namespace.
    pub host_veth: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

fn inside(plan: &Plan, host_pid: u32) -> Result<(), String> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
    if let Some(dir) = plan.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::File::create(plan.path).map_err(|e| format!("{}: {e}", plan.path.display()))?;
    // This thread's namespace (the process's other threads stay in the node's).
    mount(
        Some("/proc/thread-self/ns/net"),
        plan.path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind the namespace at {}: {e}", plan.path.display()))?;
    let mut r = Rtnl::open().map_err(|e| e.to_string())?;
    r.up("lo").map_err(|e| e.to_string())?;
    r.veth("eth0", plan.host_veth, host_pid)
        .map_err(|e| e.to_string())?;
    r.address("eth0", plan.address, plan.prefix)
        .map_err(|e| e.to_string())?;
    r.up("eth0").map_err(|e| e.to_string())?;
    r.default_route("eth0", plan.gateway)
        .map_err(|e| e.to_string())
}

/// Makes the namespace of `plan` from a short-lived thread that unshares its own network
/// namespace (no fork, so no copied lock can hang a child) and is joined before this
/// returns: a few system calls. The process's own namespace never changes.
pub fn create(plan: &Plan) -> Result<(), String> {
    let host_pid = std::process::id();
    let owned = (
        plan.path.to_owned(),
        plan.host_veth.to_owned(),
        plan.address,
        plan.prefix,
        plan.gateway,
    );
    let done = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let (path, veth, address, prefix, gateway) = owned;
            inside(
                &Plan {
                    path: &path,
                    host_veth: &veth,
                    address,
                    prefix,
                    gateway,
                },
                host_pid,
            )
        })
        .map_err(|e| format!("network namespace {}: thread: {e}", plan.path.display()))?
        .join()
        .unwrap_or_else(|_| Err("the setup thread panicked".into()));
    if let Err(e) = done {
        remove(plan.path);
        return Err(format!("network namespace {}: {e}", plan.path.display()));
    }
    Ok(())
}

/// Unmounts and removes a namespace made by [`create`] (nothing there is fine).
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
