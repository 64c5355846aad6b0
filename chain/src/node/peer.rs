//! Peers: accepting and dialing connections (with a cap per address and slots kept for
//! dialed peers), the handshake, one task per peer that reads its messages and one that
//! writes ours, serving headers and blocks within a read budget per peer, gossip, and
//! misbehaviour scores that ban a peer for a while. Sync is in `sync`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::outbox::{PeerHandle, BLOCK_READS};
use super::sync::HEADERS_PER_ASK;
use super::{branch, equivocation, sync};
use super::{lock, Shared};
use crate::p2p::{BlockIds, Conn, ConnError, Limits, Misbehaviour, Msg};

const HANDSHAKE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(60);

/// Scores an offence; true when the peer is now banned (the caller drops it).
pub fn offence(s: &Shared, peer: SocketAddr, kind: Misbehaviour, reason: String) -> bool {
    match lock(&s.scores).record(peer, kind, reason.clone(), Instant::now()) {
        Some(ban) => {
            warn!("{ban}");
            true
        }
        None => {
            debug!("peer {peer}: {reason}");
            false
        }
    }
}

pub async fn listen(s: Arc<Shared>, listener: TcpListener) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let banned = lock(&s.scores).is_banned(addr.ip(), Instant::now());
        if banned || !inbound_room(&s, addr) {
            continue;
        }
        if let Ok(conn) = Conn::new(stream, limits()) {
            tokio::spawn(run(s.clone(), conn, true));
        }
    }
}

/// The most peers that dialed us from one IP address.
pub const MAX_INBOUND_PER_IP: usize = 4;

/// Whether a peer dialing from `addr` may take a slot among `peers`: at most
/// `MAX_INBOUND_PER_IP` from its address, and a quarter of the slots (at least 2) kept for
/// peers we dial.
fn room_for(peers: &HashMap<SocketAddr, PeerHandle>, max_peers: usize, addr: SocketAddr) -> bool {
    let keep = (max_peers / 4).max(2);
    let inbound = peers.values().filter(|p| p.inbound).count();
    let same_ip = peers
        .iter()
        .filter(|(k, p)| p.inbound && k.ip() == addr.ip())
        .count();
    let room = inbound + keep < max_peers && same_ip < MAX_INBOUND_PER_IP;
    if !room {
        debug!("peer {addr}: refused ({inbound} inbound, {same_ip} from its address)");
    }
    room
}

/// The check at accept (before the handshake costs anything); `run` checks again when the
/// peer takes its slot.
fn inbound_room(s: &Shared, addr: SocketAddr) -> bool {
    room_for(&lock(&s.peers), s.cfg.max_peers, addr)
}

