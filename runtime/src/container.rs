//! Container lifecycle on youki's libcontainer, as a library: create, start, kill, delete,
//! state and list of containers whose state lives under one root directory.
//!
//! Always `with_systemd(false)` and never `as_sibling(true)` (an init process may not clone
//! with CLONE_PARENT). libcontainer never reaps the container's init: it is the caller's
//! child, so the caller waits for it (PID1 from its loop, the `oci` CLI with `waitpid`).

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{self, Executor, ExecutorError, ExecutorValidationError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container {id}: {op}: {detail}")]
    Op {
        id: String,
        op: &'static str,
        detail: String,
    },
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container state root {path}: {err}")]
    Root { path: String, err: std::io::Error },
}

/// libcontainer's error and every cause under it, on one line (its top-level messages
/// alone, like "invalid input", do not say what was wrong).
fn chain(e: &libcontainer::error::LibcontainerError) -> String {
    use std::error::Error;
    let mut s = match e {
        libcontainer::error::LibcontainerError::InvalidInput(why) => {
            format!("invalid input: {why}")
        }
        other => other.to_string(),
    };
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// libcontainer's default executor, after clearing the signal mask. The container's
/// process is cloned from its creator and execve keeps the mask, so without this an app
/// started by PID1 (which blocks SIGCHLD, SIGTERM, SIGINT, SIGPWR and SIGHUP to read them
/// from a signalfd) would never see a SIGTERM.
#[derive(Clone)]
struct UnblockedExecutor;

impl Executor for UnblockedExecutor {
    fn exec(&self, spec: &oci_spec::runtime::Spec) -> Result<(), ExecutorError> {
        let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
        workload::default::get_executor().exec(spec)
    }

    fn validate(&self, spec: &oci_spec::runtime::Spec) -> Result<(), ExecutorValidationError> {
        workload::default::get_executor().validate(spec)
    }
}

/// Where stdin, stdout and stderr of a container's process go (None: inherited).
#[derive(Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// The OCI runtime spec's `state` of a container, plus what runc also reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// creating, created, running or stopped.
    pub status: String,
    /// The container's init process; 0 once it has stopped (as runc reports it).
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::HashMap::is_empty")]
    pub annotations: std::collections::HashMap<String, String>,
}

/// The bundle's root filesystem as its config.json names it, made absolute.
fn bundle_rootfs(bundle: &Path) -> String {
    let named = fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["root"]["path"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    bundle.join(named).display().to_string()
}

/// The containers under one state root directory.
pub struct Runtime {
    root: PathBuf,
}

fn status_word(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

impl Runtime {
    /// Opens (creating it, mode 0700) the state root.
    pub fn open(root: &Path) -> Result<Self, ContainerError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .and_then(|()| fs::canonicalize(root))
            .map(|root| Runtime { root })
            .map_err(|err| ContainerError::Root {
                path: root.display().to_string(),
                err,
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn op<'a>(
        id: &'a str,
        op: &'static str,
    ) -> impl Fn(libcontainer::error::LibcontainerError) -> ContainerError + 'a {
        move |e| ContainerError::Op {
            id: id.to_owned(),
            op,
            detail: chain(&e),
        }
    }

    /// Creates the container `id` from the bundle (its `config.json` and rootfs). Its init
    /// process waits for `start`; its pid is returned, a child of the caller.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
        pid_file: Option<&Path>,
    ) -> Result<i32, ContainerError> {
        let mut b = ContainerBuilder::new(id.to_owned(), SyscallType::default())
            .validate_id()
            .map_err(Self::op(id, "create"))?
            .with_root_path(&self.root)
            .map_err(Self::op(id, "create"))?
            .with_executor(UnblockedExecutor);
        if let Some(p) = pid_file {
            b = b.with_pid_file(Some(p)).map_err(Self::op(id, "create"))?;
        }
        if let Some(fd) = stdio.stdin {
            b = b.with_stdin(fd);
        }
        if let Some(fd) = stdio.stdout {
            b = b.with_stdout(fd);
        }
        if let Some(fd) = stdio.stderr {
            b = b.with_stderr(fd);
        }
        let c = b
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(Self::op(id, "create"))?;
        c.pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| ContainerError::Op {
                id: id.to_owned(),
                op: "create",
                detail: "libcontainer reported no pid".into(),
            })
    }

    fn load(&self, id: &str) -> Result<Container, ContainerError> {
        let dir = self.root.join(id);
        if id.contains('/') || id.starts_with('.') || !dir.join("state.json").exists() {
            return Err(ContainerError::NotFound(id.to_owned()));
        }
        Container::load(dir).map_err(Self::op(id, "load"))
    }

    /// Lets a created container's process run its program.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        self.load(id)?.start().map_err(Self::op(id, "start"))
    }

    /// Sends `signal` to the container's init (or, with `all`, to every process in it).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), ContainerError> {
        let sig = Signal::try_from(signal).map_err(|e| ContainerError::Op {
            id: id.to_owned(),
            op: "kill",
            detail: e.to_string(),
        })?;
        self.load(id)?.kill(sig, all).map_err(Self::op(id, "kill"))
    }

    /// Removes the container: its cgroup and its state. `force` kills it first if running.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        self.load(id)?.delete(force).map_err(Self::op(id, "delete"))
    }

    /// The container's state as the OCI runtime spec gives it.
    pub fn state(&self, id: &str) -> Result<State, ContainerError> {
        let mut c = self.load(id)?;
        c.refresh_status().map_err(Self::op(id, "state"))?;
        let s = &c.state;
        let status = c.status();
        let rootfs = bundle_rootfs(&s.bundle);
        Ok(State {
            oci_version: s.oci_version.clone(),
            id: s.id.clone(),
            status: status_word(status).to_owned(),
            pid: match status {
                ContainerStatus::Stopped => 0,
                _ => s.pid.unwrap_or(0),
            },
            bundle: s.bundle.display().to_string(),
            rootfs,
            created: s.created.map(|t| t.to_rfc3339()).unwrap_or_default(),
            owner: s
                .creator
                .map(|uid| {
                    if uid == 0 {
                        "root".into()
                    } else {
                        uid.to_string()
                    }
                })
                .unwrap_or_default(),
            annotations: s.annotations.clone().unwrap_or_default(),
        })
    }

    /// Every container under the root, sorted by id. One whose state cannot be read is
    /// skipped (it is being created or deleted right now).
    pub fn list(&self) -> Result<Vec<State>, ContainerError> {
        let mut ids: Vec<String> = fs::read_dir(&self.root)
            .map_err(|err| ContainerError::Root {
                path: self.root.display().to_string(),
                err,
            })?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("state.json").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids.iter().filter_map(|id| self.state(id).ok()).collect())
    }
}
