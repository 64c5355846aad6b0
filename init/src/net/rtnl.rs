//! rtnetlink, by hand: add and remove an IPv4 address and a default route on a link. Each
//! request asks for an ACK, and a kernel error comes back as the errno it names.

use std::io;
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REPLACE: u16 = 0x100;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
/// Routes from DHCP are tagged with this protocol (linux/rtnetlink.h).
const RTPROT_DHCP: u8 = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink request being built: header, fixed part, then attributes.
struct Msg(Vec<u8>);

impl Msg {
    fn new(kind: u16, flags: u16, body: &[u8]) -> Self {
        let mut b = vec![0u8; NLMSG_HDR];
        b[4..6].copy_from_slice(&kind.to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        b.extend_from_slice(body);
        b.resize(align4(b.len()), 0);
        Msg(b)
    }

    fn attr(mut self, kind: u16, data: &[u8]) -> Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

fn ifaddrmsg(prefix: u8, ifindex: u32) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[0] = libc::AF_INET as u8;
    m[1] = prefix;
    m[3] = libc::RT_SCOPE_UNIVERSE;
    m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    m
}

/// Sends one request and reads its ACK.
fn talk(request: Vec<u8>) -> io::Result<()> {
    // SAFETY: plain socket(2); the fd is owned right after.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: valid buffer and address for the call.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for writes of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < (NLMSG_HDR + 4) as isize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "short netlink reply",
        ));
    }
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind != NLMSG_ERROR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("netlink reply type {kind}"),
        ));
    }
    let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-errno))
    }
}

fn broadcast(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let host_bits = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
    Ipv4Addr::from(u32::from(addr) | host_bits)
}

/// Adds (or replaces) `addr/prefix` on link `ifindex`.
pub fn add_address(ifindex: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let msg = Msg::new(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_REPLACE,
        &ifaddrmsg(prefix, ifindex),
    )
    .attr(IFA_LOCAL, &addr.octets())
    .attr(IFA_ADDRESS, &addr.octets())
    .attr(IFA_BROADCAST, &broadcast(addr, prefix).octets());
    talk(msg.finish())
}

/// Removes `addr/prefix` from link `ifindex`.
pub fn del_address(ifindex: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let msg = Msg::new(RTM_DELADDR, 0, &ifaddrmsg(prefix, ifindex))
        .attr(IFA_LOCAL, &addr.octets())
        .attr(IFA_ADDRESS, &addr.octets());
    talk(msg.finish())
}

/// Adds (or replaces) the default route through `gateway` on link `ifindex`.
pub fn add_default_route(ifindex: u32, gateway: Ipv4Addr) -> io::Result<()> {
    let mut rtmsg = [0u8; 12];
    rtmsg[0] = libc::AF_INET as u8;
    rtmsg[4] = libc::RT_TABLE_MAIN;
    rtmsg[5] = RTPROT_DHCP;
    rtmsg[6] = libc::RT_SCOPE_UNIVERSE;
    rtmsg[7] = libc::RTN_UNICAST;
    let msg = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rtmsg)
        .attr(RTA_DST, &[0, 0, 0, 0])
        .attr(RTA_GATEWAY, &gateway.octets())
        .attr(RTA_OIF, &ifindex.to_ne_bytes());
    talk(msg.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_length_prefixed_and_attributes_aligned() {
        let m = Msg::new(RTM_NEWADDR, NLM_F_CREATE, &ifaddrmsg(24, 2))
            .attr(IFA_LOCAL, &[10, 0, 2, 15])
            .finish();
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(m.len(), 16 + 8 + 8);
        assert_eq!(&m[24..28], &[8, 0, 2, 0], "rta_len 8, IFA_LOCAL");
        assert_eq!(&m[28..32], &[10, 0, 2, 15]);
    }

    #[test]
    fn broadcast_addresses_follow_the_prefix() {
        assert_eq!(
            broadcast(Ipv4Addr::new(10, 0, 2, 15), 24),
            Ipv4Addr::new(10, 0, 2, 255)
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(10, 0, 2, 15), 32),
            Ipv4Addr::new(10, 0, 2, 15)
        );
    }
}
