//! PID1 running a node unattended, checked from outside: the data partition grows once,
//! survives reboots and power cuts, bad config is named and skipped, services restart with
//! backoff, orphans are reaped, the watchdog resets a hung node, and poweroff leaves the
//! filesystem clean.

use std::path::PathBuf;
use std::time::Duration;

use qemu_tests::{disk, Artifacts, Vm, VmBuilder};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(120);
const GIB: u64 = 1 << 30;

/// A node disk of its own: a private copy of the built image, optionally grown.
struct Node {
    a: Artifacts,
    img: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    fn new(size: Option<u64>) -> Self {
        let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let img = disk::copy_image(&a, dir.path(), size);
        Node { a, img, _dir: dir }
    }

    /// A direct boot of the built kernel and initramfs with this disk attached; the boot
    /// benchmark is off, so it does not load the tests that are not about it.
    fn boot(&self, cmdline: &str) -> VmBuilder {
        self.boot_with_bench(&format!("fluxnode.bench.enabled=false {cmdline}"))
    }

    fn boot_with_bench(&self, cmdline: &str) -> VmBuilder {
        VmBuilder::from_artifacts(&self.a, None)
            .data_disk(&self.img)
            .cmdline_extra(cmdline)
    }
}

fn expect(vm: &mut Vm, needle: &str) -> String {
    vm.wait_for(needle, BOOT).unwrap_or_else(|e| panic!("{e}"))
}

fn powered_off(vm: &mut Vm) {
    let status = vm
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "qemu {status}\n{}", vm.tail(30));
}

/// The MiB figure of `storage: /data on /dev/vda2, <N> MiB, ...`.
fn data_mib(line: &str) -> u64 {
    let after = line
        .split(", ")
        .nth(1)
        .unwrap_or_else(|| panic!("no size in {line:?}"));
    after
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every `selftest status: {...}` line so far, parsed.
fn statuses(vm: &Vm) -> Vec<Value> {
    vm.serial_log()
        .lines()
        .filter_map(|l| l.split_once("selftest status: ").map(|(_, j)| j.to_owned()))
        .filter_map(|j| serde_json::from_str(&j).ok())
        .collect()
}

fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or(&Value::Null)
}

#[test]
fn grown_disk_gets_bigger_data_once() {
    let n = Node::new(Some(2 * GIB));
    let mut vm = n.boot("fluxnode.selftest=poweroff").spawn().unwrap();
    let grew = expect(&mut vm, "fluxnode: storage: grew FLUXDATA");
    let first = data_mib(&expect(&mut vm, "fluxnode: storage: /data on"));
    assert!((1700..=2048).contains(&first), "{first} MiB after {grew:?}");
    powered_off(&mut vm);

    let mut vm = n.boot("fluxnode.selftest=poweroff").spawn().unwrap();
    let second = data_mib(&expect(&mut vm, "fluxnode: storage: /data on"));
    powered_off(&mut vm);
    assert_eq!(first, second);
    assert!(
        !vm.serial_log().contains("grew FLUXDATA"),
        "grew again:\n{}",
        vm.tail(30)
    );
}

#[test]
fn a_file_written_to_data_survives_a_reboot_through_the_control_socket() {
    let n = Node::new(None);
    let service = "fluxnode.service.marker=\"/init selftest reboot-after-write /data/marker hello-from-boot-1\"";
    let mut vm = n.boot(service).allow_reboot().spawn().unwrap();
    expect(&mut vm, "control: reboot requested");
    expect(&mut vm, "fluxnode: rebooting");
    expect(&mut vm, "fluxnode: /data unmounted cleanly");
    let found = expect(&mut vm, "selftest: marker found:");
    assert!(found.ends_with("hello-from-boot-1"), "{found}");
    let starts = vm.serial_log().matches("fluxnode: init started at").count();
    assert_eq!(starts, 2, "exactly one reboot");
}

