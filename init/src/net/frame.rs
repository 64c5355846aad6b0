//! DHCP messages in and out of Ethernet frames: Ethernet + IPv4 + UDP around a DHCP
//! message, built and checked with smoltcp's wire types. Every field of an incoming frame
//! is checked before use.

use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
    DHCP_CLIENT_PORT, DHCP_SERVER_PORT,
};

const ETH_HEADER: usize = 14;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Wraps a DHCP message from `from_port` to `to_port` in a complete Ethernet frame.
pub fn build(
    repr: &DhcpRepr,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    from_port: u16,
    to_port: u16,
) -> Vec<u8> {
    let dhcp_len = repr.buffer_len();
    let udp_len = UDP_HEADER + dhcp_len;
    let mut buf = vec![0u8; ETH_HEADER + IPV4_HEADER + udp_len];
    let caps = ChecksumCapabilities::default();
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut eth);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    Ipv4Repr {
        src_addr: src_ip,
        dst_addr: dst_ip,
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
    }
    .emit(&mut ip, &caps);
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    UdpRepr {
        src_port: from_port,
        dst_port: to_port,
    }
    .emit(
        &mut udp,
        &IpAddress::Ipv4(src_ip),
        &IpAddress::Ipv4(dst_ip),
        dhcp_len,
        |payload| {
            let mut packet = DhcpPacket::new_unchecked(payload);
            // The buffer is exactly buffer_len() long, so emitting cannot run out of room.
            let _ = repr.emit(&mut packet);
        },
        &caps,
    );
    buf
}

/// A client's frame to the server side.
pub fn client_frame(
    repr: &DhcpRepr,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
) -> Vec<u8> {
    build(
        repr,
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        DHCP_CLIENT_PORT,
        DHCP_SERVER_PORT,
    )
}

/// The fields of a received DHCP message that the client uses, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub src_mac: [u8; 6],
    pub kind: DhcpMessageType,
    pub xid: u32,
    pub client_mac: [u8; 6],
    pub your_ip: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_s: Option<u32>,
    pub renew_s: Option<u32>,
    pub rebind_s: Option<u32>,
}

/// Parses a frame; None for anything that is not a valid DHCP message for a client.
pub fn parse(frame: &[u8]) -> Option<Message> {
    let caps = ChecksumCapabilities::default();
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let src_mac = eth.src_addr().0;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let ip_repr = Ipv4Repr::parse(&ip, &caps).ok()?;
    if ip_repr.next_header != IpProtocol::Udp {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    let (src, dst) = (
        IpAddress::Ipv4(ip_repr.src_addr),
        IpAddress::Ipv4(ip_repr.dst_addr),
    );
    let udp_repr = UdpRepr::parse(&udp, &src, &dst, &caps).ok()?;
    if udp_repr.dst_port != DHCP_CLIENT_PORT || udp_repr.src_port != DHCP_SERVER_PORT {
        return None;
    }
    let dhcp = DhcpPacket::new_checked(udp.payload()).ok()?;
    let r = DhcpRepr::parse(&dhcp).ok()?;
    Some(Message {
        src_mac,
        kind: r.message_type,
        xid: r.transaction_id,
        client_mac: r.client_hardware_address.0,
        your_ip: r.your_ip,
        server_id: r.server_identifier,
        subnet_mask: r.subnet_mask,
        router: r.router,
        dns: r
            .dns_servers
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default(),
        lease_s: r.lease_duration,
        renew_s: r.renew_duration,
        rebind_s: r.rebind_duration,
    })
}
