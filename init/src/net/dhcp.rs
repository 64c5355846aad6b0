//! The DHCPv4 client state machine (RFC 2131): INIT, SELECTING, REQUESTING, BOUND,
//! RENEWING (unicast at T1), REBINDING (broadcast at T2), and back to INIT when the lease
//! is lost, refused or the link goes down. It does no I/O: time comes in, frames come in
//! and go out, and it says when to configure or drop an address.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{DhcpMessageType, DhcpRepr, EthernetAddress};

use super::frame::{self, Message};

const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const PARAMS: &[u8] = &[1, 3, 6, 51, 58, 59];
/// Requests in REQUESTING before starting over.
const MAX_REQUESTS: u32 = 4;

/// An address lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server: Ipv4Addr,
    pub server_mac: [u8; 6],
    pub duration: Duration,
    pub t1: Duration,
    pub t2: Duration,
    pub acquired: Instant,
}

/// What the client asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send(Vec<u8>),
    Configure(Lease),
    Deconfigure(Lease),
}

#[derive(Debug, Clone)]
enum State {
    Init,
    Selecting {
        xid: u32,
        sent: Instant,
        tries: u32,
    },
    Requesting {
        xid: u32,
        sent: Instant,
        tries: u32,
        offer: Lease,
    },
    Bound {
        lease: Lease,
    },
    Renewing {
        lease: Lease,
        xid: u32,
        sent: Instant,
    },
    Rebinding {
        lease: Lease,
        xid: u32,
        sent: Instant,
    },
}

pub struct Client {
    mac: [u8; 6],
    state: State,
    next_xid: u32,
    link_up: bool,
}

/// Retransmission delay after `tries` unanswered messages: 4, 8, 16, 32, 64 s.
fn retry(tries: u32) -> Duration {
    Duration::from_secs(4u64 << tries.min(4))
}

/// The prefix length of a contiguous netmask.
pub fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

fn lease_from(msg: &Message, now: Instant) -> Option<Lease> {
    if msg.your_ip.is_unspecified() || msg.your_ip.is_broadcast() {
        return None;
    }
    let duration = Duration::from_secs(msg.lease_s.unwrap_or(3600).max(60) as u64);
    let t1 = msg
        .renew_s
        .map(|s| Duration::from_secs(s as u64))
        .filter(|t| *t < duration)
        .unwrap_or(duration / 2);
    let t2 = msg
        .rebind_s
        .map(|s| Duration::from_secs(s as u64))
        .filter(|t| *t > t1 && *t < duration)
        .unwrap_or(duration * 7 / 8);
    Some(Lease {
        address: msg.your_ip,
        prefix: msg.subnet_mask.and_then(prefix_of).unwrap_or(24),
        router: msg.router.filter(|r| !r.is_unspecified()),
        dns: msg.dns.clone(),
        server: msg.server_id?,
        server_mac: msg.src_mac,
        duration,
        t1,
        t2,
        acquired: now,
    })
}

impl Client {
    pub fn new(mac: [u8; 6], xid_seed: u32) -> Self {
        Client {
            mac,
            state: State::Init,
            next_xid: xid_seed,
            link_up: true,
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Init => "init",
            State::Selecting { .. } => "selecting",
            State::Requesting { .. } => "requesting",
            State::Bound { .. } => "bound",
            State::Renewing { .. } => "renewing",
            State::Rebinding { .. } => "rebinding",
        }
    }