#[test]
fn a_flapping_service_is_restarted_with_growing_delays_and_pid1_stays_responsive() {
    let n = Node::new(None);
    let services = "fluxnode.service.flap=\"/init selftest flap\" fluxnode.service.watch=\"/init selftest status-every 1\"";
    let mut vm = n.boot(services).spawn().unwrap();
    for (i, delay) in [(1, 1), (2, 2), (3, 4), (4, 8)] {
        expect(&mut vm, &format!("restart {i} in {delay} s"));
    }
    let four = |s: &Value| service(s, "flap")["restarts"].as_u64() >= Some(4);
    wait_until(&vm, "status showing 4 restarts", |v| {
        statuses(v).last().is_some_and(four)
    });
    let all = statuses(&vm);
    assert!(
        all.len() >= 10,
        "PID1 answered only {} status requests during ~20 s of flapping",
        all.len()
    );
    let restarts: Vec<u64> = all
        .iter()
        .map(|s| service(s, "flap")["restarts"].as_u64().unwrap())
        .collect();
    assert!(restarts.windows(2).all(|w| w[0] <= w[1]), "{restarts:?}");
    assert_eq!(
        service(all.last().unwrap(), "flap")["last_exit"],
        json!("exit status 1")
    );
    assert!(
        vm.serial_log()
            .contains("service flap exited (exit status 1) after 1."),
        "{}",
        vm.tail(20)
    );
}

#[test]
fn an_orphan_storm_leaves_no_zombies() {
    let n = Node::new(None);
    let services = "fluxnode.service.storm=\"/init selftest orphans 1000\" fluxnode.service.watch=\"/init selftest status-every 2\"";
    let mut vm = n.boot(services).spawn().unwrap();
    expect(&mut vm, "selftest orphans: 1000 orphans left for PID1");
    wait_until(&vm, "status with 1000 orphans reaped and 0 zombies", |v| {
        statuses(v)
            .iter()
            .any(|s| s["orphans_reaped"].as_u64() >= Some(1000) && s["zombies"] == 0)
    });
}

#[test]
fn the_watchdog_resets_a_node_whose_loop_hangs() {
    let n = Node::new(None);
    let mut vm = n
        .boot("fluxnode.selftest=hang fluxnode.watchdog.timeout=4")
        .spawn()
        .unwrap();
    vm.qmp().unwrap();
    expect(&mut vm, "watchdog: /dev/watchdog armed, timeout 4 s");
    expect(&mut vm, "selftest=hang: no longer petting the watchdog");
    let ev = vm
        .qmp()
        .unwrap()
        .wait_event("WATCHDOG", Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", vm.tail(20)));
    assert_eq!(ev["data"]["action"], json!("reset"), "{ev}");
}

#[test]
fn a_power_cut_mid_write_is_followed_by_e2fsck_and_a_ready_node() {
    let n = Node::new(None);
    let mut vm = n
        .boot("fluxnode.service.writer=\"/init selftest write /data/writes.txt\"")
        .spawn()
        .unwrap();
    expect(&mut vm, "selftest write: 200 lines");
    let _ = vm.qmp().unwrap().execute("quit", json!({}));
    let _ = vm.wait_exit(Duration::from_secs(30));
    drop(vm);

    let mut vm = n.boot("fluxnode.selftest=poweroff").spawn().unwrap();
    expect(&mut vm, "e2fsck /dev/vda2: not cleanly unmounted, checking");
    expect(&mut vm, "e2fsck /dev/vda2: done");
    expect(&mut vm, "fluxnode: storage: /data on /dev/vda2");
    expect(&mut vm, "fluxnode: ready in");
    powered_off(&mut vm);
    disk::fsck(&n.img).unwrap_or_else(|report| panic!("not consistent after recovery:\n{report}"));
    assert!(disk::read_file(&n.img, "writes.txt").starts_with("line 0\nline 1\n"));
}

#[test]
fn a_bad_config_value_is_named_and_everything_else_applies() {
    let n = Node::new(None);
    let toml = "[node]\nhostname = \"cfgtest\"\n\n[bench]\nquick = \"yes\"\n";
    disk::put_file(&n.img, &["etc"], "etc/fluxnode.toml", toml);
    let mut vm = n.boot("fluxnode.selftest=poweroff").spawn().unwrap();
    expect(
        &mut vm,
        r#"config /data/etc/fluxnode.toml: [bench] quick: expected a boolean, found "yes" (skipped)"#,
    );
    expect(&mut vm, "fluxnode: hostname cfgtest");
    expect(&mut vm, "fluxnode: ready in");
    powered_off(&mut vm);
}

#[test]
fn after_powerdown_the_data_partition_is_clean() {
    let n = Node::new(None);
    let mut vm = VmBuilder::from_artifacts(&n.a, Some(n.img.clone()))
        .spawn()
        .unwrap();
    expect(&mut vm, "fluxnode: storage: /data on");
    expect(&mut vm, "fluxnode: ready in");
    vm.qmp()
        .unwrap()
        .execute("system_powerdown", json!({}))
        .unwrap();
    expect(&mut vm, "fluxnode: /data unmounted cleanly");
    powered_off(&mut vm);
    disk::fsck(&n.img).unwrap_or_else(|report| panic!("{report}"));
    assert_eq!(disk::state(&n.img), "clean");
}

#[test]
fn the_dhcp_lease_is_qemus_and_a_guest_service_reaches_a_host_listener() {
    use std::io::Read;
    let n = Node::new(None);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 64];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.len() >= "hello-from-the-guest".len() {
                break;
            }
        }
        text
    });
    let service = format!(
        "fluxnode.service.dial=\"/init selftest dial {}:{port} hello-from-the-guest\"",
        qemu_tests::vm::GUEST_HOST
    );
    let watch = "fluxnode.service.watch=\"/init selftest status-every 1\"";
    let mut vm = n
        .boot(&format!("{service} {watch}"))
        .guestfwd(port)
        .spawn()
        .unwrap();
    let line = expect(&mut vm, "fluxnode: net eth0 ");
    assert!(
        line.contains("net eth0 10.0.2.15/24 gw ") && line.ends_with("(dhcp)"),
        "{line}"
    );
    expect(&mut vm, "selftest dial: sent 20 bytes");
    assert_eq!(received.join().unwrap(), "hello-from-the-guest");
    let lease = json!({"link": "eth0", "address": "10.0.2.15/24"});
    let has_lease = |s: &Value| s["net"].as_array().is_some_and(|n| n.contains(&lease));
    wait_until(&vm, "status showing the lease", |v| {
        statuses(v).iter().any(has_lease)
    });

    // The cable is pulled and plugged back: the lease goes with the link and comes back.
    let set_link = |vm: &mut Vm, up: bool| {
        let args = json!({"name": "nic0", "up": up});
        vm.qmp().unwrap().execute("set_link", args).unwrap();
    };
    set_link(&mut vm, false);
    expect(&mut vm, "fluxnode: net eth0 link down");
    expect(&mut vm, "fluxnode: net eth0 lease 10.0.2.15/24 lost");
    set_link(&mut vm, true);
    expect(&mut vm, "fluxnode: net eth0 link up");
    wait_until(&vm, "a second lease after link up", |v| {
        v.serial_log()
            .matches("fluxnode: net eth0 10.0.2.15/24")
            .count()
            == 2
    });
}