/// Keeps a connection to `addr` up, redialing every few seconds.
pub async fn dial(s: Arc<Shared>, addr: SocketAddr) {
    loop {
        let connected = lock(&s.peers).contains_key(&addr);
        let banned = lock(&s.scores).is_banned(addr.ip(), Instant::now());
        if !connected && !banned {
            if let Ok(conn) = Conn::connect(addr, limits(), HANDSHAKE).await {
                run(s.clone(), conn, false).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One peer: handshake, then its messages until it goes or is banned. Each message is
/// handled on tokio's blocking pool (it may read and write the store, and verify
/// signatures), in order, so the async workers only move bytes.
async fn run(s: Arc<Shared>, mut conn: Conn, inbound: bool) {
    let peer = conn.peer();
    let hello = match conn.handshake(&s.hello(), HANDSHAKE).await {
        Ok(h) => h,
        Err(e) => {
            if let Some(kind) = e.misbehaviour() {
                offence(&s, peer, kind, e.to_string());
            }
            debug!("{e}");
            return;
        }
    };
    // The key of a dialed peer is its address; an accepted one is known by where it
    // listens, so it is not dialed twice.
    let key = if hello.listen_port != 0 && s.cfg.peers.iter().all(|p| *p != peer) {
        SocketAddr::new(peer.ip(), hello.listen_port)
    } else {
        peer
    };
    // The height a peer claims only says whom to ask first: it never makes a branch
    // better (on_headers measures a branch by the headers that came).
    let (mut handle, outbox) = PeerHandle::new(hello.best_height, conn.solicited());
    handle.inbound = inbound;
    {
        let mut peers = lock(&s.peers);
        let full =
            peers.len() >= s.cfg.max_peers || (inbound && !room_for(&peers, s.cfg.max_peers, peer));
        if peers.contains_key(&key) || full {
            return;
        }
        peers.insert(key, handle);
    }
    info!(
        "peer {peer} connected (claims height {})",
        hello.best_height
    );
    let (mut reader, writer) = conn.into_split();
    let sender = tokio::spawn(outbox.run(writer));
    loop {
        match reader.recv(IDLE).await {
            Ok(msg) => {
                let s2 = s.clone();
                let keep = tokio::task::spawn_blocking(move || on_message(&s2, key, peer, msg))
                    .await
                    .unwrap_or(false);
                if !keep {
                    break;
                }
            }
            Err(e) => {
                if fail(&s, peer, &e) {
                    break;
                }
            }
        }
    }
    sender.abort();
    lock(&s.peers).remove(&key);
    info!("peer {peer} disconnected");
}

/// Handles a receive error; true when the connection should end.
fn fail(s: &Shared, peer: SocketAddr, e: &ConnError) -> bool {
    let banned = e
        .misbehaviour()
        .is_some_and(|kind| offence(s, peer, kind, e.to_string()));
    banned || e.is_fatal()
}

pub fn reply(s: &Shared, key: SocketAddr, m: Msg) {
    if let Some(p) = lock(&s.peers).get(&key) {
        if !p.send(&m) {
            debug!("peer {key}: queue full, a {} dropped", m.name());
        }
    }
}

/// One message from a peer; false ends the connection.
fn on_message(s: &Shared, key: SocketAddr, peer: SocketAddr, msg: Msg) -> bool {
    match msg {
        Msg::Ping(n) => reply(s, key, Msg::Pong(n)),
        Msg::Pong(_) => {}
        Msg::Bye { reason } => {
            debug!("peer {peer} said bye: {reason}");
            return false;
        }
        Msg::Hello(_) => {
            return !offence(s, peer, Misbehaviour::Garbage, "a second hello".into());
        }
        Msg::GetHeaders { from_height, max } => {
            // What the peer's budget allows, read without the blocks' transactions.
            let want = max.min(crate::p2p::msg::MAX_HEADERS as u32);
            let n = budget(s, key, want, 1);
            let mut headers = Vec::new();
            for h in from_height..from_height.saturating_add(n as u64) {
                match s.store.header_at(h) {
                    Ok(Some(hd)) => headers.push(hd),
                    _ => break,
                }
            }
            reply(s, key, Msg::Headers(headers));
        }
        Msg::GetBlocks(ids) => {
            let asked = match &ids {
                BlockIds::Heights(v) => v.len(),
                BlockIds::Hashes(v) => v.len(),
            };
            let n = budget(s, key, asked as u32, BLOCK_READS) as usize;
            let blocks: Vec<_> = match ids {
                BlockIds::Heights(hs) => hs
                    .iter()
                    .take(n)
                    .filter_map(|h| s.store.block_at(*h).ok().flatten())
                    .collect(),
                BlockIds::Hashes(hs) => hs
                    .iter()
                    .take(n)
                    .filter_map(|h| s.store.block(h).ok().flatten())
                    .collect(),
            };
            for b in blocks {
                reply(s, key, Msg::Block(b));
            }
        }
        Msg::Headers(headers) => return sync::on_headers(s, key, peer, headers),
        Msg::Block(block) => return on_block(s, key, peer, block),
        Msg::Tx(tx) => {
            let id = tx.id();
            let admitted = {
                let l = lock(&s.ledger);
                lock(&s.mempool).add(tx, &l)
            };
            match admitted {
                // Only what was admitted and is ready goes on; the peer has the transaction
                // it sent, not necessarily those of its sender that were waiting on it.
                Ok(a) => {
                    for t in a.relay {
                        let from = (t.id() == id).then_some(key);
                        s.broadcast(&Msg::Tx(t), from);
                    }
                }
                Err(e) if e.is_peer_fault() => {
                    return !offence(
                        s,
                        peer,
                        Misbehaviour::BadSignature,
                        format!("transaction {}: {e}", hex::encode(&id[..8])),
                    );
                }
                // A full pool, a sender at its limit or a tip that differs from the
                // peer's: an honest peer may send these, so they cost it nothing.
                Err(e) => debug!(
                    "peer {peer}: transaction {} refused: {e}",
                    hex::encode(&id[..8])
                ),
            }
        }
    }
    true
}

/// How many of `want` items, each costing `reads` store reads, the peer's serve budget
/// allows now (the rest is not served; an honest peer asks again).
fn budget(s: &Shared, key: SocketAddr, want: u32, reads: u32) -> u32 {
    let mut peers = lock(&s.peers);
    let Some(p) = peers.get_mut(&key) else {
        return 0;
    };
    let got = p
        .serve
        .take_up_to(want.saturating_mul(reads), Instant::now())
        / reads;
    if got < want {
        debug!("peer {key}: serving {got} of {want} (its read budget)");
    }
    got
}

/// Whether a block that is not on our tip is worth a signature check for equivocation: its
/// producer is a registered node and its slot is one the notes still cover.
fn worth_a_check(s: &Shared, h: &crate::block::Header) -> bool {
    let l = lock(&s.ledger);
    let now = l.slot_of(super::now_secs());
    l.state.nodes.contains_key(&h.producer)
        && h.slot + equivocation::KEEP_SLOTS >= now
        && h.slot <= now + 1
}

fn on_block(s: &Shared, key: SocketAddr, peer: SocketAddr, block: crate::block::Block) -> bool {
    let height = block.header.height;
    if let Some(keep) = branch::on_block(s, key, peer, &block) {
        return keep;
    }
    let accepted = s.accept_block(&block);
    match &accepted {
        // Checked by the ledger.
        Ok(true) => equivocation::note(s, &block.header),
        // Not on our tip (a sibling, a block of another branch): when it names a registered
        // producer and a recent slot, its signature is checked here, so that two blocks of
        // one producer for one slot are caught; a false one costs the peer its connection.
        _ if worth_a_check(s, &block.header) => {
            if !block.header.verify() {
                let why = format!("block {height} with a bad producer signature");
                return !offence(s, peer, Misbehaviour::BadSignature, why);
            }
            equivocation::note(s, &block.header);
        }
        _ => {}
    }
    match accepted {
        Ok(true) => {
            debug!("block {height} from peer {peer}");
            if let Some(p) = lock(&s.peers).get_mut(&key) {
                p.best_height = p.best_height.max(height);
            }
            s.broadcast(&Msg::Block(block), Some(key));
            // The last block of a sync batch: ask for the next one now, not at the next tick.
            let ahead = lock(&s.peers)
                .get(&key)
                .is_some_and(|p| p.best_height > height);
            if ahead && s.asked_to.load(std::sync::atomic::Ordering::Relaxed) == height {
                reply(
                    s,
                    key,
                    Msg::GetHeaders {
                        from_height: height + 1,
                        max: HEADERS_PER_ASK,
                    },
                );
            }
            true
        }
        Ok(false) => true,
        Err(why) => {
            // A block at a height we already have may simply be a sibling we lost to. One
            // on a parent we do not have, at our height or above, is the tip of another
            // branch: its headers (asked from a little below) say whether it is better.
            if why.contains("parent is not the tip") {
                let ours = lock(&s.ledger).height();
                if height >= ours && height <= ours + 1 {
                    reply(
                        s,
                        key,
                        Msg::GetHeaders {
                            from_height: height.saturating_sub(32).max(1),
                            max: HEADERS_PER_ASK,
                        },
                    );
                }
                return true;
            }
            if why.contains("does not follow") {
                return true;
            }
            let kind = if why.contains("in the future") {
                Misbehaviour::FutureBlock
            } else if why.contains("signature") {
                Misbehaviour::BadSignature
            } else {
                Misbehaviour::InvalidBlock
            };
            !offence(s, peer, kind, why)
        }
    }
}

/// Per-peer limits: a sync batch is up to 64 blocks plus headers in a burst, so the message
/// rate is higher than `p2p`'s default (which would take a fast sync for a flood).
pub fn limits() -> Limits {
    Limits {
        msgs_per_sec: 1_000,
        burst: 2_000,
        ..Limits::default()
    }
}
