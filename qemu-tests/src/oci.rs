//! The test OCI image: Debian's busybox-static in a one-layer image built with
//! `fluxnode-image`'s OCI writer (no registry here), packed as an `oci-archive`, and put
//! on a node disk with busybox itself (the image has no shell of its own) and a test
//! script that a service runs.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::disk;

pub const BUSYBOX: &str = "/bin/busybox";
/// Where the archive lands on the node.
pub const ARCHIVE: &str = "/data/test/img.tar";
/// The kernel command-line word that runs `/data/test/t.sh` as a service.
pub const SCRIPT_SERVICE: &str = "fluxnode.service.t=\"/data/bin/busybox sh /data/test/t.sh\"";

const APPLETS: [&str; 20] = [
    "sh", "echo", "cat", "ls", "mount", "sleep", "ps", "mknod", "head", "yes", "true", "id",
    "hostname", "seq", "unshare", "kill", "wc", "grep", "dd", "tr",
];

/// Builds the busybox image as an oci-archive in `dir`; returns it and its digest.
pub fn busybox_archive(dir: &Path) -> (PathBuf, String) {
    busybox_archive_with(dir, &[])
}

/// The busybox image with `extra` host files added (`(host path, path in the image)`).
pub fn busybox_archive_with(dir: &Path, extra: &[(&Path, &str)]) -> (PathBuf, String) {
    let root = dir.join("rootfs");
    for d in ["bin", "tmp", "mnt", "proc", "dev", "sys"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(BUSYBOX, root.join("bin/busybox")).expect("busybox-static is installed");
    for a in APPLETS {
        symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    for (host, inner) in extra {
        let to = root.join(inner.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(host, &to).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    }
    let layout = dir.join("layout");
    let digest = image::oci::build_layout(&root, &layout, &["/bin/sh".into()], &[], "test")
        .expect("build the OCI layout");
    let archive = dir.join("img.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar the layout");
    (archive, digest)
}

/// Puts busybox, the test image and `script` (run by [`SCRIPT_SERVICE`]) on the node disk.
pub fn prepare(img: &Path, dir: &Path, script: &str) -> String {
    prepare_with(img, dir, script, &[])
}

/// [`prepare`] with `extra` host files in the test image.
pub fn prepare_with(img: &Path, dir: &Path, script: &str, extra: &[(&Path, &str)]) -> String {
    let (archive, digest) = busybox_archive_with(dir, extra);
    let local = dir.join("t.sh");
    fs::write(&local, script).unwrap();
    disk::put_host_files(
        img,
        &["/test", "/bin", "/results"],
        &[
            (Path::new(BUSYBOX), "/bin/busybox"),
            (&archive, "/test/img.tar"),
            (&local, "/test/t.sh"),
        ],
    );
    digest
}
