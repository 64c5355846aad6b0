//! `fluxnode ctl app ...`: the client side of the app requests on PID1's control socket,
//! and the helpers PID1 runs off its loop: `fluxnode unpack` (import an image) and
//! `fluxnode purge` (remove what an app wrote).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use runtime::admission::{parse_bytes, parse_cores};
use runtime::control::Client;
use runtime::image::store::Store;
use runtime::spec::{AppSpec, RestartPolicy};

#[derive(Subcommand)]
pub enum AppCommand {
    /// Admit and run an app (it replaces a running one of the same name).
    Run(RunArgs),
    /// Stop an app and forget it.
    Stop {
        name: String,
        /// Also remove what the app wrote (its upperdir on /data).
        #[arg(long)]
        purge: bool,
    },
    /// Every app: state, restarts, last exit, latest sample; and node totals.
    List,
    /// Start the apps held on this boot (after boots in a row that never got healthy).
    Resume,
    /// Pull a registry image into the node's store (with a progress bar); prints its digest.
    Pull {
        /// host[:port]/repo[:tag|@sha256:...]
        reference: String,
    },
    /// One app's recent accounting samples.
    Stats {
        name: String,
        /// How many samples (one per 5 s).
        #[arg(long, default_value_t = 12)]
        samples: usize,
    },
}

#[derive(Args)]
pub struct RunArgs {
    name: String,
    /// The image: a registry reference (host[:port]/repo[:tag|@sha256:...], pulled when the
    /// store lacks it), or the manifest digest of one in the store or in --source.
    #[arg(long)]
    image: Option<String>,
    /// An OCI image layout or oci-archive to import the image from (path on the node).
    #[arg(long)]
    source: Option<PathBuf>,
    /// Cores, e.g. 0.5.
    #[arg(long, default_value = "1", value_parser = cores)]
    cpu: u64,
    /// RAM, e.g. 256M.
    #[arg(long, default_value = "256M", value_parser = bytes)]
    ram: u64,
    /// Disk space sold to the app, e.g. 1G.
    #[arg(long, default_value = "0", value_parser = bytes)]
    disk: u64,
    #[arg(long, default_value_t = 1024)]
    pids: i64,
    /// io.weight, 1 to 10000.
    #[arg(long, default_value_t = 100)]
    disk_weight: u16,
    /// no, on-failure or always.
    #[arg(long, default_value = "on-failure", value_parser = restart)]
    restart: RestartPolicy,
    #[arg(long = "env")]
    env: Vec<String>,
    /// A port to publish: HOST:CONTAINER[/tcp|/udp] (repeatable).
    #[arg(long = "port")]
    ports: Vec<runtime::net::PortMap>,
    #[arg(long, default_value_t = 0)]
    instance: u32,
    /// The program to run instead of the image's Entrypoint (its Cmd is dropped too, as
    /// `docker run --entrypoint` does); `--entrypoint ""` clears it.
    #[arg(long)]
    entrypoint: Option<String>,
    /// The user to run as instead of the image's: uid, uid:gid, name or name:group.
    #[arg(long)]
    user: Option<String>,
    /// The command, replacing the image's Cmd (after `--`).
    #[arg(last = true)]
    command: Vec<String>,
}

fn cores(s: &str) -> Result<u64, String> {
    parse_cores(s).ok_or_else(|| format!("expected cores like 0.5, found {s:?}"))
}

fn bytes(s: &str) -> Result<u64, String> {
    parse_bytes(s).ok_or_else(|| format!("expected a size like 256M, found {s:?}"))
}

fn restart(s: &str) -> Result<RestartPolicy, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("expected no, on-failure or always, found {s:?}"))
}

/// `fluxnode ctl app ...` through the typed client; what it prints.
pub fn ctl(client: &Client, cmd: AppCommand) -> Result<serde_json::Value> {
    Ok(match cmd {
        AppCommand::Run(a) => {
            let image = match (&a.image, &a.source) {
                (Some(d), _) => d.clone(),
                (None, Some(src)) => Store::source_digest(src)?,
                (None, None) => return Err(anyhow!("give --image DIGEST or --source PATH")),
            };
            serde_json::to_value(
                client.app_run(AppSpec {
                    name: a.name,
                    instance: a.instance,
                    image,
                    source: a.source.map(|p| p.display().to_string()),
                    entrypoint: a
                        .entrypoint
                        .map(|e| if e.is_empty() { vec![] } else { vec![e] }),
                    command: a.command,
                    user: a.user,
                    env: a.env,
                    ports: a.ports,
                    cpu_millis: a.cpu,
                    ram_bytes: a.ram,
                    disk_bytes: a.disk,
                    pids: a.pids,
                    disk_weight: a.disk_weight,
                    restart: a.restart,
                })?,
            )?
        }
        AppCommand::Stop { name, purge } => serde_json::to_value(client.app_stop(&name, purge)?)?,
        AppCommand::List => serde_json::to_value(client.app_list()?)?,
        AppCommand::Stats { name, samples } => {
            serde_json::to_value(client.app_stats(&name, samples)?)?
        }
        AppCommand::Resume => serde_json::to_value(client.app_resume()?)?,
        AppCommand::Pull { reference } => {
            crate::pull_cli::pull_here(&reference)?;
            serde_json::Value::Null
        }
    })
}

/// `fluxnode unpack`: imports `source` into the store and prints its digest; with
/// `expect`, fails unless the image is that one.
pub fn unpack(store: &Path, source: &Path, expect: Option<&str>) -> Result<()> {
    let store = Store::open(store)?;
    let img = store
        .import(source)
        .with_context(|| format!("import {}", source.display()))?;
    if let Some(want) = expect {
        if img.manifest_digest != want {
            return Err(anyhow!(
                "{}: holds image {}, not {want}",
                source.display(),
                img.manifest_digest
            ));
        }
    }
    println!("{}", img.manifest_digest);
    Ok(())
}

/// `fluxnode purge DIR`: removes an app instance's directory (its upperdir with what the
/// app wrote); PID1 unmounted its overlay first.
pub fn purge(dir: &Path) -> Result<()> {
    if !dir.is_absolute() || dir.parent().is_none() {
        return Err(anyhow!(
            "purge {}: not an instance directory",
            dir.display()
        ));
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("purge {}", dir.display()))
        }
        _ => Ok(()),
    }
}
