//! The supervisor: one table of services (built-in ones and the operator's from config). It
//! starts each in its own process group, restarts it with exponential backoff (1 s doubling
//! to 60 s, reset after 5 minutes healthy), logs every restart with the exit reason, and
//! stops them all at shutdown. It never waits itself: the reaper hands it exits.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use runtime::control::replies::ServiceStatus;
use tracing::{info, warn};

use crate::config::{Restart, ServiceSpec};

pub use runtime::apps::backoff::{backoff, exit_reason, next_failures};

#[derive(Debug)]
enum State {
    Running { pid: Pid, since: Instant },
    Waiting { until: Instant },
    Done,
}

struct Service {
    spec: ServiceSpec,
    state: State,
    restarts: u32,
    failures: u32,
    last_exit: Option<String>,
    restart_now: bool,
}

#[derive(Default)]
pub struct Supervisor {
    services: Vec<Service>,
}

impl Supervisor {
    pub fn new(specs: &[ServiceSpec]) -> Self {
        let services = specs
            .iter()
            .map(|spec| Service {
                spec: spec.clone(),
                state: State::Waiting {
                    until: Instant::now(),
                },
                restarts: 0,
                failures: 0,
                last_exit: None,
                restart_now: false,
            })
            .collect();
        Supervisor { services }
    }

    fn start(s: &mut Service) {
        let mut cmd = Command::new(&s.spec.argv[0]);
        cmd.args(&s.spec.argv[1..])
            .stdin(Stdio::null())
            .process_group(0);
        for kv in &s.spec.env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        match cmd.spawn() {
            Ok(child) => {
                let pid = Pid::from_raw(child.id() as i32);
                // The reaper collects this pid through waitpid(-1); the handle is not kept.
                drop(child);
                info!("service {} started, pid {pid}", s.spec.name);
                s.state = State::Running {
                    pid,
                    since: Instant::now(),
                };
            }
            Err(e) => {
                s.failures += 1;
                let delay = backoff(s.failures);
                warn!(
                    "service {}: cannot start {}: {e}; retry in {} s",
                    s.spec.name,
                    s.spec.argv[0],
                    delay.as_secs()
                );
                s.last_exit = Some(format!("start failed: {e}"));
                s.state = State::Waiting {
                    until: Instant::now() + delay,
                };
            }
        }
    }

    /// Starts every service whose restart time has come.
    pub fn tick(&mut self) {
        let now = Instant::now();
        for s in &mut self.services {
            if matches!(s.state, State::Waiting { until } if until <= now) {
                Self::start(s);
            }
        }
    }

