//! The apps PID1 runs: admission, the desired state on /data, one container per app
//! through libcontainer (PID1 is the parent of each container's init and reaps it),
//! restart policies with backoff, OOM kills from `memory.events`, and an accounting sample
//! of every running app each 5 s. It never waits: the reaper hands it exits, and the loop
//! calls `tick` when `next_deadline` comes.

mod desired;
mod launch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use runtime::accounting::{self, Ring, Sample};
use runtime::admission::{self, Resources};
use runtime::container::Runtime;
use runtime::spec::{self, AppSpec};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::pid1::supervisor::{backoff, exit_reason, next_failures};
pub use launch::Paths;
use launch::Started;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long an app has to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum State {
    Unpacking {
        pid: Pid,
    },
    Waiting {
        until: Instant,
    },
    Running {
        pid: Pid,
        since: Instant,
    },
    /// Ended and not restarted (its policy said no).
    Exited,
    Failed(String),
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
    /// Set by app.stop: SIGKILL at this instant, then forget the app.
    stopping: Option<(Instant, bool)>,
}

pub struct Apps {
    paths: Paths,
    desired: PathBuf,
    rt: Result<Runtime, String>,
    apps: Vec<App>,
    reserve: Resources,
    next_sample: Instant,
}

/// What the node can sell: its benchmark report's figures, or the hardware's when it has
/// no report.
fn capacity() -> (Resources, &'static str) {
    if let Some(s) = crate::pid1::phases::bench::latest() {
        let r = &s.report;
        let res = Resources {
            cpu_millis: r.cpu.threads as u64 * 1000,
            ram_bytes: r.ram.total_bytes,
            disk_bytes: r.disk.fs_bytes,
        };
        return (res, "benchmark");
    }
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as u64;
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
        * 1024;
    let disk = nix::sys::statvfs::statvfs("/data")
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    (
        Resources {
            cpu_millis: cpus * 1000,
            ram_bytes: ram,
            disk_bytes: disk,
        },
        "hardware (no benchmark report)",
    )
}

impl App {
    fn new(spec: AppSpec) -> Self {
        App {
            spec,
            state: State::Waiting {
                until: Instant::now(),
            },
            restarts: 0,
            failures: 0,
            last_exit: None,
            last_run_ms: None,
            ring: Ring::default(),
            stopping: None,
        }
    }

    fn summary(&self) -> Value {
        let (state, pid) = match &self.state {
            State::Unpacking { pid } => ("unpacking", Some(pid.as_raw())),
            State::Waiting { .. } => ("waiting", None),
            State::Running { pid, .. } => ("running", Some(pid.as_raw())),
            State::Exited => ("exited", None),
            State::Failed(_) => ("failed", None),
        };
        let error = match &self.state {
            State::Failed(e) => Some(e.clone()),
            _ => None,
        };
        json!({
            "name": self.spec.name, "id": self.spec.id(), "image": self.spec.image,
            "state": if self.stopping.is_some() { "stopping" } else { state },
            "pid": pid, "restarts": self.restarts, "last_exit": self.last_exit, "last_run_ms": self.last_run_ms, "error": error,
            "restart": self.spec.restart, "cpu_millis": self.spec.cpu_millis,
            "ram_bytes": self.spec.ram_bytes, "disk_bytes": self.spec.disk_bytes,
            "pids": self.spec.pids, "latest": self.ring.latest(),
        })
    }
}

impl Apps {
    /// The runtime when /data is mounted; otherwise apps are refused with `why`.
    pub fn new(paths: Paths, reserve: Resources, data: Result<(), String>) -> Self {
        let rt = data.and_then(|()| Runtime::open(&paths.state).map_err(|e| e.to_string()));
        Apps {
            desired: paths.apps.join("desired.json"),
            paths,
            rt,
            apps: Vec::new(),
            reserve,
            next_sample: Instant::now() + SAMPLE_EVERY,
        }
    }

    /// A runtime that refuses everything (before the services phase).
    pub fn off() -> Self {
        Self::new(
            Paths::default(),
            Resources::default(),
            Err("not started yet".into()),
        )
    }

