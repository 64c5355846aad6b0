//! The image backbone, checked from outside: direct and OVMF boots reach ready, the power
//! button powers the guest off cleanly, cgroup controllers are on, and builds reproduce.

use std::path::PathBuf;
use std::time::Duration;

use qemu_tests::{Artifacts, Vm, VmBuilder};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(120);

fn artifacts() -> Artifacts {
    Artifacts::locate().unwrap_or_else(|e| panic!("{e}"))
}

/// A private copy of the disk image: the boot loader writes to the ESP (boot counting).
fn disk_copy(a: &Artifacts, dir: &tempfile::TempDir) -> PathBuf {
    let copy = dir.path().join("disk.img");
    std::fs::copy(&a.disk, &copy).unwrap();
    copy
}

fn ready(vm: &mut Vm) -> String {
    vm.wait_for("fluxnode: ready in", BOOT)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn direct_kernel_boot_reaches_ready_and_selftest_powers_off() {
    let a = artifacts();
    let mut vm = VmBuilder::from_artifacts(&a, None)
        .cmdline_extra("fluxnode.selftest=poweroff")
        .spawn()
        .unwrap();
    let line = ready(&mut vm);
    let log = vm.serial_log();
    let started = log
        .find("fluxnode: init started at ")
        .expect("init started line");
    assert!(
        started < log.find(&line).unwrap(),
        "init started comes before ready"
    );
    assert!(
        log.contains("fluxnode: root: / is tmpfs"),
        "phase 0 moved / off the initramfs rootfs (containers need pivot_root):\n{}",
        vm.tail(30)
    );
    assert_eq!(
        log.matches("fluxnode: init started at").count(),
        1,
        "the re-exec prints nothing twice"
    );
    assert!(
        log.contains("storage degraded: no partition labelled FLUXDATA"),
        "without a disk the node says plainly that it runs degraded:\n{}",
        vm.tail(30)
    );
    assert!(
        log.contains("update: this node trusts the development release key"),
        "a test build says that it trusts the development key:\n{}",
        vm.tail(30)
    );
    vm.wait_for("fluxnode: powering off", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let status = vm
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "qemu: {status}\n{}", vm.tail(20));
    assert!(!vm.serial_log().contains("Kernel panic"), "{}", vm.tail(30));
}

/// The release keys file inside a built initramfs (zstd, then GNU cpio).
fn keys_in_initramfs(initramfs: &std::path::Path) -> String {
    let sh = format!(
        "zstd -dc {} | cpio -i --quiet --to-stdout etc/fluxnode/release-keys",
        initramfs.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &sh])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_release_build_trusts_its_release_keys_and_never_the_development_key() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let tool = |args: &[&str]| {
        std::process::Command::new(&a.tool)
            .args(args)
            .output()
            .unwrap()
    };
    let prefix = dir.path().join("release-2027");
    let p = prefix.display().to_string();
    assert!(tool(&["keygen", "--out", &p]).status.success());
    let release_pub = std::fs::read_to_string(prefix.with_extension("pub")).unwrap();
    let out = dir.path().join("initramfs.zst");
    let o = out.display().to_string();
    let init = a.init.display().to_string();
    let rel = format!("{p}.pub");
    let built = tool(&[
        "initramfs",
        "--init",
        &init,
        "--out",
        &o,
        "--release",
        "--release-keys",
        &rel,
    ]);
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert_eq!(keys_in_initramfs(&out), release_pub);
    assert!(!release_pub.contains("development"));

    // The development key is refused by a release build, by name.
    let dev = a.release_key.with_extension("pub").display().to_string();
    let refused = tool(&[
        "initramfs",
        "--init",
        &init,
        "--out",
        &o,
        "--release",
        "--release-keys",
        &rel,
        "--release-keys",
        &dev,
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("holds the development key"), "{err}");
    // A release build with no keys at all is refused too.
    assert!(
        !tool(&["initramfs", "--init", &init, "--out", &o, "--release"])
            .status
            .success()
    );

    // The test image is a development build: it trusts the development key, and its
    // private half is not beside the artifacts.
    assert!(keys_in_initramfs(&a.initrd).contains(" development "));
    assert!(!a.dir.join("release-dev.key").exists());
}

#[test]
fn gpt_disk_image_boots_through_ovmf_to_ready() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let mut vm = VmBuilder::from_artifacts(&a, Some(disk_copy(&a, &dir)))
        .spawn()
        .unwrap();
    ready(&mut vm);
    let log = vm.serial_log();
    assert!(
        log.contains("fluxnode: init started at "),
        "{}",
        vm.tail(30)
    );
}