    /// When the next restart is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.services
            .iter()
            .filter_map(|s| match s.state {
                State::Waiting { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Takes an exit if it is one of ours; false for any other pid.
    pub fn on_exit(&mut self, pid: Pid, status: &WaitStatus) -> bool {
        let Some(s) = self
            .services
            .iter_mut()
            .find(|s| matches!(s.state, State::Running { pid: p, .. } if p == pid))
        else {
            return false;
        };
        let State::Running { since, .. } = s.state else {
            return false;
        };
        let ran = since.elapsed();
        let reason = exit_reason(status);
        s.last_exit = Some(reason.clone());
        let success = matches!(status, WaitStatus::Exited(_, 0));
        let again = s.restart_now
            || match s.spec.restart {
                Restart::Always => true,
                Restart::OnFailure => !success,
                Restart::Never => false,
            };
        if !again {
            info!(
                "service {} exited ({reason}) after {:.1} s; not restarted",
                s.spec.name,
                ran.as_secs_f64()
            );
            s.state = State::Done;
            return true;
        }
        let delay = if s.restart_now {
            s.restart_now = false;
            Duration::ZERO
        } else {
            s.failures = next_failures(s.failures, ran);
            backoff(s.failures)
        };
        s.restarts += 1;
        info!(
            "service {} exited ({reason}) after {:.1} s; restart {} in {} s",
            s.spec.name,
            ran.as_secs_f64(),
            s.restarts,
            delay.as_secs()
        );
        s.state = State::Waiting {
            until: Instant::now() + delay,
        };
        true
    }

    /// Restarts a service now (control request `service.restart`).
    pub fn restart(&mut self, name: &str) -> Result<(), String> {
        let s = self
            .services
            .iter_mut()
            .find(|s| s.spec.name == name)
            .ok_or_else(|| format!("no service {name:?}"))?;
        match s.state {
            State::Running { pid, .. } => {
                s.restart_now = true;
                let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGTERM);
            }
            _ => {
                s.state = State::Waiting {
                    until: Instant::now(),
                }
            }
        }
        Ok(())
    }

    /// Running service pids (process group leaders).
    pub fn running(&self) -> Vec<(String, Pid)> {
        self.services
            .iter()
            .filter_map(|s| match s.state {
                State::Running { pid, .. } => Some((s.spec.name.clone(), pid)),
                _ => None,
            })
            .collect()
    }

    /// Marks every service done, so nothing restarts during shutdown.
    pub fn stop_restarting(&mut self) {
        for s in &mut self.services {
            if !matches!(s.state, State::Running { .. }) {
                s.state = State::Done;
            }
            s.spec.restart = Restart::Never;
            s.restart_now = false;
        }
    }

    /// Each service as update health judges it.
    pub fn health(&self) -> Vec<super::update::health::Service> {
        self.services
            .iter()
            .map(|s| super::update::health::Service {
                name: s.spec.name.clone(),
                running: matches!(s.state, State::Running { .. }),
                restarts: s.restarts,
            })
            .collect()
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        self.services
            .iter()
            .map(|s| {
                let (state, pid) = match s.state {
                    State::Running { pid, .. } => ("running", Some(pid.as_raw())),
                    State::Waiting { .. } => ("waiting", None),
                    State::Done => ("stopped", None),
                };
                ServiceStatus {
                    name: s.spec.name.clone(),
                    state: state.into(),
                    pid,
                    restarts: s.restarts,
                    last_exit: s.last_exit.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(argv: &[&str], restart: Restart) -> ServiceSpec {
        ServiceSpec {
            name: "t".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            restart,
        }
    }

    fn wait_for(pid: Pid) -> WaitStatus {
        nix::sys::wait::waitpid(pid, None).unwrap()
    }

    #[test]
    fn a_failing_service_is_restarted_with_growing_delays() {
        let mut sup = Supervisor::new(&[spec(&["/bin/sh", "-c", "exit 3"], Restart::Always)]);
        let mut delays = Vec::new();
        for _ in 0..3 {
            sup.services[0].state = State::Waiting {
                until: Instant::now(),
            };
            sup.tick();
            let (_, pid) = sup.running()[0].clone();
            let status = wait_for(pid);
            assert!(sup.on_exit(pid, &status));
            let until = sup.next_deadline().unwrap();
            delays.push((until - Instant::now()).as_secs_f64().round() as u64);
        }
        assert_eq!(delays, [1, 2, 4]);
        let st = sup.status();
        assert_eq!(st[0].restarts, 3);
        assert_eq!(st[0].last_exit.as_deref(), Some("exit status 3"));
    }

    #[test]
    fn on_failure_services_stay_down_after_success_and_strangers_are_not_claimed() {
        let mut sup = Supervisor::new(&[spec(&["/bin/true"], Restart::OnFailure)]);
        sup.tick();
        let (_, pid) = sup.running()[0].clone();
        let status = wait_for(pid);
        assert!(!sup.on_exit(Pid::from_raw(999_999), &status));
        assert!(sup.on_exit(pid, &status));
        assert_eq!(sup.next_deadline(), None);
        assert_eq!(sup.status()[0].state, "stopped");
    }
}
