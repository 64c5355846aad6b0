//! Phase network: loopback first. Ethernet links with DHCPv4 or static addresses come next
//! (not yet in this build; the status shows `net: []`).

use anyhow::{Context, Result};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use std::os::fd::AsRawFd;
use tracing::info;

use crate::pid1::Boot;

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

pub fn run(boot: &mut Boot) -> Result<()> {
    link_up("lo")?;
    info!("net lo 127.0.0.1/8 (loopback)");
    boot.net.push("lo 127.0.0.1/8 (loopback)".into());
    Ok(())
}
