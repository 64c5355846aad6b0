//! Peers: accepting and dialing connections, the handshake, one task per peer that reads
//! its messages and one that writes ours, headers-first sync toward the best peer, gossip,
//! and misbehaviour scores that ban a peer for a while.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use super::outbox::PeerHandle;
use super::{lock, Shared};
use crate::p2p::{BlockIds, Conn, ConnError, Limits, Misbehaviour, Msg};

const HANDSHAKE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(60);
const SYNC_EVERY: Duration = Duration::from_millis(500);
const HEADERS_PER_ASK: u32 = 500;
const BLOCKS_PER_ASK: usize = 64;

/// Scores an offence; true when the peer is now banned (the caller drops it).
fn offence(s: &Shared, peer: SocketAddr, kind: Misbehaviour, reason: String) -> bool {
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
        let full = lock(&s.peers).len() >= s.cfg.max_peers;
        if banned || full {
            continue;
        }
        if let Ok(conn) = Conn::new(stream, limits()) {
            tokio::spawn(run(s.clone(), conn));
        }
    }
}

/// Keeps a connection to `addr` up, redialing every few seconds.
pub async fn dial(s: Arc<Shared>, addr: SocketAddr) {
    loop {
        let connected = lock(&s.peers).contains_key(&addr);
        let banned = lock(&s.scores).is_banned(addr.ip(), Instant::now());
        if !connected && !banned {
            if let Ok(conn) = Conn::connect(addr, limits(), HANDSHAKE).await {
                run(s.clone(), conn).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One peer: handshake, then its messages until it goes or is banned.
async fn run(s: Arc<Shared>, mut conn: Conn) {
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
    let (handle, outbox) = PeerHandle::new(hello.best_height, conn.solicited());
    {
        let mut peers = lock(&s.peers);
        if peers.contains_key(&key) || peers.len() >= s.cfg.max_peers {
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
                if !on_message(&s, key, peer, msg) {
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

fn reply(s: &Shared, key: SocketAddr, m: Msg) {
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
            let mut headers = Vec::new();
            for h in from_height..from_height.saturating_add(max.min(2000) as u64) {
                match s.store.block_at(h) {
                    Ok(Some(b)) => headers.push(b.header),
                    _ => break,
                }
            }
            reply(s, key, Msg::Headers(headers));
        }
        Msg::GetBlocks(ids) => {
            let blocks: Vec<_> = match ids {
                BlockIds::Heights(hs) => hs
                    .iter()
                    .filter_map(|h| s.store.block_at(*h).ok().flatten())
                    .collect(),
                BlockIds::Hashes(hs) => hs
                    .iter()
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
            let chain = lock(&s.ledger).params.chain;
            if !tx.verify(&chain) {
                return !offence(
                    s,
                    peer,
                    Misbehaviour::BadSignature,
                    "transaction with a bad signature".into(),
                );
            }
            let added = {
                let l = lock(&s.ledger);
                lock(&s.mempool).add(tx.clone(), &l).is_ok()
            };
            if added {
                s.broadcast(&Msg::Tx(tx), Some(key));
            }
        }
    }
    true
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
        return true;
    }
    for (i, h) in headers.iter().enumerate() {
        if !h.verify() {
            let why = format!("invalid header signature at height {}", h.height);
            return !offence(s, peer, Misbehaviour::BadSignature, why);
        }
        if i > 0 && (h.height != headers[i - 1].height + 1 || h.prev != headers[i - 1].hash()) {
            return !offence(
                s,
                peer,
                Misbehaviour::Garbage,
                format!("headers do not link at height {}", h.height),
            );
        }
    }
    // Where the peer's headers leave our chain (the first one we do not have).
    let ours = |h: u64| s.store.block_at(h).ok().flatten().map(|b| b.header.hash());
    let Some(split) = headers
        .iter()
        .position(|h| h.height > height || ours(h.height) != Some(h.hash()))
    else {
        return true; // nothing new
    };
    let d = &headers[split];
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
    if d.height <= height {
        // A competing branch from d: take it only if it is better (longer, or as long
        // with the lower block hash where the branches part). Its length is what these
        // linked headers show, never what the peer claims.
        let their_len = headers.last().map(|h| h.height).unwrap_or(0);
        let better = their_len > height
            || (their_len == height && ours(d.height).is_some_and(|o| d.hash() < o));
        if !better {
            return true;
        }
        if let Err(e) = s.rewind(d.height - 1) {
            warn!("peer {peer}: {e}");
            return true;
        }
    }
    let heights: Vec<u64> = headers[split..]
        .iter()
        .take(BLOCKS_PER_ASK)
        .map(|h| h.height)
        .collect();
    if let Some(p) = lock(&s.peers).get_mut(&key) {
        p.best_height = p
            .best_height
            .max(headers.last().map(|h| h.height).unwrap_or(0));
    }
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
    if let Some(p) = lock(&s.peers).get_mut(&key) {
        p.best_height = p.best_height.max(height);
    }
    match s.accept_block(&block) {
        Ok(true) => {
            debug!("block {height} from peer {peer}");
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
            // A block at a height we already have may simply be a sibling we lost to.
            if why.contains("does not follow") || why.contains("parent is not the tip") {
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

/// Every half second, asks the best peer that is ahead of us for the headers after our tip.
pub async fn sync_loop(s: Arc<Shared>) {
    let mut last = 0;
    loop {
        tokio::time::sleep(SYNC_EVERY).await;
        let height = lock(&s.ledger).height();
        // A batch is arriving (the height moved since the last tick): let it finish.
        let inflight =
            s.asked_to.load(std::sync::atomic::Ordering::Relaxed) > height && height != last;
        last = height;
        if inflight {
            continue;
        }
        let best = lock(&s.peers)
            .iter()
            .filter(|(_, p)| p.best_height > height)
            .max_by_key(|(_, p)| p.best_height)
            .map(|(k, _)| *k);
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
