//! The reaper: the one owner of `waitpid`. It collects every exited child without blocking.
//! Today every child is an orphan; the supervisor and the runtime will claim theirs.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use tracing::debug;

/// What one pass of the reaper found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub count: usize,
    /// True when PID1 has no children at all: every process on the machine is gone, since
    /// orphans are re-parented to PID1.
    pub none_left: bool,
}

/// Reaps every child that has exited.
pub fn reap_all() -> Reaped {
    let mut count = 0;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                return Reaped {
                    count,
                    none_left: false,
                }
            }
            Err(Errno::ECHILD) => {
                return Reaped {
                    count,
                    none_left: true,
                }
            }
            Ok(status) => {
                count += 1;
                debug!("reaped orphan: {status:?}");
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                debug!("waitpid: {e}");
                return Reaped {
                    count,
                    none_left: false,
                };
            }
        }
    }
}
