//! Peers: accepting and dialing connections, the handshake, one task per peer that reads
//! its messages and one that writes ours, headers-first sync toward the best peer, gossip,
//! and misbehaviour scores that ban a peer for a while.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::outbox::{PeerHandle, BLOCK_READS};
use super::{branch, equivocation};
use super::{lock, Shared};
use crate::p2p::msg::MAX_GET_BLOCKS;
use crate::p2p::{BlockIds, Conn, ConnError, Limits, Misbehaviour, Msg};

const HANDSHAKE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(60);
const SYNC_EVERY: Duration = Duration::from_millis(500);
pub const HEADERS_PER_ASK: u32 = 500;
const BLOCKS_PER_ASK: usize = 64;

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
        Msg::Headers(headers) => return on_headers(s, key, peer, headers),
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

fn on_headers(
    s: &Shared,
    key: SocketAddr,
    peer: SocketAddr,
    headers: Vec<crate::block::Header>,
) -> bool {
    let (height, max_reorg) = {
        let l = lock(&s.ledger);
        (l.height(), l.params.max_reorg)
    };
    if headers.is_empty() {
        // Nothing after our tip: a peer that said it was ahead is not (or will not say),
        // and is no longer asked first.
        let claimed = {
            let mut peers = lock(&s.peers);
            let Some(p) = peers.get_mut(&key) else {
                return true;
            };
            let lower = p.best_height.min(height);
            std::mem::replace(&mut p.best_height, lower)
        };
        if claimed > height {
            let why = format!("claimed height {claimed} and sent no header after {height}");
            info!("peer {peer}: {why}; asked no more first");
            return !offence(s, peer, Misbehaviour::Undelivered, why);
        }
        return true;
    }
    // Cheap checks first: the links (hashes), then where they leave our chain (the height
    // index), and only then the signatures, of the headers that will be used.
    for (i, h) in headers.iter().enumerate().skip(1) {
        if h.height != headers[i - 1].height + 1 || h.prev != headers[i - 1].hash() {
            return !offence(
                s,
                peer,
                Misbehaviour::Garbage,
                format!("headers do not link at height {}", h.height),
            );
        }
    }
    // Where the peer's headers leave our chain (the first one we do not have).
    let ours = |h: u64| s.store.hash_at(h).ok().flatten();
    let Some(split) = headers
        .iter()
        .position(|h| h.height > height || ours(h.height) != Some(h.hash()))
    else {
        return true; // nothing new
    };
    let headers = &headers[split..headers.len().min(split + MAX_GET_BLOCKS)];
    if let Some(h) = headers.iter().find(|h| !h.verify()) {
        let why = format!("invalid header signature at height {}", h.height);
        return !offence(s, peer, Misbehaviour::BadSignature, why);
    }
    for h in headers {
        equivocation::note(s, h);
    }
    let d = &headers[0];
    let parent_ok = d.height == 1 || ours(d.height - 1) == Some(d.prev);
    if parent_ok && !producer_may_follow(s, d, height) {
        debug!(
            "peer {peer}: header {} is by a producer not eligible there; ignored",
            d.height
        );
        return true;
    }
    if !parent_ok {
        // The fork is below these headers: ask from further back (bounded).
        if d.height <= 1 || height.saturating_sub(d.height) > max_reorg {
            return true;
        }
        let from = d.height.saturating_sub(32).max(1);
        debug!(
            "peer {peer}: its chain parts from ours below {}; asking from {from}",
            d.height
        );
        reply(
            s,
            key,
            Msg::GetHeaders {
                from_height: from,
                max: HEADERS_PER_ASK,
            },
        );
        return true;
    }
    if let Some(p) = lock(&s.peers).get_mut(&key) {
        p.best_height = p
            .best_height
            .max(headers.last().map(|h| h.height).unwrap_or(0));
    }
    if d.height <= height {
        // A competing branch from d. Its length is what these linked headers show, never
        // what the peer claims; one shorter than ours cannot win. Its blocks are fetched and
        // the switch is decided on them (`branch`, `reorg`): nothing is undone before.
        let their_len = headers.last().map(|h| h.height).unwrap_or(0);
        if their_len >= height {
            branch::start(s, key, d.height - 1, headers, height);
        }
        return true;
    }
    let heights: Vec<u64> = headers
        .iter()
        .take(BLOCKS_PER_ASK)
        .map(|h| h.height)
        .collect();
    if let Some(top) = heights.last() {
        s.asked_to.store(*top, std::sync::atomic::Ordering::Relaxed);
    }
    reply(s, key, Msg::GetBlocks(BlockIds::Heights(heights)));
    true
}

/// Whether `d`, whose parent is our block at `d.height - 1`, is by a producer that may make
/// it. On our tip that is exact: eligible for its slot. Below our tip, where a branch's state
/// may differ from ours in who is useful, it is a node registered on the chain (the state
/// at the fork point is not at hand here). A header signed by any other key cannot start a
/// switch or raise what a peer is known to have.
fn producer_may_follow(s: &Shared, d: &crate::block::Header, height: u64) -> bool {
    let l = lock(&s.ledger);
    if d.height == height + 1 {
        l.rank(&d.producer, d.slot).is_some()
    } else {
        l.state.nodes.contains_key(&d.producer)
    }
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
        // Not on our tip (a sibling, a block of another branch): its signature is checked
        // here, so that two blocks of one producer for one slot are caught.
        _ if block.header.verify() => equivocation::note(s, &block.header),
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

/// Every half second, asks a peer that is ahead of us for the headers after our tip, in
/// turn among those ahead (a peer that claims a height it does not serve is corrected by
/// its empty answer, and cannot hold the node's sync).
pub async fn sync_loop(s: Arc<Shared>) {
    let mut last = 0;
    let mut turn = 0usize;
    loop {
        tokio::time::sleep(SYNC_EVERY).await;
        branch::expire(&s);
        let height = lock(&s.ledger).height();
        // A batch is arriving (the height moved since the last tick): let it finish.
        let inflight =
            s.asked_to.load(std::sync::atomic::Ordering::Relaxed) > height && height != last;
        last = height;
        if inflight {
            continue;
        }
        turn = turn.wrapping_add(1);
        let best = {
            let peers = lock(&s.peers);
            let ahead: Vec<SocketAddr> = peers
                .iter()
                .filter(|(_, p)| p.best_height > height)
                .map(|(k, _)| *k)
                .collect();
            (!ahead.is_empty()).then(|| ahead[turn % ahead.len()])
        };
        if let Some(k) = best {
            reply(
                &s,
                k,
                Msg::GetHeaders {
                    from_height: height + 1,
                    max: HEADERS_PER_ASK,
                },
            );
        } else {
            // Peers tell their height in pings' absence only through blocks; ask all now
            // and then so a node that fell behind learns it.
            s.broadcast(
                &Msg::GetHeaders {
                    from_height: height + 1,
                    max: 1,
                },
                None,
            );
        }
    }
}
