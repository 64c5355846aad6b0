//! `fluxnode-image flash IMAGE TARGET`: writes a node image to a disk and proves it. The
//! target (a block device, or an existing file as large as the image) is refused when it or
//! one of its partitions is mounted, is swap, is held by another device (LVM, md, dm), or,
//! for a file, backs a loop device that is; or when it is smaller than the image. The image
//! is written with O_DIRECT (the page cache would otherwise hold most of it when the
//! command says it is done), synced, read back with O_DIRECT and its SHA-256 compared.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

const CHUNK: usize = 4 << 20;
const ALIGN: usize = 4096;

fn refuse(target: &Path, why: impl Into<String>) -> Error {
    Error::Input {
        path: target.to_owned(),
        detail: format!("refused: {}", why.into()),
    }
}

/// `major:minor` of a block device and of each of its partitions, with their names.
fn devices_of(dev: u64, name: &str) -> Vec<(String, String)> {
    let (maj, min) = (libc::major(dev), libc::minor(dev));
    let mut out = vec![(format!("{maj}:{min}"), name.to_owned())];
    let sys = PathBuf::from(format!("/sys/dev/block/{maj}:{min}"));
    if let Ok(entries) = fs::read_dir(&sys) {
        for e in entries.flatten() {
            let p = e.path();
            if p.join("partition").exists() {
                if let Ok(d) = fs::read_to_string(p.join("dev")) {
                    out.push((d.trim().to_owned(), e.file_name().to_string_lossy().into()));
                }
            }
        }
    }
    out
}

/// Why the block device `dev` (named `name`) must not be written, if it must not.
fn in_use(dev: u64, name: &str) -> Option<String> {
    let devs = devices_of(dev, name);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if let (Some(mm), Some(at)) = (f.get(2), f.get(4)) {
            if let Some((_, part)) = devs.iter().find(|(d, _)| d == mm) {
                let what = if *at == "/" {
                    "it holds the running system".to_owned()
                } else {
                    "it is in use".to_owned()
                };
                return Some(format!("{what}: {part} is mounted at {at}"));
            }
        }
    }
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    for (_, part) in &devs {
        if swaps
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&format!("/dev/{part}")))
        {
            return Some(format!("{part} is swap in use"));
        }
        let holders = format!("/sys/class/block/{part}/holders");
        if let Some(h) = fs::read_dir(holders).ok().and_then(|mut d| d.next()) {
            let h = h.map(|e| e.file_name().to_string_lossy().into_owned());
            return Some(format!(
                "{part} is held by {} (LVM, RAID or device mapper)",
                h.unwrap_or_default()
            ));
        }
    }
    None
}

/// Why a regular file must not be written: a loop device over it is in use.
fn file_in_use(target: &Path) -> Option<String> {
    let canon = fs::canonicalize(target).ok()?;
    for e in fs::read_dir("/sys/block").ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let backing = fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
        if Path::new(backing.trim()) != canon {
            continue;
        }
        let dev = fs::metadata(format!("/dev/{name}")).ok()?.rdev();
        if let Some(why) = in_use(dev, &name) {
            return Some(format!("it backs /dev/{name}, and {why}"));
        }
    }
    None
}

/// An aligned buffer for O_DIRECT.
struct Aligned {
    raw: Vec<u8>,
    off: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let raw = vec![0u8; len + ALIGN];
        let off = raw.as_ptr().align_offset(ALIGN);
        Aligned { raw, off }
    }

    fn slice(&mut self, len: usize) -> &mut [u8] {
        &mut self.raw[self.off..self.off + len]
    }
}

/// Opens `target` with O_DIRECT, or says why it falls back to the page cache.
fn open_direct(target: &Path, write: bool) -> Result<(File, bool)> {
    let mut o = OpenOptions::new();
    o.read(!write).write(write);
    match o.clone().custom_flags(libc::O_DIRECT).open(target) {
        Ok(f) => Ok((f, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((o.open(target).at(target)?, false)),
        Err(e) => Err(Error::Io {
            path: target.to_owned(),
            source: e,
        }),
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_owned());
    b
}

/// Runs `step` over `len` bytes in aligned chunks of `buf`, showing progress.
fn chunks(
    len: u64,
    buf: &mut Aligned,
    shown: &ProgressBar,
    mut step: impl FnMut(&mut [u8]) -> Result<()>,
) -> Result<()> {
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        step(buf.slice(n))?;
        done += n as u64;
        shown.set_position(done);
    }
    Ok(())
}

/// What a flash did.
#[derive(Debug)]
pub struct Flashed {
    pub bytes: u64,
    pub sha256: String,
    pub secs: f64,
    pub direct: bool,
}

/// Checks that `target` may take `image`: the refusals of this module's header.
pub fn check(image: &Path, target: &Path) -> Result<u64> {
    let len = fs::metadata(image).at(image)?.len();
    if len == 0 || !len.is_multiple_of(ALIGN as u64) {
        return Err(Error::Input {
            path: image.to_owned(),
            detail: format!("{len} bytes: not a whole number of 4 KiB blocks (not a node image)"),
        });
    }
    let meta = fs::metadata(target).at(target)?;
    let ft = meta.file_type();
    let why = if ft.is_block_device() {
        let name = fs::canonicalize(target)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        in_use(meta.rdev(), &name)
    } else if ft.is_file() {
        if fs::canonicalize(target).ok() == fs::canonicalize(image).ok() {
            Some("it is the image itself".to_owned())
        } else {
            file_in_use(target)
        }
    } else {
        Some("not a block device or a file".to_owned())
    };
    if let Some(why) = why {
        return Err(refuse(target, why));
    }
    let size = File::open(target)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .at(target)?;
    if size < len {
        return Err(refuse(
            target,
            format!("it holds {size} bytes, less than the image's {len}"),
        ));
    }
    Ok(len)
}

/// Writes `image` to `target` (checked first), syncs, reads it back and compares.
pub fn flash(image: &Path, target: &Path, progress: bool) -> Result<Flashed> {
    let len = check(image, target)?;
    let t0 = Instant::now();
    let mut src = File::open(image).at(image)?;
    let (mut dst, direct) = open_direct(target, true)?;
    let mut buf = Aligned::new(CHUNK);
    let mut hash = Sha256::new();
    let shown = if progress {
        bar(len, "writing")
    } else {
        ProgressBar::hidden()
    };
    chunks(len, &mut buf, &shown, |b| {
        src.read_exact(b).at(image)?;
        hash.update(&*b);
        dst.write_all(b).at(target)
    })?;
    dst.sync_all().at(target)?;
    drop(dst);
    shown.finish_and_clear();
    let want = hex::encode(hash.finalize());
    // Read back, past the page cache where O_DIRECT works.
    let (mut back, _) = open_direct(target, false)?;
    let shown = if progress {
        bar(len, "verifying")
    } else {
        ProgressBar::hidden()
    };
    let mut hash = Sha256::new();
    chunks(len, &mut buf, &shown, |b| {
        back.read_exact(b).at(target)?;
        hash.update(&*b);
        Ok(())
    })?;
    shown.finish_and_clear();
    let got = hex::encode(hash.finalize());
    if got != want {
        return Err(Error::Input {
            path: target.to_owned(),
            detail: format!("read back sha256 {got}, but the image's is {want}: the disk did not keep what was written"),
        });
    }
    Ok(Flashed {
        bytes: len,
        sha256: want,
        secs: t0.elapsed().as_secs_f64(),
        direct,
    })
}
