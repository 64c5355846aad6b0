//! The DHCP state machine fed with real frames: the server side is built with the same wire
//! types, as QEMU's user-mode network would send them (10.0.2.2 server, 10.0.2.15 lease).

use super::*;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpPacket, EthernetFrame, IpAddress, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const SERVER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

/// What the client sent: destination MAC and IP, and the DHCP fields a server reads.
struct Sent {
    dst_mac: [u8; 6],
    dst_ip: Ipv4Addr,
    kind: DhcpMessageType,
    xid: u32,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server_id: Option<Ipv4Addr>,
}

fn sent(out: &[Output]) -> Sent {
    let frame = out
        .iter()
        .find_map(|o| match o {
            Output::Send(f) => Some(f.clone()),
            _ => None,
        })
        .expect("a frame was sent");
    let caps = ChecksumCapabilities::default();
    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let ip_repr = Ipv4Repr::parse(&ip, &caps).unwrap();
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    let udp_repr = UdpRepr::parse(
        &udp,
        &IpAddress::Ipv4(ip_repr.src_addr),
        &IpAddress::Ipv4(ip_repr.dst_addr),
        &caps,
    )
    .unwrap();
    assert_eq!((udp_repr.src_port, udp_repr.dst_port), (68, 67));
    let dhcp = DhcpPacket::new_checked(udp.payload()).unwrap();
    let r = DhcpRepr::parse(&dhcp).unwrap();
    assert_eq!(r.client_hardware_address.0, MAC);
    Sent {
        dst_mac: eth.dst_addr().0,
        dst_ip: ip_repr.dst_addr,
        kind: r.message_type,
        xid: r.transaction_id,
        ciaddr: r.client_ip,
        requested: r.requested_ip,
        server_id: r.server_identifier,
    }
}

/// A server reply frame, built like QEMU's slirp builds its replies.
fn reply(kind: DhcpMessageType, xid: u32, lease_s: u32) -> Vec<u8> {
    let mut dns = heapless::Vec::new();
    dns.push(Ipv4Addr::new(10, 0, 2, 3)).unwrap();
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(MAC),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: if kind == DhcpMessageType::Nak {
            Ipv4Addr::UNSPECIFIED
        } else {
            LEASED
        },
        server_ip: SERVER,
        router: Some(SERVER),
        subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Addr::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(SERVER),
        parameter_request_list: None,
        dns_servers: Some(dns),
        max_size: None,
        lease_duration: Some(lease_s),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    frame::build(&repr, SERVER_MAC, MAC, SERVER, Ipv4Addr::BROADCAST, 67, 68)
}

fn configured(out: &[Output]) -> Lease {
    out.iter()
        .find_map(|o| match o {
            Output::Configure(l) => Some(l.clone()),
            _ => None,
        })
        .expect("a lease was configured")
}

/// DISCOVER, OFFER, REQUEST, ACK: returns the bound client and its lease.
fn bound(now: Instant, lease_s: u32) -> (Client, Lease) {
    let mut c = Client::new(MAC, 7);
    let discover = sent(&c.poll(now));
    assert_eq!(discover.kind, DhcpMessageType::Discover);
    assert_eq!(
        (discover.dst_mac, discover.dst_ip),
        ([0xff; 6], Ipv4Addr::BROADCAST)
    );
    let request = sent(&c.on_frame(&reply(DhcpMessageType::Offer, discover.xid, lease_s), now));
    assert_eq!(request.kind, DhcpMessageType::Request);
    assert_eq!(
        (request.requested, request.server_id),
        (Some(LEASED), Some(SERVER))
    );
    let lease = configured(&c.on_frame(&reply(DhcpMessageType::Ack, request.xid, lease_s), now));
    assert_eq!(c.state_name(), "bound");
    (c, lease)
}

#[test]
fn discover_offer_request_ack_gives_the_qemu_lease() {
    let (_, lease) = bound(Instant::now(), 86400);
    assert_eq!((lease.address, lease.prefix), (LEASED, 24));
    assert_eq!(lease.router, Some(SERVER));
    assert_eq!(lease.dns, [Ipv4Addr::new(10, 0, 2, 3)]);
    assert_eq!(lease.server_mac, SERVER_MAC);
    assert_eq!(
        (lease.t1, lease.t2),
        (Duration::from_secs(43200), Duration::from_secs(75600))
    );
}

