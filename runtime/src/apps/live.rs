//! The app manager's [`Host`] on a real node: images from the store (imported by a
//! `fluxnode unpack` helper child when missing), overlays on /data, OCI bundles, create and
//! start through libcontainer (bounded by an alarm), `cgroup.kill`, purges in a
//! `fluxnode purge` helper child, accounting from cgroupfs, and the capacity from the
//! signed benchmark report. Container inits and helpers are children of the caller (PID1),
//! which reaps them and hands their exits to the manager.

use std::fs::{self, OpenOptions};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::host::{Host, Image, ImageInfo};
use crate::accounting::{self, Sample};
use crate::admission::Resources;
use crate::bench::report;
use crate::container::{self, Runtime};
use crate::image::instance::{self, Instance};
use crate::image::store::Store;
use crate::net::{Attached, NetConfig, Network};
use crate::quota;
use crate::spec::{self, AppSpec};

/// A container's output log is rotated (one old copy) when it passes this size at a start.
const LOG_MAX: u64 = 4 << 20;
/// How long a container create may take before it counts as hung.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the runtime keeps its things on the node.
#[derive(Debug, Clone)]
pub struct Paths {
    pub store: PathBuf,
    pub apps: PathBuf,
    pub bundles: PathBuf,
    pub state: PathBuf,
    /// The signed benchmark report that gives the node's capacity.
    pub bench_report: PathBuf,
    /// The `fluxnode` binary the helpers run (`unpack`, `purge`).
    pub helper: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            store: "/data/images".into(),
            apps: "/data/apps".into(),
            bundles: "/run/fluxnode/bundles".into(),
            state: "/run/fluxnode/apps".into(),
            bench_report: "/data/bench/latest.json".into(),
            helper: fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/init")),
        }
    }
}

/// The node's own host: libcontainer containers under `paths.state`.
pub struct LiveHost {
    paths: Paths,
    rt: Runtime,
    /// The node's app network, or why there is none (apps then run without a network, and
    /// an app that publishes ports is refused).
    net: Result<Network, String>,
    /// How long a create may hang (tests shorten it).
    pub create_timeout: Duration,
}

impl LiveHost {
    pub fn open(paths: Paths, net: Option<NetConfig>) -> Result<Self, String> {
        let rt = Runtime::open(&paths.state).map_err(|e| e.to_string())?;
        let net = match net {
            Some(cfg) => Network::open(cfg),
            None => Err("not configured".into()),
        };
        match &net {
            Ok(n) => tracing::info!(
                "apps network: bridge {} on {}/{}",
                n.config().bridge,
                n.config().subnet,
                n.config().prefix
            ),
            Err(e) => tracing::warn!("apps network off: {e}"),
        }
        Ok(LiveHost {
            paths,
            rt,
            net,
            create_timeout: CREATE_TIMEOUT,
        })
    }

    /// The instance's network, when the node has one (an app with published ports needs it).
    fn attach(&mut self, app: &AppSpec) -> Result<Option<Attached>, String> {
        match &mut self.net {
            Ok(n) => n.attach(&app.id(), &app.name, &app.ports).map(Some),
            Err(why) if !app.ports.is_empty() => Err(format!(
                "app networking is off ({why}); ports cannot be published"
            )),
            Err(_) => Ok(None),
        }
    }

    fn detach(&mut self, app: &AppSpec, release: bool) {
        if let Ok(n) = &mut self.net {
            n.detach(&app.id(), release);
        }
    }

    /// The bundle, then create (bounded by the alarm) and start.
    fn create_and_start(
        &mut self,
        app: &AppSpec,
        img: &crate::image::store::Imported,
        who: &crate::user::User,
        rootfs: &Path,
        inst: &Instance,
        net: Option<&Attached>,
    ) -> Result<i32, String> {
        let id = app.id();
        let spec =
            spec::runtime_spec(app, &img.config, who, rootfs, net).map_err(|e| e.to_string())?;
        let bundle = self.paths.bundles.join(&id);
        instance::write_bundle(&bundle, &spec).map_err(|e| e.to_string())?;
        // A container left by an earlier run of this instance goes first.
        let _ = self.delete(&id);
        let (out, err) = self.output(inst)?;
        let stdin: OwnedFd = fs::File::open("/dev/null")
            .map_err(|e| e.to_string())?
            .into();
        let stdio = container::Stdio {
            stdin: Some(stdin),
            stdout: Some(out),
            stderr: Some(err),
        };
        let created = super::alarm::bounded(self.create_timeout, || {
            self.rt.create(&id, &bundle, stdio, None)
        });
        let pid = match created {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(timeout) => {
                // Whatever it left (an init waiting in the cgroup) goes with the cgroup.
                let _ = self.kill_all(app);
                let _ = self.delete(&id);
                return Err(format!("create: {timeout}"));
            }
        };
        if let Err(e) = self.rt.start(&id) {
            let _ = self.delete(&id);
            return Err(e.to_string());
        }
        Ok(pid)
    }

