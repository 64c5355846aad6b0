//! Restart timing shared by PID1's services and the apps: a delay of 1 s doubling to 60 s
//! for each short run in a row, reset by a run of 5 healthy minutes; and exit reasons
//! worded for logs and the control API.

use std::time::Duration;

use nix::sys::wait::WaitStatus;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(60);
/// A run this long resets the backoff.
pub const HEALTHY: Duration = Duration::from_secs(300);

/// The delay before restart number `failures` (1-based count of short runs in a row).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST * (1u32 << doublings)).min(MAX)
}

/// The count of short runs in a row after a run of `ran`.
pub fn next_failures(previous: u32, ran: Duration) -> u32 {
    if ran >= HEALTHY {
        1
    } else {
        previous + 1
    }
}

/// Describes a wait status for logs: `exit status 3`, `killed by SIGKILL`.
pub fn exit_reason(status: &WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, core) => format!(
            "killed by {sig}{}",
            if *core { " (core dumped)" } else { "" }
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(1000), MAX);
    }

    #[test]
    fn five_healthy_minutes_reset_the_backoff() {
        assert_eq!(next_failures(6, Duration::from_secs(3)), 7);
        assert_eq!(next_failures(6, HEALTHY), 1);
        assert_eq!(
            backoff(next_failures(6, Duration::from_secs(301))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn exit_reasons_read_like_a_person_would_say_them() {
        let p = Pid::from_raw(7);
        assert_eq!(exit_reason(&WaitStatus::Exited(p, 3)), "exit status 3");
        assert_eq!(
            exit_reason(&WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            "killed by SIGKILL"
        );
        assert_eq!(
            exit_reason(&WaitStatus::Signaled(p, Signal::SIGSEGV, true)),
            "killed by SIGSEGV (core dumped)"
        );
    }
}
