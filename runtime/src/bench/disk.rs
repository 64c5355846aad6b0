//! Disk: on a test file in the benchmark directory, Flux's dd figure (64 KiB writes, then
//! fdatasync), sequential write with O_DIRECT in 1 MiB blocks at queue depth 32 through
//! io_uring (the DWS figure, as fio measures it), and random 4 KiB read and write IOPS at the
//! same depth. The test file is removed on every path, Ctrl-C included. Throughput is in
//! MB/s (10^6 bytes per second), as dd and fio print it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

const SEQ_BLOCK: usize = 1 << 20;
const DD_BLOCK: usize = 64 << 10;
const RAND_BLOCK: usize = 4096;
const DEPTH: usize = 32;
/// Room left free on the filesystem beyond the test file.
const MARGIN: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk benchmark dir {0}: does not exist")]
    Missing(PathBuf),
    #[error("disk benchmark dir {0}: not a directory")]
    NotDir(PathBuf),
    #[error("disk benchmark dir {0}: read-only or not writable ({1})")]
    ReadOnly(PathBuf, io::Error),
    #[error("disk benchmark dir {dir}: needs {need} MiB free, has {free} MiB")]
    NoSpace { dir: PathBuf, need: u64, free: u64 },
    #[error("disk benchmark {what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        what: what.to_owned(),
        source,
    }
}

/// The disk figures.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskResult {
    /// O_DIRECT sequential write, MB/s; None when the filesystem refuses O_DIRECT.
    pub seq_write_mbs: Option<f64>,
    /// Why there is no O_DIRECT figure, if there is none.
    pub direct_error: Option<String>,
    pub dd_mbs: f64,
    pub rand_read_iops: Option<f64>,
    pub rand_write_iops: Option<f64>,
    /// Size of the filesystem under the directory.
    pub fs_bytes: u64,
}

/// Size and free space of the filesystem holding `dir`.
pub fn fs_space(dir: &Path) -> Result<(u64, u64), DiskError> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| io_err("statvfs")(e.into()))?;
    Ok((
        st.blocks() * st.fragment_size(),
        st.blocks_available() * st.fragment_size(),
    ))
}

static CLEANUP: OnceLock<CString> = OnceLock::new();

extern "C" fn remove_and_exit(sig: libc::c_int) {
    if let Some(path) = CLEANUP.get() {
        // SAFETY: unlink and _exit are async-signal-safe; the path is a valid C string.
        unsafe { libc::unlink(path.as_ptr()) };
    }
    // SAFETY: as above.
    unsafe { libc::_exit(128 + sig) };
}

/// The test file: removed when dropped, and by SIGINT/SIGTERM while it exists.
struct TestFile(PathBuf);

