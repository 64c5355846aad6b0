//! PID1's event loop: one epoll over a signalfd, the power-button devices and the control
//! socket. Its only wait is `epoll_wait`, bounded by the next watchdog pet, the next
//! service or app restart and the next accounting sample; it returns the shutdown it was
//! asked for.

use std::fs::File;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use runtime::control::{self, Reply, Request};
use tracing::{debug, info};

use super::control::{ControlServer, TOKEN_BASE};
use super::status::{self, TurnClock};
use super::update::health;
use super::{phases, power_button, reaper, Action, Boot};
use std::os::unix::net::UnixStream;

const SIGNALS: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGPWR,
    Signal::SIGHUP,
];
const TOKEN_SIGNALS: u64 = 0;
const TOKEN_CONTROL: u64 = 1;
const TOKEN_BUTTON_BASE: u64 = 10;
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Blocks PID1's signals at once, so none is lost before the loop reads them from a signalfd.
pub fn block_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in SIGNALS {
        mask.add(s);
    }
    mask.thread_block().context("block signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")
}

/// A typed reply (or a refusal) as the wire's envelope.
fn answer<T: serde::Serialize>(r: Result<T, String>) -> Reply {
    match r.and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())) {
        Ok(v) => Reply::ok(Some(v)),
        Err(e) => Reply::error(e),
    }
}

/// A loop that has run this long counts as healthy: the boot-loop count starts again.
const HEALTHY_LOOP: Duration = Duration::from_secs(120);

pub struct Loop {
    epoll: Epoll,
    signals: SignalFd,
    buttons: Vec<File>,
    control: Option<ControlServer>,
    boot: Boot,
    orphans_reaped: u64,
    turns: TurnClock,
    started: Instant,
    /// A shutdown decided outside an event handler (a staged update to boot into).
    pending: Option<Action>,
}

