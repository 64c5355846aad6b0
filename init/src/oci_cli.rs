//! `fluxnode oci`: a runc-compatible command line over the same libcontainer path PID1
//! uses, so OCI conformance suites and people's runc habits work. Same verbs, bundle
//! arguments, `state` JSON and exit codes as runc: 0 on success, 1 on any error, and `run`
//! exits with the container's status (128 + signal when a signal ended it).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use nix::mount::{mount, MsFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use runtime::container::{Runtime, Stdio};

#[derive(Args)]
pub struct OciArgs {
    /// Directory for container state (runc's default is /run/runc).
    #[arg(long, default_value = "/run/fluxnode/oci")]
    root: PathBuf,
    /// Accepted for runc compatibility; fluxnode logs to stderr.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Accepted for runc compatibility.
    #[arg(long)]
    log_format: Option<String>,
    /// Refused: fluxnode manages cgroup v2 directly, never through systemd.
    #[arg(long)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    command: OciCommand,
}

#[derive(Args)]
struct CreateArgs {
    /// The bundle directory (config.json and the root filesystem).
    #[arg(long, short, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's init pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Terminals are not supported: refused if given.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    id: String,
}

#[derive(Subcommand)]
enum OciCommand {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start a created container's process.
    Start { id: String },
    /// Print the container's state as OCI state JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container.
    Kill {
        /// Send it to every process in the container.
        #[arg(long, short)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a stopped (or, with --force, any) container.
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
    /// Create and start a container; wait for it and delete it unless --detach.
    Run {
        #[arg(long, short)]
        detach: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Write a config.json for a bundle with fluxnode's secure defaults (rootfs `rootfs`,
    /// no cgroupsPath: `create` gives each container /oci/<id>).
    Spec {
        #[arg(long, short, default_value = ".")]
        bundle: PathBuf,
        /// The process to run (after `--`); default `sh`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// List containers (a table, or `--format json`).
    List {
        #[arg(long, short, default_value = "table")]
        format: String,
        /// Print only the ids.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// A signal given as `KILL`, `SIGKILL` or `9`.
fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map(|s| s as i32)
            .with_context(|| format!("unknown signal {s:?}"));
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    Signal::from_str(&name)
        .map(|s| s as i32)
        .with_context(|| format!("unknown signal {s:?}"))
}

/// The cgroup a container of this config gets: an absolute `linux.cgroupsPath` as it is;
/// a relative one under `/oci` (the parent the node gives to containers it did not start
/// itself), as runc honours a relative path under its own parent; none: `/oci/<id>` (left
/// alone, libcontainer would invent a `:youki:<id>` cgroup). None when it needs no change.
fn cgroup_for(config: &serde_json::Value, id: &str) -> Option<String> {
    match config["linux"]["cgroupsPath"].as_str() {
        Some(p) if p.starts_with('/') => None,
        Some(p) if !p.is_empty() => Some(format!("/oci/{}", p.trim_start_matches("./"))),
        _ => Some(format!("/oci/{id}")),
    }
}

/// Makes libcontainer read the config with its cgroup set by [`cgroup_for`], while the
/// user's bundle stays untouched on disk and stays the bundle everyone sees (hooks get
/// its path in their state, `state` reports it): the adjusted copy is written under the
/// state root and bind-mounted over `<bundle>/config.json` in a mount namespace private to
/// this process.
fn prepare_bundle(rt: &Runtime, id: &str, bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}", path.display()))?;
    let Some(cgroup) = cgroup_for(&config, id) else {
        return Ok(());
    };
    let Some(linux) = config.get_mut("linux").and_then(|l| l.as_object_mut()) else {
        bail!("{}: no \"linux\" section", path.display());
    };
    linux.insert("cgroupsPath".into(), cgroup.into());
    let dir = derived_dir(rt, id);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let copy = dir.join("config.json");
    std::fs::write(&copy, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("{}", copy.display()))?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .context("make the mounts private")?;
    mount(Some(&copy), &path, none, MsFlags::MS_BIND, none)
        .with_context(|| format!("bind {} over {}", copy.display(), path.display()))?;
    Ok(())
}

fn derived_dir(rt: &Runtime, id: &str) -> PathBuf {
    rt.root().join(".bundles").join(id)
}

fn create(rt: &Runtime, a: &CreateArgs) -> Result<i32> {
    if a.console_socket.is_some() {
        bail!("--console-socket: terminals are not supported by fluxnode oci");
    }
    let bundle = absolute(&a.bundle)?;
    prepare_bundle(rt, &a.id, &bundle)?;
    let pid = rt.create(&a.id, &bundle, Stdio::default(), a.pid_file.as_deref());
    if pid.is_err() {
        let _ = std::fs::remove_dir_all(derived_dir(rt, &a.id));
    }
    Ok(pid?)
}

fn spec(bundle: &Path, args: Vec<String>) -> Result<()> {
    let app = runtime::spec::AppSpec {
        name: "container".into(),
        instance: 0,
        image: String::new(),
        source: None,
        entrypoint: None,
        command: if args.is_empty() {
            vec!["sh".into()]
        } else {
            args
        },
        user: None,
        env: vec![],
        ports: vec![],
        cpu_millis: 1000,
        ram_bytes: 256 << 20,
        disk_bytes: 0,
        pids: 1024,
        disk_weight: 100,
        restart: runtime::spec::RestartPolicy::No,
    };
    let spec = runtime::spec::runtime_spec(
        &app,
        &Default::default(),
        &Default::default(),
        Path::new("rootfs"),
        None,
    )?;
    let mut config = serde_json::to_value(&spec)?;
    if let Some(linux) = config.get_mut("linux").and_then(|l| l.as_object_mut()) {
        linux.remove("cgroupsPath");
    }
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{}: exists; not overwritten", path.display());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("{}", path.display()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("bundle {}", p.display()))
}

/// Waits for the container's init (our child: libcontainer clones it with CLONE_PARENT)
/// and turns its end into an exit code the way a shell does.
fn wait_exit(pid: i32) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("waiting for container init {pid}: {e}"),
        }
    }
}

