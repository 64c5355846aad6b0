//! The app manager: the apps a node runs, as a state machine that PID1 feeds with requests,
//! child exits and timers. It admits apps against the node's capacity, keeps the desired
//! state on /data (so apps come back after a reboot), starts at most one app per turn of
//! PID1's loop, restarts by policy with backoff, reports OOM kills, stops with the app's
//! signal and kills its whole cgroup after the grace time, purges in a helper child, and
//! samples accounting every 5 s. Every machine operation goes through a [`Host`]; the
//! manager itself never blocks and never touches a container, so its unit tests run without
//! a kernel. Time is passed in (`now`) for the same reason.

mod alarm;
pub mod backoff;
pub mod boots;
pub mod desired;
pub mod host;
mod lifecycle;
pub mod live;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::accounting::{self, Ring, Sample};
use crate::admission::{self, Resources};
use crate::control::replies::{AppList, AppState, AppStats, AppSummary, AppsResumed};
use crate::spec::{self, AppSpec};
pub use host::{Host, Image, ImageInfo};

pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long an app has to end after its stop signal before its cgroup is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
enum State {
    Waiting {
        until: Instant,
    },
    Importing {
        pid: i32,
    },
    Running {
        pid: i32,
        since: Instant,
    },
    /// The stop signal was sent (or the import helper killed); at `kill_at` the whole
    /// cgroup is killed.
    Stopping {
        pid: i32,
        since: Option<Instant>,
        kill_at: Instant,
        killed: bool,
        purge: bool,
    },
    Purging {
        pid: i32,
    },
    Exited,
    Failed(String),
    Held,
}

struct App {
    spec: AppSpec,
    state: State,
    restarts: u32,
    failures: u32,
    last_exit: Option<String>,
    /// How long the last run lasted, in ms.
    last_run_ms: Option<u64>,
    ring: Ring,
    /// From the image, once it is in the store.
    info: ImageInfo,
}

impl App {
    fn new(spec: AppSpec, now: Instant) -> Self {
        App {
            spec,
            state: State::Waiting { until: now },
            restarts: 0,
            failures: 0,
            last_exit: None,
            last_run_ms: None,
            ring: Ring::default(),
            info: ImageInfo::default(),
        }
    }

    /// Still part of the desired state (not being stopped).
    fn wanted(&self) -> bool {
        !matches!(self.state, State::Stopping { .. } | State::Purging { .. })
    }

    fn summary(&self) -> AppSummary {
        let (state, pid) = match &self.state {
            State::Waiting { .. } => (AppState::Waiting, None),
            State::Importing { pid } => (AppState::Unpacking, Some(*pid)),
            State::Running { pid, .. } => (AppState::Running, Some(*pid)),
            State::Stopping { pid, .. } => (AppState::Stopping, Some(*pid)),
            State::Purging { pid } => (AppState::Purging, Some(*pid)),
            State::Exited => (AppState::Exited, None),
            State::Failed(_) => (AppState::Failed, None),
            State::Held => (AppState::Held, None),
        };
        let s = &self.spec;
        AppSummary {
            name: s.name.clone(),
            id: s.id(),
            image: s.image.clone(),
            state,
            pid,
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            last_run_ms: self.last_run_ms,
            error: match &self.state {
                State::Failed(e) => Some(e.clone()),
                _ => None,
            },
            restart: s.restart,
            cpu_millis: s.cpu_millis,
            ram_bytes: s.ram_bytes,
            disk_bytes: s.disk_bytes,
            pids: s.pids,
            latest: self.ring.latest().copied(),
            exposed_ports: self.info.exposed_ports.clone(),
            disk_used: None,
            pulled: None,
        }
    }
}

/// Runs a host call, turning a panic into an error (PID1 must never panic).
fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("{what}: the runtime panicked (message above)")))
}

/// The apps of one node over a [`Host`].
pub struct Manager<H: Host> {
    host: Option<H>,
    /// Why apps cannot run on this node (no /data, no runtime), when they cannot.
    off: Option<String>,
    desired: PathBuf,
    reserve: Resources,
    apps: Vec<App>,
    next_sample: Instant,
    /// Why the apps are held on this boot.
    held: Option<String>,
}

