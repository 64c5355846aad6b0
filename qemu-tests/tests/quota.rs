//! ext4 project quotas on the node, checked on the image: a new disk's FLUXDATA has them,
//! /data is mounted to enforce them, and runtime::quota's own test (runtime/tests/quota.rs,
//! which this host's kernel cannot run) passes on the node: a directory over its 1 MiB
//! limit gets EDQUOT, and an overlay over project directories copies up and stops at the
//! limit. A disk made before the image had quotas gets them at its first boot, said on the
//! console, and stays consistent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use qemu_tests::appnode::{field, powered_off, AppNode};
use qemu_tests::disk;

fn fs_arg(img: &Path) -> String {
    format!("{}?offset={}", img.display(), disk::data_offset())
}

/// `dumpe2fs -h` of the disk's FLUXDATA.
fn dumpe2fs(img: &Path) -> String {
    let out = Command::new("dumpe2fs")
        .arg("-h")
        .arg(fs_arg(img))
        .output()
        .expect("dumpe2fs");
    assert!(
        out.status.success(),
        "dumpe2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `Filesystem features:` of a dumpe2fs header.
fn features(header: &str) -> Vec<&str> {
    header
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem features:"))
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// Whether dumpe2fs says FLUXDATA has the quota and project features and a project
/// quota inode.
fn has_project_quotas(header: &str) -> bool {
    let f = features(header);
    f.contains(&"quota") && f.contains(&"project") && header.contains("Project quota inode:")
}

/// The runtime's quota test binary, built for this host (the node has the same glibc, and
/// the test puts the binary's libraries beside it): `FLUXNODE_QUOTA_TEST_BIN`, or built now
/// with cargo.
fn quota_test_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("FLUXNODE_QUOTA_TEST_BIN") {
        return p.into();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "test",
            "-p",
            "fluxnode-runtime",
            "--test",
            "quota",
            "--no-run",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo");
    assert!(out.status.success(), "cargo test --no-run failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "quota")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the quota test's executable")
}

/// The shared libraries `ldd` says `exe` loads, with the loader.
fn libraries(exe: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(exe).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[test]
fn a_new_disk_has_project_quotas_and_the_runtime_quota_test_passes_on_the_node() {
    let exe = quota_test_binary();
    let n = AppNode::new(
        r#"
$B mkdir -p /data/qt
FLUXNODE_QUOTA_DIR=/data/qt /data/lib/ld-linux-x86-64.so.2 --library-path /data/lib /data/bin/quota-test --test-threads=1 > $R/quota.txt 2>&1
echo "exit=$?" >> $R/quota.txt
$F ctl shutdown
"#,
    );
    assert!(
        has_project_quotas(&dumpe2fs(&n.img)),
        "{}",
        dumpe2fs(&n.img)
    );
    let libs = libraries(&exe);
    // Without its debug information: the disk is small.
    let stripped = n.dir.path().join("quota-test");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&exe)
        .status()
        .expect("strip");
    assert!(st.success(), "strip {}", exe.display());
    let mut files: Vec<(&Path, String)> = vec![(stripped.as_path(), "/bin/quota-test".into())];
    for lib in &libs {
        let name = lib.file_name().unwrap().to_string_lossy();
        files.push((lib.as_path(), format!("/lib/{name}")));
    }
    assert!(
        files
            .iter()
            .any(|(_, to)| to == "/lib/ld-linux-x86-64.so.2"),
        "{libs:?}"
    );
    let files: Vec<(&Path, &str)> = files.iter().map(|(p, to)| (*p, to.as_str())).collect();
    disk::put_host_files(&n.img, &["/lib"], &files);
    // debugfs writes files without counting them in the quota; e2fsck recounts, so that the
    // check after the boot judges what the node did.
    let out = Command::new("e2fsck")
        .arg("-fy")
        .arg(fs_arg(&n.img))
        .output()
        .expect("e2fsck");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "e2fsck -fy: {out:?}"
    );
    disk::fsck(&n.img).unwrap_or_else(|e| panic!("e2fsck -fn before: {e}"));

    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let log = vm.serial_log();
    assert!(
        log.contains("storage: project quotas enforced on /data"),
        "{}",
        vm.tail(40)
    );
    assert!(
        !log.contains("turning project quotas on"),
        "a disk that has them is left as it is:\n{}",
        vm.tail(40)
    );
    let out = n.result("quota.txt");
    eprintln!("{out}");
    assert_eq!(field(&out, "exit"), Some(0), "{out}\n{}", vm.tail(60));
    assert!(!out.contains("SKIPPED"), "{out}");
    for test in [
        "a_project_with_a_1_mib_limit_gets_edquot_and_its_usage_reads_back ... ok",
        "an_overlay_over_project_dirs_copies_up_and_stops_at_the_limit ... ok",
        "test result: ok. 4 passed",
    ] {
        assert!(out.contains(test), "{test:?} missing:\n{out}");
    }
    assert!(has_project_quotas(&dumpe2fs(&n.img)));
    disk::fsck(&n.img).unwrap_or_else(|e| panic!("e2fsck -fn after: {e}"));
}

#[test]
fn a_disk_made_before_project_quotas_gets_them_at_its_first_boot() {
    let n = AppNode::new("$F ctl shutdown\n");
    // What the image tool made before: the same filesystem without the two features.
    let out = Command::new("tune2fs")
        .args(["-O", "^project,^quota"])
        .arg(fs_arg(&n.img))
        .output()
        .expect("tune2fs");
    assert!(
        out.status.success(),
        "tune2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = dumpe2fs(&n.img);
    let f = features(&before);
    assert!(!f.contains(&"project") && !f.contains(&"quota"), "{before}");
    disk::fsck(&n.img).unwrap_or_else(|e| panic!("e2fsck -fn before: {e}"));

    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let log = vm.serial_log();
    for line in [
        "storage: turning project quotas on for /dev/vda2",
        "storage: project quotas enabled on /dev/vda2",
        "storage: project quotas enforced on /data",
        "/data unmounted cleanly",
    ] {
        assert!(log.contains(line), "{line:?} missing:\n{}", vm.tail(60));
    }
    assert!(!log.contains("storage degraded"), "{}", vm.tail(60));
    let after = dumpe2fs(&n.img);
    assert!(has_project_quotas(&after), "{after}");
    disk::fsck(&n.img).unwrap_or_else(|e| panic!("e2fsck -fn after: {e}"));
}
