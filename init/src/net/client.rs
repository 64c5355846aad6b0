//! `fluxnode dhcp IFACE`: the DHCP client as a process of its own, supervised by PID1 like
//! any service (if it dies, it is restarted; PID1's loop never waits on the network). It
//! drives the state machine over a packet socket, applies leases with rtnetlink, writes
//! /etc/resolv.conf, and follows the link's carrier.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dhcp::{Client, Lease, Output};
use super::packet::PacketSocket;
use super::{rtnl, write_resolv_conf};

fn sys(iface: &str, file: &str) -> Result<String> {
    let p = format!("/sys/class/net/{iface}/{file}");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| p.clone())?
        .trim()
        .to_owned())
}

/// Parses `52:54:00:12:34:56`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = text
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

fn carrier(iface: &str) -> bool {
    sys(iface, "carrier").is_ok_and(|c| c == "1")
}

/// Prints the one console line per address change that tests and operators read.
pub fn announce(iface: &str, addr: Ipv4Addr, prefix: u8, gw: Option<Ipv4Addr>, how: &str) {
    let gw = gw.map_or_else(|| "none".to_owned(), |g| g.to_string());
    println!("fluxnode: net {iface} {addr}/{prefix} gw {gw} ({how})");
}

struct Link<'a> {
    iface: &'a str,
    ifindex: u32,
    sock: PacketSocket,
    current: Option<(Ipv4Addr, u8)>,
}

impl Link<'_> {
    fn apply(&mut self, outputs: Vec<Output>) {
        for out in outputs {
            match out {
                Output::Send(frame) => {
                    if let Err(e) = self.sock.send(&frame) {
                        eprintln!("fluxnode: dhcp {}: send: {e}", self.iface);
                    }
                }
                Output::Configure(lease) => self.configure(&lease),
                Output::Deconfigure(lease) => {
                    if let Err(e) = rtnl::del_address(self.ifindex, lease.address, lease.prefix) {
                        eprintln!(
                            "fluxnode: dhcp {}: remove {}: {e}",
                            self.iface, lease.address
                        );
                    }
                    println!(
                        "fluxnode: net {} lease {}/{} lost",
                        self.iface, lease.address, lease.prefix
                    );
                    self.current = None;
                }
            }
        }
    }

    fn configure(&mut self, lease: &Lease) {
        if let Err(e) = rtnl::add_address(self.ifindex, lease.address, lease.prefix) {
            eprintln!(
                "fluxnode: dhcp {}: add {}/{}: {e}",
                self.iface, lease.address, lease.prefix
            );
            return;
        }
        if let Some(gw) = lease.router {
            if let Err(e) = rtnl::add_default_route(self.ifindex, gw) {
                eprintln!("fluxnode: dhcp {}: default route via {gw}: {e}", self.iface);
            }
        }
        if !lease.dns.is_empty() {
            if let Err(e) = write_resolv_conf(Path::new("/etc/resolv.conf"), &lease.dns) {
                eprintln!("fluxnode: dhcp {}: /etc/resolv.conf: {e}", self.iface);
            }
        }
        if self.current != Some((lease.address, lease.prefix)) {
            announce(
                self.iface,
                lease.address,
                lease.prefix,
                lease.router,
                "dhcp",
            );
            self.current = Some((lease.address, lease.prefix));
        }
    }
}

/// Runs the client on `iface` until killed.
pub fn run(iface: &str) -> Result<()> {
    let ifindex: u32 = sys(iface, "ifindex")?
        .parse()
        .with_context(|| format!("{iface}: ifindex"))?;
    let Some(mac) = parse_mac(&sys(iface, "address")?) else {
        bail!("{iface}: no Ethernet address")
    };
    super::link_up(iface)?;
    let sock =
        PacketSocket::open(ifindex as i32).with_context(|| format!("{iface}: packet socket"))?;
    let seed = u32::from_ne_bytes([mac[2], mac[3], mac[4], mac[5]]) ^ std::process::id();
    let mut client = Client::new(mac, seed);
    let mut link = Link {
        iface,
        ifindex,
        sock,
        current: None,
    };
    let mut up = carrier(iface);
    if !up {
        link.apply(client.link_down());
    }
    let mut buf = vec![0u8; 2048];
    loop {
        let now_up = carrier(iface);
        if now_up != up {
            println!(
                "fluxnode: net {iface} link {}",
                if now_up { "up" } else { "down" }
            );
            let out = if now_up {
                client.link_up(Instant::now())
            } else {
                client.link_down()
            };
            link.apply(out);
            println!("fluxnode: net {iface} dhcp {}", client.state_name());
            up = now_up;
        }
        link.apply(client.poll(Instant::now()));
        let wait = client
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        if let Some(n) = link
            .sock
            .recv(&mut buf, wait)
            .with_context(|| format!("{iface}: receive"))?
        {
            link.apply(client.on_frame(&buf[..n], Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_parse_and_bad_ones_do_not() {
        assert_eq!(
            super::parse_mac("52:54:00:12:34:56"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(super::parse_mac("52:54:00"), None);
        assert_eq!(super::parse_mac("zz:54:00:12:34:56"), None);
    }
}
