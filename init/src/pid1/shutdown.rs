//! The end of PID1: stop every process (SIGTERM, up to 10 s, then SIGKILL), sync, and power
//! off or reboot. A fatal error takes the same road after 10 s on the console.

use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{sync, Pid};
use tracing::{error, info, warn};

use super::reaper;

/// How PID1 ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PowerOff,
    Reboot,
}

const GRACE: Duration = Duration::from_secs(10);

/// Sends `sig` to every process but PID1 and waits until none is left or `limit` passes.
/// Shutdown may block: the event loop has ended by then.
fn signal_all_and_wait(sig: Signal, limit: Duration) -> bool {
    if reaper::reap_all().none_left {
        return true;
    }
    // kill(-1) reaches every process but PID1 and kernel threads.
    let _ = kill(Pid::from_raw(-1), sig);
    let started = Instant::now();
    while started.elapsed() < limit {
        if reaper::reap_all().none_left {
            return true;
        }
        sleep(Duration::from_millis(50));
    }
    false
}

fn stop_everything() {
    if !signal_all_and_wait(Signal::SIGTERM, GRACE) {
        warn!(
            "processes still running after {} s: killing",
            GRACE.as_secs()
        );
        signal_all_and_wait(Signal::SIGKILL, Duration::from_secs(2));
    }
    reaper::reap_all();
    sync();
}

fn halt(mode: RebootMode) -> ! {
    let Err(e) = reboot(mode);
    error!("reboot({mode:?}) failed: {e}; halting here");
    loop {
        sleep(Duration::from_secs(3600));
    }
}

/// Stops everything and performs `action`. Never returns.
pub fn finish(action: Action) -> ! {
    match action {
        Action::PowerOff => info!("powering off"),
        Action::Reboot => info!("rebooting"),
    }
    stop_everything();
    halt(match action {
        Action::PowerOff => RebootMode::RB_POWER_OFF,
        Action::Reboot => RebootMode::RB_AUTOBOOT,
    })
}

/// Prints a fatal error, waits 10 s so it can be read, and reboots. Never returns.
pub fn fatal(msg: &str) -> ! {
    error!("fatal: {msg}; rebooting in 10 s");
    sleep(Duration::from_secs(10));
    finish(Action::Reboot)
}
