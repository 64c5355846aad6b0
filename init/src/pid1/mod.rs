//! PID1: brings the machine up as a list of phases, then serves events until shutdown.
//!
//! PID1 must never panic (a panic here is a kernel panic), so the whole run sits inside
//! `catch_unwind`; a fatal error or a caught panic is printed and the machine reboots after
//! 10 s. Only the early phase is fatal when it fails: every later one logs and boots on.

mod cmdline;
pub mod console;
pub mod control;
mod events;
pub mod hardware;
mod helper;
mod logfile;
mod phases;
mod power_button;
mod reaper;
pub mod root;
mod shutdown;
mod status;
mod supervisor;
mod update;
mod watchdog;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use runtime::apps::boots::BootGuard;
use runtime::apps::live::LiveHost;
use runtime::apps::Manager;
use tracing::{error, info};

use crate::config::Config;
use crate::uptime;
pub use cmdline::Cmdline;
pub use shutdown::Action;

/// The app manager over the node's own host (libcontainer, cgroupfs, /data).
pub type Apps = Manager<LiveHost>;

/// The state of the data partition.
#[derive(Debug, Clone)]
pub enum DataState {
    NotYet,
    Mounted { device: String },
    Degraded(String),
}

/// What the phases learn and build, handed from one phase to the next and then to the loop.
pub struct Boot {
    pub cmdline: Cmdline,
    pub config: Config,
    pub watchdog: Option<watchdog::Watchdog>,
    pub data: DataState,
    pub net: Vec<String>,
    pub supervisor: supervisor::Supervisor,
    pub phases: Vec<(&'static str, u128)>,
    /// Opened early, so a press during boot waits in the device until the loop reads it.
    pub power_buttons: Vec<std::fs::File>,
    /// Bound in the services phase, so `ready` means the socket answers.
    pub control: Option<control::ControlServer>,
    /// The benchmark helper, while it runs.
    pub bench_job: Option<phases::bench::BenchJob>,
    /// The apps (containers) this node runs; set up in the services phase.
    pub apps: Apps,
    /// Counts boots that never reached a healthy loop (apps are held after three).
    pub boot_guard: Option<BootGuard>,
    /// Phases that failed (a version on trial with a failed phase is not healthy).
    pub failed_phases: Vec<String>,
    /// A/B updates: the running version, a trial to judge, staging.
    pub updates: update::Updates,
}

type Phase = fn(&mut Boot) -> Result<()>;

/// The boot, in order. Adding a phase is one line here and one module in `phases`.
const PHASES: [(&str, Phase); 7] = [
    ("early", phases::early::run),
    ("config", phases::config::run),
    ("storage", phases::storage::run),
    ("network", phases::network::run),
    ("benchmark", phases::bench::run),
    ("services", phases::services::run),
    ("update", phases::update::run),
];

fn run() -> Result<Action> {
    let signals = events::block_signals()?;
    let mut boot = Boot {
        cmdline: Cmdline::default(),
        config: Config::default(),
        watchdog: None,
        data: DataState::NotYet,
        net: Vec::new(),
        supervisor: supervisor::Supervisor::default(),
        phases: Vec::new(),
        power_buttons: Vec::new(),
        control: None,
        bench_job: None,
        apps: Apps::new(
            Err("not started yet".into()),
            PathBuf::new(),
            Default::default(),
            Instant::now(),
        ),
        boot_guard: None,
        failed_phases: Vec::new(),
        updates: update::Updates::default(),
    };
    for (name, phase) in PHASES {
        let started = Instant::now();
        let result = phase(&mut boot);
        let ms = started.elapsed().as_millis();
        boot.phases.push((name, ms));
        match result {
            Ok(()) => info!("phase {name} done in {ms} ms"),
            Err(e) if name == "early" => return Err(e.context("phase early")),
            Err(e) => {
                error!("phase {name} failed after {ms} ms: {e:#}; booting on");
                boot.failed_phases.push(name.to_owned());
            }
        }
        if let Some(w) = boot.watchdog.as_mut() {
            w.pet_if_due();
        }
    }
    info!("ready in {} ms", uptime::ms());
    match boot.cmdline.get("fluxnode.selftest") {
        Some("poweroff") => {
            info!("selftest=poweroff: powering off right after ready");
            shutdown::finish(Action::PowerOff, Some(boot));
        }
        Some("hang") => {
            info!("selftest=hang: no longer petting the watchdog");
            if let Some(w) = boot.watchdog.as_mut() {
                w.hung = true;
            }
        }
        _ => {}
    }
    let mut event_loop = events::Loop::new(signals, boot)?;
    let action = event_loop.run()?;
    shutdown::finish(action, Some(event_loop.into_boot()))
}

/// The entry point when the binary runs as PID1. It never returns.
pub fn main() -> ! {
    // Before anything is printed: this may re-execute PID1 on a new root.
    root::ensure_pivotable_root();
    console::first_line(&format!("init started at {} ms", uptime::ms()));
    console::init_logging();
    match std::panic::catch_unwind(run) {
        Ok(Ok(_)) => shutdown::fatal("shutdown returned"),
        Ok(Err(err)) => shutdown::fatal(&format!("{err:#}")),
        Err(_) => shutdown::fatal("PID1 panicked (message above)"),
    }
}
