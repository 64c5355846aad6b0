//! The app manager's transitions: stop, the timers (`tick`), starting one app, and the
//! exits PID1's reaper hands over (container inits and helper children).

use std::time::Instant;

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use tracing::{info, warn};

use super::backoff::{backoff, exit_reason, next_failures};
use super::{guard, Host, Image, Manager, State, SAMPLE_EVERY, STOP_GRACE};
use crate::control::replies::AppStopping;
use crate::spec::RestartPolicy;

impl<H: Host> Manager<H> {
    /// Control `app.stop`: the app's stop signal now, its whole cgroup killed after the
    /// grace time, then it is forgotten (after a purge of its data in a helper, if asked).
    pub fn stop(&mut self, name: &str, purge: bool, now: Instant) -> Result<AppStopping, String> {
        self.host()?;
        let i = self.index(name)?;
        if !self.apps[i].wanted() {
            return Err(format!("app {name} is already stopping"));
        }
        let spec = self.apps[i].spec.clone();
        let kill_at = now + STOP_GRACE;
        let state = self.apps[i].state.clone();
        let sig = self.apps[i].info.stop_signal;
        let host = self.host()?;
        let next = match state {
            State::Running { pid, since } => {
                if let Err(e) = guard("signal", || host.signal(&spec, sig)) {
                    warn!("apps: {sig} to {}: {e}", spec.id());
                }
                Some(State::Stopping {
                    pid,
                    since: Some(since),
                    kill_at,
                    killed: false,
                    purge,
                })
            }
            State::Importing { pid } => {
                host.kill_helper(pid);
                Some(State::Stopping {
                    pid,
                    since: None,
                    kill_at,
                    killed: true,
                    purge,
                })
            }
            _ => None,
        };
        info!("apps: stopping {name}");
        match next {
            Some(state) => self.apps[i].state = state,
            None => self.finish_stop(i, purge),
        }
        self.save()?;
        Ok(AppStopping {
            stopping: name.to_owned(),
        })
    }

    /// The container of a stopped app is gone: clean up, then purge or forget it.
    fn finish_stop(&mut self, i: usize, purge: bool) {
        let spec = self.apps[i].spec.clone();
        let Ok(host) = self.host() else { return };
        if let Err(e) = guard("cleanup", || host.cleanup(&spec)) {
            warn!("apps: cleaning up {}: {e}", spec.name);
        }
        if purge {
            match guard("purge", || host.purge(&spec)) {
                Ok(pid) => {
                    info!(
                        "apps: {} stopped; purging its data (helper pid {pid})",
                        spec.name
                    );
                    self.apps[i].state = State::Purging { pid };
                    return;
                }
                Err(e) => warn!("apps: purging {}: {e}", spec.name),
            }
        }
        self.apps.remove(i);
        if let Some(host) = self.host.as_mut() {
            let _ = guard("release", || {
                host.release(&spec);
                Ok(())
            });
        }
        info!("apps: {} stopped", spec.name);
    }

    /// Starts one app that is due (one per loop turn, so PID1 pets its watchdog between
    /// starts), kills the cgroups of apps that overstayed their stop, and samples.
    pub fn tick(&mut self, now: Instant) {
        if self.host.is_none() {
            return;
        }
        if let Some(i) = self
            .apps
            .iter()
            .position(|a| matches!(a.state, State::Waiting { until } if until <= now))
        {
            self.launch(i, now);
        }
        for i in 0..self.apps.len() {
            let spec = self.apps[i].spec.clone();
            let State::Stopping {
                kill_at, killed, ..
            } = &mut self.apps[i].state
            else {
                continue;
            };
            if *kill_at > now {
                continue;
            }
            *kill_at = now + STOP_GRACE;
            if *killed {
                warn!(
                    "apps: {} has not exited after its cgroup was killed",
                    spec.id()
                );
                continue;
            }
            *killed = true;
            info!(
                "apps: {} did not stop within {} s: killing its cgroup",
                spec.id(),
                STOP_GRACE.as_secs()
            );
            if let Some(host) = self.host.as_mut() {
                if let Err(e) = guard("kill", || host.kill_all(&spec)) {
                    warn!("apps: killing {}: {e}", spec.id());
                }
            }
        }
        if now >= self.next_sample {
            self.next_sample = now + SAMPLE_EVERY;
            self.sample();
        }
    }