    /// The disk size the app is sold, as an ext4 project quota on its upperdir and workdir
    /// (tagged before the overlay is mounted). Where the filesystem has project quotas off,
    /// the app runs and the console says its disk is not enforced.
    fn disk_quota(&self, app: &AppSpec, inst: &Instance) -> Result<(), String> {
        let (upper, work) = (inst.dir().join("upper"), inst.dir().join("work"));
        for d in [&upper, &work] {
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let data = self
            .paths
            .apps
            .parent()
            .unwrap_or(Path::new("/"))
            .to_owned();
        let tagged = quota::project_id(inst.dir()).and_then(|id| {
            quota::set_project(&upper, id)?;
            quota::set_project(&work, id)?;
            quota::set_limit(&data, id, app.disk_bytes)
        });
        match tagged {
            Ok(()) => Ok(()),
            Err(e) if e.is_off() => {
                if app.disk_bytes > 0 {
                    tracing::warn!(
                        "apps: {}: disk {} not enforced: {e}",
                        app.id(),
                        app.disk_bytes
                    );
                }
                Ok(())
            }
            Err(e) => Err(format!("disk quota: {e}")),
        }
    }

    fn pull_progress(&self, app: &AppSpec) -> PathBuf {
        self.paths.bundles.join(format!("{}.pull.json", app.id()))
    }

    fn unpack_log(&self, app: &AppSpec) -> PathBuf {
        self.paths.bundles.join(format!("{}.unpack.log", app.id()))
    }

    fn helper(&self, args: &[&str], log: &Path) -> Result<i32, String> {
        let _ = fs::create_dir_all(&self.paths.bundles);
        let out = fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(&self.paths.helper)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start the {} helper: {e}", args[0]))?;
        // The caller's reaper collects it through waitpid(-1).
        Ok(child.id() as i32)
    }

    fn output(&self, inst: &Instance) -> Result<(OwnedFd, OwnedFd), String> {
        let path = inst.dir().join("output.log");
        if fs::metadata(&path).is_ok_and(|m| m.len() > LOG_MAX) {
            let _ = fs::rename(&path, inst.dir().join("output.log.1"));
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let g = f
            .try_clone()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((f.into(), g.into()))
    }

    fn delete(&self, id: &str) -> Result<(), String> {
        if self.rt.root().join(id).exists() {
            self.rt.delete(id, true).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The capacity a signed benchmark report gives, or the hardware's when there is none.
pub fn capacity(report_path: &Path) -> (Resources, String) {
    let report = fs::read_to_string(report_path)
        .ok()
        .and_then(|t| report::verify(&t).ok());
    if let Some(s) = report {
        let r = &s.report;
        let res = Resources {
            cpu_millis: r.cpu.threads as u64 * 1000,
            ram_bytes: r.ram.total_bytes,
            disk_bytes: r.disk.fs_bytes,
        };
        return (res, "benchmark".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let ram = crate::bench::mem::total_bytes().unwrap_or(0);
    let data = report_path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let disk = nix::sys::statvfs::statvfs(data)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0);
    (
        Resources {
            cpu_millis: cpus * 1000,
            ram_bytes: ram,
            disk_bytes: disk,
        },
        "hardware (no benchmark report)".into(),
    )
}

impl Host for LiveHost {
    fn prepare(&mut self, app: &AppSpec) -> Result<Image, String> {
        let store = Store::open(&self.paths.store).map_err(|e| e.to_string())?;
        if let Some(img) = store.by_ref(&app.image).map_err(|e| e.to_string())? {
            let c = &img.config;
            return Ok(Image::Ready(ImageInfo {
                stop_signal: c
                    .stop_signal
                    .as_deref()
                    .and_then(crate::image::config::parse_signal)
                    .unwrap_or(Signal::SIGTERM),
                exposed_ports: c.exposed_ports.clone(),
            }));
        }
        let store_dir = self.paths.store.display().to_string();
        let log = self.unpack_log(app);
        if let Some(source) = &app.source {
            let args = [
                "unpack", "--store", &store_dir, "--expect", &app.image, source,
            ];
            return self.helper(&args, &log).map(Image::Importing);
        }
        if app.image.starts_with("sha256:") {
            return Err(format!(
                "image {} is not in the store and no source was given",
                app.image
            ));
        }
        // A registry image: pulled by a helper, which keeps its progress in a file.
        let progress = self.pull_progress(app).display().to_string();
        let _ = fs::remove_file(&progress);
        let args = [
            "pull",
            "--store",
            &store_dir,
            "--progress",
            &progress,
            &app.image,
        ];
        self.helper(&args, &log).map(Image::Importing)
    }

    fn disk_used(&mut self, app: &AppSpec) -> Option<u64> {
        let inst = Instance::new(&self.paths.apps, &app.id());
        let data = self.paths.apps.parent()?.to_owned();
        let id = quota::project_id(inst.dir()).ok()?;
        quota::usage(&data, id).ok().map(|u| u.bytes)
    }

    fn import_progress(&mut self, app: &AppSpec) -> Option<(u64, u64)> {
        let text = fs::read(self.pull_progress(app)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        Some((v["done"].as_u64()?, v["total"].as_u64()?))
    }

    fn import_error(&mut self, app: &AppSpec) -> String {
        let log = self.unpack_log(app);
        let said = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        said.lines().last().unwrap_or("no message").to_owned()
    }

    fn start(&mut self, app: &AppSpec) -> Result<i32, String> {
        let store = Store::open(&self.paths.store).map_err(|e| e.to_string())?;
        let img = store
            .by_ref(&app.image)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("image {} is not in the store", app.image))?;
        let id = app.id();
        let inst = Instance::new(&self.paths.apps, &id);
        self.disk_quota(app, &inst)?;
        let rootfs = inst.mount(&img.layers).map_err(|e| e.to_string())?;
        let want = app.user.as_deref().unwrap_or(&img.config.user);
        let who = crate::user::resolve(want, &rootfs).map_err(|e| e.to_string())?;
        crate::user::make_workdir(&rootfs, img.config.cwd(), who.uid, who.gid)
            .map_err(|e| e.to_string())?;
        let net = self.attach(app)?;
        let started = self.create_and_start(app, &img, &who, &rootfs, &inst, net.as_ref());
        if started.is_err() {
            self.detach(app, false);
        }
        started
    }

    fn signal(&mut self, app: &AppSpec, signal: Signal) -> Result<(), String> {
        self.rt
            .kill(&app.id(), signal as i32, false)
            .map_err(|e| e.to_string())
    }

    fn kill_all(&mut self, app: &AppSpec) -> Result<(), String> {
        let path = accounting::dir_of(&spec::cgroup_path(app)).join("cgroup.kill");
        fs::write(&path, b"1").map_err(|e| format!("{}: {e}", path.display()))
    }

    fn kill_helper(&mut self, pid: i32) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }

    fn cleanup(&mut self, app: &AppSpec) -> Result<(), String> {
        let id = app.id();
        let deleted = self.delete(&id);
        self.detach(app, false);
        let _ = fs::remove_dir_all(self.paths.bundles.join(&id));
        Instance::new(&self.paths.apps, &id).unmount();
        deleted
    }

    fn release(&mut self, app: &AppSpec) {
        self.detach(app, true);
    }

    fn purge(&mut self, app: &AppSpec) -> Result<i32, String> {
        let inst = Instance::new(&self.paths.apps, &app.id());
        inst.unmount();
        let dir = inst.dir().display().to_string();
        let log = self.paths.bundles.join(format!("{}.purge.log", app.id()));
        self.helper(&["purge", &dir], &log)
    }

    fn sample(&mut self, app: &AppSpec) -> Result<Sample, String> {
        accounting::sample(&spec::cgroup_path(app)).map_err(|e| e.to_string())
    }

    fn oom_kills(&mut self, app: &AppSpec) -> u64 {
        accounting::oom_kills(&spec::cgroup_path(app))
    }

    fn output_tail(&mut self, app: &AppSpec, max: u64) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.paths.apps.join(app.id()).join("output.log");
        let Ok(mut f) = fs::File::open(path) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
        let mut buf = Vec::new();
        let _ = f.take(max).read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn capacity(&mut self) -> (Resources, String) {
        capacity(&self.paths.bench_report)
    }
}
