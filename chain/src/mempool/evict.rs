//! Who leaves a full mempool for a newcomer. Only the last pending transaction of a sender
//! (its tail) may be evicted, so nothing left behind waits on a nonce that is gone; taking
//! a tail makes the one before it a candidate. Candidates go lowest rank first, and the
//! oldest first among equals. A rank is the class, then the fee per byte: a transaction
//! behind a nonce gap ranks lowest (no block can take it yet), a confirm ranks highest (it
//! is free, but only a registered node that is due may send one, one at a time, so their
//! number is bounded by the registry; ranking them by fee would let anyone paying the
//! minimum push every node's confirm out). A newcomer evicts only what ranks below it.

use std::collections::{BTreeSet, HashMap};

use crate::address::Address;

use super::{Entry, Mempool};

/// How much a pending transaction is worth keeping; higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    /// 0: behind a nonce gap; 1: ready; 2: a ready node confirm.
    class: u8,
    /// Fee per byte, in millionths of a unit.
    rate: u128,
}

impl Rank {
    pub(super) fn of(ready: bool, confirm: bool, fee: u64, size: usize) -> Rank {
        Rank {
            class: match (ready, confirm) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            },
            rate: u128::from(fee) * 1_000_000 / (size.max(1) as u128),
        }
    }
}

/// A sender's last pending transaction, as an eviction candidate: lowest rank first, then
/// the oldest (lowest admission number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Tail {
    pub rank: Rank,
    pub seq: u64,
    pub sender: Address,
}

impl Tail {
    pub(super) fn of(sender: Address, e: &Entry) -> Tail {
        Tail {
            rank: e.rank(),
            seq: e.seq,
            sender,
        }
    }
}

impl Mempool {
    /// Whether the lowest candidate another sender offers ranks under `rank` (a cheap
    /// first look before a full pool checks a newcomer).
    pub(super) fn outbids_lowest(&self, rank: Rank, sender: &Address) -> bool {
        self.tails
            .iter()
            .find(|t| t.sender != *sender)
            .is_some_and(|t| t.rank < rank)
    }

    /// The transactions (sender, nonce) to evict, in order, so that a newcomer of `rank`
    /// from `sender` finds `count` more places and `bytes` more bytes; None when that would
    /// take one that ranks as high as the newcomer. The newcomer's own sender is never
    /// touched (its queue may lead up to the newcomer).
    pub(super) fn plan(
        &self,
        sender: &Address,
        rank: Rank,
        count: usize,
        bytes: usize,
    ) -> Option<Vec<(Address, u64)>> {
        let mut tails = self.tails.iter().filter(|t| t.sender != *sender).peekable();
        // The candidates that taking a tail uncovered.
        let mut uncovered: BTreeSet<Tail> = BTreeSet::new();
        let mut taken: HashMap<Address, u64> = HashMap::new();
        let mut out = Vec::new();
        let (mut freed, mut freed_bytes) = (0usize, 0usize);
        while freed < count || freed_bytes < bytes {
            let next = match (tails.peek(), uncovered.first()) {
                (Some(t), Some(u)) if u < *t => uncovered.pop_first(),
                (Some(_), _) => tails.next().copied(),
                (None, _) => uncovered.pop_first(),
            }?;
            if next.rank >= rank {
                return None;
            }
            let q = self.queues.get(&next.sender)?;
            let (nonce, e) = match taken.get(&next.sender) {
                Some(n) => q.txs.range(..*n).next_back(),
                None => q.txs.last_key_value(),
            }?;
            out.push((next.sender, *nonce));
            freed += 1;
            freed_bytes += e.size;
            taken.insert(next.sender, *nonce);
            if let Some((_, before)) = q.txs.range(..*nonce).next_back() {
                uncovered.insert(Tail::of(next.sender, before));
            }
        }
        Some(out)
    }
}
