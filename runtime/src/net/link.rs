//! Links, addresses and routes through rtnetlink, with netlink-packet-route's message types
//! (the crate libcontainer already brings) over a blocking netlink-sys socket: the node
//! bridge, veth pairs (one end created straight into another network namespace), bridge
//! port isolation, addresses and a default route. Each request asks for an ACK; a kernel
//! error comes back naming the operation, the link and the errno. The socket acts in the
//! network namespace of the process that opened it.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("rtnetlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {why}")]
    Reply { what: String, why: String },
}

/// One rtnetlink socket in the caller's network namespace.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

fn link(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m
}

impl Rtnl {
    pub fn open() -> Result<Self, LinkError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(LinkError::Socket)?;
        sock.bind_auto().map_err(LinkError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(LinkError::Socket)?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends one request and reads until its ACK (or, for a dump, its end); returns the
    /// messages that came back.
    fn request(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, LinkError> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        // Always an ACK, so every request (a get too) ends with one.
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        let kernel = |source| LinkError::Kernel {
            what: what.to_owned(),
            source,
        };
        self.sock.send(&buf, 0).map_err(kernel)?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 1 << 16];
        loop {
            let n = self.sock.recv(&mut &mut rx[..], 0).map_err(kernel)?;
            let mut at = 0;
            while at < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[at..n]).map_err(
                    |e| LinkError::Reply {
                        what: what.to_owned(),
                        why: e.to_string(),
                    },
                )?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(LinkError::Reply {
                        what: what.to_owned(),
                        why: "a message of length 0".into(),
                    });
                }
                at += len;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => {
                                Err(kernel(std::io::Error::from_raw_os_error(-code.get())))
                            }
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of the link named `name`, if there is one.
    pub fn index(&mut self, name: &str) -> Result<Option<u32>, LinkError> {
        let mut m = link(0);
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(
            &format!("find link {name}"),
            RouteNetlinkMessage::GetLink(m),
            0,
        ) {
            Ok(found) => Ok(found.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(LinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn must(&mut self, name: &str) -> Result<u32, LinkError> {
        self.index(name)?.ok_or_else(|| LinkError::Reply {
            what: format!("link {name}"),
            why: "no such link".into(),
        })
    }

    /// Creates the bridge `name` unless it exists; returns its index.
    pub fn bridge(&mut self, name: &str) -> Result<u32, LinkError> {
        if let Some(i) = self.index(name)? {
            return Ok(i);
        }
        let mut m = link(0);
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let what = format!("create bridge {name}");
        self.request(
            &what,
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.must(name)
    }

    /// Creates a veth pair: `name` here and `peer` in the network namespace of process
    /// `peer_pid` (the host's, from inside a container's namespace).
    pub fn veth(&mut self, name: &str, peer: &str, peer_pid: u32) -> Result<(), LinkError> {
        let mut p = link(0);
        p.attributes.push(LinkAttribute::IfName(peer.to_owned()));
        p.attributes.push(LinkAttribute::NetNsPid(peer_pid));
        let mut m = link(0);
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        let what = format!("create veth {name} (peer {peer})");
        self.request(
            &what,
            RouteNetlinkMessage::NewLink(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Sets link `name` up.
    pub fn up(&mut self, name: &str) -> Result<(), LinkError> {
        let mut m = link(self.must(name)?);
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(
            &format!("set {name} up"),
            RouteNetlinkMessage::SetLink(m),
            NLM_F_ACK,
        )?;
        Ok(())
    }

    /// Makes link `name` a port of bridge `bridge`, isolated from the bridge's other
    /// isolated ports (apps never reach each other at layer 2).
    pub fn enslave_isolated(&mut self, name: &str, bridge: &str) -> Result<(), LinkError> {
        let index = self.must(name)?;
        let master = self.must(bridge)?;
        let mut m = link(index);
        m.attributes.push(LinkAttribute::Controller(master));
        let what = format!("attach {name} to {bridge}");
        self.request(&what, RouteNetlinkMessage::SetLink(m), NLM_F_ACK)?;
        let mut m = link(index);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::Isolated(
                true,
            )])),
        ]));
        // A port's bridge settings travel as link info, which only RTM_NEWLINK applies (to an
        // existing link when NLM_F_CREATE is absent); RTM_SETLINK acknowledges and ignores it.
        let what = format!("isolate {name} on {bridge}");
        self.request(&what, RouteNetlinkMessage::NewLink(m), NLM_F_ACK)?;
        Ok(())
    }

    /// Adds `ip/prefix` to link `name` (an address it has already is fine).
    pub fn address(&mut self, name: &str, ip: Ipv4Addr, prefix: u8) -> Result<(), LinkError> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix;
        m.header.index = self.must(name)?;
        m.attributes.push(AddressAttribute::Local(IpAddr::V4(ip)));
        m.attributes.push(AddressAttribute::Address(IpAddr::V4(ip)));
        let what = format!("add {ip}/{prefix} to {name}");
        match self.request(
            &what,
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(LinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// The default route through `gateway` on link `name`.
    pub fn default_route(&mut self, name: &str, gateway: Ipv4Addr) -> Result<(), LinkError> {
        let index = self.must(name)?;
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = 254; // main
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        m.attributes.push(RouteAttribute::Oif(index));
        let what = format!("default route via {gateway} on {name}");
        self.request(
            &what,
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        Ok(())
    }

    /// Deletes link `name` (a veth takes its peer with it); a missing link is fine.
    pub fn delete(&mut self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index(name)? else {
            return Ok(());
        };
        self.request(
            &format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(link(index)),
            NLM_F_ACK,
        )?;
        Ok(())
    }
}
