//! The metal image (`fluxnode-metal.img`, what a server owner flashes) on server-like
//! hardware in QEMU: q35 with OVMF, the image on NVMe, an e1000e NIC, a disk on AHCI and one
//! behind a megasas-gen2 HBA, and the ICH9 TCO watchdog. Each image is prepared the way an
//! owner does it, with `fluxnode-image configure` (no kernel command-line help: the UKI
//! carries its own). The console must name every disk and the NIC with its driver, the NIC
//! must take a DHCP lease, the TCO watchdog must be the one armed, a configured image must
//! come up with exactly its config, and a node whose loop hangs must be reset by the TCO.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qemu_tests::vm::ServerDisks;
use qemu_tests::{Artifacts, Boot, Vm, VmBuilder};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(240);

struct Server {
    a: Artifacts,
    img: PathBuf,
    disks: ServerDisks,
    dir: tempfile::TempDir,
}

/// A private copy of the metal image, configured with `toml`, and two blank extra disks.
fn server(toml: &str) -> Server {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fluxnode-metal.img");
    std::fs::copy(&a.metal_disk, &img).unwrap();
    let blank = |name: &str, mib: u64| {
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(mib << 20)
            .unwrap();
        p
    };
    let disks = ServerDisks {
        sata: blank("sata.img", 96),
        sas: blank("sas.img", 160),
    };
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, toml).unwrap();
    configure(&a, &img, &cfg);
    Server { a, img, disks, dir }
}

impl Server {
    /// The image through OVMF from NVMe, with the network on.
    fn boot(&self) -> Vm {
        VmBuilder::from_artifacts(&self.a, Some(self.img.clone()))
            .server(self.disks.clone())
            .network()
            .timeout(BOOT)
            .spawn()
            .unwrap()
    }
}

