//! App networking for real, in a network namespace of the test's own (the test runs
//! itself again under `unshare --net --mount`, so nothing on this machine changes): the
//! node bridge, two app namespaces with their veth pairs and addresses, the nftables table
//! applied by Debian's nft, and real TCP and UDP: a published port answers from the node's
//! own addresses (its loopback too), an app cannot reach the node's ports or another app,
//! and detaching removes the pair and the namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use runtime::net::{link::Rtnl, Attached, NetConfig, Network};

const INSIDE: &str = "FLUXNODE_NET_TEST_INSIDE";

/// Runs `body` in a thread that has joined the network namespace of `app`.
fn in_netns<T: Send + 'static>(
    app: &Attached,
    body: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = std::fs::File::open(&app.netns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        body()
    })
}

/// A TCP server on port 80 that tells each client the address it sees, and a UDP echo on
/// 53, inside `app`'s namespace.
fn serve(app: &Attached) {
    in_netns(app, || {
        let tcp = TcpListener::bind("0.0.0.0:80").unwrap();
        let udp = UdpSocket::bind("0.0.0.0:53").unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(&buf[..n], from);
            }
        });
        for mut c in tcp.incoming().flatten() {
            let peer = c.peer_addr().unwrap();
            let _ = writeln!(c, "you are {}", peer.ip());
        }
    });
}

fn ask(addr: &str) -> std::io::Result<String> {
    let a: SocketAddr = addr.parse().unwrap();
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn inside() {
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.0.2.3\n").unwrap();
    let cfg = NetConfig {
        run_dir: dir.path().join("netns"),
        addresses: dir.path().join("addresses.json"),
        resolv_conf: resolv,
        ..NetConfig::default()
    };
    Rtnl::open().unwrap().up("lo").unwrap();
    let mut net = Network::open(cfg.clone()).unwrap();
    let web = net
        .attach(
            "web-0",
            "web",
            &["8080:80".parse().unwrap(), "5353:53/udp".parse().unwrap()],
        )
        .unwrap();
    let db = net.attach("db-0", "db", &[]).unwrap();
    assert_eq!(web.address, Ipv4Addr::new(10, 89, 0, 2));
    assert_eq!(db.address, Ipv4Addr::new(10, 89, 0, 3));
    // Both host ends are isolated bridge ports (read back from the kernel: a host whose
    // bridge traffic passes netfilter would hide a missing isolation from the reach tests).
    // A sysfs mounted in this network namespace shows its links (/sys shows the host's).
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "sysfs", "sysfs"])
        .arg(&sys)
        .status()
        .unwrap();
    assert!(st.success(), "mount sysfs");
    for id in ["web-0", "db-0"] {
        let veth = runtime::net::host_veth(id);
        let flag = std::fs::read_to_string(sys.join(format!("class/net/{veth}/brport/isolated")));
        assert_eq!(flag.unwrap().trim(), "1", "{veth} of {id} isolated");
    }
    let hosts = std::fs::read_to_string(&web.hosts).unwrap();
    assert!(hosts.contains("10.89.0.2\tweb"), "{hosts}");
    assert_eq!(
        std::fs::read_to_string(&web.resolv_conf).unwrap(),
        "nameserver 10.0.2.3\n"
    );
    serve(&web);
    serve(&db);
    std::thread::sleep(Duration::from_millis(200));

    // The published port, from the node's own address and its loopback.
    let seen = ask("10.89.0.1:8080").unwrap();
    assert_eq!(seen.trim(), "you are 10.89.0.1");
    let seen = ask("127.0.0.1:8080").unwrap();
    assert!(seen.starts_with("you are "), "{seen}");
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    udp.send_to(b"ping", "10.89.0.1:5353").unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    // An unpublished port of the app is not reachable through the node.
    assert!(ask("10.89.0.1:80").is_err());

    // The node's own port, from inside an app: dropped.
    let node = TcpListener::bind("0.0.0.0:16124").unwrap();
    std::thread::spawn(move || for _c in node.incoming() {});
    let from_web = in_netns(&web, || {
        (
            ask("10.89.0.1:16124").is_err(),
            // Another app's container, directly and through its published port.
            ask("10.89.0.3:80").is_err(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(from_web, (true, true), "node port, other app");

    // Detaching removes the pair, the namespace and the files; a rebuild is idempotent.
    net.detach("web-0", true);
    let veth = runtime::net::host_veth("web-0");
    assert_eq!(Rtnl::open().unwrap().index(&veth).unwrap(), None);
    assert!(!Path::new(&web.netns).exists() && !web.hosts.exists());
    assert!(ask("10.89.0.1:8080").is_err(), "the port went with the app");
    drop(net);
    let mut again = Network::open(cfg).unwrap();
    let back = again.attach("web-0", "web", &[]).unwrap();
    assert_eq!(
        back.address,
        Ipv4Addr::new(10, 89, 0, 2),
        "released, then given again"
    );
}

#[test]
fn apps_get_their_own_network_with_published_ports_and_no_way_to_the_node_or_each_other() {
    if std::env::var_os(INSIDE).is_some() {
        inside();
        return;
    }
    if !nix::unistd::Uid::effective().is_root() || !Path::new("/usr/sbin/nft").exists() {
        eprintln!("needs root and Debian's nftables: skipped");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "apps_get_their_own_network_with_published_ports_and_no_way_to_the_node_or_each_other",
            "--exact",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
