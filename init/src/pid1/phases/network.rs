//! Phase network: loopback, then each Ethernet link. A static config is applied here at
//! once through rtnetlink; otherwise the link gets a built-in `dhcp-<link>` service (the
//! `fluxnode dhcp` client), so PID1 never waits on a DHCP server.

use std::path::Path;

use anyhow::{Context, Result};
use tracing::{info, warn};

use crate::config::{NetMode, Restart, ServiceSpec};
use crate::net;
use crate::pid1::Boot;

fn apply_static(boot: &mut Boot, link: &str) -> Result<()> {
    let cfg = &boot.config.network;
    let (addr, prefix) = cfg
        .address
        .context("[network] mode = \"static\" needs an address")?;
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{link}/ifindex"))?
        .trim()
        .parse()?;
    net::link_up(link)?;
    net::rtnl::add_address(ifindex, addr, prefix)
        .with_context(|| format!("{link}: add {addr}/{prefix}"))?;
    if let Some(gw) = cfg.gateway {
        net::rtnl::add_default_route(ifindex, gw)
            .with_context(|| format!("{link}: route via {gw}"))?;
    }
    if !cfg.dns.is_empty() {
        net::write_resolv_conf(Path::new("/etc/resolv.conf"), &cfg.dns)?;
    }
    net::client::announce(link, addr, prefix, cfg.gateway, "static");
    boot.net.push(format!("{link} {addr}/{prefix} (static)"));
    Ok(())
}

pub fn run(boot: &mut Boot) -> Result<()> {
    net::link_up("lo")?;
    info!("net lo 127.0.0.1/8 (loopback)");
    boot.net.push("lo 127.0.0.1/8 (loopback)".into());
    let links = net::ethernet_links(Path::new("/sys/class/net"));
    for line in crate::pid1::hardware::nics(Path::new("/sys")) {
        info!("{line}");
    }
    if links.is_empty() {
        warn!("{}", crate::pid1::hardware::no_nic_line(Path::new("/sys")));
    }
    match boot.config.network.mode {
        NetMode::Off => info!("net: off by config; links {links:?} left down"),
        NetMode::Static => match links.first() {
            Some(link) => {
                let link = link.clone();
                if let Err(e) = apply_static(boot, &link) {
                    warn!("net {link}: static config failed: {e:#}");
                }
            }
            None => warn!("net: static config but no Ethernet link"),
        },
        NetMode::Dhcp => {
            for link in links {
                boot.net.push(format!("{link} (dhcp)"));
                let spec = ServiceSpec {
                    name: format!("dhcp-{link}"),
                    argv: vec!["/init".into(), "dhcp".into(), link],
                    env: Vec::new(),
                    restart: Restart::Always,
                };
                boot.config.services.insert(0, spec);
            }
        }
    }
    Ok(())
}
