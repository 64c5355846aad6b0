//! `runtime::image::unpack::unpack` on any bytes as a layer blob (plain tar, gzip or zstd,
//! told apart by their magic, as the store's layers are), into a fresh directory each run,
//! with a 1 MiB limit so bombs stop early. It never panics; nothing appears outside that
//! directory, and nothing outside changes its mode, owner or extended attributes (checked
//! on a sibling directory, on their parent, and one level further up); the files it leaves
//! add up to no more than the limit; a wrong digest is always refused, and the right one is
//! never refused as a mismatch, however the blob arrives.
//!
//! The blob's own SHA-256 steers the run, so each input replays the same: bit 0 of its first
//! byte chooses the real digest or a wrong one, its second byte how many bytes each read
//! gives (a file gives 8 KiB at a time; small reads reach what large blobs do).
//!
//! The directories are made in /dev/shm when it is there (tmpfs: no disk writes, and it
//! takes the `trusted.*` attributes of overlayfs markers), else in the temporary directory.
#![no_main]

use std::collections::HashSet;
use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use ring::digest::{digest, SHA256};
use runtime::image::unpack::{unpack, UnpackError};

/// What one layer may unpack to.
const MAX_BYTES: u64 = 1 << 20;

/// A blob that gives at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.chunk.min(self.data.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What must not change on a directory outside the layer.
#[derive(Debug, PartialEq, Eq)]
struct Outside {
    names: Vec<String>,
    mode: u32,
    owner: (u32, u32),
    xattrs: Vec<u8>,
}

fn outside(dir: &Path) -> Outside {
    let meta = fs::symlink_metadata(dir).expect("a directory outside the layer");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read a directory outside the layer")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let path = CString::new(dir.as_os_str().as_bytes()).expect("a path without NUL");
    let mut xattrs = vec![0u8; 4096];
    // SAFETY: a valid C string and a buffer of the given length.
    let n = unsafe { libc::llistxattr(path.as_ptr(), xattrs.as_mut_ptr().cast(), xattrs.len()) };
    xattrs.truncate(usize::try_from(n).unwrap_or(0));
    Outside {
        names,
        mode: meta.permissions().mode(),
        owner: (meta.uid(), meta.gid()),
        xattrs,
    }
}

/// Adds up the sizes of the regular files under `dir` (each inode once: hard links share
/// one), opening every directory up on the way so it can be removed after.
fn unpacked_bytes(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    // Only ever called on a real directory (never through a symlink).
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if meta.is_dir() {
            total += unpacked_bytes(&e.path(), seen);
        } else if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
            total += meta.len();
        }
    }
    total
}

fn base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

fuzz_target!(|data: &[u8]| {
    let sha = digest(&SHA256, data);
    let sha = sha.as_ref();
    let real = sha[0] & 1 == 0;
    let chunk = match sha[1] % 4 {
        0 => 8192,
        1 => 512,
        2 => 64,
        _ => 1 + usize::from(sha[1] >> 4),
    };
    let mut wrong = sha.to_vec();
    wrong[31] ^= 1;
    let digest = format!(
        "sha256:{}",
        hex::encode(if real { sha } else { &wrong[..] })
    );

    // top/{up, parent/{layer, beside}}; the layer is made by unpack.
    let top = tempfile::Builder::new()
        .prefix("fluxnode-fuzz-tar-")
        .tempdir_in(base())
        .expect("a temporary directory");
    let parent = top.path().join("p");
    let layer = parent.join("layer");
    let beside = parent.join("beside");
    let up = top.path().join("up");
    for d in [&beside, &up] {
        fs::create_dir_all(d).expect("make a directory");
    }
    let watched = [top.path(), &parent, &beside, &up];
    let before: Vec<Outside> = watched.iter().map(|d| outside(d)).collect();

    let blob = Chunked { data, chunk };
    let result = unpack(blob, &digest, &layer, MAX_BYTES);

    let mut after: Vec<Outside> = watched.iter().map(|d| outside(d)).collect();
    // The layer itself may or may not have been made.
    after[1].names.retain(|n| n != "layer");
    assert_eq!(
        after, before,
        "unpack changed something outside the layer: {result:?}"
    );
    let bytes = unpacked_bytes(&layer, &mut HashSet::new());
    assert!(
        bytes <= MAX_BYTES,
        "{bytes} bytes unpacked past the limit of {MAX_BYTES}: {result:?}"
    );
    if real {
        assert!(
            !matches!(result, Err(UnpackError::Digest { .. })),
            "the blob's own digest was refused ({chunk}-byte reads): {result:?}"
        );
    } else {
        assert!(
            result.is_err(),
            "a wrong digest was taken ({chunk}-byte reads)"
        );
    }
});