impl Loop {
    pub fn new(signals: SignalFd, mut boot: Boot) -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll")?;
        let watch = |fd: std::os::fd::BorrowedFd<'_>, token: u64, what: &str| {
            epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .with_context(|| format!("epoll add {what}"))
        };
        watch(signals.as_fd(), TOKEN_SIGNALS, "signalfd")?;
        let buttons = std::mem::take(&mut boot.power_buttons);
        for (i, dev) in buttons.iter().enumerate() {
            watch(dev.as_fd(), TOKEN_BUTTON_BASE + i as u64, "power button")?;
        }
        let control = boot.control.take();
        if let Some(c) = &control {
            watch(c.listener().as_fd(), TOKEN_CONTROL, "control socket")?;
        }
        Ok(Loop {
            epoll,
            signals,
            buttons,
            control,
            boot,
            orphans_reaped: 0,
            turns: TurnClock::default(),
            started: Instant::now(),
            pending: None,
        })
    }

    pub fn into_boot(self) -> Boot {
        self.boot
    }

    fn wait_budget(&self) -> Duration {
        let mut wait = MAX_WAIT;
        if let Some(w) = &self.boot.watchdog {
            wait = wait.min(w.due_in());
        }
        for at in [
            self.boot.supervisor.next_deadline(),
            self.boot.apps.next_deadline(),
            self.boot.updates.next_deadline(),
        ]
        .into_iter()
        .flatten()
        {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        wait
    }

    /// Serves events until a shutdown is requested.
    pub fn run(&mut self) -> Result<Action> {
        // Children may have exited before the signalfd was watched.
        self.reap();
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let ms = self.wait_budget().as_millis().min(u16::MAX as u128) as u16;
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            let turn = Instant::now();
            for ev in &events[..n] {
                if ev.data() >= TOKEN_BASE && ev.events().contains(EpollFlags::EPOLLOUT) {
                    if let Some(c) = self.control.as_mut() {
                        c.flush(ev.data(), &self.epoll);
                    }
                }
                let part = Instant::now();
                let (action, what) = match ev.data() {
                    TOKEN_SIGNALS => (self.on_signals()?, "signals and exits"),
                    TOKEN_CONTROL => {
                        if let Some(c) = self.control.as_mut() {
                            c.accept(&self.epoll);
                        }
                        (None, "accept")
                    }
                    t if t >= TOKEN_BASE => (self.on_control(t), "a control request"),
                    t => (self.on_button(t), "the power button"),
                };
                self.turns.part(what, part.elapsed());
                if let Some(action) = action {
                    return Ok(action);
                }
            }
            if let Some(w) = self.boot.watchdog.as_mut() {
                w.pet_if_due();
            }
            let part = Instant::now();
            self.boot.supervisor.tick();
            self.turns.part("services", part.elapsed());
            let part = Instant::now();
            self.boot.apps.tick(Instant::now());
            self.turns.part("apps", part.elapsed());
            if self.trial_failed() {
                return Ok(Action::Reboot);
            }
            if let Some(action) = self.pending.take() {
                return Ok(action);
            }
            self.note_healthy();
            self.turns.record(turn.elapsed());
        }
    }

    /// After two minutes of loop, this boot was a healthy one.
    fn note_healthy(&mut self) {
        if self.started.elapsed() < HEALTHY_LOOP {
            return;
        }
        if let Some(guard) = self.boot.boot_guard.take() {
            if let Err(e) = guard.healthy() {
                tracing::warn!("apps: boot count {e}");
            }
        }
    }

    /// Judges a version on trial; true when it failed and the node must reboot.
    fn trial_failed(&mut self) -> bool {
        let Some(elapsed) = self.boot.updates.judging() else {
            return false;
        };
        let b = &self.boot;
        let control_bound = self.control.is_some();
        let inputs = {
            let window = Duration::from_secs(b.config.update.health_secs);
            health::Inputs {
                elapsed,
                window,
                failed_phases: b.failed_phases.clone(),
                services: b.supervisor.health(),
                chain_expected: b.supervisor.health().iter().any(|s| s.name == "chain"),
                control_answers: elapsed >= window
                    && control_bound
                    && UnixStream::connect(control::SOCKET).is_ok(),
                fail_on_purpose: b.cmdline.get("fluxnode.test.fail_health") == Some("1"),
            }
        };
        self.boot.updates.tick(inputs)
    }

    fn reap(&mut self) {
        for (pid, status) in reaper::reap_all().exited {
            if self.boot.bench_job.as_ref().is_some_and(|j| j.pid == pid) {
                if let Some(job) = self.boot.bench_job.take() {
                    phases::bench::finished(&job, &status);
                }
            } else if let Some(done) = self.boot.updates.on_exit(pid, &status) {
                if let Some(f) = done {
                    if let Some(c) = self.control.as_mut() {
                        c.reply(f.token, &f.reply, &self.epoll);
                    }
                    if f.reboot {
                        info!("update staged: rebooting into it");
                        self.pending = Some(Action::Reboot);
                    }
                }
            } else if !self.boot.supervisor.on_exit(pid, &status)
                && !self
                    .boot
                    .apps
                    .on_exit(pid.as_raw(), &status, Instant::now())
            {
                self.orphans_reaped += 1;
                debug!("reaped orphan {pid}: {status:?}");
            }
        }
    }

    fn on_signals(&mut self) -> Result<Option<Action>> {
        let mut action = None;
        while let Some(info) = self.signals.read_signal().context("read signalfd")? {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(sig @ (Signal::SIGTERM | Signal::SIGINT | Signal::SIGPWR)) => {
                    info!("{sig} from pid {}: shutting down", info.ssi_pid);
                    action = Some(Action::PowerOff);
                }
                Ok(sig) => info!("{sig} ignored"),
                Err(_) => {}
            }
        }
        Ok(action)
    }

    fn on_button(&mut self, token: u64) -> Option<Action> {
        let index = usize::try_from(token - TOKEN_BUTTON_BASE).ok()?;
        let dev = self.buttons.get_mut(index)?;
        if power_button::pressed(dev) {
            info!("power button pressed: shutting down");
            return Some(Action::PowerOff);
        }
        None
    }

    fn on_control(&mut self, token: u64) -> Option<Action> {
        let lines = self.control.as_mut()?.read_lines(token);
        let mut action = None;
        for line in lines {
            let (reply, act) = match control::parse_request(&line) {
                Ok(req) => self.handle(req, token),
                Err(e) => (Some(Reply::error(e)), None),
            };
            if let (Some(c), Some(reply)) = (self.control.as_mut(), reply) {
                c.reply(token, &reply, &self.epoll);
            }
            action = action.or(act);
        }
        if let Some(c) = self.control.as_mut() {
            c.settle(token, &self.epoll);
        }
        action
    }

    /// Answers a request from connection `token`; `None` when the reply comes later.
    fn handle(&mut self, req: Request, token: u64) -> (Option<Reply>, Option<Action>) {
        if let Request::UpdateStage {
            path,
            force,
            reboot,
        } = &req
        {
            let delay = self
                .boot
                .cmdline
                .get("fluxnode.test.stage_delay_ms")
                .and_then(|v| v.parse().ok());
            return match self.boot.updates.stage(token, path, *force, *reboot, delay) {
                Ok(()) => (None, None),
                Err(e) => (Some(Reply::error(e)), None),
            };
        }
        let (reply, action) = self.answer(req);
        (Some(reply), action)
    }

    fn answer(&mut self, req: Request) -> (Reply, Option<Action>) {
        match req {
            Request::Status => (
                answer(Ok(status::status(
                    &self.boot,
                    self.orphans_reaped,
                    &self.turns,
                ))),
                None,
            ),
            Request::ServiceRestart { name } => match self.boot.supervisor.restart(&name) {
                Ok(()) => {
                    info!("control: restarting service {name}");
                    (Reply::ok(None), None)
                }
                Err(e) => (Reply::error(e), None),
            },
            Request::BenchLatest => match phases::bench::latest() {
                Some(s) => (Reply::ok(serde_json::to_value(&s).ok()), None),
                None => (
                    Reply::error(format!("no verified report at {}", phases::bench::LATEST)),
                    None,
                ),
            },
            Request::Shutdown => {
                info!("control: shutdown requested");
                (Reply::ok(None), Some(Action::PowerOff))
            }
            Request::Reboot => {
                info!("control: reboot requested");
                (Reply::ok(None), Some(Action::Reboot))
            }
            Request::AppRun { app } => (answer(self.boot.apps.run(app, Instant::now())), None),
            Request::AppStop { name, purge } => (
                answer(self.boot.apps.stop(&name, purge, Instant::now())),
                None,
            ),
            Request::AppList => (answer(Ok(self.boot.apps.list())), None),
            Request::AppStats { name, samples } => (
                answer(self.boot.apps.stats(&name, samples.unwrap_or(12))),
                None,
            ),
            Request::AppResume => (answer(self.boot.apps.resume(Instant::now())), None),
            Request::UpdateStage { .. } => (Reply::error("update.stage is answered later"), None),
        }
    }
}
