//! Writes seed inputs for the fuzz targets: for `config_toml`, fluxnode.toml files with every
//! section and key (valid, and with the mistakes an operator makes) and kernel command lines
//! of `fluxnode.*` words; for `dhcp_packet`, the replies a DHCP server sends (OFFER, ACK and
//! NAK, as QEMU's user network builds them, with and without T1/T2, other addresses, several
//! name servers) for each state the target drives the client into, with that exchange's
//! transaction id. A seed that decodes lets libFuzzer start from deep inside each decoder.
//!
//!   cargo run --example seeds -- <corpus dir>   (writes <dir>/<target>/seed-*)
//!
//! ./scripts/fuzz.sh runs it before fuzzing; the corpus is never committed.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use fluxnode_init::config::Config;
use fluxnode_init::net::dhcp::{Client, Output};
use fluxnode_init::net::frame;
use smoltcp::wire::{DhcpMessageType, DhcpRepr, EthernetAddress};

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    for (i, s) in seeds.iter().enumerate() {
        fs::write(d.join(format!("seed-{i:02}")), s)?;
    }
    println!("{}: {} seeds", d.display(), seeds.len());
    Ok(())
}

/// Every section and key, all valid.
const FULL: &str = r#"
[node]
hostname = "rack7-node3"

[log]
level = "debug"

[storage]
grow = false

[network]
mode = "static"
address = "192.0.2.10/24"
gateway = "192.0.2.1"
dns = ["192.0.2.53", "9.9.9.9"]

[watchdog]
enabled = true
device = "/dev/watchdog1"
timeout = 30

[bench]
enabled = false
quick = true

[apps]
reserve_cpu = 0.5
reserve_ram = "1G"
reserve_disk = 10737418240

[chain]
enabled = true
devnet = true

[update]
health_secs = 300

[[service]]
name = "metrics"
argv = ["/usr/bin/metrics", "--port", "9100"]
env = ["A=1", "B=two words"]
restart = "on-failure"

[[service]]
name = "shell_2"
argv = ["/bin/sh", "-c", "sleep 1000"]
restart = "never"
"#;

/// The mistakes: wrong types, unknown keys, bad values, a service twice.
const MISTAKES: &str = r#"
[node]
hostname = "-bad_name"

[bench]
quick = "yes"

[watchdog]
timeout = 0
colour = "blue"

[network]
mode = "dhcp"
address = "192.0.2.10/33"
dns = "1.1.1.1"

[update]
health_secs = 5

[apps]
reserve_ram = "lots"

[[service]]
name = "metrics"
argv = ["relative/path"]

[[service]]
name = "metrics"
argv = ["/bin/true"]
env = ["NOEQUALS"]
restart = "sometimes"
"#;

const CMDLINE: &str = "console=ttyS0
quiet
fluxnode.selftest=poweroff
fluxnode.node.hostname=override
fluxnode.log.level=trace
fluxnode.watchdog.enabled=false
fluxnode.watchdog.timeout=60
fluxnode.network.mode=static
fluxnode.network.address=10.0.0.2/8
fluxnode.network.gateway=10.0.0.1
fluxnode.network.dns=1.1.1.1,9.9.9.9
fluxnode.apps.reserve_cpu=0.25
fluxnode.apps.reserve_ram=128M
fluxnode.apps.reserve_disk=8M
fluxnode.chain.devnet=true
fluxnode.update.health_secs=15
fluxnode.service.flap=/init selftest flap
fluxnode.test.fail_health=1
fluxnode.bench.quick=maybe
fluxnode.nosuch=1
";

fn config_seeds() -> Vec<Vec<u8>> {
    // The seeds are what they claim: the full file applies without a word.
    let mut c = Config::default();
    assert_eq!(c.apply_toml("full", FULL), Vec::new());
    vec![
        FULL.into(),
        MISTAKES.into(),
        CMDLINE.into(),
        format!("{FULL}\0{CMDLINE}").into_bytes(),
        format!("{MISTAKES}\0{CMDLINE}").into_bytes(),
    ]
}

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const SERVER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// A server's reply; the variations the target's checks care about.
struct Reply {
    kind: DhcpMessageType,
    xid: u32,
    your_ip: Ipv4Addr,
    lease_s: Option<u32>,
    t1_t2: Option<(u32, u32)>,
    dns: usize,
    mask: Ipv4Addr,
}

