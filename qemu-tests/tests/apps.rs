//! The in-process OCI runtime, checked on the image (pure cgroup2): containers run from a
//! busybox image built by the test, confined (pid namespace, no mount, device rules,
//! seccomp), limited (OOM kill reported, pids.max, cpu.max) and accounted; restart policies;
//! admission; the desired state restored after a reboot; and the runc-compatible CLI.
//!
//! A test script on /data runs as a service (under busybox's shell, on the node itself,
//! not in a container), drives `fluxnode ctl app ...` and `fluxnode oci ...`, writes what
//! it saw to /data/results and powers off; the test then reads the results from the disk.

use std::time::Duration;

use qemu_tests::appnode::{field, powered_off, AppNode as Node};
use qemu_tests::disk;

const BOOT: Duration = Duration::from_secs(120);

#[test]
fn containers_are_isolated_limited_and_accounted() {
    let n = Node::new(
        r#"
run hello --cpu 0.25 --ram 64M --restart no -- /bin/sh -c 'echo hello from a container; ps; grep SigBlk /proc/self/status'
settle hello
run term --cpu 0.1 --ram 32M --restart always -- /bin/sh -c 'trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 1; done'
$B sleep 3
$F ctl app stop term > $R/term.stop 2>&1
gone term
run confine --cpu 0.25 --ram 64M --restart no -- /bin/sh -c 'mount -t tmpfs none /mnt; echo mount=$?; mknod /dev/lc c 10 237; echo mknod=$?; head -c1 /dev/lc; echo loop_control=$?; mknod /dev/null2 c 1 3; head -c1 /dev/null2; echo null=$?; unshare -U true; echo unshare=$?'
settle confine
$B unshare -U true; echo "host_unshare=$?" > $R/host.txt
run hog --cpu 0.25 --ram 32M --restart no -- /bin/sh -c 'x=$(yes | head -c 200000000); echo survived'
settle hog
run forks --cpu 0.25 --ram 64M --pids 16 --restart no -- /bin/sh -c '(i=0; while [ $i -lt 100 ]; do sleep 60 & i=$((i+1)); done) 2>/dev/null; echo bomb_ended=$?; exec sleep 60'
$B sleep 8
$F ctl app stats forks --samples 1 > $R/forks.json
$B cat /sys/fs/cgroup/apps/forks-0/pids.events > $R/forks.events
$F ctl app stop forks > $R/forks.stop 2>&1
gone forks
run burn --cpu 0.2 --ram 32M --restart no -- /bin/sh -c 'yes > /dev/null & sleep 6; kill $!'
settle burn
run big --cpu 0.1 --ram 100G -- /bin/true
run many --cpu 64 -- /bin/true
$F ctl app list > $R/list.json
$F ctl shutdown
"#,
    );
    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let log = vm.serial_log();

    let hello = n.json("hello.json");
    let out = hello["output"].as_str().unwrap();
    assert!(out.contains("hello from a container"), "{out:?}\n{log}");
    assert_eq!(hello["app"]["last_exit"], "exit status 0");
    // ps inside sees only the container: its shell as pid 1 and ps itself.
    let procs: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("PID"))
        .skip(1)
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(procs.len(), 2, "processes seen inside: {procs:?}");
    assert!(procs[0].trim_start().starts_with("1 "), "{procs:?}");
    assert!(!out.contains("/init") && !out.contains("t.sh"), "{out}");
    assert!(
        out.contains("SigBlk:\t0000000000000000"),
        "PID1's blocked signals must not leak into apps: {out}"
    );

    let term = disk::read_file(&n.img, "/apps/term-0/output.log");
    assert!(
        term.starts_with("ready\n") && term.contains("got-term"),
        "app.stop sends SIGTERM first: {term:?}"
    );

    let confine = n.json("confine.json")["output"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        field(&confine, "mount"),
        Some(0),
        "mount must fail: {confine}"
    );
    assert_eq!(field(&confine, "mknod"), Some(0), "{confine}");
    assert_ne!(field(&confine, "loop_control"), Some(0), "{confine}");
    assert_eq!(
        field(&confine, "null"),
        Some(0),
        "/dev/null's numbers open: {confine}"
    );
    assert_ne!(field(&confine, "unshare"), Some(0), "seccomp: {confine}");
    assert!(confine.contains("Operation not permitted"), "{confine}");
    assert_eq!(
        field(&n.result("host.txt"), "host_unshare"),
        Some(0),
        "the same unshare works outside the container"
    );

    let hog = n.json("hog.json");
    assert_eq!(hog["app"]["last_exit"], "oom", "{hog}");
    assert!(!hog["output"].as_str().unwrap().contains("survived"));
    assert!(log.contains("apps: hog-0 exited (oom)"), "{log}");

    let forks = n.json("forks.json");
    assert_eq!(forks["app"]["state"], "running", "{forks}");
    let pids = forks["samples"][0]["pids_current"].as_u64().unwrap();
    assert!(
        (10..=16).contains(&pids),
        "pids.max 16, {pids} now: {forks}"
    );
    assert_ne!(
        field(forks["output"].as_str().unwrap(), "bomb_ended"),
        Some(0)
    );
    let events = n.result("forks.events");
    let max_hits: u64 = events.trim().strip_prefix("max ").unwrap().parse().unwrap();
    assert!(max_hits > 0, "pids.events: {events}");
    assert!(log.contains("apps: forks stopped"), "{log}");

    let burn = n.json("burn.json");
    let s = &burn["samples"][0];
    assert!(s["nr_throttled"].as_u64().unwrap() > 0, "{burn}");
    let ran_ms = burn["app"]["last_run_ms"].as_f64().unwrap();
    let used_ms = s["cpu_usage_usec"].as_f64().unwrap() / 1000.0;
    let share = used_ms / ran_ms;
    eprintln!(
        "burn: {used_ms:.0} ms of cpu in {ran_ms:.0} ms under cpu.max 20% ({share:.3}), throttled {} times",
        s["nr_throttled"]
    );
    assert!(
        (0.05..=0.3).contains(&share),
        "cpu.max 20%: used {used_ms} ms in {ran_ms} ms ({share:.2})"
    );

    let big = n.result("big.run");
    assert!(big.contains("exit=1"), "{big}");
    assert!(
        big.contains("app big: ram does not fit: it needs 102400 MiB"),
        "{big}"
    );
    let many = n.result("many.run");
    assert!(
        many.contains("cpu does not fit") && many.contains("64.000 cores"),
        "{many}"
    );
    let list = n.json("list.json");
    let names: Vec<&str> = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["hello", "confine", "hog", "burn"],
        "refused apps are not kept"
    );
    assert_eq!(list["capacity_source"], "hardware (no benchmark report)");
}