    fn sample(&mut self) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        for app in &mut self.apps {
            if matches!(app.state, State::Running { .. }) {
                if let Ok(s) = guard("sample", || host.sample(&app.spec)) {
                    app.ring.push(s);
                }
            }
        }
    }

    /// When the loop must call `tick` next: an app due to start (now, if several wait),
    /// a stop's grace time, or the next sample.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timers = self.apps.iter().filter_map(|a| match a.state {
            State::Waiting { until } => Some(until),
            State::Stopping { kill_at, .. } => Some(kill_at),
            _ => None,
        });
        let any_running = self
            .apps
            .iter()
            .any(|a| matches!(a.state, State::Running { .. }));
        timers.chain(any_running.then_some(self.next_sample)).min()
    }

    fn launch(&mut self, i: usize, now: Instant) {
        let spec = self.apps[i].spec.clone();
        // One import per image at a time: the others wait for it.
        if self
            .apps
            .iter()
            .any(|a| a.spec.image == spec.image && matches!(a.state, State::Importing { .. }))
        {
            self.apps[i].state = State::Waiting {
                until: now + std::time::Duration::from_millis(500),
            };
            return;
        }
        let Some(host) = self.host.as_mut() else {
            return;
        };
        let began = Instant::now();
        let mut info = None;
        let started = guard("prepare", || host.prepare(&spec)).and_then(|image| match image {
            Image::Importing(pid) => Ok(State::Importing { pid }),
            Image::Ready(i) => {
                info = Some(i);
                guard("start", || host.start(&spec)).map(|pid| State::Running { pid, since: now })
            }
        });
        let app = &mut self.apps[i];
        if let Some(info) = info {
            app.info = info;
        }
        match started {
            Ok(state) => {
                match &state {
                    State::Running { pid, .. } => info!(
                        "apps: {} running, pid {pid} (overlay, bundle, create and start in {} ms)",
                        spec.id(),
                        began.elapsed().as_millis()
                    ),
                    State::Importing { pid } => info!(
                        "apps: {}: importing image {} (helper pid {pid})",
                        spec.name, spec.image
                    ),
                    _ => {}
                }
                app.state = state;
            }
            Err(e) => {
                warn!("apps: {}: cannot start: {e}", spec.name);
                app.last_exit = Some(format!("start failed: {e}"));
                if spec.restart == RestartPolicy::No {
                    app.state = State::Failed(e);
                } else {
                    app.failures += 1;
                    let delay = backoff(app.failures);
                    app.restarts += 1;
                    info!(
                        "apps: {}: start {} again in {} s",
                        spec.name,
                        app.restarts,
                        delay.as_secs()
                    );
                    app.state = State::Waiting { until: now + delay };
                }
            }
        }
    }

    /// The container inits that are alive (for shutdown).
    pub fn container_pids(&self) -> Vec<i32> {
        self.apps
            .iter()
            .filter_map(|a| match a.state {
                State::Running { pid, .. } => Some(pid),
                State::Stopping { pid, since, .. } => since.map(|_| pid),
                _ => None,
            })
            .collect()
    }

    /// Takes an exit if it is one of ours (a container's init or a helper); false for a
    /// stranger.
    pub fn on_exit(&mut self, pid: i32, status: &WaitStatus, now: Instant) -> bool {
        let Some(i) = self.apps.iter().position(|a| match a.state {
            State::Running { pid: p, .. }
            | State::Importing { pid: p }
            | State::Stopping { pid: p, .. }
            | State::Purging { pid: p } => p == pid,
            _ => false,
        }) else {
            return false;
        };
        let success = matches!(status, WaitStatus::Exited(_, 0));
        let spec = self.apps[i].spec.clone();
        match self.apps[i].state.clone() {
            State::Importing { .. } if success => {
                self.apps[i].state = State::Waiting { until: now };
                self.tick(now);
            }
            State::Importing { .. } => {
                let said = self
                    .host
                    .as_mut()
                    .map(|h| guard("import", || Ok(h.import_error(&spec))).unwrap_or_else(|e| e))
                    .unwrap_or_default();
                let e = format!(
                    "import of {} failed ({}): {said}",
                    spec.source.as_deref().unwrap_or(&spec.image),
                    exit_reason(status)
                );
                warn!("apps: {}: {e}", spec.name);
                let app = &mut self.apps[i];
                app.last_exit = Some(e.clone());
                app.state = State::Failed(e);
            }
            State::Purging { .. } => {
                if !success {
                    warn!(
                        "apps: purging {}: the helper ended with {}",
                        spec.name,
                        exit_reason(status)
                    );
                }
                self.apps.remove(i);
                if let Some(host) = self.host.as_mut() {
                    let _ = guard("release", || {
                        host.release(&spec);
                        Ok(())
                    });
                }
                info!("apps: {} stopped and purged", spec.name);
            }
            State::Stopping { since, purge, .. } => {
                self.note_exit(i, status, since, now);
                self.finish_stop(i, purge);
            }
            State::Running { since, .. } => {
                let (reason, oom) = self.note_exit(i, status, Some(since), now);
                self.exited(i, &reason, success && !oom, now);
            }
            _ => {}
        }
        true
    }

    /// Records an ended run: OOM kills, a last sample, the reason and how long it ran.
    fn note_exit(
        &mut self,
        i: usize,
        status: &WaitStatus,
        since: Option<Instant>,
        now: Instant,
    ) -> (String, bool) {
        let spec = self.apps[i].spec.clone();
        let (oom, sample) = match self.host.as_mut() {
            Some(h) => (
                guard("oom", || Ok(h.oom_kills(&spec))).unwrap_or(0) > 0,
                guard("sample", || h.sample(&spec)).ok(),
            ),
            None => (false, None),
        };
        let app = &mut self.apps[i];
        if let Some(s) = sample {
            app.ring.push(s);
        }
        let reason = if oom {
            "oom".to_owned()
        } else {
            exit_reason(status)
        };
        app.last_exit = Some(reason.clone());
        if let Some(since) = since {
            app.last_run_ms = Some(now.saturating_duration_since(since).as_millis() as u64);
        }
        (reason, oom)
    }

    /// A running app ended by itself: clean up, then restart it by its policy.
    fn exited(&mut self, i: usize, reason: &str, success: bool, now: Instant) {
        let spec = self.apps[i].spec.clone();
        if let Some(host) = self.host.as_mut() {
            if let Err(e) = guard("cleanup", || host.cleanup(&spec)) {
                warn!("apps: cleaning up {}: {e}", spec.name);
            }
        }
        let app = &mut self.apps[i];
        let ran = std::time::Duration::from_millis(app.last_run_ms.unwrap_or(0));
        if !spec.restart.again(success) {
            info!(
                "apps: {} exited ({reason}) after {:.1} s; not restarted",
                spec.id(),
                ran.as_secs_f64()
            );
            app.state = State::Exited;
            return;
        }
        app.failures = next_failures(app.failures, ran);
        let delay = backoff(app.failures);
        app.restarts += 1;
        info!(
            "apps: {} exited ({reason}) after {:.1} s; restart {} in {} s",
            spec.id(),
            ran.as_secs_f64(),
            app.restarts,
            delay.as_secs()
        );
        app.state = State::Waiting { until: now + delay };
    }

    /// Shutdown: every app's stop signal, without forgetting them (they stay desired).
    pub fn signal_all(&mut self, signal: Option<Signal>) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        for a in &self.apps {
            if matches!(a.state, State::Running { .. } | State::Stopping { .. }) {
                let sig = signal.unwrap_or(a.info.stop_signal);
                let _ = guard("signal", || host.signal(&a.spec, sig));
            }
        }
    }

    /// Shutdown, after the grace time: every app's cgroup killed.
    pub fn kill_all(&mut self) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        for a in &self.apps {
            if matches!(a.state, State::Running { .. } | State::Stopping { .. }) {
                let _ = guard("kill", || host.kill_all(&a.spec));
            }
        }
    }
}
