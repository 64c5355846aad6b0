//! What the app manager asks of the machine, as a trait: images, containers, cgroups,
//! helper children and accounting. [`super::live::LiveHost`] does it with libcontainer and
//! cgroupfs on the node; the manager's unit tests do it with a fake that records calls.
//! Every call is made inside `catch_unwind` by the manager, so a panic in one marks that
//! app failed, never PID1.

use nix::sys::signal::Signal;

use crate::accounting::Sample;
use crate::admission::Resources;
use crate::spec::AppSpec;

/// What the manager keeps from an app's image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The signal that asks the app to stop (the image's StopSignal, else SIGTERM).
    pub stop_signal: Signal,
    /// The image's ExposedPorts (`80/tcp`), shown with the app.
    pub exposed_ports: Vec<String>,
}

impl Default for ImageInfo {
    fn default() -> Self {
        ImageInfo {
            stop_signal: Signal::SIGTERM,
            exposed_ports: Vec::new(),
        }
    }
}

/// Where an app's image stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// In the store: the app can start.
    Ready(ImageInfo),
    /// A helper child (this pid) is importing it; start again when it exits.
    Importing(i32),
}

pub trait Host {
    /// Makes sure the app's image is in the store, or starts importing it in a helper.
    fn prepare(&mut self, app: &AppSpec) -> Result<Image, String>;
    /// What the app has written to its disk (its project quota's usage), when known.
    fn disk_used(&mut self, app: &AppSpec) -> Option<u64>;
    /// How far the pull of `app`'s image has come: bytes on disk of bytes in all.
    fn import_progress(&mut self, app: &AppSpec) -> Option<(u64, u64)>;
    /// Why the import helper of `app` failed (its last words), once it has exited.
    fn import_error(&mut self, app: &AppSpec) -> String;
    /// Creates and starts the app's container (overlay, bundle, create and start, bounded
    /// in time); returns the pid of its init, a child of the caller.
    fn start(&mut self, app: &AppSpec) -> Result<i32, String>;
    /// Sends `signal` to the app's init.
    fn signal(&mut self, app: &AppSpec, signal: Signal) -> Result<(), String>;
    /// Kills every process in the app's cgroup at once (`cgroup.kill`), without waiting.
    fn kill_all(&mut self, app: &AppSpec) -> Result<(), String>;
    /// Kills a helper child (an import that is no longer wanted).
    fn kill_helper(&mut self, pid: i32);
    /// Removes the app's container (state and cgroup) and unmounts its overlay; what the
    /// app wrote stays.
    fn cleanup(&mut self, app: &AppSpec) -> Result<(), String>;
    /// The app is gone for good: what it held beyond its container (its address) goes.
    fn release(&mut self, app: &AppSpec);
    /// Starts removing what the app wrote, in a helper child; returns its pid.
    fn purge(&mut self, app: &AppSpec) -> Result<i32, String>;
    /// One accounting sample of the app's cgroup.
    fn sample(&mut self, app: &AppSpec) -> Result<Sample, String>;
    /// How many OOM kills the app's cgroup has seen.
    fn oom_kills(&mut self, app: &AppSpec) -> u64;
    /// The last `max` bytes of the app's output.
    fn output_tail(&mut self, app: &AppSpec, max: u64) -> String;
    /// What the node can sell, and where that figure comes from.
    fn capacity(&mut self) -> (Resources, String);
}
