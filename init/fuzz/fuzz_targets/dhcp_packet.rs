//! The DHCP client on any Ethernet frame: `net::frame::parse` never panics, and neither does
//! the client's state machine (`Client::on_frame`, then `poll` on at later times) in any
//! state it can be driven into: INIT, SELECTING, REQUESTING (also after retransmissions),
//! BOUND, RENEWING, REBINDING and with the link down. What the client does stays sound:
//! every frame it sends is a DISCOVER or REQUEST from its MAC, UDP 68 to 67, that parses
//! back (and that `frame::parse` does not take as a server's reply); every lease it
//! configures has a usable address, a prefix of at most 32 and T1 and T2 within the lease;
//! it deconfigures only the lease it has configured, and drops one before configuring
//! another address.
//!
//! The first input byte steers, the rest is the frame: bits 0-2 the state (in the order
//! above, from 0 = INIT never polled), bit 3 whether the frame is patched to be for this
//! exchange (the client's transaction id and MAC written in, UDP and IPv4 checksums
//! recomputed, so mutations of the DHCP options get past those checks), bits 4-5 when it
//! arrives (0, 1, 301 or 700 s after the state was reached; leases are of 600 s), bit 6
//! whether it arrives twice.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use fluxnode_init::net::dhcp::{Client, Lease, Output};
use fluxnode_init::net::frame;
use libfuzzer_sys::fuzz_target;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, IpAddress, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const SERVER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
const LEASE_S: u32 = 600;

/// A server's reply, as QEMU's user network builds it.
fn reply(kind: DhcpMessageType, xid: u32) -> Vec<u8> {
    let mut dns = heapless::Vec::new();
    dns.push(Ipv4Addr::new(10, 0, 2, 3)).unwrap();
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: xid,
        secs: 0,
        client_hardware_address: EthernetAddress(MAC),
        client_ip: Ipv4Addr::UNSPECIFIED,
        your_ip: LEASED,
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
        lease_duration: Some(LEASE_S),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    frame::build(&repr, SERVER_MAC, MAC, SERVER, Ipv4Addr::BROADCAST, 67, 68)
}

/// Checks a frame the client sent; returns its transaction id.
fn sent(f: &[u8]) -> u32 {
    assert!(
        frame::parse(f).is_none(),
        "the client's own frame parses as a reply"
    );
    let caps = ChecksumCapabilities::default();
    let eth = EthernetFrame::new_checked(f).expect("an Ethernet frame");
    assert_eq!(eth.src_addr().0, MAC);
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("an IPv4 packet");
    let ip_repr = Ipv4Repr::parse(&ip, &caps).expect("a valid IPv4 header");
    let udp = UdpPacket::new_checked(ip.payload()).expect("a UDP datagram");
    let (src, dst) = (
        IpAddress::Ipv4(ip_repr.src_addr),
        IpAddress::Ipv4(ip_repr.dst_addr),
    );
    let udp_repr = UdpRepr::parse(&udp, &src, &dst, &caps).expect("a valid UDP header");
    assert_eq!((udp_repr.src_port, udp_repr.dst_port), (68, 67));
    let dhcp = DhcpPacket::new_checked(udp.payload()).expect("a DHCP message");
    let r = DhcpRepr::parse(&dhcp).expect("a valid DHCP message");
    assert_eq!(r.client_hardware_address.0, MAC);
    assert!(
        matches!(
            r.message_type,
            DhcpMessageType::Discover | DhcpMessageType::Request
        ),
        "the client sent a {:?}",
        r.message_type
    );
    r.transaction_id
}

/// Writes the exchange's transaction id and the client's MAC into a frame that is IPv4,
/// UDP and DHCP as far as lengths go, and recomputes its checksums.
fn patch(f: &mut [u8], xid: u32) {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut f[..]) else {
        return;
    };
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return;
    };
    let (src, dst) = (
        IpAddress::Ipv4(ip.src_addr()),
        IpAddress::Ipv4(ip.dst_addr()),
    );
    if let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) {
        if let Ok(mut dhcp) = DhcpPacket::new_checked(udp.payload_mut()) {
            dhcp.set_transaction_id(xid);
            dhcp.set_client_hardware_address(EthernetAddress(MAC));
        }
        udp.fill_checksum(&src, &dst);
    }
    ip.fill_checksum();
}

