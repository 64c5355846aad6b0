//! Unpacking one OCI layer (tar, gzip or zstd) into a directory in overlayfs's format: an OCI
//! whiteout `.wh.NAME` becomes a 0/0 character device NAME, and an opaque marker
//! `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` attribute on its directory. The
//! blob's SHA-256 is checked against its digest while it streams. Entries that would land
//! outside the layer (absolute paths, `..`, a path through a symlink, a hard link to outside)
//! are refused, naming the entry.

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use ring::digest::{Context, SHA256};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer {expected}: digest mismatch (got {got})")]
    Digest { expected: String, got: String },
    #[error("layer {digest}: entry {entry:?} would escape the layer root; refused")]
    Escape { digest: String, entry: String },
    #[error("layer {digest}: unpacks to more than {limit} bytes; refused")]
    TooBig { digest: String, limit: u64 },
    #[error("layer {digest}: {what}: {source}")]
    Io {
        digest: String,
        what: String,
        source: io::Error,
    },
}

/// Hashes everything read through it.
struct Hashing<R> {
    inner: R,
    hash: Context,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A relative, `..`-free path inside the layer, or None.
fn clean(entry: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in entry.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// True when no existing component of `rel` under `root` is a symlink (so writing there
/// stays inside the layer).
fn no_symlink_on_the_way(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        at.push(c);
        if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return false;
        }
    }
    true
}

fn whiteout(target: &Path) -> io::Result<()> {
    let _ = fs::remove_file(target);
    nix::sys::stat::mknod(
        target,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .map_err(io::Error::from)
}

fn opaque(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: valid C strings and a 1-byte value for the duration of the call.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            c"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unpacks the layer blob `blob` (whose digest must be `digest`, "sha256:<hex>") into
/// `dest`; a layer whose files add up to more than `max_bytes` (a decompression bomb) is
/// refused when it passes that.
pub fn unpack(
    blob: impl Read,
    digest: &str,
    dest: &Path,
    max_bytes: u64,
) -> Result<(), UnpackError> {
    let io_err = |what: String| {
        move |source: io::Error| UnpackError::Io {
            digest: digest.to_owned(),
            what,
            source,
        }
    };
    let mut hashing = Hashing {
        inner: blob,
        hash: Context::new(&SHA256),
    };
    {
        let mut buffered = BufReader::new(&mut hashing);
        let head = buffered.fill_buf().map_err(io_err("read".into()))?.to_vec();
        // Concatenated gzip members are one stream (as Go's reader, containerd's, takes them).
        let stream: Box<dyn Read + '_> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::MultiGzDecoder::new(buffered))
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(zstd::stream::read::Decoder::new(buffered).map_err(io_err("zstd".into()))?)
        } else {
            Box::new(buffered)
        };
        fs::create_dir_all(dest).map_err(io_err(format!("mkdir {}", dest.display())))?;
        let mut archive = tar::Archive::new(stream);
        archive.set_preserve_permissions(true);
        archive.set_unpack_xattrs(true);
        let mut total: u64 = 0;
        for entry in archive.entries().map_err(io_err("tar".into()))? {
            let mut entry = entry.map_err(io_err("tar entry".into()))?;
            // Every entry costs at least a block, so a flood of empty files counts too.
            total = total.saturating_add(entry.size().max(512));
            if total > max_bytes {
                return Err(UnpackError::TooBig {
                    digest: digest.to_owned(),
                    limit: max_bytes,
                });
            }
            let raw = entry
                .path()
                .map_err(io_err("tar path".into()))?
                .into_owned();
            let escape = || UnpackError::Escape {
                digest: digest.to_owned(),
                entry: raw.display().to_string(),
            };
            let rel = clean(&raw).ok_or_else(escape)?;
            if !no_symlink_on_the_way(dest, &rel) {
                return Err(escape());
            }
            if let Ok(Some(link)) = entry.link_name() {
                if entry.header().entry_type().is_hard_link() && clean(&link).is_none() {
                    return Err(escape());
                }
            }
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
            if name == OPAQUE {
                opaque(&parent).map_err(io_err(format!("opaque {}", parent.display())))?;
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                fs::create_dir_all(&parent)
                    .map_err(io_err(format!("mkdir {}", parent.display())))?;
                whiteout(&parent.join(hidden)).map_err(io_err(format!("whiteout {hidden}")))?;
            } else {
                entry
                    .unpack_in(dest)
                    .map_err(io_err(format!("unpack {}", rel.display())))?;
            }
        }
    }
    // Read the rest of the blob as it is, so the digest covers all of it: tar stops at its
    // end marker and a decompressor at the end of its stream, before the blob's end. (Not
    // decompressed: nothing after the end marker is unpacked, and a bomb there would only
    // cost time.)
    io::copy(&mut hashing, &mut io::sink()).map_err(io_err("read".into()))?;
    let got = format!("sha256:{}", hex::encode(hashing.hash.finish().as_ref()));
    if got != digest {
        return Err(UnpackError::Digest {
            expected: digest.to_owned(),
            got,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
