//! The reaper: the one owner of `waitpid(-1)`. It collects every exited child without
//! blocking and hands each exit to the loop, which routes it to its owner (a service, or an
//! orphan that is only counted).

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// What one pass of the reaper found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaped {
    pub exited: Vec<(Pid, WaitStatus)>,
    /// True when PID1 has no children at all: every process on the machine is gone, since
    /// orphans are re-parented to PID1.
    pub none_left: bool,
}

/// Reaps every child that has exited.
pub fn reap_all() -> Reaped {
    let mut exited = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                return Reaped {
                    exited,
                    none_left: false,
                }
            }
            Err(Errno::ECHILD) => {
                return Reaped {
                    exited,
                    none_left: true,
                }
            }
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    exited.push((pid, status));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => {
                return Reaped {
                    exited,
                    none_left: false,
                }
            }
        }
    }
}

/// The state letter in a `/proc/<pid>/stat` line (the field after the parenthesised name).
pub fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// How many zombies exist on the machine now (for `status`; should always be 0).
pub fn count_zombies() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| stat_state(s) == Some('Z'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_read_after_the_command_name_even_with_parens_in_it() {
        assert_eq!(stat_state("42 (a) b) Z 1 42 42 0"), Some('Z'));
        assert_eq!(stat_state("1 (fluxnode) S 0 1 1"), Some('S'));
        assert_eq!(stat_state("garbage"), None);
    }
}
