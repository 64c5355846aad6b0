//! The children PID1 runs for updates: `fluxnode update stage` (one at a time, its reply
//! owed to a control connection) and `fluxnode update commit`. Each gets the console for
//! its log and is reaped by the loop like every other child.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use runtime::control::Reply;
use serde::Deserialize;

use crate::pid1::supervisor::exit_reason;
use crate::update::stage::result_path;

/// What a staging child reports in its reply's data.
#[derive(Debug, Clone, Deserialize)]
pub struct StagedInfo {
    pub staged: String,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// A staging that ended: the reply for the control connection `token`, and whether to
/// reboot into the staged version now.
#[derive(Debug)]
pub struct Finished {
    pub token: u64,
    pub reply: Reply,
    pub reboot: bool,
    pub staged: Option<StagedInfo>,
}

struct StageJob {
    pid: Pid,
    token: u64,
    reboot: bool,
}

#[derive(Default)]
pub struct Jobs {
    stage: Option<StageJob>,
}

fn spawn(args: &[String]) -> Result<Pid, String> {
    let child = Command::new("/init")
        .args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start /init {}: {e}", args.join(" ")))?;
    let pid = Pid::from_raw(child.id() as i32);
    // The loop's reaper collects this pid.
    drop(child);
    Ok(pid)
}

pub fn spawn_commit() -> Result<Pid, String> {
    spawn(&["update".into(), "commit".into()])
}

impl Jobs {
    pub fn staging(&self) -> bool {
        self.stage.is_some()
    }

    pub fn stage(
        &mut self,
        token: u64,
        path: &str,
        force: bool,
        reboot: bool,
        delay_ms: Option<u64>,
    ) -> Result<(), String> {
        if self.stage.is_some() {
            return Err("an update is being staged already; try again when it is done".into());
        }
        let result = result_path();
        let _ = fs::remove_file(&result);
        let mut args: Vec<String> = vec![
            "update".into(),
            "stage".into(),
            "--result".into(),
            result.display().to_string(),
        ];
        if force {
            args.push("--force".into());
        }
        if let Some(ms) = delay_ms {
            args.extend(["--delay-ms".into(), ms.to_string()]);
        }
        args.push(path.into());
        let pid = spawn(&args)?;
        tracing::info!("update: staging {path} (pid {pid})");
        self.stage = Some(StageJob { pid, token, reboot });
        Ok(())
    }

    pub fn on_exit(&mut self, pid: Pid, status: &WaitStatus) -> Option<Finished> {
        if !matches!(&self.stage, Some(j) if j.pid == pid) {
            return None;
        }
        let job = self.stage.take()?;
        let reply = fs::read(result_path())
            .ok()
            .and_then(|b| serde_json::from_slice::<Reply>(&b).ok())
            .unwrap_or_else(|| {
                Reply::error(format!(
                    "the staging helper ended ({}) without a result",
                    exit_reason(status)
                ))
            });
        let staged = reply
            .data
            .clone()
            .filter(|_| reply.ok)
            .and_then(|d| serde_json::from_value::<StagedInfo>(d).ok());
        Some(Finished {
            token: job.token,
            reboot: job.reboot && staged.is_some(),
            reply,
            staged,
        })
    }
}