#[test]
fn restart_policies_hold_and_apps_come_back_after_a_reboot() {
    let n = Node::new(
        r#"
if [ ! -f $R/boot1 ]; then
  : > $R/boot1
  run once --cpu 0.2 --ram 32M --restart no -- /bin/sh -c 'exit 3'
  run flap --cpu 0.2 --ram 32M --restart on-failure -- /bin/sh -c 'exit 3'
  run fine --cpu 0.2 --ram 32M --restart on-failure -- /bin/sh -c 'exit 0'
  run again --cpu 0.2 --ram 32M --restart always -- /bin/sh -c 'sleep 1'
  run svc --cpu 0.2 --ram 32M --restart always -- /bin/sh -c 'cat /mark 2>/dev/null && echo found-mark; echo mark > /mark; echo up; sleep 1000'
  $B sleep 12
  for a in once flap fine again svc; do $F ctl app stats $a --samples 1 > $R/$a.json 2>&1; done
  $F ctl restart chain
  $B sleep 2
  $F ctl app stats svc --samples 1 > $R/svc-after-chain.json
  $F ctl reboot
else
  for i in $($B seq 1 60); do
    $F ctl app stats svc > $R/svc-boot2.json
    $B grep -q '"state": "running"' $R/svc-boot2.json && break
    $B sleep 1
  done
  $B sleep 1
  $F ctl app stats svc > $R/svc-boot2.json
  $F ctl app stop svc --purge > $R/stop.txt 2>&1; echo "exit=$?" >> $R/stop.txt
  # Its sleep is pid 1 of its namespace and ignores SIGTERM: SIGKILL comes after 10 s.
  gone svc
  $F ctl app list > $R/list-after-stop.json
  $B ls /data/apps > $R/apps-dir.txt
  $F ctl shutdown
fi
"#,
    );
    let chain = "fluxnode.service.chain=\"/data/bin/busybox sleep 1000\"";
    let mut vm = n
        .boot(chain)
        .allow_reboot()
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    vm.wait_for("fluxnode: rebooting", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    powered_off(&mut vm);

    let once = n.json("once.json");
    assert_eq!(
        (
            &once["app"]["state"],
            &once["app"]["restarts"],
            &once["app"]["last_exit"]
        ),
        (&"exited".into(), &0.into(), &"exit status 3".into())
    );
    let flap = n.json("flap.json");
    assert!(flap["app"]["restarts"].as_u64().unwrap() >= 2, "{flap}");
    let fine = n.json("fine.json");
    assert_eq!(
        (&fine["app"]["state"], &fine["app"]["restarts"]),
        (&"exited".into(), &0.into()),
        "on-failure does not restart a success"
    );
    let again = n.json("again.json");
    assert!(again["app"]["restarts"].as_u64().unwrap() >= 2, "{again}");
    let log = vm.serial_log();
    assert!(
        log.contains("apps: flap-0 exited (exit status 3) after"),
        "{log}"
    );

    let svc = n.json("svc.json");
    let after = n.json("svc-after-chain.json");
    assert_eq!(svc["app"]["state"], "running");
    assert_eq!(
        svc["app"]["pid"], after["app"]["pid"],
        "restarting a service leaves the apps alone"
    );
    let boot2 = n.json("svc-boot2.json");
    assert_eq!(
        boot2["app"]["state"], "running",
        "restored after the reboot"
    );
    assert!(
        boot2["output"].as_str().unwrap().contains("found-mark"),
        "the upperdir kept what the app wrote: {boot2}"
    );
    assert!(log.contains("apps: restoring 5 app(s)"), "{log}");
    assert!(n.result("stop.txt").contains("exit=0"));
    let list = n.json("list-after-stop.json");
    assert!(
        list["apps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "svc"),
        "{list}"
    );
    assert!(!n.result("apps-dir.txt").contains("svc-0"), "purged");
}

#[test]
fn the_runc_cli_lifecycle_gives_oci_state_json() {
    let n = Node::new(
        r#"
$F unpack --store /data/images $S > $R/unpack.txt 2>&1
for b in b b2; do $B mkdir -p /data/$b/rootfs; $B cp -a /data/images/layers/*/. /data/$b/rootfs/; done
cd /data/b && $F oci spec -- /bin/sleep 1000; echo "spec=$?" >> $R/oci.txt
cd /data/b2 && $F oci spec -- /bin/sh -c 'exit 7'
cd /
O="$F oci --root /run/t"
$O create --bundle /data/b c1; echo "create=$?" >> $R/oci.txt
$O state c1 > $R/created.json
$O start c1; echo "start=$?" >> $R/oci.txt
$O state c1 > $R/running.json
$O list --format json > $R/list.json
$O kill c1 KILL; echo "kill=$?" >> $R/oci.txt
$B sleep 2
$O state c1 > $R/stopped.json
$O delete c1; echo "delete=$?" >> $R/oci.txt
$O state c1 2> $R/gone.txt; echo "state_gone=$?" >> $R/oci.txt
$O start nosuch 2>> $R/gone.txt; echo "start_nosuch=$?" >> $R/oci.txt
$O run --bundle /data/b2 c2; echo "run=$?" >> $R/oci.txt
$B ls /sys/fs/cgroup > $R/cgroups.txt
# Hooks during create: one exits without reading the state on its stdin, one keeps it; and
# a relative cgroupsPath.
$B mkdir -p /data/b3/rootfs; $B cp -a /data/images/layers/*/. /data/b3/rootfs/
cd /data/b3 && $F oci spec -- /bin/sleep 1000
$B sed -i '1s|^{|{"hooks":{"createRuntime":[{"path":"/data/bin/busybox","args":["true"]},{"path":"/data/bin/busybox","args":["sh","-c","cat > /data/results/hook.json"]}]},|' config.json
$B sed -i 's|"linux": {|"linux": {"cgroupsPath": "tenant/c3",|' config.json
cd /
ok=0; for i in $($B seq 1 20); do $O create --bundle /data/b3 h$i && ok=$((ok+1)); $O delete --force h$i; done
echo "hook_creates=$ok" >> $R/oci.txt
$O create --bundle /data/b3 c3; echo "create_rel=$?" >> $R/oci.txt
$B test -d /sys/fs/cgroup/oci/tenant/c3; echo "rel_cgroup=$?" >> $R/oci.txt
$O delete --force c3
$B cp /data/b3/config.json $R/b3.json
$F ctl shutdown
"#,
    );
    let mut vm = n.boot("").spawn().unwrap();
    vm.wait_for("fluxnode: powering off", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    powered_off(&mut vm);
    let steps = n.result("oci.txt");
    for (k, v) in [
        ("spec", 0),
        ("create", 0),
        ("start", 0),
        ("kill", 0),
        ("delete", 0),
        ("state_gone", 1),
        ("start_nosuch", 1),
        ("run", 7),
        ("hook_creates", 20),
        ("create_rel", 0),
        ("rel_cgroup", 0),
    ] {
        assert_eq!(field(&steps, k), Some(v), "{k} in {steps}\n{}", vm.tail(40));
    }
    let created = n.json("created.json");
    assert_eq!(
        created["ociVersion"].as_str().unwrap().split('.').next(),
        Some("1")
    );
    assert_eq!(
        (&created["id"], &created["status"], &created["bundle"]),
        (&"c1".into(), &"created".into(), &"/data/b".into())
    );
    let pid = created["pid"].as_i64().unwrap();
    assert!(pid > 1, "{created}");
    let running = n.json("running.json");
    assert_eq!(
        (&running["status"], running["pid"].as_i64()),
        (&"running".into(), Some(pid))
    );
    let list = n.json("list.json");
    assert_eq!(list[0]["id"], "c1");
    let stopped = n.json("stopped.json");
    assert_eq!(
        (&stopped["status"], &stopped["pid"]),
        (&"stopped".into(), &0.into())
    );
    assert!(n.result("gone.txt").contains("container c1 does not exist"));
    let cgroups = n.result("cgroups.txt");
    assert!(!cgroups.contains(":youki:"), "{cgroups}");
    // Hooks see the user's bundle, whose config stays as the user wrote it.
    let hook = n.json("hook.json");
    assert_eq!(hook["bundle"], "/data/b3", "{hook}");
    let b3 = n.json("b3.json");
    assert_eq!(b3["linux"]["cgroupsPath"], "tenant/c3");
}