    fn xid(&mut self) -> u32 {
        self.next_xid = self
            .next_xid
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12_345);
        self.next_xid
    }

    fn message(&self, kind: DhcpMessageType, xid: u32) -> DhcpRepr<'static> {
        DhcpRepr {
            message_type: kind,
            transaction_id: xid,
            secs: 0,
            client_hardware_address: EthernetAddress(self.mac),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: false,
            requested_ip: None,
            client_identifier: Some(EthernetAddress(self.mac)),
            server_identifier: None,
            parameter_request_list: Some(PARAMS),
            dns_servers: None,
            max_size: Some(1500),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        }
    }

    fn discover(&mut self, now: Instant, tries: u32) -> Output {
        let xid = match self.state {
            State::Selecting { xid, .. } => xid,
            _ => self.xid(),
        };
        self.state = State::Selecting {
            xid,
            sent: now,
            tries,
        };
        self.broadcast_unconfigured(&self.message(DhcpMessageType::Discover, xid))
    }

    /// A message sent before the client has an address: from 0.0.0.0 to everyone.
    fn broadcast_unconfigured(&self, repr: &DhcpRepr) -> Output {
        Output::Send(frame::client_frame(
            repr,
            self.mac,
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
        ))
    }

    fn request_offer(&self, offer: &Lease, xid: u32) -> Output {
        let mut repr = self.message(DhcpMessageType::Request, xid);
        repr.requested_ip = Some(offer.address);
        repr.server_identifier = Some(offer.server);
        self.broadcast_unconfigured(&repr)
    }

    /// A renewal (unicast to the server) or rebinding (broadcast) request for `lease`.
    fn request_extend(&self, lease: &Lease, xid: u32, unicast: bool) -> Output {
        let mut repr = self.message(DhcpMessageType::Request, xid);
        repr.client_ip = lease.address;
        let (mac, ip) = if unicast {
            (lease.server_mac, lease.server)
        } else {
            (BROADCAST_MAC, Ipv4Addr::BROADCAST)
        };
        Output::Send(frame::client_frame(&repr, self.mac, mac, lease.address, ip))
    }

    /// Advances timers: first discovery, retransmissions, T1, T2 and expiry.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        if !self.link_up {
            return Vec::new();
        }
        match self.state.clone() {
            State::Init => vec![self.discover(now, 0)],
            State::Selecting { sent, tries, .. } if now >= sent + retry(tries) => {
                vec![self.discover(now, tries + 1)]
            }
            State::Requesting {
                xid,
                sent,
                tries,
                offer,
            } if now >= sent + retry(tries) => {
                if tries + 1 >= MAX_REQUESTS {
                    self.state = State::Init;
                    return self.poll(now);
                }
                self.state = State::Requesting {
                    xid,
                    sent: now,
                    tries: tries + 1,
                    offer: offer.clone(),
                };
                vec![self.request_offer(&offer, xid)]
            }
            State::Bound { lease } if now >= lease.acquired + lease.t1 => {
                let xid = self.xid();
                self.state = State::Renewing {
                    lease: lease.clone(),
                    xid,
                    sent: now,
                };
                vec![self.request_extend(&lease, xid, true)]
            }
            State::Renewing { lease, xid, sent } | State::Rebinding { lease, xid, sent } => {
                let rebinding = matches!(self.state, State::Rebinding { .. });
                if now >= lease.acquired + lease.duration {
                    self.state = State::Init;
                    let mut out = vec![Output::Deconfigure(lease)];
                    out.extend(self.poll(now));
                    return out;
                }
                if !rebinding && now >= lease.acquired + lease.t2 {
                    let xid = self.xid();
                    self.state = State::Rebinding {
                        lease: lease.clone(),
                        xid,
                        sent: now,
                    };
                    return vec![self.request_extend(&lease, xid, false)];
                }
                let until = lease.acquired + if rebinding { lease.duration } else { lease.t2 };
                let gap = (until.saturating_duration_since(now) / 2)
                    .clamp(Duration::from_secs(4), Duration::from_secs(60));
                if now >= sent + gap {
                    self.state = if rebinding {
                        State::Rebinding {
                            lease: lease.clone(),
                            xid,
                            sent: now,
                        }
                    } else {
                        State::Renewing {
                            lease: lease.clone(),
                            xid,
                            sent: now,
                        }
                    };
                    return vec![self.request_extend(&lease, xid, !rebinding)];
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Takes a received frame; anything not for this client's current exchange is ignored.
    pub fn on_frame(&mut self, bytes: &[u8], now: Instant) -> Vec<Output> {
        let Some(msg) = frame::parse(bytes) else {
            return Vec::new();
        };
        if msg.client_mac != self.mac || !self.link_up {
            return Vec::new();
        }
        match (self.state.clone(), msg.kind) {
            (State::Selecting { xid, .. }, DhcpMessageType::Offer) if msg.xid == xid => {
                let Some(offer) = lease_from(&msg, now) else {
                    return Vec::new();
                };
                let out = self.request_offer(&offer, xid);
                self.state = State::Requesting {
                    xid,
                    sent: now,
                    tries: 0,
                    offer,
                };
                vec![out]
            }
            (State::Requesting { xid, .. }, DhcpMessageType::Ack) if msg.xid == xid => {
                match lease_from(&msg, now) {
                    Some(lease) => {
                        self.state = State::Bound {
                            lease: lease.clone(),
                        };
                        vec![Output::Configure(lease)]
                    }
                    None => Vec::new(),
                }
            }
            (State::Requesting { xid, .. }, DhcpMessageType::Nak) if msg.xid == xid => {
                self.state = State::Init;
                self.poll(now)
            }
            (
                State::Renewing {
                    lease: old, xid, ..
                }
                | State::Rebinding {
                    lease: old, xid, ..
                },
                kind,
            ) if msg.xid == xid => match (kind, lease_from(&msg, now)) {
                (DhcpMessageType::Ack, Some(lease)) => {
                    let mut out = Vec::new();
                    if lease.address != old.address || lease.prefix != old.prefix {
                        out.push(Output::Deconfigure(old));
                    }
                    self.state = State::Bound {
                        lease: lease.clone(),
                    };
                    out.push(Output::Configure(lease));
                    out
                }
                (DhcpMessageType::Nak, _) => {
                    self.state = State::Init;
                    let mut out = vec![Output::Deconfigure(old)];
                    out.extend(self.poll(now));
                    out
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The link lost its carrier: the address goes, and nothing is sent until it is back.
    pub fn link_down(&mut self) -> Vec<Output> {
        self.link_up = false;
        let state = std::mem::replace(&mut self.state, State::Init);
        match state {
            State::Bound { lease }
            | State::Renewing { lease, .. }
            | State::Rebinding { lease, .. } => {
                vec![Output::Deconfigure(lease)]
            }
            _ => Vec::new(),
        }
    }

    /// The carrier is back: start over with a discovery.
    pub fn link_up(&mut self, now: Instant) -> Vec<Output> {
        self.link_up = true;
        self.state = State::Init;
        self.poll(now)
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.link_up {
            return None;
        }
        match &self.state {
            State::Init => Some(Instant::now()),
            State::Selecting { sent, tries, .. } | State::Requesting { sent, tries, .. } => {
                Some(*sent + retry(*tries))
            }
            State::Bound { lease } => Some(lease.acquired + lease.t1),
            State::Renewing { sent, .. } | State::Rebinding { sent, .. } => {
                Some(*sent + Duration::from_secs(4))
            }
        }
    }
}

#[cfg(test)]
mod tests;
