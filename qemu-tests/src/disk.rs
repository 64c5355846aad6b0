//! Node disks for tests: private copies of the built image at a chosen size, and looking
//! into their FLUXDATA from the host with e2fsprogs (at the partition's byte offset, using
//! libext2fs's `image?offset=N` syntax), with no root, loop device or mount.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Artifacts;

/// Byte offset of FLUXDATA in images built by `fluxnode-image` (its layout is fixed).
pub fn data_offset() -> u64 {
    let spec = image::disk::DiskSpec::new("unused.efi", image::VERSION);
    let [_, data] = spec.layout().expect("the default layout is valid");
    data.first_lba * image::gpt::SECTOR
}

/// A copy of the built disk image in `dir`, grown (sparse) to `size` bytes if larger.
pub fn copy_image(a: &Artifacts, dir: &Path, size: Option<u64>) -> PathBuf {
    let copy = dir.join("node.img");
    fs::copy(&a.disk, &copy).expect("copy the disk image");
    if let Some(size) = size {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .expect("open copy");
        f.set_len(size).expect("grow copy");
    }
    copy
}

fn fs_arg(img: &Path) -> String {
    format!("{}?offset={}", img.display(), data_offset())
}

/// Writes a file into FLUXDATA with debugfs (parent directories must exist or be listed
/// in `mkdirs`).
pub fn put_file(img: &Path, mkdirs: &[&str], inner: &str, contents: &str) {
    let local = img.with_extension("put");
    fs::write(&local, contents).unwrap();
    put_host_files(img, mkdirs, &[(&local, inner)]);
}

/// Copies host files (with their modes) into FLUXDATA with debugfs, in one run.
pub fn put_host_files(img: &Path, mkdirs: &[&str], files: &[(&Path, &str)]) {
    let mut script = String::new();
    for d in mkdirs {
        script.push_str(&format!("mkdir {d}\n"));
    }
    for (local, inner) in files {
        script.push_str(&format!("write {} {inner}\n", local.display()));
    }
    let cmds = img.with_extension("debugfs");
    fs::write(&cmds, script).unwrap();
    let out = Command::new("debugfs")
        .args(["-w", "-f"])
        .arg(&cmds)
        .arg(fs_arg(img))
        .output()
        .expect("debugfs");
    assert!(
        out.status.success(),
        "debugfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a file from FLUXDATA with debugfs.
pub fn read_file(img: &Path, inner: &str) -> String {
    debugfs_cat(&fs_arg(img), inner)
}

/// `debugfs -R "cat INNER" FS`: the file's bytes as text (empty when it is missing).
fn debugfs_cat(fs: &str, inner: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {inner}"))
        .arg(fs)
        .output()
        .expect("debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// FLUXDATA of `img` as a file of its own at `copy` (sparse), after `e2fsck -fy` (the
/// journal replayed, as the node's next boot does it): to read the files a node left
/// after a power cut without touching its own disk. (e2fsck cannot replay a journal
/// through the `?offset=` syntax: it loses the offset when it re-opens the filesystem.)
pub fn replayed_copy(img: &Path, copy: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut src = fs::File::open(img).expect("open the disk image");
    src.seek(SeekFrom::Start(data_offset())).unwrap();
    let mut dst = fs::File::create(copy).expect("create the copy");
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            dst.seek(SeekFrom::Current(n as i64)).unwrap();
        } else {
            dst.write_all(&buf[..n]).unwrap();
        }
        len += n as u64;
    }
    dst.set_len(len).unwrap();
    drop(dst);
    let out = Command::new("e2fsck")
        .arg("-fy")
        .arg(copy)
        .output()
        .expect("e2fsck");
    // 0: clean; 1: errors corrected; 2: corrected, reboot wanted (a mounted root).
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "e2fsck -fy {}: {}{}",
        copy.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads a file from a filesystem image of its own (see [`replayed_copy`]).
pub fn read_fs_file(fs_image: &Path, inner: &str) -> String {
    debugfs_cat(&fs_image.display().to_string(), inner)
}

/// `e2fsck -fn` on FLUXDATA: Ok with its report when clean and consistent.
pub fn fsck(img: &Path) -> Result<String, String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(fs_arg(img))
        .output()
        .expect("e2fsck");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// The `Filesystem state:` line of dumpe2fs, e.g. "clean".
pub fn state(img: &Path) -> String {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(fs_arg(img))
        .output()
        .expect("dumpe2fs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Filesystem state:")
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Every path on the image's ESP, as mtools lists it (`::/EFI/Linux/...`).
pub fn esp_listing(img: &Path) -> Vec<String> {
    let spec = image::disk::DiskSpec::new("unused.efi", image::VERSION);
    let [esp, _] = spec.layout().expect("the default layout is valid");
    let arg = format!("{}@@{}", img.display(), esp.first_lba * image::gpt::SECTOR);
    let out = Command::new("mdir")
        .args(["-/", "-b", "-i", &arg, "::"])
        .output()
        .expect("mdir");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
