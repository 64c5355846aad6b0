//! Running a helper program during boot (e2fsck, resize2fs) while still petting the
//! watchdog: the helper may take minutes on a big disk, and the machine must not reset.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::watchdog::Watchdog;

/// How a helper ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Runs `argv` to completion, petting `watchdog` every 50 ms; its output goes to the console.
pub fn run(argv: &[&str], watchdog: &mut Option<Watchdog>) -> Result<Ended> {
    let (prog, args) = argv.split_first().context("empty helper command")?;
    let child = Command::new(prog)
        .args(args)
        .spawn()
        .with_context(|| format!("start {prog}"))?;
    let pid = Pid::from_raw(child.id() as i32);
    // The Child handle is not used to wait: waitpid below is the only reaping of this pid.
    drop(child);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Ended::Signaled(sig as i32)),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).with_context(|| format!("wait for {prog}")),
        }
        if let Some(w) = watchdog.as_mut() {
            w.pet_if_due();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