pub fn run(args: OciArgs) -> Result<()> {
    if args.systemd_cgroup {
        bail!("--systemd-cgroup: fluxnode manages cgroup v2 directly, without systemd");
    }
    let rt = Runtime::open(&args.root)?;
    match args.command {
        OciCommand::Create(a) => {
            create(&rt, &a)?;
        }
        OciCommand::Start { id } => rt.start(&id)?,
        OciCommand::State { id } => {
            println!("{}", serde_json::to_string_pretty(&rt.state(&id)?)?)
        }
        OciCommand::Kill { all, id, signal } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(&id, sig, all)?
        }
        OciCommand::Delete { force, id } => {
            rt.delete(&id, force)?;
            let _ = std::fs::remove_dir_all(derived_dir(&rt, &id));
        }
        OciCommand::Spec { bundle, args } => spec(&bundle, args)?,
        OciCommand::Run { detach, create: a } => {
            let pid = create(&rt, &a)?;
            if let Err(e) = rt.start(&a.id) {
                let _ = rt.delete(&a.id, true);
                return Err(e.into());
            }
            if !detach {
                let code = wait_exit(pid)?;
                rt.delete(&a.id, true)?;
                let _ = std::fs::remove_dir_all(derived_dir(&rt, &a.id));
                std::process::exit(code);
            }
        }
        OciCommand::List { format, quiet } => {
            let all = rt.list()?;
            if quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&all)?);
            } else if format == "table" {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                    "ID", "PID", "STATUS", "BUNDLE", "CREATED"
                );
                for s in &all {
                    println!(
                        "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                        s.id, s.pid, s.status, s.bundle, s.created, s.owner
                    );
                }
            } else {
                bail!("--format {format:?}: expected table or json");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_short_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("hup").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("9").unwrap(), 9);
        let e = parse_signal("SIGNOPE").unwrap_err().to_string();
        assert!(e.contains("SIGNOPE"), "{e}");
        assert!(parse_signal("99").is_err());
    }
}