/// The client, and what it has told its driver so far.
struct Driver {
    client: Client,
    xid: u32,
    configured: Option<Lease>,
}

impl Driver {
    fn take(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send(f) => self.xid = sent(&f),
                Output::Configure(l) => {
                    assert!(
                        !l.address.is_unspecified() && !l.address.is_broadcast(),
                        "configured {}",
                        l.address
                    );
                    assert!(l.prefix <= 32, "configured a /{}", l.prefix);
                    assert!(
                        l.t1 < l.duration && l.t2 < l.duration,
                        "T1 {:?} and T2 {:?} of a {:?} lease",
                        l.t1,
                        l.t2,
                        l.duration
                    );
                    if let Some(old) = &self.configured {
                        assert!(
                            (old.address, old.prefix) == (l.address, l.prefix),
                            "{}/{} configured over {}/{} without dropping it",
                            l.address,
                            l.prefix,
                            old.address,
                            old.prefix
                        );
                    }
                    self.configured = Some(l);
                }
                Output::Deconfigure(l) => {
                    assert_eq!(
                        self.configured.as_ref(),
                        Some(&l),
                        "deconfigured a lease it had not configured"
                    );
                    self.configured = None;
                }
            }
        }
    }

    fn poll(&mut self, at: Instant) {
        let out = self.client.poll(at);
        self.take(out);
    }

    fn frame(&mut self, f: &[u8], at: Instant) {
        let out = self.client.on_frame(f, at);
        self.take(out);
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = frame::parse(data);
    let Some((&ctl, frame)) = data.split_first() else {
        return;
    };
    let _ = frame::parse(frame);

    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = Driver {
        client: Client::new(MAC, 7),
        xid: 0,
        configured: None,
    };
    let state = ctl & 7;
    // Where the state is reached.
    let mut at = t0;
    if state >= 1 {
        d.poll(t0);
        assert_eq!(d.client.state_name(), "selecting");
    }
    if state >= 2 {
        d.frame(&reply(DhcpMessageType::Offer, d.xid), t0);
        assert_eq!(d.client.state_name(), "requesting");
    }
    if (3..=6).contains(&state) {
        d.frame(&reply(DhcpMessageType::Ack, d.xid), t0);
        assert_eq!(d.client.state_name(), "bound");
        assert!(d.configured.is_some());
    }
    match state {
        4 => {
            at = t0 + s(u64::from(LEASE_S) / 2);
            d.poll(at);
            assert_eq!(d.client.state_name(), "renewing");
        }
        5 => {
            at = t0 + s(u64::from(LEASE_S) * 7 / 8);
            d.poll(t0 + s(u64::from(LEASE_S) / 2));
            d.poll(at);
            assert_eq!(d.client.state_name(), "rebinding");
        }
        6 => {
            let out = d.client.link_down();
            d.take(out);
            assert!(d.configured.is_none());
        }
        7 => {
            d.poll(t0 + s(4));
            at = t0 + s(12);
            d.poll(at);
            assert_eq!(d.client.state_name(), "requesting");
        }
        _ => {}
    }

    let mut f = frame.to_vec();
    if ctl & 0x08 != 0 {
        patch(&mut f, d.xid);
    }
    let arrives = at + s([0, 1, 301, 700][usize::from((ctl >> 4) & 3)]);
    d.frame(&f, arrives);
    if ctl & 0x40 != 0 {
        d.frame(&f, arrives + s(1));
    }
    if state == 6 {
        assert!(d.configured.is_none(), "configured with the link down");
    }
    for later in [0, 5, 300, 600, 86_400] {
        d.poll(arrives + s(later));
    }
    let _ = d.client.next_deadline();
});