    /// Takes the desired state from /data: every app in it starts at the next tick.
    pub fn restore(&mut self) {
        if self.rt.is_err() {
            return;
        }
        match desired::load(&self.desired) {
            Ok(specs) => {
                if !specs.is_empty() {
                    info!(
                        "apps: restoring {} app(s) from {}",
                        specs.len(),
                        self.desired.display()
                    );
                }
                self.apps = specs.into_iter().map(App::new).collect();
            }
            Err(e) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match desired::set_aside(&self.desired, now) {
                    Ok(aside) => warn!(
                        "apps: desired state {e}; starting none (the file is kept as {})",
                        aside.display()
                    ),
                    Err(e2) => warn!("apps: desired state {e}; starting none ({e2})"),
                }
            }
        }
    }

    fn save(&self) -> Result<(), String> {
        let specs: Vec<AppSpec> = self
            .apps
            .iter()
            .filter(|a| a.stopping.is_none())
            .map(|a| a.spec.clone())
            .collect();
        desired::save(&self.desired, &specs)
    }

    /// Control `app.run`: checks, admits, records and starts `spec`.
    pub fn run(&mut self, spec: AppSpec) -> Result<Value, String> {
        if let Err(e) = &self.rt {
            return Err(format!("apps cannot run: {e}"));
        }
        spec::check(&spec).map_err(|e| e.to_string())?;
        if let Some(a) = self.apps.iter().find(|a| a.spec.name == spec.name) {
            if a.spec == spec && a.stopping.is_none() {
                return Ok(a.summary());
            }
            return Err(format!(
                "app {} already exists with another spec (or is stopping); stop it first",
                spec.name
            ));
        }
        let (cap, source) = capacity();
        let admitted: Vec<AppSpec> = self.apps.iter().map(|a| a.spec.clone()).collect();
        admission::admit(&spec, &admitted, cap, self.reserve)
            .map_err(|e| format!("{e}; capacity from {source}"))?;
        info!(
            "apps: admitted {} ({} millicores, {} MiB)",
            spec.name,
            spec.cpu_millis,
            spec.ram_bytes >> 20
        );
        self.apps.push(App::new(spec));
        self.save()?;
        self.tick();
        Ok(self.apps.last().map(App::summary).unwrap_or(Value::Null))
    }

    /// Control `app.stop`: SIGTERM now, SIGKILL after the grace time, then forgotten.
    pub fn stop(&mut self, name: &str, purge: bool) -> Result<(), String> {
        let i = self
            .apps
            .iter()
            .position(|a| a.spec.name == name)
            .ok_or_else(|| format!("no app {name:?}"))?;
        let app = &mut self.apps[i];
        app.stopping = Some((Instant::now() + STOP_GRACE, purge));
        let running = matches!(app.state, State::Running { .. });
        let id = app.spec.id();
        self.save()?;
        info!("apps: stopping {name}");
        if running {
            self.signal(&id, Signal::SIGTERM);
        } else {
            self.forget(i);
        }
        Ok(())
    }

    fn signal(&self, id: &str, sig: Signal) {
        if let Ok(rt) = &self.rt {
            if let Err(e) = launch::guarded("kill", || rt.kill(id, sig as i32, true)) {
                warn!("apps: {sig} to {id}: {e}");
            }
        }
    }

    /// Removes app `i` with its container; its data stays unless the stop said purge.
    fn forget(&mut self, i: usize) {
        let app = self.apps.remove(i);
        let purge = app.stopping.map(|(_, p)| p).unwrap_or(false);
        if let Ok(rt) = &self.rt {
            if let Err(e) = launch::cleanup(rt, &self.paths, &app.spec.id(), purge) {
                warn!("apps: cleaning up {}: {e}", app.spec.name);
            }
        }
        info!(
            "apps: {} stopped{}",
            app.spec.name,
            if purge { " and purged" } else { "" }
        );
    }

    fn launch(&mut self, i: usize) {
        let Ok(rt) = &self.rt else { return };
        // One import per image at a time: the others wait for it.
        let image = &self.apps[i].spec.image;
        if self
            .apps
            .iter()
            .any(|a| &a.spec.image == image && matches!(a.state, State::Unpacking { .. }))
        {
            self.apps[i].state = State::Waiting {
                until: Instant::now() + Duration::from_millis(500),
            };
            return;
        }
        let app = &mut self.apps[i];
        let began = Instant::now();
        match launch::start(rt, &self.paths, &app.spec) {
            Ok(Started::Running(pid)) => {
                info!(
                    "apps: {} running, pid {pid} (overlay, bundle, create and start in {} ms)",
                    app.spec.id(),
                    began.elapsed().as_millis()
                );
                app.state = State::Running {
                    pid,
                    since: Instant::now(),
                };
            }
            Ok(Started::Unpacking(pid)) => {
                info!(
                    "apps: {}: importing image {} (helper pid {pid})",
                    app.spec.name, app.spec.image
                );
                app.state = State::Unpacking { pid };
            }
            Err(e) => {
                warn!("apps: {}: cannot start: {e}", app.spec.name);
                app.last_exit = Some(format!("start failed: {e}"));
                if app.spec.restart == spec::RestartPolicy::No {
                    app.state = State::Failed(e);
                } else {
                    app.failures += 1;
                    app.state = State::Waiting {
                        until: Instant::now() + backoff(app.failures),
                    };
                }
            }
        }
    }

    /// Starts what is due, kills what overstayed a stop, and samples on schedule.
    pub fn tick(&mut self) {
        let now = Instant::now();
        for i in 0..self.apps.len() {
            let due = matches!(self.apps[i].state, State::Waiting { until } if until <= now);
            if due && self.apps[i].stopping.is_none() {
                self.launch(i);
            }
            if let Some((deadline, _)) = self.apps[i].stopping {
                if deadline <= now && matches!(self.apps[i].state, State::Running { .. }) {
                    let id = self.apps[i].spec.id();
                    self.signal(&id, Signal::SIGKILL);
                    self.apps[i].stopping =
                        Some((now + STOP_GRACE, self.apps[i].stopping.is_some_and(|s| s.1)));
                }
            }
        }
        if now >= self.next_sample {
            self.next_sample = now + SAMPLE_EVERY;
            self.sample();
        }
    }

    fn sample(&mut self) {
        for app in &mut self.apps {
            if matches!(app.state, State::Running { .. }) {
                if let Ok(s) = accounting::sample(&spec::cgroup_path(&app.spec)) {
                    app.ring.push(s);
                }
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let waits = self.apps.iter().filter_map(|a| match a.state {
            State::Waiting { until } if a.stopping.is_none() => Some(until),
            _ => a.stopping.map(|(d, _)| d),
        });
        let any_running = self
            .apps
            .iter()
            .any(|a| matches!(a.state, State::Running { .. }));
        waits.chain(any_running.then_some(self.next_sample)).min()
    }

    /// Takes an exit if it is one of ours (a container's init or an unpack helper).
    pub fn on_exit(&mut self, pid: Pid, status: &WaitStatus) -> bool {
        let Some(i) = self.apps.iter().position(|a| match a.state {
            State::Running { pid: p, .. } | State::Unpacking { pid: p } => p == pid,
            _ => false,
        }) else {
            return false;
        };
        let success = matches!(status, WaitStatus::Exited(_, 0));
        if let State::Unpacking { .. } = self.apps[i].state {
            let app = &mut self.apps[i];
            if success {
                app.state = State::Waiting {
                    until: Instant::now(),
                };
                self.tick();
            } else {
                let log = launch::unpack_log(&self.paths, &app.spec);
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                let _ = std::fs::remove_file(&log);
                let e = format!(
                    "import of {} failed ({}): {}",
                    app.spec.source.as_deref().unwrap_or("?"),
                    exit_reason(status),
                    said.lines().last().unwrap_or("no message")
                );
                warn!("apps: {}: {e}", app.spec.name);
                app.last_exit = Some(e.clone());
                app.state = State::Failed(e);
            }
            return true;
        }
        let cgroup = spec::cgroup_path(&self.apps[i].spec);
        let oom = accounting::oom_kills(&cgroup) > 0;
        if let Ok(s) = accounting::sample(&cgroup) {
            self.apps[i].ring.push(s);
        }
        let reason = if oom {
            "oom".to_owned()
        } else {
            exit_reason(status)
        };
        let app = &mut self.apps[i];
        let State::Running { since, .. } = app.state else {
            return true;
        };
        let ran = since.elapsed();
        app.last_exit = Some(reason.clone());
        app.last_run_ms = Some(ran.as_millis() as u64);
        if app.stopping.is_some() {
            self.forget(i);
            return true;
        }
        if let Ok(rt) = &self.rt {
            if let Err(e) = launch::cleanup(rt, &self.paths, &app.spec.id(), false) {
                warn!("apps: cleaning up {}: {e}", app.spec.name);
            }
        }
        if !app.spec.restart.again(success && !oom) {
            info!(
                "apps: {} exited ({reason}) after {:.1} s; not restarted",
                app.spec.id(),
                ran.as_secs_f64()
            );
            app.state = State::Exited;
            return true;
        }
        app.failures = next_failures(app.failures, ran);
        let delay = backoff(app.failures);
        app.restarts += 1;
        info!(
            "apps: {} exited ({reason}) after {:.1} s; restart {} in {} s",
            app.spec.id(),
            ran.as_secs_f64(),
            app.restarts,
            delay.as_secs()
        );
        app.state = State::Waiting {
            until: Instant::now() + delay,
        };
        true
    }

    /// Control `app.list`: every app, and the node's totals and capacity.
    pub fn list(&self) -> Value {
        let (cap, source) = capacity();
        let latest: Vec<&Sample> = self.apps.iter().filter_map(|a| a.ring.latest()).collect();
        json!({
            "apps": self.apps.iter().map(App::summary).collect::<Vec<_>>(),
            "totals": accounting::totals(latest),
            "capacity": cap, "capacity_source": source, "reserve": self.reserve,
            "runtime": match &self.rt { Ok(_) => "ready".to_owned(), Err(e) => e.clone() },
        })
    }

    /// Control `app.stats`: one app's last `n` samples (one taken now if it runs) and the
    /// tail of its output.
    pub fn stats(&mut self, name: &str, n: usize) -> Result<Value, String> {
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.spec.name == name)
            .ok_or_else(|| format!("no app {name:?}"))?;
        if matches!(app.state, State::Running { .. }) {
            if let Ok(s) = accounting::sample(&spec::cgroup_path(&app.spec)) {
                app.ring.push(s);
            }
        }
        Ok(json!({
            "app": app.summary(),
            "samples": app.ring.last(n.max(1)),
            "output": launch::output_tail(&self.paths, &app.spec.id(), 4096),
        }))
    }
}