impl TestFile {
    fn new(dir: &Path) -> Self {
        let path = dir.join(format!(".fluxnode-bench-{}", std::process::id()));
        if let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) {
            if CLEANUP.set(c).is_ok() {
                for sig in [libc::SIGINT, libc::SIGTERM] {
                    // SAFETY: installs a handler that only calls async-signal-safe functions.
                    unsafe {
                        libc::signal(sig, remove_and_exit as *const () as libc::sighandler_t)
                    };
                }
            }
        }
        TestFile(path)
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A page-aligned buffer, as O_DIRECT needs.
struct Aligned {
    ptr: *mut u8,
    layout: Layout,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len, 4096).expect("4096 is a valid alignment");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory for a {len}-byte buffer");
        // SAFETY: ptr is valid for len bytes; fill with a non-zero pattern.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8 | 1);
        Aligned { ptr, layout }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout in `new`.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// Keeps DEPTH requests of `block` bytes in flight until `next` has no more offsets or
/// `limit` passes; returns how many completed and the time from the first submission (the
/// ring and buffers are set up before the clock starts, as fio does).
fn ring(
    file: &File,
    block: usize,
    write: bool,
    mut next: impl FnMut() -> Option<u64>,
    limit: Option<Duration>,
) -> io::Result<(u64, Duration)> {
    let mut uring = IoUring::new(DEPTH as u32 * 2)?;
    let bufs: Vec<Aligned> = (0..DEPTH).map(|_| Aligned::new(block)).collect();
    let started = Instant::now();
    let deadline = limit.map(|l| started + l);
    let fd = types::Fd(file.as_raw_fd());
    let mut free: Vec<usize> = (0..DEPTH).collect();
    let (mut inflight, mut done, mut more) = (0usize, 0u64, true);
    loop {
        while more && !free.is_empty() && deadline.is_none_or(|d| Instant::now() < d) {
            let Some(offset) = next() else {
                more = false;
                break;
            };
            let slot = free.pop().expect("checked non-empty");
            let ptr = bufs[slot].ptr;
            let entry = if write {
                opcode::Write::new(fd, ptr, block as u32)
                    .offset(offset)
                    .build()
            } else {
                opcode::Read::new(fd, ptr, block as u32)
                    .offset(offset)
                    .build()
            };
            // SAFETY: the buffer lives (in `bufs`) until its completion is reaped below.
            unsafe { uring.submission().push(&entry.user_data(slot as u64)) }
                .map_err(|_| io::Error::other("submission queue full"))?;
            inflight += 1;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            more = false;
        }
        if inflight == 0 {
            return Ok((done, started.elapsed()));
        }
        uring.submit_and_wait(1)?;
        for cqe in uring.completion() {
            if cqe.result() < 0 {
                return Err(io::Error::from_raw_os_error(-cqe.result()));
            }
            if cqe.result() as usize != block {
                return Err(io::Error::other(format!(
                    "short transfer: {} of {block} bytes",
                    cqe.result()
                )));
            }
            free.push(cqe.user_data() as usize);
            inflight -= 1;
            done += 1;
        }
    }
}

fn dd(path: &Path, bytes: u64) -> Result<f64, DiskError> {
    let started = Instant::now();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err("dd open"))?;
    let block = vec![0x5Au8; DD_BLOCK];
    for _ in 0..bytes / DD_BLOCK as u64 {
        f.write_all(&block).map_err(io_err("dd write"))?;
    }
    f.sync_data().map_err(io_err("dd fdatasync"))?;
    Ok(bytes as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// A small xorshift for random offsets (no need for a crypto RNG here).
fn offsets(span: u64, seed: u64) -> impl FnMut() -> Option<u64> {
    let blocks = (span / RAND_BLOCK as u64).max(1);
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some((x % blocks) * RAND_BLOCK as u64)
    }
}

/// Checks that `dir` exists, is writable and has room for `bytes`; returns the (empty)
/// test file and the filesystem's size.
fn prepare(dir: &Path, bytes: u64) -> Result<(TestFile, u64), DiskError> {
    if !dir.exists() {
        return Err(DiskError::Missing(dir.to_owned()));
    }
    if !dir.is_dir() {
        return Err(DiskError::NotDir(dir.to_owned()));
    }
    let file = TestFile::new(dir);
    if let Err(e) = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file.0)
    {
        return Err(DiskError::ReadOnly(dir.to_owned(), e));
    }
    let (fs_bytes, free) = fs_space(dir)?;
    if free < bytes + MARGIN {
        return Err(DiskError::NoSpace {
            dir: dir.to_owned(),
            need: (bytes + MARGIN) >> 20,
            free: free >> 20,
        });
    }
    Ok((file, fs_bytes))
}

/// Checks before any measuring that `dir` exists, is writable and has room for `bytes`.
pub fn preflight(dir: &Path, bytes: u64) -> Result<(), DiskError> {
    prepare(dir, bytes).map(|_| ())
}