impl<H: Host> Manager<H> {
    /// A manager over `host` (or refusing every app with the error's reason), keeping its
    /// desired state in `desired`.
    pub fn new(
        host: Result<H, String>,
        desired: PathBuf,
        reserve: Resources,
        now: Instant,
    ) -> Self {
        let (host, off) = match host {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e)),
        };
        Manager {
            host,
            off,
            desired,
            reserve,
            apps: Vec::new(),
            next_sample: now + SAMPLE_EVERY,
            held: None,
        }
    }

    /// Holds the apps restored on this boot (they are listed, not started) for `why`.
    pub fn hold(&mut self, why: String) {
        warn!("apps: {why}");
        self.held = Some(why);
    }

    pub fn held(&self) -> Option<&str> {
        self.held.as_deref()
    }

    fn host(&mut self) -> Result<&mut H, String> {
        match (&mut self.host, &self.off) {
            (Some(h), _) => Ok(h),
            (None, off) => Err(format!(
                "apps cannot run: {}",
                off.as_deref().unwrap_or("no runtime")
            )),
        }
    }

    /// Takes the desired state from /data: every app in it starts (one per loop turn), or
    /// is held. A list that cannot be read is set aside and named, never overwritten.
    pub fn restore(&mut self, now: Instant) {
        if self.host.is_none() {
            return;
        }
        let specs = match desired::load(&self.desired) {
            Ok(specs) => specs,
            Err(e) => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match desired::set_aside(&self.desired, secs) {
                    Ok(aside) => warn!(
                        "apps: desired state {e}; starting none (the file is kept as {})",
                        aside.display()
                    ),
                    Err(e2) => warn!("apps: desired state {e}; starting none ({e2})"),
                }
                return;
            }
        };
        if !specs.is_empty() {
            info!(
                "apps: restoring {} app(s) from {}{}",
                specs.len(),
                self.desired.display(),
                if self.held.is_some() { " (held)" } else { "" }
            );
        }
        self.apps = specs.into_iter().map(|s| App::new(s, now)).collect();
        if self.held.is_some() {
            for a in &mut self.apps {
                a.state = State::Held;
            }
        }
    }

    /// Control `app.resume`: starts the held apps.
    pub fn resume(&mut self, now: Instant) -> Result<AppsResumed, String> {
        let Some(why) = self.held.take() else {
            return Err("no apps are held".into());
        };
        info!("apps: resumed (they were held: {why})");
        let mut resumed = Vec::new();
        for a in &mut self.apps {
            if a.state == State::Held {
                a.state = State::Waiting { until: now };
                resumed.push(a.spec.name.clone());
            }
        }
        Ok(AppsResumed { resumed })
    }

    fn save(&self) -> Result<(), String> {
        let specs: Vec<AppSpec> = self
            .apps
            .iter()
            .filter(|a| a.wanted())
            .map(|a| a.spec.clone())
            .collect();
        desired::save(&self.desired, &specs)
    }

    /// Control `app.run`: checks, admits, records (durably, before answering) and starts
    /// `spec`.
    pub fn run(&mut self, spec: AppSpec, now: Instant) -> Result<AppSummary, String> {
        self.host()?;
        spec::check(&spec).map_err(|e| e.to_string())?;
        if let Some(a) = self.apps.iter().find(|a| a.spec.name == spec.name) {
            if a.spec == spec && a.wanted() {
                return Ok(a.summary());
            }
            return Err(format!(
                "app {} already exists with another spec (or is stopping); stop it first",
                spec.name
            ));
        }
        let others: Vec<(&str, &[crate::net::PortMap])> = self
            .apps
            .iter()
            .filter(|a| a.wanted())
            .map(|a| (a.spec.name.as_str(), a.spec.ports.as_slice()))
            .collect();
        crate::net::ports::check(&spec.name, &spec.ports, &others, &crate::net::NODE_PORTS)?;
        let (cap, source) = guard("capacity", || Ok(self.host()?.capacity()))?;
        let admitted: Vec<AppSpec> = self
            .apps
            .iter()
            .filter(|a| a.wanted())
            .map(|a| a.spec.clone())
            .collect();
        admission::admit(&spec, &admitted, cap, self.reserve)
            .map_err(|e| format!("{e}; capacity from {source}"))?;
        let name = spec.name.clone();
        info!(
            "apps: admitted {} ({} millicores, {} MiB)",
            spec.name,
            spec.cpu_millis,
            spec.ram_bytes >> 20
        );
        self.apps.push(App::new(spec, now));
        if let Err(e) = self.save() {
            self.apps.pop();
            return Err(e);
        }
        self.tick(now);
        let i = self.index(&name)?;
        Ok(self.apps[i].summary())
    }

    /// Control `app.list`: every app, and the node's totals and capacity.
    pub fn list(&mut self) -> AppList {
        let (capacity, source) = match self.host() {
            Ok(h) => {
                guard("capacity", || Ok(h.capacity())).unwrap_or_else(|e| (Resources::default(), e))
            }
            Err(_) => (Resources::default(), "none".into()),
        };
        let latest: Vec<&Sample> = self.apps.iter().filter_map(|a| a.ring.latest()).collect();
        let mut apps: Vec<AppSummary> = self.apps.iter().map(App::summary).collect();
        if let Some(host) = self.host.as_mut() {
            for (s, a) in apps.iter_mut().zip(&self.apps) {
                if matches!(a.state, State::Importing { .. }) {
                    s.pulled = guard("progress", || Ok(host.import_progress(&a.spec)))
                        .ok()
                        .flatten();
                } else {
                    s.disk_used = guard("disk", || Ok(host.disk_used(&a.spec))).ok().flatten();
                }
            }
        }
        AppList {
            apps,
            totals: accounting::totals(latest),
            capacity,
            capacity_source: source,
            reserve: self.reserve,
            runtime: self.off.clone().unwrap_or_else(|| "ready".into()),
            held: self.held.clone(),
        }
    }

    /// Control `app.stats`: one app's last `n` samples (one taken now if it runs) and the
    /// tail of its output.
    pub fn stats(&mut self, name: &str, n: usize) -> Result<AppStats, String> {
        let i = self.index(name)?;
        let spec = self.apps[i].spec.clone();
        let running = matches!(self.apps[i].state, State::Running { .. });
        let host = self.host()?;
        if running {
            if let Ok(s) = guard("sample", || host.sample(&spec)) {
                self.apps[i].ring.push(s);
            }
        }
        let host = self.host()?;
        let output = guard("output", || Ok(host.output_tail(&spec, 4096))).unwrap_or_default();
        let app = &self.apps[i];
        Ok(AppStats {
            app: app.summary(),
            samples: app.ring.last(n.max(1)),
            output,
        })
    }

    fn index(&self, name: &str) -> Result<usize, String> {
        self.apps
            .iter()
            .position(|a| a.spec.name == name)
            .ok_or_else(|| format!("no app {name:?}"))
    }
}

#[cfg(test)]
mod tests;
