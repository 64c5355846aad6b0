//! App networking on the image, checked from outside: an HTTP app published with
//! `--port 8080:80` answers from this machine through QEMU's hostfwd and logs the client's
//! own address (not the bridge's); a UDP port echoes (asked from the node itself: QEMU's user
//! network carries no UDP replies to a host client); a second app asking for 8080 is
//! refused naming the first; from inside a container the node's RPC port, another app's
//! container and a private address (the guestfwd address) are out of reach, until
//! `allow_private` lists that address; after a reboot the ports answer again.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use qemu_tests::appnode::{build_probe, field, AppNode};
use qemu_tests::{disk, ports, Vm};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(180);

/// The apps, started once; the probe runs at every boot (it is replaced each time).
const SCRIPT: &str = r#"
$F selftest listen 16124 node-rpc &
if [ ! -e $R/started ]; then
  run web --cpu 0.25 --ram 32M --restart always --port 8080:80 --entrypoint /bin/sh -- -c 'busybox mkdir -p /www; echo hello-from-web > /www/index.html; exec busybox httpd -f -v -p 80 -h /www'
  run echo --cpu 0.1 --ram 16M --restart always --port 5353:53/udp -- /bin/udp_echo
  run clash --cpu 0.1 --ram 16M --restart no --port 8080:9000 -- /bin/true
  $B touch $R/started
fi
$B sleep 3
boot=$($B cat $R/boots 2>/dev/null || echo 0); boot=$((boot+1)); echo $boot > $R/boots
# QEMU's guestfwd does not pass the host's close on: a connection that got through ends by
# timeout (143).
run probe --cpu 0.1 --ram 16M --restart no -- /bin/sh -c 'echo probe_boot='$boot'; busybox nc -w 3 10.0.2.15 16124 </dev/null; echo node_rpc=$?; busybox nc -w 3 10.89.0.2 80 </dev/null; echo other_app=$?; busybox timeout 6 busybox nc -w 3 10.0.2.100 GPORT </dev/null; echo guestfwd=$?'
settle probe
$B cp $R/probe.json $R/probe-$boot.json
# Gone before the next boot: QEMU's guestfwd carries one connection per boot, for the
# next boot's probe, which a restored old probe would otherwise take.
$F ctl app stop probe > /dev/null 2>&1; gone probe
/data/bin/udp_ask 10.0.2.15 5353 ping-udp > $R/udp-$boot.txt 2>&1
echo "net-test: ready $boot"
# A service that ended would be started again: this one stays.
exec $B sleep 100000
"#;

fn http_get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(b"GET / HTTP/1.0\r\nHost: node\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Retries `f` for up to 60 s (the guest under TCG is slow to bring an app up).
fn eventually<T>(what: &str, vm: &Vm, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                panic!("{what}: {e}\n{}", vm.tail(40))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// What the probe printed in its run of boot `boot` (its log keeps earlier runs, and a
/// probe left from the boot before may run again before the script replaces it).
fn probe_run(n: &AppNode, boot: u32) -> String {
    let probe = n.json(&format!("probe-{boot}.json"));
    let out = probe["output"].as_str().unwrap_or_default();
    let marker = format!("probe_boot={boot}\n");
    match out.rfind(&marker) {
        Some(at) => out[at + marker.len()..].to_owned(),
        None => panic!("no run of boot {boot} in the probe's output: {out:?}"),
    }
}

/// Presses the power button and waits for an orderly poweroff.
fn power_off(vm: &mut Vm) {
    let _ = vm.qmp().map(|q| q.execute("system_powerdown", json!({})));
    let status = vm
        .wait_exit(Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{}", vm.tail(30));
}

#[test]
fn published_ports_answer_from_outside_and_apps_reach_nothing_private() {
    // A host service the guest reaches as 10.0.2.100 (guestfwd): private to containers.
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let gport = host.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in host.incoming().flatten() {
            let _ = c.write_all(b"host-service\n");
        }
    });
    let build = tempfile::tempdir().unwrap();
    let echo = build_probe("udp_echo", build.path());
    let ask = build_probe("udp_ask", build.path());
    let n = AppNode::with(
        &SCRIPT.replace("GPORT", &gport.to_string()),
        None,
        &[(&echo, "/bin/udp_echo")],
    );
    disk::put_host_files(&n.img, &[], &[(&ask, "/bin/udp_ask")]);
    let [tcp] = ports::free_ports(1).unwrap()[..] else {
        unreachable!()
    };
    let boot = |extra: &str| {
        n.boot(extra)
            .memory_mb(1024)
            .forward(tcp, 8080)
            .guestfwd(gport)
            .timeout(Duration::from_secs(900))
            .spawn()
            .unwrap()
    };

    let mut vm = boot("");
    vm.wait_for("net-test: ready 1", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let page = eventually("GET through the published port", &vm, || http_get(tcp));
    assert!(page.contains("hello-from-web"), "{page}");
    power_off(&mut vm);

    // busybox httpd logs "[::ffff:10.0.2.2]:PORT" (its socket is IPv6, the client v4).
    let web_log = disk::read_file(&n.img, "/apps/web-0/output.log");
    assert!(
        web_log.contains("10.0.2.2]:") || web_log.contains("10.0.2.2:"),
        "the client's address: {web_log:?}"
    );
    assert!(
        !web_log.contains("10.89.0.1"),
        "not the bridge's: {web_log:?}"
    );
    let udp = n.result("udp-1.txt");
    assert!(
        udp.contains("reply=ping-udp"),
        "UDP through 5353/udp: {udp:?}"
    );
    let clash = n.result("clash.run");
    assert!(clash.contains("published by app web"), "{clash}");
    let out = &probe_run(&n, 1);
    for (k, v) in [("node_rpc", 1), ("other_app", 1), ("guestfwd", 1)] {
        assert_eq!(field(out, k), Some(v), "{k} in {out:?}");
    }
    assert!(!out.contains("host-service"), "{out:?}");

    // After a reboot (now allowing the guestfwd address) the ports answer again.
    let mut vm = boot("fluxnode.apps.allow_private=10.0.2.100/32");
    vm.wait_for("net-test: ready 2", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    let page = eventually("GET after the reboot", &vm, || http_get(tcp));
    assert!(page.contains("hello-from-web"), "{page}");
    power_off(&mut vm);
    let out = &probe_run(&n, 2);
    assert!(
        out.contains("host-service") && field(out, "guestfwd").is_some(),
        "allowed now: {out:?}\n{}",
        vm.tail(60)
    );
    assert_eq!(field(out, "node_rpc"), Some(1), "{out:?}");
    let udp = n.result("udp-2.txt");
    assert!(
        udp.contains("reply=ping-udp"),
        "UDP after the reboot: {udp:?}"
    );
}