/// Runs all disk measurements in `dir` with a test file of `bytes`.
pub fn run(dir: &Path, bytes: u64, rand_time: Duration) -> Result<DiskResult, DiskError> {
    let (file, fs_bytes) = prepare(dir, bytes)?;
    let dd_mbs = dd(&file.0, bytes)?;
    // The O_DIRECT test starts on a fresh file with its space reserved, as fio lays out its
    // file with fallocate: overwriting the blocks dd just wrote would skip the cost of
    // converting unwritten extents and flatter the figure.
    std::fs::remove_file(&file.0).map_err(io_err("remove dd file"))?;
    let fresh = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file.0)
        .map_err(io_err("create"))?;
    nix::fcntl::fallocate(
        fresh.as_raw_fd(),
        nix::fcntl::FallocateFlags::empty(),
        0,
        bytes as i64,
    )
    .map_err(|e| io_err("fallocate")(e.into()))?;
    drop(fresh);
    // Let the removal and the allocation settle before the clock runs.
    if let Ok(d) = File::open(dir) {
        let _ = nix::unistd::syncfs(d.as_raw_fd());
    }
    let mut result = DiskResult {
        seq_write_mbs: None,
        direct_error: None,
        dd_mbs,
        rand_read_iops: None,
        rand_write_iops: None,
        fs_bytes,
    };
    let direct = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&file.0)
    {
        Ok(f) => f,
        Err(e) => {
            result.direct_error = Some(format!(
                "{}: O_DIRECT refused ({e}); only the dd figure is given",
                dir.display()
            ));
            return Ok(result);
        }
    };
    let mut next = 0u64;
    let seq = move || {
        let at = next;
        next += SEQ_BLOCK as u64;
        (at + SEQ_BLOCK as u64 <= bytes).then_some(at)
    };
    match ring(&direct, SEQ_BLOCK, true, seq, None) {
        Ok((n, took)) => {
            result.seq_write_mbs = Some((n * SEQ_BLOCK as u64) as f64 / 1e6 / took.as_secs_f64())
        }
        Err(e) => {
            result.direct_error = Some(format!(
                "{}: O_DIRECT write failed ({e}); only the dd figure is given",
                dir.display()
            ));
            return Ok(result);
        }
    }
    for write in [false, true] {
        let (n, took) = ring(
            &direct,
            RAND_BLOCK,
            write,
            offsets(bytes, 0x9E37_79B9_7F4A_7C15),
            Some(rand_time),
        )
        .map_err(io_err("random 4k"))?;
        let iops = Some(n as f64 / took.as_secs_f64());
        if write {
            result.rand_write_iops = iops;
        } else {
            result.rand_read_iops = iops;
        }
    }
    drop(direct);
    drop(file);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_dir_is_refused_by_name() {
        let err = run(
            Path::new("/no/such/dir"),
            1 << 20,
            Duration::from_millis(10),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "disk benchmark dir /no/such/dir: does not exist"
        );
    }

    #[test]
    fn a_read_only_dir_is_refused_cleanly() {
        // /proc is read-only for regular files, and exists everywhere this runs.
        let err = run(Path::new("/proc/self"), 1 << 20, Duration::from_millis(10)).unwrap_err();
        assert!(matches!(err, DiskError::ReadOnly(..)), "{err}");
    }

    #[test]
    fn too_little_space_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(dir.path(), 1 << 60, Duration::from_millis(10)).unwrap_err();
        assert!(err.to_string().contains("MiB free"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn all_figures_are_measured_and_the_test_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(dir.path(), 16 << 20, Duration::from_millis(200)).unwrap();
        assert!(r.dd_mbs > 0.0 && r.fs_bytes > 0, "{r:?}");
        if r.direct_error.is_none() {
            assert!(
                r.seq_write_mbs.unwrap() > 0.0
                    && r.rand_read_iops.unwrap() > 0.0
                    && r.rand_write_iops.unwrap() > 0.0,
                "{r:?}"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "test file left behind"
        );
    }
}
