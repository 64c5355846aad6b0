//! The typed replies to every control request, shared by PID1 (which serializes them into
//! a reply's `data`) and its clients (which read them back through [`super::Client`]).
//! Field names are the wire form: scripts and tests read the same JSON.

use serde::{Deserialize, Serialize};

use crate::accounting::Sample;
use crate::admission::Resources;
use crate::spec::RestartPolicy;

/// `status`: what PID1 knows about the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub uptime_ms: u64,
    /// Boot phases in order, with how long each took.
    pub phases: Vec<PhaseTime>,
    pub services: Vec<ServiceStatus>,
    /// IPv4 addresses by link.
    pub net: Vec<NetAddress>,
    /// How the network phase configured each link.
    pub net_config: Vec<String>,
    pub storage: Storage,
    /// The hardware watchdog's timeout in seconds, when one is armed.
    pub watchdog: Option<u64>,
    pub orphans_reaped: u64,
    pub zombies: u64,
    pub hostname: String,
    pub update: UpdateStatus,
    /// How long PID1's loop turns take.
    #[serde(default)]
    pub loop_turns: LoopTurns,
    /// Why the apps are held (not started) on this boot, when they are.
    #[serde(default)]
    pub apps_held: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTime {
    pub name: String,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// running, waiting (to restart) or stopped.
    pub state: String,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAddress {
    pub link: String,
    pub address: String,
}

/// The data partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum Storage {
    #[serde(rename = "mounted")]
    Mounted { device: String, mountpoint: String },
    #[serde(rename = "degraded")]
    Degraded { reason: String },
    #[default]
    #[serde(rename = "not yet")]
    NotYet,
}

/// A/B updates as PID1 sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    /// The running version (os-release VERSION_ID).
    pub running: Option<String>,
    /// The ESP entry this boot came from.
    pub entry: Option<String>,
    pub committed: Vec<String>,
    pub trial: Option<Trial>,
    /// not on trial, watching, committing, committed, or failed: why.
    pub health: String,
    pub last_rollback: Option<Rollback>,
    pub staging: bool,
    /// Why updates are off on this node, if they are.
    pub off: Option<String>,
    /// The development release keys this node trusts (a development or test build only).
    #[serde(default)]
    pub development_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    pub version: String,
    /// Tries the boot loader has left for it (none: not counted).
    pub tries_left: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    pub from: String,
    pub to: String,
    /// Seconds since the Unix epoch when PID1 noticed it.
    pub at: u64,
}

/// A histogram of PID1's loop turns: how long the work between two waits took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopTurns {
    pub turns: u64,
    /// The longest turn, in microseconds.
    pub max_us: u64,
    /// `(upper bound in ms, turns at most that long)`; the last bound is u64::MAX.
    pub buckets: Vec<(u64, u64)>,
}

/// An app's state as the control API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    /// Its image is being imported by a helper.
    Unpacking,
    /// To start (or restart after its backoff).
    Waiting,
    Running,
    /// Asked to stop: SIGTERM sent, the cgroup killed after the grace time.
    Stopping,
    /// Stopped; a helper removes what it wrote.
    Purging,
    /// Ended and not restarted (its policy said so).
    Exited,
    /// Cannot start (its policy says no restart), or its image cannot be imported.
    Failed,
    /// Not started on this boot: the node's apps are held (see `apps_held`).
    Held,
}

/// One app: its spec's figures, its state, and its latest accounting sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSummary {
    pub name: String,
    /// `<name>-<instance>`: the container id and cgroup name.
    pub id: String,
    pub image: String,
    pub state: AppState,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// How long the last run lasted.
    pub last_run_ms: Option<u64>,
    pub error: Option<String>,
    pub restart: RestartPolicy,
    pub cpu_millis: u64,
    pub ram_bytes: u64,
    pub disk_bytes: u64,
    pub pids: i64,
    pub latest: Option<Sample>,
    /// The image's ExposedPorts (`80/tcp`), once its image is in the store.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// What it has written to its disk (its upperdir's project quota), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_used: Option<u64>,
    /// While its image is pulled: bytes on disk, of bytes in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<(u64, u64)>,
}

/// `app.list`: every app, the node's totals, capacity and reserve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<AppSummary>,
    /// The latest samples of all apps added up.
    pub totals: Sample,
    pub capacity: Resources,
    /// Where the capacity comes from (the benchmark report, or the hardware).
    pub capacity_source: String,
    pub reserve: Resources,
    /// "ready", or why apps cannot run on this node.
    pub runtime: String,
    /// Why the apps are held on this boot, when they are.
    #[serde(default)]
    pub held: Option<String>,
}

/// `app.stats`: one app, its recent samples and the tail of its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStats {
    pub app: AppSummary,
    pub samples: Vec<Sample>,
    pub output: String,
}

/// `app.stop`: the app that is stopping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStopping {
    pub stopping: String,
}

/// `app.resume`: the apps released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppsResumed {
    pub resumed: Vec<String>,
}

/// `update.stage`: what staging wrote on the ESP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// The entry's file name.
    pub staged: String,
    pub version: String,
    /// Entries pruned to make room.
    pub removed: Vec<String>,
    pub bytes: u64,
}
