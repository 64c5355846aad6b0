//! Networking of the node: the DHCPv4 client (a state machine on smoltcp's wire types, run
//! by `fluxnode dhcp IFACE` as a supervised service over an AF_PACKET socket), rtnetlink
//! for addresses and routes, and /etc/resolv.conf.

pub mod client;
pub mod dhcp;
pub mod frame;
pub mod packet;
pub mod rtnl;

use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use std::net::Ipv4Addr;

/// Writes /etc/resolv.conf (or `path`) with the given name servers.
pub fn write_resolv_conf(path: &std::path::Path, servers: &[Ipv4Addr]) -> std::io::Result<()> {
    let text: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    std::fs::write(path, text)
}

/// Ethernet links worth configuring: real devices (with a `device` link in sysfs, so not
/// veth or bridges) of type ARPHRD_ETHER, sorted by name.
pub fn ethernet_links(sys_class_net: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut links: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter(|e| std::fs::read_to_string(e.path().join("type")).is_ok_and(|t| t.trim() == "1"))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    links.sort();
    links
}

nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Sets IFF_UP on a link by name.
pub fn link_up(name: &str) -> Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket")?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    // SAFETY: the ioctls read and write the ifreq we own.
    unsafe {
        siocgifflags(sock.as_raw_fd(), &mut req).with_context(|| format!("{name}: get flags"))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        siocsifflags(sock.as_raw_fd(), &req).with_context(|| format!("{name}: set up"))?;
    }
    Ok(())
}

/// The IPv4 addresses the kernel has now, as (link, "a.b.c.d/prefix"), for status.
pub fn ipv4_addresses() -> Vec<(String, String)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            let mask = a.netmask.and_then(|m| m.as_sockaddr_in().map(|s| s.ip()));
            let prefix = mask.and_then(dhcp::prefix_of).unwrap_or(32);
            Some((a.interface_name, format!("{ip}/{prefix}")))
        })
        .collect()
}
