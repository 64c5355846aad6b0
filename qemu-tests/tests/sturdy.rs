//! PID1 and the runtime made sturdy, checked on the image: an app that ignores SIGTERM is
//! killed at the grace time and the node still powers off cleanly under a 10 s watchdog;
//! PID1 answers every status request while apps start, stop and purge a gigabyte; an app
//! whose create always fails is retried with backoff, and three unhealthy boots in a row
//! hold the apps until `ctl app resume`; and the seccomp allowlist refuses new user
//! namespaces, io_uring and keyctl inside a container while ordinary work runs.

use std::time::Duration;

use qemu_tests::appnode::{build_probe, field, powered_off, AppNode, PRELUDE};
use qemu_tests::{disk, Vm};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(120);

fn expect(vm: &mut Vm, needle: &str) -> String {
    vm.wait_for(needle, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Cuts the power (QMP quit) and waits for QEMU to end.
fn cut(vm: &mut Vm) {
    let _ = vm.qmp().map(|q| q.execute("quit", json!({})));
    let _ = vm.wait_exit(Duration::from_secs(30));
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_at_the_grace_time_and_poweroff_beats_the_watchdog() {
    let n = AppNode::new(
        r#"
run stubborn --cpu 0.25 --ram 32M --restart always -- /bin/sh -c 'trap "" TERM; echo ready; while true; do sleep 1; done'
$B sleep 4
$F ctl shutdown
"#,
    );
    let mut vm = n
        .boot("fluxnode.watchdog.timeout=10")
        .timeout(Duration::from_secs(300))
        .spawn()
        .unwrap();
    expect(&mut vm, "watchdog: /dev/watchdog armed, timeout 10 s");
    expect(&mut vm, "apps: stubborn-0 running");
    powered_off(&mut vm);
    let log = vm.serial_log();
    for line in [
        "stopping 1 app(s)",
        "apps still running after 10 s: killing their cgroups",
        "/data unmounted cleanly",
        // The kernel's last word: a reset by the watchdog (QEMU runs with -no-reboot)
        // would have ended the VM before it.
        "reboot: Power down",
    ] {
        assert!(log.contains(line), "{line:?} missing:\n{}", vm.tail(40));
    }
    assert_eq!(log.matches("fluxnode: init started at").count(), 1);
    assert_eq!(disk::state(&n.img), "clean");
}

#[test]
fn pid1_answers_every_status_while_apps_start_stop_and_purge_a_gigabyte() {
    let n = AppNode::with(
        r#"
$F selftest status-watch 100 $R/stop > $R/watch.txt 2>&1 &
watcher=$!
run filler --cpu 0.5 --ram 128M --restart no -- /bin/sh -c 'i=0; while [ $i -lt 512 ]; do dd if=/dev/zero of=/f$i bs=1M count=2 2>/dev/null; i=$((i+1)); done; echo filled'
for i in $($B seq 1 400); do
  $F ctl app stats filler --samples 1 > $R/filler.json 2>&1
  $B grep -q '"state": "exited"' $R/filler.json && break
  $B sleep 1
done
for a in a1 a2 a3; do run $a --cpu 0.1 --ram 16M --restart always -- /bin/sh -c 'while true; do sleep 1; done'; done
$B sleep 3
for a in a1 a2 a3; do $F ctl app stop $a; done
$B du -sm /data/apps/filler-0/upper > $R/filled.txt
$F ctl app stop filler --purge > $R/purge.txt 2>&1
for a in filler a1 a2 a3; do gone $a; done
$B test -e /data/apps/filler-0; echo "left=$?" > $R/left.txt
$B touch $R/stop
$B ps > $R/ps.txt
# The watcher's summary, then its exit: wait is asked once it has ended (busybox sh's wait
# on a child still running was seen to never return here).
for i in $($B seq 1 60); do $B grep -q "status-watch: loop" $R/watch.txt && break; $B sleep 1; done
$B sleep 2
wait $watcher
$F ctl shutdown
"#,
        Some(3 << 30),
        &[],
    );
    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(900))
        .spawn()
        .unwrap();
    if let Err(e) = vm.wait_exit(Duration::from_secs(600)) {
        drop(vm);
        panic!(
            "{e}\nwatch: {}\nps: {}",
            n.result("watch.txt"),
            n.result("ps.txt")
        );
    }
    let watch = n.result("watch.txt");
    eprintln!("{watch}");
    // Under TCG a container create (libcontainer in PID1, about 10 ms natively) takes
    // seconds; the slow turns PID1 named:
    for l in vm
        .serial_log()
        .lines()
        .filter(|l| l.contains("loop: a turn took"))
    {
        eprintln!("{l}");
    }
    let summary = watch
        .lines()
        .find(|l| l.contains("selftest status-watch: asked"))
        .unwrap_or_else(|| panic!("no summary in {watch:?}\n{}", vm.tail(40)));
    let words: Vec<&str> = summary.split_whitespace().collect();
    let (asked, answered) = (words[3], words[5]);
    assert!(asked.parse::<u32>().unwrap() >= 50, "{summary}");
    assert_eq!(
        asked, answered,
        "every status request is answered: {summary}"
    );
    assert!(!watch.contains("no answer"), "{watch}");
    let filled = n.result("filled.txt");
    let mib: u64 = filled.split_whitespace().next().unwrap().parse().unwrap();
    assert!(mib >= 1000, "the app wrote {mib} MiB");
    assert_eq!(
        field(&n.result("left.txt"), "left"),
        Some(1),
        "the purge removed it"
    );
    assert!(vm.serial_log().contains("apps: filler stopped and purged"));
}

#[test]
fn a_failing_create_is_retried_and_three_unhealthy_boots_hold_the_apps() {
    let n = AppNode::new(
        r#"
run bad --cpu 0.1 --ram 16M --restart always -- /bin/no-such-program
run good --cpu 0.1 --ram 16M --restart always -- /bin/sh -c 'while true; do sleep 1; done'
"#,
    );
    // The fourth boot's script, put on the disk now: after a power cut the filesystem's
    // journal waits for the node's e2fsck, and debugfs would write under it.
    let script = format!(
        "{PRELUDE}\n$F ctl app list > $R/held.json\n$F ctl status > $R/status.json\n\
         $F ctl app resume > $R/resume.json\n\
         for i in $($B seq 1 60); do $F ctl app list > $R/resumed.json; \
         $B grep -q '\"state\": \"running\"' $R/resumed.json && break; $B sleep 1; done\n\
         $F ctl shutdown\n"
    );
    disk::put_file(&n.img, &[], "/test/t2.sh", &script);
    // Three boots, each cut before its loop ran two minutes: unhealthy.
    for boot in 1..=3 {
        let mut vm = n.boot("").spawn().unwrap();
        vm.wait_for("fluxnode: ready", BOOT)
            .unwrap_or_else(|e| panic!("{e}"));
        if boot == 1 {
            expect(&mut vm, "apps: bad: start 1 again in 1 s");
            expect(&mut vm, "apps: bad: start 2 again in 2 s");
            expect(&mut vm, "apps: good-0 running");
            assert!(!vm.serial_log().contains("held"), "{}", vm.tail(30));
        } else {
            expect(&mut vm, "apps: good-0 running");
        }
        cut(&mut vm);
    }
    // The fourth boot holds them; the operator looks, then resumes.
    let mut vm = n
        .boot_with(
            false,
            "fluxnode.service.t2=\"/data/bin/busybox sh /data/test/t2.sh\"",
        )
        .spawn()
        .unwrap();
    expect(&mut vm, "the last 3 boots never reached a healthy loop");
    powered_off(&mut vm);
    let held = n.json("held.json");
    let states: Vec<&Value> = held["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["state"])
        .collect();
    assert_eq!(states, [&json!("held"), &json!("held")], "{held}");
    let why = n.json("status.json")["apps_held"].clone();
    assert!(why.as_str().unwrap().contains("ctl app resume"), "{why}");
    assert_eq!(n.json("resume.json")["resumed"], json!(["bad", "good"]));
    let resumed = n.json("resumed.json");
    let good = resumed["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "good")
        .unwrap();
    assert_eq!(good["state"], "running", "{resumed}");
    assert!(resumed["held"].is_null(), "{resumed}");
}

#[test]
fn seccomp_refuses_new_user_namespaces_io_uring_and_keyctl_while_ordinary_work_runs() {
    let build = tempfile::tempdir().unwrap();
    let probe = build_probe("seccomp_probe", build.path());
    let n = AppNode::with(
        r#"
run probe --cpu 0.25 --ram 64M --restart no -- /bin/probe
settle probe
run work --cpu 0.25 --ram 64M --restart no -- /bin/sh -c 'busybox seq 1 20000 | busybox sort -rn | busybox head -n 1; echo hello | busybox sha256sum; busybox dd if=/dev/zero bs=1k count=512 2>/dev/null | busybox gzip | busybox gunzip | busybox wc -c; busybox mkdir -p /tmp/t; echo x > /tmp/t/f; busybox tar -C /tmp -cf - t | busybox tar -tf -; echo work-ok'
settle work
$F ctl shutdown
"#,
        None,
        &[(&probe, "/bin/probe")],
    );
    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let p = n.json("probe.json");
    let out = p["output"].as_str().unwrap();
    const EPERM: i64 = 1;
    for (name, want) in [
        ("clone_newuser", EPERM),
        ("clone_newns", EPERM),
        ("unshare_newuser", EPERM),
        ("io_uring_setup", EPERM),
        ("keyctl", EPERM),
        ("clone_plain", 0),
        ("thread", 0),
        ("socket_inet", 0),
        ("getrandom", 0),
    ] {
        assert_eq!(field(out, name), Some(want), "{name} in {out:?}");
    }
    assert_eq!(p["app"]["last_exit"], "exit status 0", "{p}");
    let w = n.json("work.json");
    let out = w["output"].as_str().unwrap();
    for want in [
        "20000",
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        "524288",
        "t/f",
        "work-ok",
    ] {
        assert!(out.contains(want), "{want} missing from {out:?}");
    }
}
