//! PID1's event loop: one epoll over a signalfd and the power-button devices. It never
//! blocks on anything but `epoll_wait`, and returns the shutdown it was asked for.

use std::fs::File;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tracing::info;

use super::{power_button, reaper, Action};

const SIGNALS: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGPWR,
    Signal::SIGHUP,
];
const TOKEN_SIGNALS: u64 = 0;
const TOKEN_BUTTON_BASE: u64 = 1;

/// Blocks PID1's signals at once, so none is lost before the loop reads them from a signalfd.
pub fn block_signals() -> Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in SIGNALS {
        mask.add(s);
    }
    mask.thread_block().context("block signals")?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")
}

pub struct Loop {
    epoll: Epoll,
    signals: SignalFd,
    buttons: Vec<File>,
}

impl Loop {
    pub fn new(signals: SignalFd) -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll")?;
        epoll
            .add(
                signals.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_SIGNALS),
            )
            .context("epoll add signalfd")?;
        let buttons = power_button::open_all();
        for (i, dev) in buttons.iter().enumerate() {
            let token = TOKEN_BUTTON_BASE + i as u64;
            epoll
                .add(dev.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                .context("epoll add power button")?;
        }
        Ok(Loop {
            epoll,
            signals,
            buttons,
        })
    }

    /// Serves events until a shutdown is requested.
    pub fn run(&mut self) -> Result<Action> {
        // Children may have exited before the signalfd was watched.
        reaper::reap_all();
        let mut events = [EpollEvent::empty(); 16];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(1000u16)) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e).context("epoll_wait"),
            };
            for ev in &events[..n] {
                let action = match ev.data() {
                    TOKEN_SIGNALS => self.on_signals()?,
                    token => self.on_button(token),
                };
                if let Some(action) = action {
                    return Ok(action);
                }
            }
        }
    }

    fn on_signals(&mut self) -> Result<Option<Action>> {
        let mut action = None;
        while let Some(info) = self.signals.read_signal().context("read signalfd")? {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    reaper::reap_all();
                }
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
}
