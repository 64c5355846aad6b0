//! Layers built with the tar crate, as an image builder would write them.

use super::*;
use std::os::unix::fs::FileTypeExt;

const MAX: u64 = 1 << 30;

fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

fn digest(blob: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&SHA256, blob).as_ref())
    )
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut e, raw).unwrap();
    e.finish().unwrap()
}

#[test]
fn plain_gzip_and_zstd_layers_unpack_the_same_files() {
    let raw = layer(|b| {
        file(b, "etc/hostname", b"app\n");
        file(b, "bin/hello", b"#!/bin/sh\necho hi\n");
    });
    for blob in [
        raw.clone(),
        gzip(&raw),
        zstd::encode_all(&raw[..], 3).unwrap(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        unpack(&blob[..], &digest(&blob), dir.path(), MAX).unwrap();
        assert_eq!(fs::read(dir.path().join("etc/hostname")).unwrap(), b"app\n");
        assert!(dir.path().join("bin/hello").exists());
    }
}

#[test]
fn whiteouts_and_opaque_dirs_become_overlayfs_markers() {
    let raw = layer(|b| {
        file(b, "etc/.wh.motd", b"");
        file(b, "var/cache/.wh..wh..opq", b"");
        file(b, "var/cache/new", b"x");
    });
    let dir = tempfile::tempdir().unwrap();
    unpack(&raw[..], &digest(&raw), dir.path(), MAX).unwrap();
    let motd = fs::symlink_metadata(dir.path().join("etc/motd")).unwrap();
    assert!(
        motd.file_type().is_char_device(),
        "whiteout is a 0/0 char device"
    );
    assert!(!dir.path().join("etc/.wh.motd").exists());
    let cache = CString::new(dir.path().join("var/cache").as_os_str().as_bytes()).unwrap();
    let mut value = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            cache.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(
        (n, value[0]),
        (1, b'y'),
        "opaque dir is marked (needs root, as CI runs)"
    );
    assert!(dir.path().join("var/cache/new").exists());
}

#[test]
fn a_digest_mismatch_is_refused_naming_both_digests() {
    let raw = layer(|b| file(b, "a", b"a"));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = unpack(&raw[..], &wrong, tempfile::tempdir().unwrap().path(), MAX).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("layer {wrong}: digest mismatch (got sha256:")),
        "{text}"
    );
    assert!(text.contains(&digest(&raw)), "{text}");
}

fn raw_entry(path: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    // Written byte by byte: the tar crate's builder refuses such names itself.
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn entries_that_escape_the_layer_are_refused() {
    for (blob, what) in [
        (
            raw_entry("../evil", tar::EntryType::Regular, None),
            "dot-dot path",
        ),
        (
            raw_entry("/etc/evil", tar::EntryType::Regular, None),
            "absolute path",
        ),
        (
            raw_entry("x", tar::EntryType::Link, Some("../../etc/shadow")),
            "hard link outside",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&blob[..], &digest(&blob), &dir.path().join("root"), MAX).unwrap_err();
        assert!(matches!(err, UnpackError::Escape { .. }), "{what}: {err}");
    }
    // A symlink to / followed by a file "through" it.
    let blob = layer(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "etc", "/etc").unwrap();
        file(b, "etc/passwd-planted", b"x");
    });
    let dir = tempfile::tempdir().unwrap();
    let err = unpack(&blob[..], &digest(&blob), dir.path(), MAX).unwrap_err();
    assert!(err.to_string().contains("etc/passwd-planted"), "{err}");
    assert!(!Path::new("/etc/passwd-planted").exists());
}

#[test]
fn a_layer_that_unpacks_past_the_limit_is_refused_a_gzip_bomb_too() {
    // 64 MiB of zeros gzip to about 64 KiB: the limit counts what the files would take.
    let raw = layer(|b| file(b, "zeros", &vec![0u8; 64 << 20]));
    let blob = gzip(&raw);
    assert!(blob.len() < 1 << 20);
    let dir = tempfile::tempdir().unwrap();
    let err = unpack(&blob[..], &digest(&blob), dir.path(), 16 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("unpacks to more than 16777216 bytes"),
        "{err}"
    );
    // A flood of empty entries counts as well.
    let raw = layer(|b| {
        for i in 0..100 {
            file(b, &format!("e{i}"), b"");
        }
    });
    let err = unpack(&raw[..], &digest(&raw), dir.path(), 10 * 512).unwrap_err();
    assert!(matches!(err, UnpackError::TooBig { .. }), "{err}");
}

/// Gives at most `.1` bytes a read (a file gives 8 KiB at a time).
struct Chunked<'a>(&'a [u8], usize);

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(self.0.len()).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn the_digest_covers_the_bytes_after_a_compressed_stream_however_the_blob_is_read() {
    // Found by the fuzz target tar_layer: a 20-byte gzip stream followed by 307 more bytes,
    // read 64 bytes at a time. What the decompressor never asked for was never hashed, so
    // the blob's own digest was refused (with 8 KiB reads from a file: any such layer past
    // 8 KiB).
    let raw = layer(|b| file(b, "etc/hostname", b"app\n"));
    let mut blob = gzip(&raw);
    blob.extend_from_slice(&[0u8; 20 << 10]);
    for chunk in [64, 8192, 1 << 20] {
        let dir = tempfile::tempdir().unwrap();
        unpack(Chunked(&blob, chunk), &digest(&blob), dir.path(), MAX)
            .unwrap_or_else(|e| panic!("{chunk}-byte reads: {e}"));
        assert_eq!(fs::read(dir.path().join("etc/hostname")).unwrap(), b"app\n");
    }
}

#[test]
fn a_gzip_layer_of_several_members_unpacks_all_of_them() {
    // Concatenated gzip members are one gzip stream (Go's reader, which containerd and
    // Docker use, reads them all); the archive goes on in the second member.
    let raw = layer(|b| {
        file(b, "a", &[b'a'; 3000]);
        file(b, "b", b"b");
    });
    let mut blob = gzip(&raw[..2048]);
    blob.extend(gzip(&raw[2048..]));
    let dir = tempfile::tempdir().unwrap();
    unpack(Chunked(&blob, 8192), &digest(&blob), dir.path(), MAX).unwrap();
    assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"b");
}
