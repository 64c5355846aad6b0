//! The reaper: the one owner of `waitpid`. It collects every exited child without blocking.
//! Today every child is an orphan; the supervisor and the runtime will claim theirs.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use tracing::debug;

/// Reaps every child that has exited, returning how many.
pub fn reap_all() -> usize {
    let mut reaped = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
            Ok(status) => {
                reaped += 1;
                debug!("reaped orphan: {status:?}");
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                debug!("waitpid: {e}");
                return reaped;
            }
        }
    }
}
