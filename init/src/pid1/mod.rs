//! PID1: brings the machine up as a list of phases, then serves signals until shutdown.
//!
//! PID1 must never panic (a panic here is a kernel panic), so the whole run sits inside
//! `catch_unwind`; a fatal error or a caught panic is printed and the machine reboots after
//! 10 s.

mod cmdline;
mod console;
mod early;
mod events;
mod power_button;
mod reaper;
mod shutdown;

use std::time::Instant;

use anyhow::Result;
use tracing::info;

use crate::uptime;
pub use cmdline::Cmdline;
pub use shutdown::Action;

/// What the phases learn, handed from one phase to the next.
pub struct Boot {
    pub cmdline: Cmdline,
}

/// Runs one named boot phase and logs how long it took.
fn phase<T>(name: &str, run: impl FnOnce(&mut Boot) -> Result<T>, boot: &mut Boot) -> Result<T> {
    let started = Instant::now();
    let out = run(boot).map_err(|e| e.context(format!("phase {name}")))?;
    info!("phase {name} done in {} ms", started.elapsed().as_millis());
    Ok(out)
}

fn run() -> Result<Action> {
    let signals = events::block_signals()?;
    let mut boot = Boot {
        cmdline: Cmdline::default(),
    };
    phase("early", early::run, &mut boot)?;
    info!("ready in {} ms", uptime::ms());
    if boot.cmdline.get("fluxnode.selftest") == Some("poweroff") {
        info!("selftest=poweroff: powering off right after ready");
        return Ok(Action::PowerOff);
    }
    events::Loop::new(signals)?.run()
}

/// The entry point when the binary runs as PID1. It never returns.
pub fn main() -> ! {
    console::first_line(&format!("init started at {} ms", uptime::ms()));
    console::init_logging();
    match std::panic::catch_unwind(run) {
        Ok(Ok(action)) => shutdown::finish(action),
        Ok(Err(err)) => shutdown::fatal(&format!("{err:#}")),
        Err(_) => shutdown::fatal("PID1 panicked (message above)"),
    }
}