impl Reply {
    fn new(kind: DhcpMessageType, xid: u32) -> Self {
        Reply {
            kind,
            xid,
            your_ip: if kind == DhcpMessageType::Nak {
                Ipv4Addr::UNSPECIFIED
            } else {
                LEASED
            },
            lease_s: Some(600),
            t1_t2: None,
            dns: 1,
            mask: Ipv4Addr::new(255, 255, 255, 0),
        }
    }

    fn frame(&self) -> Vec<u8> {
        let mut dns = heapless::Vec::new();
        for i in 0..self.dns {
            dns.push(Ipv4Addr::new(10, 0, 2, 3 + i as u8)).unwrap();
        }
        let repr = DhcpRepr {
            message_type: self.kind,
            transaction_id: self.xid,
            secs: 0,
            client_hardware_address: EthernetAddress(MAC),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: self.your_ip,
            server_ip: SERVER,
            router: Some(SERVER),
            subnet_mask: Some(self.mask),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(SERVER),
            parameter_request_list: None,
            dns_servers: Some(dns),
            max_size: None,
            lease_duration: self.lease_s,
            renew_duration: self.t1_t2.map(|t| t.0),
            rebind_duration: self.t1_t2.map(|t| t.1),
            additional_options: &[],
        };
        let f = frame::build(&repr, SERVER_MAC, MAC, SERVER, Ipv4Addr::BROADCAST, 67, 68);
        assert!(frame::parse(&f).is_some(), "a seed reply parses");
        f
    }
}

/// The transaction id of the last frame in `out` (the DHCP message starts at byte 42 of
/// the client's frames: Ethernet, IPv4 without options, UDP).
fn xid(out: &[Output]) -> u32 {
    out.iter()
        .rev()
        .find_map(|o| match o {
            Output::Send(f) => Some(u32::from_be_bytes(f[46..50].try_into().unwrap())),
            _ => None,
        })
        .expect("the client sent a frame")
}

fn dhcp_seeds() -> Vec<Vec<u8>> {
    use DhcpMessageType::{Ack, Nak, Offer};
    // The transaction ids of each exchange, driven as the target drives the client.
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut c = Client::new(MAC, 7);
    let selecting = xid(&c.poll(t0));
    let requesting = xid(&c.on_frame(&Reply::new(Offer, selecting).frame(), t0));
    c.on_frame(&Reply::new(Ack, requesting).frame(), t0);
    assert_eq!(c.state_name(), "bound");
    let renewing = xid(&c.poll(t0 + s(300)));
    let rebinding = xid(&c.poll(t0 + s(525)));
    assert_eq!(c.state_name(), "rebinding");

    let mut seeds = Vec::new();
    let mut add = |ctl: u8, r: Reply| {
        let mut seed = vec![ctl];
        seed.extend(r.frame());
        seeds.push(seed);
    };
    // State 1 (SELECTING): offers.
    add(1, Reply::new(Offer, selecting));
    add(
        1,
        Reply {
            t1_t2: Some((100, 200)),
            dns: 3,
            ..Reply::new(Offer, selecting)
        },
    );
    // State 2 and 7 (REQUESTING): an ACK, a NAK, an ACK with odd timers and mask.
    add(2, Reply::new(Ack, requesting));
    add(7, Reply::new(Ack, requesting));
    add(2, Reply::new(Nak, requesting));
    add(
        2,
        Reply {
            lease_s: Some(30),
            t1_t2: Some((40, 10)),
            mask: Ipv4Addr::new(255, 0, 255, 0),
            ..Reply::new(Ack, requesting)
        },
    );
    // State 4 (RENEWING) and 5 (REBINDING): the same address, another one, a NAK.
    add(0x24, Reply::new(Ack, renewing));
    add(
        0x14,
        Reply {
            your_ip: Ipv4Addr::new(10, 0, 2, 16),
            ..Reply::new(Ack, renewing)
        },
    );
    add(4, Reply::new(Nak, renewing));
    add(0x45, Reply::new(Ack, rebinding));
    add(
        0x35,
        Reply {
            lease_s: None,
            ..Reply::new(Ack, rebinding)
        },
    );
    add(5, Reply::new(Nak, rebinding));
    // With the transaction id patched in by the target: any state, a stale id.
    add(0x0b, Reply::new(Ack, 1));
    add(0x09, Reply::new(Offer, 1));
    add(0x0e, Reply::new(Ack, 1));
    add(0x08, Reply::new(Offer, 1));
    seeds
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    let dir = Path::new(&dir);
    write(dir, "config_toml", &config_seeds())?;
    write(dir, "dhcp_packet", &dhcp_seeds())?;
    Ok(())
}
