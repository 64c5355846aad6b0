//! The hardware watchdog: opened when /dev/watchdog exists, petted from the loop at a third
//! of its timeout, and magic-closed ('V') on a clean shutdown so it does not fire while the
//! machine powers off. If PID1's loop hangs, nobody pets it and the machine resets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{info, warn};

nix::ioctl_read!(wdioc_keepalive, b'W', 5, libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, libc::c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, libc::c_int);

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
        info!(
            "watchdog: {} armed, timeout {} s, petted every {} ms",
            path.display(),
            timeout.as_secs(),
            (timeout / 3).as_millis()
        );
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
        let mut dummy: libc::c_int = 0;
        // SAFETY: WDIOC_KEEPALIVE takes (and ignores) an int pointer.
        if unsafe { wdioc_keepalive(self.dev.as_raw_fd(), &mut dummy) }.is_err() {
            let _ = self.dev.write_all(b"\0");
        }
        self.last_pet = Instant::now();
    }

    /// Pets when a third of the timeout has passed.
    pub fn pet_if_due(&mut self) {
        if self.due_in().is_zero() {
            self.pet();
        }
    }

    /// Disarms the watchdog for a clean shutdown.
    pub fn magic_close(mut self) {
        if let Err(e) = self.dev.write_all(b"V") {
            warn!("watchdog: magic close: {e}");
        }
    }
}