/// Polls the VM's console until `done` holds, for up to a minute.
fn wait_until(vm: &Vm, what: &str, done: impl Fn(&Vm) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done(vm) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {what}:\n{}",
            vm.tail(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_node_benchmarks_itself_at_first_boot_only() {
    // A 2 GiB disk, so the quick benchmark's 128 MiB test file fits after growth.
    let n = Node::new(Some(2 * GIB));
    let mut vm = n
        .boot_with_bench("fluxnode.bench.quick=true")
        .spawn()
        .unwrap();
    expect(&mut vm, "benchmark: no result for this hardware");
    let line = vm
        .wait_for("fluxnode: bench tier=", Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        line.contains("bench tier=none eps="),
        "a small VM is honestly no tier: {line}"
    );
    vm.qmp()
        .unwrap()
        .execute("system_powerdown", json!({}))
        .unwrap();
    powered_off(&mut vm);
    let report = disk::read_file(&n.img, "bench/latest.json");
    assert!(
        report.contains("\"schema\": \"fluxnode-bench/1\""),
        "{report}"
    );

    let latest = "fluxnode.service.latest=\"/init selftest bench-latest\"";
    let mut vm = n
        .boot_with_bench(&format!("fluxnode.bench.quick=true {latest}"))
        .spawn()
        .unwrap();
    expect(
        &mut vm,
        "benchmark: /data/bench/latest.json is for this hardware",
    );
    expect(
        &mut vm,
        "selftest bench.latest: ok=true schema=fluxnode-bench/1 tier=none",
    );
    let again = expect(&mut vm, "fluxnode: bench tier=");
    assert_eq!(
        again.split("fluxnode: ").nth(1),
        line.split("fluxnode: ").nth(1)
    );
    assert!(
        !vm.serial_log().contains("benchmark: no result"),
        "benchmarked again"
    );
}
