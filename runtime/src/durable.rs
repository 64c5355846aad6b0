//! Durable writes for every file the node keeps under /data: a power cut at any instant
//! leaves a file's old content or its new content, never an empty or partial file.
//!
//! [`write`] replaces a file: a temporary file in the same directory gets its mode, then
//! the bytes, then an fsync; a rename puts it in place and an fsync of the directory makes
//! the rename itself durable. [`create_new`] makes a file that must never replace an
//! existing one (keys, the API token) the same way, with a hard link instead of the
//! rename. [`sync_fs`] flushes a whole filesystem, for trees of files (an unpacked image
//! layer) that are renamed into place as one directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A durable write that failed, naming the file and the step.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {step}: {source}")]
pub struct DurableError {
    pub path: String,
    pub step: &'static str,
    #[source]
    pub source: io::Error,
}

impl DurableError {
    /// True when [`create_new`] found the file already there.
    pub fn already_exists(&self) -> bool {
        self.source.kind() == io::ErrorKind::AlreadyExists
    }
}

/// The steps of a write, in order; tests stop after one to simulate a crash there (the
/// node itself never stops early).
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Written,
    Synced,
}

fn err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> DurableError + 'a {
    move |source| DurableError {
        path: path.display().to_string(),
        step,
        source,
    }
}

/// `.<name>.<pid>-<n>.tmp` beside `path`: no other writer running now uses it.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, so the names created or renamed in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), DurableError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err(dir, "fsync directory"))
}

/// Flushes the whole filesystem that holds `path` (syncfs(2)): every file written there
/// so far is on the disk when it returns.
pub fn sync_fs(path: &Path) -> Result<(), DurableError> {
    let f = File::open(path).map_err(err(path, "open for syncfs"))?;
    nix::unistd::syncfs(f.as_raw_fd())
        .map_err(|e| io::Error::from_raw_os_error(e as i32))
        .map_err(err(path, "syncfs"))
}

/// Writes a whole temporary file `tmp` beside `path` with `mode`, up to `stop` (tests).
fn stage(
    path: &Path,
    tmp: PathBuf,
    bytes: &[u8],
    mode: u32,
    stop: Option<Step>,
) -> Result<PathBuf, DurableError> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(err(dir, "create directory"))?;
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
    };
    let mut f = match open() {
        // Left by a process of an earlier boot that had this pid: never in use now.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp).map_err(err(&tmp, "remove stale temporary"))?;
            open()
        }
        other => other,
    }
    .map_err(err(&tmp, "create temporary"))?;
    let result = (|| {
        // The mode is set before any data lands (the umask may have narrowed it).
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(err(&tmp, "set mode"))?;
        f.write_all(bytes).map_err(err(&tmp, "write"))?;
        if stop == Some(Step::Written) {
            return Ok(());
        }
        f.sync_all().map_err(err(&tmp, "fsync"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| tmp)
}

fn write_until(
    path: &Path,
    tmp: PathBuf,
    bytes: &[u8],
    mode: u32,
    stop: Option<Step>,
) -> Result<(), DurableError> {
    let tmp = stage(path, tmp, bytes, mode, stop)?;
    if stop.is_some() {
        return Ok(());
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err(path, "rename into place")(e));
    }
    sync_dir(parent(path))
}

/// Replaces `path` with `bytes` (file mode `mode`), durably: after a power cut at any
/// instant the file holds its old content or the new, whole.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DurableError> {
    write_until(path, temp_path(path), bytes, mode, None)
}

/// Creates `path` with `bytes` (mode `mode`), durably, only when there is no file there:
/// an existing file is never replaced, even one that appears while this runs (then the
/// error says so: [`DurableError::already_exists`]).
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DurableError> {
    let tmp = stage(path, temp_path(path), bytes, mode, None)?;
    let linked = fs::hard_link(&tmp, path).map_err(err(path, "link into place"));
    let removed = fs::remove_file(&tmp).map_err(err(&tmp, "remove temporary"));
    linked?;
    removed?;
    sync_dir(parent(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_replaces_the_file_whole_with_its_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        write(&p, b"old", 0o644).unwrap();
        write(&p, b"new content", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new content");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(names(&dir.path().join("sub")), ["state.json"]);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_content_never_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("genesis.json");
        write(&p, b"the old genesis", 0o644).unwrap();
        for stop in [Step::Written, Step::Synced] {
            write_until(
                &p,
                temp_path(&p),
                b"the new genesis, longer",
                0o644,
                Some(stop),
            )
            .unwrap();
            assert_eq!(fs::read(&p).unwrap(), b"the old genesis", "{stop:?}");
        }
        // The next write after such a crash lands whole.
        write(&p, b"the new genesis, longer", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"the new genesis, longer");
    }

    #[test]
    fn a_crash_before_the_first_rename_leaves_no_file_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("api.token");
        write_until(&p, temp_path(&p), b"secret", 0o600, Some(Step::Synced)).unwrap();
        assert!(!p.exists(), "a file before the rename");
        // Only the hidden temporary is there, which no reader opens by name.
        assert!(names(dir.path()).iter().all(|n| n.ends_with(".tmp")));
    }

    #[test]
    fn create_new_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.key");
        create_new(&p, b"first", 0o600).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let e = create_new(&p, b"second", 0o600).unwrap_err();
        assert!(e.already_exists(), "{e}");
        assert!(e.to_string().contains("node.key"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["node.key"]);
    }

    #[test]
    fn a_stale_temporary_of_an_earlier_boot_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("desired.json");
        // What a process with the same pid left in an earlier boot, cut mid-write.
        let stale = temp_path(&p);
        fs::write(&stale, b"half of an old list").unwrap();
        write_until(&p, stale, b"[]", 0o644, None).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"[]");
        assert_eq!(names(dir.path()), ["desired.json"]);
    }

    #[test]
    fn errors_name_the_file_and_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"x").unwrap();
        let e = write(&blocker.join("inside.json"), b"{}", 0o644).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("file"), "{text}");
        assert!(text.contains("create directory"), "{text}");
    }

    #[test]
    fn sync_fs_and_sync_dir_work_on_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        sync_fs(dir.path()).unwrap();
        sync_dir(dir.path()).unwrap();
        assert!(sync_dir(&dir.path().join("missing")).is_err());
    }
}