#[test]
fn power_button_gives_an_orderly_poweroff_not_a_panic() {
    let a = artifacts();
    let mut vm = VmBuilder::from_artifacts(&a, None).spawn().unwrap();
    ready(&mut vm);
    vm.wait_for("power button: /dev/input/", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.qmp()
        .unwrap()
        .execute("system_powerdown", json!({}))
        .unwrap();
    vm.wait_for("fluxnode: powering off", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let shutdown = vm
        .qmp()
        .unwrap()
        .wait_event("SHUTDOWN", Duration::from_secs(60))
        .unwrap();
    assert_eq!(shutdown["data"]["guest"], json!(true), "{shutdown}");
    assert_eq!(
        shutdown["data"]["reason"],
        json!("guest-shutdown"),
        "{shutdown}\n{}",
        vm.tail(20)
    );
    let status = vm
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "qemu: {status}");
    assert!(!vm.serial_log().contains("Kernel panic"), "{}", vm.tail(30));
}

#[test]
fn controllers_line_lists_cpu_io_memory_and_pids() {
    let a = artifacts();
    let mut vm = VmBuilder::from_artifacts(&a, None)
        .cmdline_extra("fluxnode.selftest=poweroff")
        .spawn()
        .unwrap();
    let line = vm
        .wait_for("fluxnode: cgroup controllers:", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let list: Vec<&str> = line
        .split("controllers:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    for c in ["cpu", "io", "memory", "pids"] {
        assert!(list.contains(&c), "{c} missing from {line:?}");
    }
}

#[test]
fn building_the_image_twice_gives_identical_bytes() {
    let a = artifacts();
    let inputs = image::pipeline::ImageInputs {
        kernel: a.kernel.clone(),
        init: a.init.clone(),
        cmdline: image::DEFAULT_CMDLINE.into(),
        version: image::VERSION.into(),
        disk_size: 256 * 1024 * 1024,
        disk_name: image::pipeline::DISK.into(),
        release_keys: Some(
            std::fs::read_to_string(a.release_key.with_extension("pub"))
                .expect("the image's release key (./scripts/build-image.sh)"),
        ),
    };
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = image::pipeline::build_all(&inputs, one.path()).unwrap();
    let second = image::pipeline::build_all(&inputs, two.path()).unwrap();
    for (x, y) in first.iter().zip(&second) {
        assert_eq!(x.sha256, y.sha256, "{} differs between two builds", x.name);
    }
    // And the shipped artifacts are what these inputs give.
    let shipped = image::artifact::sha256_file(&a.disk).unwrap();
    assert_eq!(
        first[3].sha256, shipped,
        "target disk image is not reproducible from its inputs"
    );
}

#[test]
fn hostfwd_reaches_a_guest_port_and_system_reset_reboots() {
    use std::io::Read;
    let a = artifacts();
    let port = qemu_tests::ports::free_ports(1).unwrap()[0];
    let service = "fluxnode.service.api=\"/init selftest listen 16126 hello-from-16126\"";
    let mut vm = VmBuilder::from_artifacts(&a, None)
        .cmdline_extra(service)
        .forward(port, 16126)
        .allow_reboot()
        .spawn()
        .unwrap();
    vm.wait_for("fluxnode: net eth0 10.0.2.15/24", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for("selftest listen: on port 16126", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut got = String::new();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.read_to_string(&mut got).unwrap_or_default();
    assert_eq!(
        got, "hello-from-16126",
        "through hostfwd 127.0.0.1:{port} -> guest :16126"
    );

    vm.qmp()
        .unwrap()
        .execute("system_reset", json!({}))
        .unwrap();
    let deadline = std::time::Instant::now() + BOOT;
    while vm.serial_log().matches("fluxnode: ready in").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second boot after system_reset:\n{}",
            vm.tail(30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
