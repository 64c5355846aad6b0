//! A competing branch being fetched: when a peer's headers show a branch from below our tip
//! that may be better, its blocks are asked for by hash and gathered here; the switch is
//! tried (`reorg`) only once every block it needs has come. Nothing is undone before that.
//! One branch is fetched at a time, from the peer that showed it; a peer that does not
//! deliver within `DELIVER_WITHIN` loses the fetch and scores for it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::peer::{offence, reply};
use super::sync::HEADERS_PER_ASK;
use super::{lock, Shared};
use crate::block::{Block, Header};
use crate::p2p::msg::MAX_GET_BLOCKS;
use crate::p2p::{BlockIds, Misbehaviour, Msg};
use crate::tx::Hash;

/// How long a peer has to deliver the blocks of the branch it showed.
pub const DELIVER_WITHIN: Duration = Duration::from_secs(10);

pub struct Pending {
    peer: SocketAddr,
    fork: u64,
    hashes: Vec<Hash>,
    blocks: Vec<Option<Block>>,
    since: Instant,
}

/// Starts fetching the branch whose headers (linked, from the block after `fork`) a peer
/// sent, up to one block past our tip: as many as can make it longer than ours. A fetch
/// already under way from another peer is left to finish.
pub fn start(s: &Shared, key: SocketAddr, fork: u64, headers: &[Header], our_height: u64) {
    let hashes: Vec<Hash> = headers
        .iter()
        .take_while(|h| h.height <= our_height + 1)
        .take(MAX_GET_BLOCKS)
        .map(|h| h.hash())
        .collect();
    if hashes.is_empty() {
        return;
    }
    {
        let mut b = lock(&s.branch);
        if b.as_ref().is_some_and(|p| p.peer != key) {
            return;
        }
        *b = Some(Pending {
            peer: key,
            fork,
            blocks: vec![None; hashes.len()],
            hashes: hashes.clone(),
            since: Instant::now(),
        });
    }
    debug!(
        "peer {key}: a branch from height {} may be better; fetching {} block(s)",
        fork + 1,
        hashes.len()
    );
    reply(s, key, Msg::GetBlocks(BlockIds::Hashes(hashes)));
}

/// Takes a block that belongs to the branch being fetched from this peer (None: it does
/// not, and the caller handles it). When it completes the branch, the switch is tried;
/// returns false when the peer is to be dropped.
pub fn on_block(s: &Shared, key: SocketAddr, peer: SocketAddr, block: &Block) -> Option<bool> {
    let blocks = {
        let mut b = lock(&s.branch);
        let p = b.as_mut().filter(|p| p.peer == key)?;
        let i = p.hashes.iter().position(|h| *h == block.header.hash())?;
        p.blocks[i] = Some(block.clone());
        if p.blocks.iter().any(Option::is_none) {
            return Some(true);
        }
        let p = b.take()?;
        (p.fork, p.blocks.into_iter().flatten().collect::<Vec<_>>())
    };
    let (fork, blocks) = blocks;
    match s.reorg(fork, &blocks) {
        Ok((applied, invalid)) => {
            info!(
                "peer {peer}: switched to its branch at height {} ({applied} block(s))",
                fork + 1
            );
            if let Some(tip) = blocks.get(applied.saturating_sub(1)) {
                s.broadcast(&Msg::Block(tip.clone()), Some(key));
            }
            if let Some(e) = invalid {
                return Some(!offence(s, peer, Misbehaviour::InvalidBlock, e.to_string()));
            }
            let height = fork + applied as u64;
            reply(
                s,
                key,
                Msg::GetHeaders {
                    from_height: height + 1,
                    max: HEADERS_PER_ASK,
                },
            );
            Some(true)
        }
        Err(e) => {
            if let Some(bad) = e.invalid() {
                let kind = if bad.why.contains("in the future") {
                    Misbehaviour::FutureBlock
                } else {
                    Misbehaviour::InvalidBlock
                };
                return Some(!offence(s, peer, kind, format!("its branch: {bad}")));
            }
            debug!("peer {peer}: branch at {} not taken: {e}", fork + 1);
            Some(true)
        }
    }
}

/// Drops a fetch its peer has not delivered in time, and scores the peer.
pub fn expire(s: &Shared) {
    let gone = {
        let mut b = lock(&s.branch);
        match b.as_ref() {
            Some(p) if p.since.elapsed() > DELIVER_WITHIN => b.take(),
            _ => None,
        }
    };
    if let Some(p) = gone {
        let got = p.blocks.iter().filter(|b| b.is_some()).count();
        let why = format!(
            "showed a branch from height {} and delivered {got} of its {} block(s)",
            p.fork + 1,
            p.hashes.len()
        );
        info!("peer {}: {why}; nothing was undone", p.peer);
        offence(s, p.peer, Misbehaviour::Undelivered, why);
    }
}
