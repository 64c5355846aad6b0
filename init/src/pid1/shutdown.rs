//! The end of PID1: stop the services (SIGTERM, up to 10 s, then SIGKILL), then the apps
//! (their stop signal, up to 10 s, then their cgroups killed), then every other process,
//! sync, unmount /data cleanly, disarm the watchdog, and power off or reboot. A fatal error
//! takes the same road after 10 s on the console. Shutdown may block (the event loop has
//! ended by then), but every wait pets the watchdog in 50 ms slices, and the watchdog is
//! disarmed only once /data is unmounted: a shutdown that hangs still ends in a reset.

use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{mount, umount, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{sync, Pid};
use tracing::{error, info, warn};

use super::{logfile, phases::storage::DATA, reaper, watchdog, Boot};

/// How PID1 ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PowerOff,
    Reboot,
}

const GRACE: Duration = Duration::from_secs(10);

/// Waits until none of `pids` is alive (they are reaped meanwhile) or `limit` passes.
fn wait_gone(pids: &[Pid], limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        reaper::reap_all();
        if pids.iter().all(|p| kill(*p, None).is_err()) {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        watchdog::sleep_petting(Duration::from_millis(50));
    }
}

fn stop_apps(boot: &mut Boot) {
    let pids: Vec<Pid> = boot
        .apps
        .container_pids()
        .into_iter()
        .map(Pid::from_raw)
        .collect();
    if pids.is_empty() {
        return;
    }
    info!("stopping {} app(s)", pids.len());
    boot.apps.signal_all(None);
    if !wait_gone(&pids, GRACE) {
        warn!(
            "apps still running after {} s: killing their cgroups",
            GRACE.as_secs()
        );
        boot.apps.kill_all();
        wait_gone(&pids, Duration::from_secs(2));
    }
}

fn stop_services(boot: &mut Boot) {
    boot.supervisor.stop_restarting();
    let running = boot.supervisor.running();
    if running.is_empty() {
        return;
    }
    let pids: Vec<Pid> = running.iter().map(|(_, p)| *p).collect();
    for (name, pid) in &running {
        info!("stopping service {name} (pid {pid})");
        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGTERM);
    }
    if !wait_gone(&pids, GRACE) {
        warn!(
            "services still running after {} s: killing",
            GRACE.as_secs()
        );
        for pid in &pids {
            let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        }
        wait_gone(&pids, Duration::from_secs(2));
    }
}

/// Every process but PID1 (and kernel threads): SIGTERM, wait, SIGKILL.
fn stop_everything_else() {
    for (sig, limit) in [
        (Signal::SIGTERM, GRACE),
        (Signal::SIGKILL, Duration::from_secs(2)),
    ] {
        if reaper::reap_all().none_left {
            return;
        }
        let _ = kill(Pid::from_raw(-1), sig);
        let started = Instant::now();
        while started.elapsed() < limit {
            if reaper::reap_all().none_left {
                return;
            }
            watchdog::sleep_petting(Duration::from_millis(50));
        }
        if sig == Signal::SIGTERM {
            warn!(
                "processes still running after {} s: killing",
                limit.as_secs()
            );
        }
    }
}

/// Whether /data is a mount point now (from /proc/self/mounts).
fn data_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| m.lines().any(|l| l.split_whitespace().nth(1) == Some(DATA)))
        .unwrap_or(false)
}

/// Unmounts what is mounted below /data (app overlays), deepest first, so /data itself
/// can be unmounted cleanly.
fn unmount_below_data() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = format!("{DATA}/");
    let mut below: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in below {
        if let Err(e) = umount(m) {
            warn!("umount {m}: {e}");
        }
    }
}

fn unmount_data() {
    logfile::stop();
    sync();
    // An update child killed on the way down leaves the ESP mounted; unmounting it clears
    // FAT's dirty flag (what it wrote is whole or under a temporary name either way).
    if umount(crate::update::esp::MOUNTPOINT).is_ok() {
        info!("ESP unmounted");
    }
    unmount_below_data();
    match umount(DATA) {
        Ok(()) => info!("{DATA} unmounted cleanly"),
        Err(e) => {
            warn!("umount {DATA}: {e}; remounting read-only");
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            if let Err(e) = mount(None::<&str>, DATA, None::<&str>, flags, None::<&str>) {
                error!("remount {DATA} read-only: {e}");
            }
        }
    }
}

fn halt(mode: RebootMode) -> ! {
    let Err(e) = reboot(mode);
    error!("reboot({mode:?}) failed: {e}; halting here");
    loop {
        sleep(Duration::from_secs(3600));
    }
}

/// Stops everything and performs `action`. Never returns.
pub fn finish(action: Action, boot: Option<Boot>) -> ! {
    match action {
        Action::PowerOff => info!("powering off"),
        Action::Reboot => info!("rebooting"),
    }
    if let Some(mut boot) = boot {
        stop_services(&mut boot);
        stop_apps(&mut boot);
    }
    stop_everything_else();
    if data_mounted() {
        unmount_data();
    }
    sync();
    watchdog::magic_close_at_end();
    halt(match action {
        Action::PowerOff => RebootMode::RB_POWER_OFF,
        Action::Reboot => RebootMode::RB_AUTOBOOT,
    })
}

/// Prints a fatal error, waits 10 s so it can be read, and reboots. Never returns.
pub fn fatal(msg: &str) -> ! {
    error!("fatal: {msg}; rebooting in 10 s");
    watchdog::sleep_petting(Duration::from_secs(10));
    finish(Action::Reboot, None)
}
