//! The hardware watchdog: opened when /dev/watchdog exists, petted from the loop at a third
//! of its timeout, and magic-closed ('V') on a clean shutdown, after /data is unmounted, so
//! it does not fire while the machine powers off. If PID1's loop hangs, nobody pets it and
//! the machine resets. A second descriptor of the device is kept for the end of PID1
//! (shutdown and the fatal path, which may have lost the boot's state): every wait there
//! pets it in slices, and the magic close goes through it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{info, warn};

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, libc::c_int);
nix::ioctl_read!(wdioc_getsupport, b'W', 0, WatchdogInfo);

/// The kernel's `struct watchdog_info` (WDIOC_GETSUPPORT): the driver's identity.
#[repr(C)]
pub struct WatchdogInfo {
    options: u32,
    firmware_version: u32,
    identity: [u8; 32],
}

/// The device for the end of PID1 (a clone of the loop's descriptor).
static LAST: Mutex<Option<File>> = Mutex::new(None);

fn last() -> std::sync::MutexGuard<'static, Option<File>> {
    LAST.lock().unwrap_or_else(|p| p.into_inner())
}

fn keepalive(dev: &File) -> bool {
    let mut dummy: libc::c_int = 0;
    // SAFETY: WDIOC_KEEPALIVE takes (and ignores) an int pointer.
    unsafe { wdioc_keepalive(dev.as_raw_fd(), &mut dummy) }.is_ok()
        || (&*dev).write_all(b"\0").is_ok()
}

/// Pets the watchdog from shutdown or the fatal path (nothing when there is none).
pub fn pet_at_end() {
    if let Some(dev) = last().as_ref() {
        keepalive(dev);
    }
}

/// Disarms the watchdog at the very end of a clean shutdown: 'V', then the device's last
/// descriptor is closed.
pub fn magic_close_at_end() {
    if let Some(mut dev) = last().take() {
        if let Err(e) = dev.write_all(b"V") {
            warn!("watchdog: magic close: {e}");
        }
    }
}

/// Sleeps `total`, petting the watchdog every 50 ms.
pub fn sleep_petting(total: Duration) {
    let started = Instant::now();
    while started.elapsed() < total {
        pet_at_end();
        std::thread::sleep(Duration::from_millis(50).min(total.saturating_sub(started.elapsed())));
    }
}

pub struct Watchdog {
    dev: File,
    timeout: Duration,
    last_pet: Instant,
    /// Tests only (`fluxnode.selftest=hang`): stop petting, as a hung loop would.
    pub hung: bool,
}

impl Watchdog {
    /// Opens the device; None when there is none. `timeout_s` programs the timeout.
    pub fn open(path: &Path, timeout_s: Option<u32>) -> Option<Self> {
        if !path.exists() {
            info!("watchdog: no {}", path.display());
            return None;
        }
        let dev = match OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            Err(e) => {
                warn!("watchdog {}: {e}", path.display());
                return None;
            }
        };
        if let Some(t) = timeout_s {
            let mut secs = t as libc::c_int;
            // SAFETY: the ioctl reads and writes one c_int we own.
            if let Err(e) = unsafe { wdioc_settimeout(dev.as_raw_fd(), &mut secs) } {
                warn!("watchdog: cannot set timeout {t} s: {e}");
            }
        }
        let mut secs: libc::c_int = 0;
        // SAFETY: the ioctl writes one c_int we own.
        let timeout = match unsafe { wdioc_gettimeout(dev.as_raw_fd(), &mut secs) } {
            Ok(_) if secs > 0 => Duration::from_secs(secs as u64),
            _ => Duration::from_secs(30),
        };
        let mut info = WatchdogInfo {
            options: 0,
            firmware_version: 0,
            identity: [0; 32],
        };
        // SAFETY: the ioctl writes one struct watchdog_info we own.
        let identity = match unsafe { wdioc_getsupport(dev.as_raw_fd(), &mut info) } {
            Ok(_) => {
                let end = info.identity.iter().position(|b| *b == 0).unwrap_or(32);
                String::from_utf8_lossy(&info.identity[..end]).into_owned()
            }
            Err(e) => format!("identity unknown: {e}"),
        };
        info!(
            "watchdog: {} armed, timeout {} s, petted every {} ms ({identity})",
            path.display(),
            timeout.as_secs(),
            (timeout / 3).as_millis()
        );
        match dev.try_clone() {
            Ok(clone) => *last() = Some(clone),
            Err(e) => warn!("watchdog: no descriptor kept for shutdown: {e}"),
        }
        let mut w = Watchdog {
            dev,
            timeout,
            last_pet: Instant::now(),
            hung: false,
        };
        w.pet();
        Some(w)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Time until the next pet is due.
    pub fn due_in(&self) -> Duration {
        (self.timeout / 3).saturating_sub(self.last_pet.elapsed())
    }

    /// Pets the watchdog now (unless the hang selftest stopped it).
    pub fn pet(&mut self) {
        if self.hung {
            return;
        }
        keepalive(&self.dev);
        self.last_pet = Instant::now();
    }

    /// Pets when a third of the timeout has passed.
    pub fn pet_if_due(&mut self) {
        if self.due_in().is_zero() {
            self.pet();
        }
    }

    /// Disarms the watchdog now (config turned it off): 'V', and every descriptor closed.
    pub fn magic_close(mut self) {
        if let Err(e) = self.dev.write_all(b"V") {
            warn!("watchdog: magic close: {e}");
        }
        drop(last().take());
    }
}
