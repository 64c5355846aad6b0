//! Starting one app instance: its image (imported by a `fluxnode unpack` helper when the
//! store lacks it), its overlay, its bundle, and create + start through libcontainer, with
//! stdout and stderr going to `output.log` in the instance directory. Every libcontainer
//! call sits inside `catch_unwind`: a panic there must not become a kernel panic.

use std::fs::{self, OpenOptions};
use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::Pid;
use runtime::container::{self, Runtime};
use runtime::image::instance::{self, Instance};
use runtime::image::store::Store;
use runtime::spec::{self, AppSpec};

/// The log is rotated (one old copy) when it passes this size at a start.
const LOG_MAX: u64 = 4 << 20;

/// Where the runtime keeps its things.
#[derive(Debug, Clone)]
pub struct Paths {
    pub store: PathBuf,
    pub apps: PathBuf,
    pub bundles: PathBuf,
    pub state: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            store: "/data/images".into(),
            apps: "/data/apps".into(),
            bundles: "/run/fluxnode/bundles".into(),
            state: "/run/fluxnode/apps".into(),
        }
    }
}

/// What a start led to.
pub enum Started {
    Running(Pid),
    /// The image is being imported by this helper; start again when it exits.
    Unpacking(Pid),
}

/// Runs a libcontainer call, turning a panic into an error.
pub fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, container::ContainerError>,
) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{what}: libcontainer panicked (message above)")),
    }
}

fn output(inst: &Instance) -> Result<(OwnedFd, OwnedFd), String> {
    let path = inst.dir().join("output.log");
    if fs::metadata(&path)
        .map(|m| m.len() > LOG_MAX)
        .unwrap_or(false)
    {
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

/// Where an unpack helper's messages go, to be quoted when it fails.
pub fn unpack_log(paths: &Paths, app: &AppSpec) -> PathBuf {
    paths.bundles.join(format!("{}.unpack.log", app.id()))
}

fn unpacker(paths: &Paths, app: &AppSpec, source: &str) -> Result<Pid, String> {
    let exe = fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/init"));
    let log_path = unpack_log(paths, app);
    let _ = fs::create_dir_all(&paths.bundles);
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new(exe)
        .arg("unpack")
        .arg("--store")
        .arg(&paths.store)
        .arg("--expect")
        .arg(&app.image)
        .arg(source)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the unpack helper: {e}"))?;
    // The reaper collects it through waitpid(-1).
    Ok(Pid::from_raw(child.id() as i32))
}

/// Starts `app`, or the import of its image.
pub fn start(rt: &Runtime, paths: &Paths, app: &AppSpec) -> Result<Started, String> {
    let store = Store::open(&paths.store).map_err(|e| e.to_string())?;
    let Some(img) = store.image(&app.image).map_err(|e| e.to_string())? else {
        return match &app.source {
            Some(src) => unpacker(paths, app, src).map(Started::Unpacking),
            None => Err(format!(
                "image {} is not in the store and no source was given",
                app.image
            )),
        };
    };
    let id = app.id();
    let inst = Instance::new(&paths.apps, &id);
    let rootfs = inst.mount(&img.layers).map_err(|e| e.to_string())?;
    let spec = spec::runtime_spec(app, &img.cmd, &img.env, &rootfs).map_err(|e| e.to_string())?;
    let bundle = paths.bundles.join(&id);
    instance::write_bundle(&bundle, &spec).map_err(|e| e.to_string())?;
    // A container left by an earlier run of this instance goes first.
    if rt.root().join(&id).exists() {
        let _ = guarded("delete", || rt.delete(&id, true));
    }
    let (out, err) = output(&inst)?;
    let stdin: OwnedFd = fs::File::open("/dev/null")
        .map_err(|e| e.to_string())?
        .into();
    let stdio = container::Stdio {
        stdin: Some(stdin),
        stdout: Some(out),
        stderr: Some(err),
    };
    let pid = guarded("create", || rt.create(&id, &bundle, stdio, None))?;
    if let Err(e) = guarded("start", || rt.start(&id)) {
        let _ = guarded("delete", || rt.delete(&id, true));
        return Err(e);
    }
    Ok(Started::Running(Pid::from_raw(pid)))
}

/// Removes the container (its cgroup and state) and unmounts the overlay; `purge` also
/// removes what the instance wrote.
pub fn cleanup(rt: &Runtime, paths: &Paths, id: &str, purge: bool) -> Result<(), String> {
    let mut errors = Vec::new();
    if rt.root().join(id).exists() {
        if let Err(e) = guarded("delete", || rt.delete(id, true)) {
            errors.push(e);
        }
    }
    let _ = fs::remove_dir_all(paths.bundles.join(id));
    let inst = Instance::new(&paths.apps, id);
    if purge {
        if let Err(e) = inst.remove() {
            errors.push(e.to_string());
        }
    } else {
        inst.unmount();
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The last `max` bytes of an instance's output, as text.
pub fn output_tail(paths: &Paths, id: &str, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let path: &Path = &paths.apps.join(id).join("output.log");
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
