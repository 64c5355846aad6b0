//! Guest uptime (CLOCK_BOOTTIME), the clock every boot figure and console timestamp uses.

use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// Time since the kernel started, including suspend.
pub fn since_boot() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Uptime in whole milliseconds.
pub fn ms() -> u128 {
    since_boot().as_millis()
}