#[test]
fn renews_by_unicast_at_t1_and_keeps_the_address() {
    let now = Instant::now();
    let (mut c, lease) = bound(now, 600);
    assert!(
        c.poll(now + Duration::from_secs(299)).is_empty(),
        "nothing before T1"
    );
    let renew = sent(&c.poll(now + lease.t1));
    assert_eq!(c.state_name(), "renewing");
    assert_eq!(
        (renew.dst_mac, renew.dst_ip, renew.ciaddr),
        (SERVER_MAC, SERVER, LEASED)
    );
    assert_eq!(
        renew.requested, None,
        "RFC 2131: no requested address while renewing"
    );
    let later = now + lease.t1 + Duration::from_secs(1);
    let out = c.on_frame(&reply(DhcpMessageType::Ack, renew.xid, 600), later);
    assert!(!out.iter().any(|o| matches!(o, Output::Deconfigure(_))));
    assert_eq!(configured(&out).acquired, later);
    assert_eq!(c.state_name(), "bound");
}

#[test]
fn rebinds_by_broadcast_at_t2_then_drops_the_lease_at_expiry() {
    let now = Instant::now();
    let (mut c, lease) = bound(now, 800);
    sent(&c.poll(now + lease.t1));
    let rebind = sent(&c.poll(now + lease.t2));
    assert_eq!(c.state_name(), "rebinding");
    assert_eq!(
        (rebind.dst_mac, rebind.dst_ip, rebind.ciaddr),
        ([0xff; 6], Ipv4Addr::BROADCAST, LEASED)
    );
    let out = c.poll(now + lease.duration);
    assert!(
        matches!(&out[0], Output::Deconfigure(l) if l.address == LEASED),
        "{out:?}"
    );
    assert_eq!(
        sent(&out).kind,
        DhcpMessageType::Discover,
        "lost lease: discover again"
    );
}

#[test]
fn a_nak_while_renewing_drops_the_address_and_starts_over() {
    let now = Instant::now();
    let (mut c, lease) = bound(now, 600);
    let renew = sent(&c.poll(now + lease.t1));
    let out = c.on_frame(&reply(DhcpMessageType::Nak, renew.xid, 0), now + lease.t1);
    assert!(matches!(&out[0], Output::Deconfigure(_)));
    assert_eq!(sent(&out).kind, DhcpMessageType::Discover);
}

#[test]
fn link_down_drops_the_address_and_link_up_discovers_again() {
    let now = Instant::now();
    let (mut c, _) = bound(now, 600);
    let out = c.link_down();
    assert!(matches!(&out[..], [Output::Deconfigure(l)] if l.address == LEASED));
    assert!(
        c.poll(now + Duration::from_secs(3600)).is_empty(),
        "silent while the link is down"
    );
    assert_eq!(c.next_deadline(), None);
    assert_eq!(sent(&c.link_up(now)).kind, DhcpMessageType::Discover);
}

#[test]
fn replies_for_other_exchanges_and_garbage_are_ignored() {
    let now = Instant::now();
    let mut c = Client::new(MAC, 7);
    let discover = sent(&c.poll(now));
    assert!(c
        .on_frame(&reply(DhcpMessageType::Offer, discover.xid ^ 1, 600), now)
        .is_empty());
    assert!(c.on_frame(&[0u8; 60], now).is_empty());
    let mut offer = reply(DhcpMessageType::Offer, discover.xid, 600);
    offer.truncate(offer.len() - 40);
    assert!(
        c.on_frame(&offer, now).is_empty(),
        "a truncated frame is refused"
    );
    assert_eq!(c.state_name(), "selecting");
    let again = sent(&c.poll(now + Duration::from_secs(4)));
    assert_eq!(
        (again.kind, again.xid),
        (DhcpMessageType::Discover, discover.xid),
        "retransmitted after 4 s"
    );
}

#[test]
fn netmasks_give_prefixes_and_holes_are_refused() {
    assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
    assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
    assert_eq!(prefix_of(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
    assert_eq!(prefix_of(Ipv4Addr::new(255, 0, 255, 0)), None);
}
