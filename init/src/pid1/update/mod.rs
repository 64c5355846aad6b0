//! PID1's side of A/B updates. At boot (phase `update`) it looks at the ESP read-only:
//! which entry it runs from and whether the loader fell back from a failed version (logged
//! once as `rolled back from <ver>`, kept in /data/update/state.json). While its own entry
//! is on trial it judges health from the loop and, once healthy, commits the entry in a
//! `fluxnode update commit` child; an unhealthy trial reboots so the loader can count the
//! try down and fall back. `update.stage` runs `fluxnode update stage` as a child and
//! replies to the caller when it ends. Nothing here blocks the loop.

pub mod health;
mod jobs;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use runtime::control::replies::{Trial as TrialStatus, UpdateStatus};
use tracing::{info, warn};

use crate::update::{self, esp, state, Entry, Version};
use fluxnode_update::keys::{ReleaseKeys, RELEASE_KEYS_PATH};
use health::Verdict;
pub use jobs::Finished;

/// How long to wait before trying a failed commit again.
const COMMIT_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Trial {
    /// Running from an entry with tries left; watching health since boot.
    Watching {
        tries_left: u32,
        retry_at: Option<Instant>,
    },
    Committing {
        pid: Pid,
    },
    Committed,
    Failed(String),
}

pub struct Updates {
    running: Option<Version>,
    /// The entry this boot came from, if the ESP has one for the running version.
    entry: Option<String>,
    entries: Vec<(String, Entry)>,
    trial: Option<Trial>,
    since: Instant,
    state: state::UpdateState,
    /// Why updates are off on this node, if they are.
    off: Option<String>,
    jobs: jobs::Jobs,
    /// The development release keys this node trusts (a development or test build).
    development_key: Option<String>,
}

/// Says on the console when the image trusts a development release key (anyone holding
/// that key's private half, which lives on build machines, could update the node).
fn development_keys(path: &Path) -> Option<String> {
    let keys = ReleaseKeys::load(path).ok()?;
    let dev = keys.development();
    if dev.is_empty() {
        return None;
    }
    let list = dev.join(", ");
    warn!(
        "update: this node trusts the development release key {list}: a development or \
         test build, not for servers"
    );
    Some(list)
}

