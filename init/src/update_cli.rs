//! `fluxnode update ...`: the children PID1 runs for updates (`stage` writes a verified
//! bundle's UKI to the ESP, `commit` marks the running version good), usable by hand too;
//! and `fluxnode ctl update stage FILE`, which asks PID1 to do it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use fluxnode_update::keys::{ReleaseKeys, RELEASE_KEYS_PATH};
use runtime::control::{Client, Reply};

use crate::update::{self, esp, stage};

#[derive(Args)]
pub struct Where {
    /// The ESP's EFI/Linux directory to use instead of finding, checking and mounting
    /// the ESP partition.
    #[arg(long)]
    esp_dir: Option<PathBuf>,
    /// Where the running version is read (VERSION_ID).
    #[arg(long, default_value = update::OS_RELEASE)]
    os_release: PathBuf,
}

#[derive(Subcommand)]
pub enum UpdateCommand {
    /// Verify a bundle and stage its UKI on the ESP as fluxnode-<ver>+3.efi.
    Stage {
        #[command(flatten)]
        at: Where,
        /// The release keys to trust.
        #[arg(long, default_value = RELEASE_KEYS_PATH)]
        keys: PathBuf,
        /// Stage a version that is not newer than the running one.
        #[arg(long)]
        force: bool,
        /// Also write the outcome as a control reply (JSON) to this file, for PID1.
        #[arg(long)]
        result: Option<PathBuf>,
        /// Pause after each 256 KiB written (a test hook).
        #[arg(long, hide = true)]
        delay_ms: Option<u64>,
        bundle: PathBuf,
    },
    /// Mark the running version's entry good (drop its try counter).
    Commit {
        #[command(flatten)]
        at: Where,
    },
}

#[derive(Subcommand)]
pub enum CtlUpdate {
    /// Have PID1 verify and stage a bundle; it reboots into it unless --no-reboot.
    Stage {
        file: PathBuf,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        no_reboot: bool,
    },
}

/// `fluxnode ctl update ...` through the typed client; what it prints.
pub fn ctl(client: &Client, cmd: CtlUpdate) -> Result<Option<serde_json::Value>> {
    match cmd {
        CtlUpdate::Stage {
            file,
            force,
            no_reboot,
        } => {
            let path = std::path::absolute(&file).with_context(|| format!("{}", file.display()))?;
            let staged = client
                .clone()
                .with_timeout(Duration::from_secs(600))
                .update_stage(&path.display().to_string(), force, !no_reboot)?;
            Ok(Some(serde_json::to_value(staged)?))
        }
    }
}

/// Runs `f` on the ESP's entry directory: `--esp-dir` as given, or the ESP partition
/// checked with fsck.fat and mounted read-write for the call.
fn on_esp<T>(at: &Where, f: impl FnOnce(&Path, u64) -> Result<T, String>) -> Result<T, String> {
    if let Some(dir) = &at.esp_dir {
        return f(dir, esp::free_bytes(dir)?);
    }
    let dev = esp::device()?;
    esp::check(&dev)?;
    let m = esp::Mounted::new(&dev, true)?;
    for name in esp::remove_salvaged(m.root()) {
        tracing::info!("ESP: removed {name} (lost clusters of an interrupted write)");
    }
    let dir = m.entries_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    f(&dir, m.free_bytes()?)
}

fn stage_cmd(
    at: &Where,
    keys: &Path,
    force: bool,
    delay_ms: Option<u64>,
    bundle: &Path,
) -> Result<stage::Staged, String> {
    let running = update::running_version(&at.os_release)?;
    let keys = ReleaseKeys::load(keys).map_err(|e| {
        format!("{e}: this image trusts no release keys, so every update is refused")
    })?;
    let opts = stage::Options {
        force,
        chunk_delay: delay_ms.map(Duration::from_millis),
    };
    let vb = stage::verify(bundle, &keys, &running, &opts)?;
    on_esp(at, |dir, free| {
        stage::stage_into(dir, free, &vb, &running, &opts)
    })
}

fn log_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cmd: UpdateCommand) -> Result<()> {
    log_to_stderr();
    match cmd {
        UpdateCommand::Stage {
            at,
            keys,
            force,
            result,
            delay_ms,
            bundle,
        } => {
            let outcome = stage_cmd(&at, &keys, force, delay_ms, &bundle);
            if let Some(path) = result {
                let reply = match &outcome {
                    Ok(s) => Reply::ok(serde_json::to_value(s).ok()),
                    Err(e) => Reply::error(e.clone()),
                };
                std::fs::write(&path, serde_json::to_vec(&reply)?)
                    .with_context(|| format!("{}", path.display()))?;
            }
            let staged = outcome.map_err(|e| anyhow!(e))?;
            println!("{}", serde_json::to_string(&staged)?);
        }
        UpdateCommand::Commit { at } => {
            let running = update::running_version(&at.os_release).map_err(|e| anyhow!(e))?;
            let name =
                on_esp(&at, |dir, _| stage::commit_in(dir, &running)).map_err(|e| anyhow!(e))?;
            println!("{name}");
        }
    }
    Ok(())
}