fn configure(a: &Artifacts, img: &Path, cfg: &Path) {
    let out = Command::new(&a.tool)
        .arg("configure")
        .arg(img)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fluxnode-image configure: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn expect(vm: &mut Vm, needle: &str) -> String {
    vm.wait_for(needle, BOOT).unwrap_or_else(|e| panic!("{e}"))
}

/// The console line that contains every one of `parts`, waiting for it.
fn line_with(vm: &mut Vm, parts: &[&str]) -> String {
    let start = Instant::now();
    loop {
        if let Some(l) = vm
            .serial_log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return l.to_owned();
        }
        assert!(
            start.elapsed() < BOOT,
            "no console line with {parts:?}; last lines:\n{}",
            vm.tail(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_metal_image_boots_from_nvme_names_its_hardware_takes_a_lease_and_arms_the_tco() {
    let s = server("[bench]\nenabled = false\n");
    let started = Instant::now();
    let mut vm = s.boot();
    line_with(&mut vm, &["disk nvme0n1: nvme, QEMU NVMe Ctrl"]);
    let sata = line_with(&mut vm, &["disk sd", ": ahci,", "96 MiB"]);
    let sas = line_with(&mut vm, &["disk sd", ": megaraid_sas,", "160 MiB"]);
    let nic = line_with(&mut vm, &["nic eth0: e1000e, 52:54:00:"]);
    let lease = line_with(&mut vm, &["net eth0 10.0.2.15/24 gw ", "(dhcp)"]);
    // The watchdog is armed before /data (and its config file) is there: the driver's 30 s.
    let wd = line_with(
        &mut vm,
        &["watchdog: /dev/watchdog armed, timeout 30 s", "(iTCO_wdt)"],
    );
    let ready = expect(&mut vm, "fluxnode: ready in");
    eprintln!(
        "metal boot under {:?}, {:.1} s to ready (OVMF included):\n{sata}\n{sas}\n{nic}\n{lease}\n{wd}\n{ready}",
        qemu_tests::accel::detect(&s.a.kernel, &s.a.initrd),
        started.elapsed().as_secs_f64()
    );
    // Petted: the TCO resets 2 x 30 s after the last pet, and 70 s pass without it firing.
    let fired = vm
        .qmp()
        .unwrap()
        .wait_event("WATCHDOG", Duration::from_secs(70));
    assert!(
        fired.is_err(),
        "the TCO fired while PID1 petted it: {fired:?}"
    );
    assert_eq!(vm.serial_log().matches("fluxnode: ready in").count(), 1);
    let _ = vm.qmp().unwrap().execute("quit", json!({}));
}

#[test]
fn a_metal_image_configured_by_its_owner_boots_with_exactly_that_config() {
    let toml = r#"[node]
hostname = "rack7-node3"

[network]
mode = "static"
address = "10.0.2.15/24"
gateway = "10.0.2.2"

[bench]
enabled = false

[[service]]
name = "hello"
argv = ["/init", "selftest", "write", "/data/hello.txt"]
restart = "never"
"#;
    let s = server(toml);
    let mut vm = s.boot();
    expect(&mut vm, "fluxnode: hostname rack7-node3");
    expect(
        &mut vm,
        "fluxnode: net eth0 10.0.2.15/24 gw 10.0.2.2 (static)",
    );
    expect(&mut vm, "service hello started");
    expect(&mut vm, "selftest write: 200 lines");
    expect(&mut vm, "fluxnode: ready in");
    let log = vm.serial_log();
    assert!(
        !log.contains("(dhcp)"),
        "no DHCP with a static config:\n{log}"
    );
    assert!(
        !log.contains("config /data/etc/fluxnode.toml:"),
        "a finding in a config that configure checked:\n{log}"
    );
    let _ = vm.qmp().unwrap().execute("quit", json!({}));
    let _ = &s.dir;
}

#[test]
fn the_tco_watchdog_resets_a_metal_node_whose_loop_hangs() {
    // The UKI carries its own command line, so the test hook goes through a direct boot of
    // the metal kernel and initramfs on the same server-like machine.
    let s = server("[bench]\nenabled = false\n");
    let mut vm = VmBuilder::new(Boot::Direct {
        kernel: s.a.metal_kernel.clone(),
        initrd: s.a.metal_initrd.clone(),
    })
    .accel(qemu_tests::accel::detect(&s.a.kernel, &s.a.initrd))
    .server(s.disks.clone())
    .data_disk(&s.img)
    .cmdline_extra("fluxnode.selftest=hang fluxnode.watchdog.timeout=4")
    .spawn()
    .unwrap();
    vm.qmp().unwrap();
    line_with(
        &mut vm,
        &["watchdog: /dev/watchdog armed, timeout 4 s", "(iTCO_wdt)"],
    );
    expect(&mut vm, "selftest=hang: no longer petting the watchdog");
    let ev = vm
        .qmp()
        .unwrap()
        .wait_event("WATCHDOG", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", vm.tail(20)));
    assert_eq!(ev["data"]["action"], json!("reset"), "{ev}");
}

#[test]
fn the_metal_image_is_reproducible_and_its_payload_is_under_16_mib() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
    let inputs = image::pipeline::ImageInputs {
        kernel: a.metal_kernel.clone(),
        init: a.init.clone(),
        cmdline: image::METAL_CMDLINE.into(),
        version: image::VERSION.into(),
        disk_size: 256 * 1024 * 1024,
        disk_name: image::pipeline::METAL_DISK.into(),
        release_keys: Some(
            std::fs::read_to_string(a.release_key.with_extension("pub"))
                .expect("the image's release key (./scripts/build-image.sh)"),
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    let built = image::pipeline::build_all(&inputs, dir.path()).unwrap();
    let shipped = image::artifact::sha256_file(&a.metal_disk).unwrap();
    assert_eq!(
        built[3].sha256, shipped,
        "fluxnode-metal.img is not what its inputs give"
    );
    for (name, uki) in [
        ("qemu", a.uki.clone()),
        ("metal", dir.path().join(image::pipeline::UKI)),
    ] {
        let len = std::fs::metadata(&uki).unwrap().len();
        eprintln!("{name} UKI (the ESP's payload besides systemd-boot): {len} bytes");
        assert!(len < 16 << 20, "the {name} UKI is {len} bytes, over 16 MiB");
    }
}