impl Default for Updates {
    fn default() -> Self {
        Updates {
            running: None,
            entry: None,
            entries: Vec::new(),
            trial: None,
            since: Instant::now(),
            state: state::UpdateState::default(),
            off: Some("not inspected yet".into()),
            jobs: jobs::Jobs::default(),
            development_key: None,
        }
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Updates {
    /// Reads the running version and the ESP's entries (mounted read-only for a moment),
    /// notes a rollback, and starts watching a trial.
    pub fn inspect(data_mounted: bool) -> Self {
        let mut u = Updates {
            development_key: development_keys(Path::new(RELEASE_KEYS_PATH)),
            ..Updates::default()
        };
        let running = match update::running_version(Path::new(update::OS_RELEASE)) {
            Ok(v) => v,
            Err(e) => {
                warn!("updates off: {e}");
                u.off = Some(e);
                return u;
            }
        };
        u.running = Some(running.clone());
        let listed = esp::device().and_then(|dev| {
            let m = esp::Mounted::new(&dev, false)?;
            update::entries(&m.entries_dir())
        });
        match listed {
            Ok(l) => u.entries = l,
            Err(e) => {
                info!("running version {running}; updates off: ESP: {e}");
                u.off = Some(format!("ESP: {e}"));
                return u;
            }
        }
        u.off = None;
        let mine = u
            .entries
            .iter()
            .find(|(_, e)| e.version == running)
            .cloned();
        match &mine {
            Some((name, _)) => info!("running version {running} from entry {name}"),
            None => info!("running version {running} (no entry for it on the ESP)"),
        }
        u.entry = mine.as_ref().map(|(n, _)| n.clone());
        // A trial is an entry the loader has counted (`+left-done`): booted some other way
        // (QEMU's -kernel), an entry still named `+3` was not tried, and is left alone.
        let loader = Path::new("/sys/firmware/efi").exists();
        if let Some((_, e)) = &mine {
            if !e.is_committed() && e.tries_done.is_some() && loader {
                u.trial = Some(Trial::Watching {
                    tries_left: e.tries_left.unwrap_or(0),
                    retry_at: None,
                });
            }
        }
        if data_mounted {
            let (st, err) = state::UpdateState::load(Path::new(state::PATH));
            if let Some(err) = err {
                warn!("update state: {err}; starting afresh");
            }
            u.state = st;
        }
        u.note_rollback(&running, data_mounted);
        u
    }

    /// A failed (no tries left) entry newer than what runs means the loader fell back.
    fn note_rollback(&mut self, running: &Version, persist: bool) {
        let Some((_, failed)) = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_bad() && &e.version > running)
            .max_by(|a, b| a.1.version.cmp(&b.1.version))
        else {
            return;
        };
        let from = failed.version.to_string();
        if self
            .state
            .note_rollback(&from, &running.to_string(), now_unix())
        {
            warn!("rolled back from {from}");
            if persist {
                if let Err(e) = self.state.save(Path::new(state::PATH)) {
                    warn!("update state: {e}");
                }
            }
        }
    }

    /// How long this boot has been on trial, when a health judgement is due now.
    pub fn judging(&self) -> Option<Duration> {
        match &self.trial {
            Some(Trial::Watching { retry_at, .. }) if !matches!(retry_at, Some(t) if Instant::now() < *t) => {
                Some(self.since.elapsed())
            }
            _ => None,
        }
    }

    /// One loop turn: judges a trial's health; returns true when the node must reboot.
    pub fn tick(&mut self, inputs: health::Inputs) -> bool {
        let Some(Trial::Watching {
            tries_left,
            retry_at,
        }) = self.trial.clone()
        else {
            return false;
        };
        if retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let (Some(running), Some(entry)) = (self.running.clone(), self.entry.clone()) else {
            return false;
        };
        match health::judge(&inputs) {
            Verdict::Wait => false,
            Verdict::Healthy => {
                match jobs::spawn_commit() {
                    Ok(pid) => {
                        info!("update {running} is healthy; committing {entry}");
                        self.trial = Some(Trial::Committing { pid });
                    }
                    Err(e) => {
                        warn!("update {running}: cannot commit: {e}");
                        self.retry_later(tries_left);
                    }
                }
                false
            }
            Verdict::Unhealthy(why) => {
                let fallback = self
                    .entries
                    .iter()
                    .any(|(_, e)| e.version != running && !e.is_bad());
                if tries_left > 0 || fallback {
                    warn!("update {running} failed health: {why}; rebooting");
                    self.trial = Some(Trial::Failed(why));
                    true
                } else {
                    warn!(
                        "update {running} failed health: {why}; no other version to fall \
                         back to, running on"
                    );
                    self.trial = Some(Trial::Failed(why));
                    false
                }
            }
        }
    }

    fn retry_later(&mut self, tries_left: u32) {
        self.trial = Some(Trial::Watching {
            tries_left,
            retry_at: Some(Instant::now() + COMMIT_RETRY),
        });
    }

    /// Starts staging a bundle for the control connection `token`.
    pub fn stage(
        &mut self,
        token: u64,
        path: &str,
        force: bool,
        reboot: bool,
        delay_ms: Option<u64>,
    ) -> Result<(), String> {
        if let Some(why) = &self.off {
            return Err(format!("updates are off on this node: {why}"));
        }
        self.jobs.stage(token, path, force, reboot, delay_ms)
    }

    /// Takes a child's exit if it is one of ours.
    pub fn on_exit(&mut self, pid: Pid, status: &WaitStatus) -> Option<Option<Finished>> {
        if let Some(Trial::Committing { pid: p }) = self.trial {
            if p == pid {
                self.committed(status);
                return Some(None);
            }
        }
        let finished = self.jobs.on_exit(pid, status)?;
        if let Some(staged) = &finished.staged {
            self.entries.retain(|(n, _)| !staged.removed.contains(n));
            if let Some(e) = Entry::parse(&staged.staged) {
                self.entries.push((staged.staged.clone(), e));
            }
        }
        Some(Some(finished))
    }

    fn committed(&mut self, status: &WaitStatus) {
        let Some(running) = self.running.clone() else {
            return;
        };
        if matches!(status, WaitStatus::Exited(_, 0)) {
            info!("update {running} committed");
            for (name, e) in self.entries.iter_mut() {
                if e.version == running {
                    *e = e.committed();
                    *name = e.file_name();
                    self.entry = Some(name.clone());
                }
            }
            self.trial = Some(Trial::Committed);
        } else {
            warn!(
                "update {running}: commit failed ({}); trying again in {} s",
                crate::pid1::supervisor::exit_reason(status),
                COMMIT_RETRY.as_secs()
            );
            let tries = self
                .entries
                .iter()
                .find(|(_, e)| e.version == running)
                .and_then(|(_, e)| e.tries_left)
                .unwrap_or(0);
            self.retry_later(tries);
        }
    }

    /// When the loop must wake for a retry.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.trial {
            Some(Trial::Watching { retry_at, .. }) => {
                Some(retry_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(1)))
            }
            _ => None,
        }
    }

    pub fn status(&self) -> UpdateStatus {
        let committed: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.is_committed())
            .map(|(_, e)| e.version.to_string())
            .collect();
        let trial = self
            .entries
            .iter()
            .find(|(_, e)| !e.is_committed() && !e.is_bad())
            .map(|(_, e)| TrialStatus {
                version: e.version.to_string(),
                tries_left: e.tries_left,
            });
        let health = match &self.trial {
            None => "not on trial".to_owned(),
            Some(Trial::Watching { .. }) => "watching".into(),
            Some(Trial::Committing { .. }) => "committing".into(),
            Some(Trial::Committed) => "committed".into(),
            Some(Trial::Failed(why)) => format!("failed: {why}"),
        };
        UpdateStatus {
            running: self.running.as_ref().map(ToString::to_string),
            entry: self.entry.clone(),
            committed,
            trial,
            health,
            last_rollback: self.state.last_rollback.clone(),
            staging: self.jobs.staging(),
            off: self.off.clone(),
            development_key: self.development_key.clone(),
        }
    }
}
