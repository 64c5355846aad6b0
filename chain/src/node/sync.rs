//! Headers-first sync: every half second a peer that is ahead is asked for the headers after
//! our tip (in turn among those ahead); the headers that come are checked cheap things
//! first (links, then where they leave our chain, then the signatures of those to be used)
//! and lead to asking for the blocks that extend our tip, or to fetching a competing branch
//! (`branch`). A peer's claimed height only says whom to ask; an empty answer corrects it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use super::peer::{offence, reply};
use super::{branch, equivocation, lock, Shared};
use crate::p2p::msg::MAX_GET_BLOCKS;
use crate::p2p::{BlockIds, Misbehaviour, Msg};

const SYNC_EVERY: Duration = Duration::from_millis(500);
pub const HEADERS_PER_ASK: u32 = 500;
pub const BLOCKS_PER_ASK: usize = 64;

pub fn on_headers(
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
