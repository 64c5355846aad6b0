//! The ledger: the state at the tip and the rules that take it from one block to the next.
//! `apply` checks a block completely (height, parent, slot and time, signature, merkle root,
//! that its producer is useful and eligible for the slot and waited its rank's delay, every
//! transaction, the rewards, that the supply changed by exactly what the block minted less
//! what apps paid, and the state digest) on a copy, and only then makes it the tip; it
//! returns the block's changes and its undo record (the prior value of everything it
//! changed), and `undo` takes the tip back with that record. `produce` builds the block a
//! useful, eligible node signs. The state digest commits to the whole state (see `digest`).

use std::collections::{BTreeMap, VecDeque};

use ring::signature::Ed25519KeyPair;

use crate::assign;
use crate::block::{Block, Header};
use crate::consensus;
use crate::digest::Acc;
use crate::genesis::{Genesis, GenesisError};
use crate::params::Params;
use crate::state::{Changes, State, TxError};
use crate::tx::{Hash, PublicKey, Tier, Tx, TxBody};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {height}: {why}")]
pub struct BlockError {
    pub height: u64,
    pub why: String,
}

/// What a block does to the ledger, worked out before it is kept.
struct Outcome {
    state: State,
    acc: Acc,
    digest: Hash,
    target: u64,
    counts: VecDeque<u32>,
    changes: Changes,
    prior: Changes,
}

/// What it takes to go back from a block to its parent: the parent's tip record and the
/// prior value of every entry the block changed (None: it was absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub tip: Header,
    pub digest: Hash,
    pub target: u64,
    pub counts: VecDeque<u32>,
    pub entries: Changes,
}

/// A block applied: the new value of every entry it changed, and its undo record.
#[derive(Debug, Clone)]
pub struct Applied {
    pub changes: Changes,
    pub undo: Undo,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    pub genesis: Genesis,
    pub genesis_hash: Hash,
    /// The hash of the height-0 header (the parent of block 1).
    pub root: Hash,
    pub params: Params,
    pub state: State,
    /// The state's accumulator, from which `digest` is made.
    pub acc: Acc,
    pub tip: Header,
    pub digest: Hash,
    pub target: u64,
    /// Eligible nodes per slot over the last blocks (a missed slot counts as 0).
    pub counts: VecDeque<u32>,
    /// The placement of app instances and the useful set, kept up to date per block.
    pub view: assign::View,
}

/// The index of the first transaction whose signature does not verify, checking them on
/// up to 4 threads (a block's transfers are mostly signature checks).
pub fn first_bad_signature(txs: &[Tx], chain: &Hash) -> Option<usize> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    if threads < 2 || txs.len() < 64 {
        return txs.iter().position(|t| !t.verify(chain));
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = txs
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .position(|t| !t.verify(chain))
                        .map(|i| n * chunk + i)
                })
            })
            .collect();
        parts
            .into_iter()
            .filter_map(|p| p.join().unwrap_or(Some(0)))
            .min()
    })
}

impl Ledger {
    /// The ledger at height 0.
    pub fn new(genesis: Genesis) -> Result<Self, GenesisError> {
        let mut state = genesis.state()?;
        state.take_changes();
        let acc = Acc::of(&state);
        let digest = acc.digest(genesis.target);
        let tip = Header {
            height: 0,
            prev: genesis.hash(),
            slot: 0,
            time: genesis.time,
            producer: [0; 32],
            tx_root: [0; 32],
            state_digest: digest,
            signature: [0; 64],
        };
        let params = genesis.params();
        let view = assign::View::build(&state, &params);
        Ok(Ledger {
            params,
            view,
            genesis_hash: genesis.hash(),
            root: tip.hash(),
            target: genesis.target,
            genesis,
            state,
            acc,
            tip,
            digest,
            counts: VecDeque::new(),
        })
    }

    pub fn height(&self) -> u64 {
        self.tip.height
    }

    pub fn slot_of(&self, time: u64) -> u64 {
        consensus::slot_of(time, self.genesis.time, self.genesis.slot_secs)
    }

    /// The useful nodes now, with their tiers (kept, not computed: see `assign::View`).
    pub fn useful(&self) -> &BTreeMap<PublicKey, Tier> {
        self.view.useful()
    }

    /// The rank of `node` among the eligible nodes of `slot` on the current tip, if any: one
    /// eligibility hash per useful node (the produce loop keeps it per tip and slot).
    pub fn rank(&self, node: &PublicKey, slot: u64) -> Option<usize> {
        let useful = self.useful();
        if !useful.contains_key(node) {
            return None;
        }
        consensus::ranking(useful.keys(), &self.tip.hash(), slot, self.target)
            .iter()
            .position(|(k, _)| k == node)
    }

    /// Recomputes what is derived from the state (accumulator, digest, kept view) after the
    /// state was set directly (loading, tests and benchmarks that build large states).
    pub fn rederive(&mut self) {
        self.acc = Acc::of(&self.state);
        self.digest = self.acc.digest(self.target);
        self.view = assign::View::build(&self.state, &self.params);
    }

    fn err(&self, why: impl Into<String>) -> BlockError {
        BlockError {
            height: self.tip.height + 1,
            why: why.into(),
        }
    }

    /// Runs a block's transactions and the per-block rules on a copy of the state. With
    /// `skip_bad`, failing transactions are left out (production) instead of failing it.
    fn execute(
        &self,
        producer: &PublicKey,
        slot: u64,
        time: u64,
        txs: &[Tx],
        skip_bad: bool,
    ) -> Result<(Outcome, Vec<Tx>), BlockError> {
        let height = self.tip.height + 1;
        let useful = self.useful();
        if !useful.contains_key(producer) {
            return Err(self.err(format!(
                "producer {} is not a useful node",
                hex::encode(&producer[..8])
            )));
        }
        let ranking = consensus::ranking(useful.keys(), &self.tip.hash(), slot, self.target);
        let Some(rank) = ranking.iter().position(|(k, _)| k == producer) else {
            return Err(self.err(format!(
                "producer {} is not eligible in slot {slot}",
                hex::encode(&producer[..8])
            )));
        };
        // Rank r may produce r/8 of a slot in: its block's time (whole seconds) must not
        // be before the second in which that delay ends.
        let slot_ms = self.genesis.slot_secs.saturating_mul(1000);
        let may_from = self
            .genesis
            .time
            .saturating_mul(1000)
            .saturating_add(slot.saturating_mul(slot_ms))
            .saturating_add(
                consensus::rank_delay(rank, std::time::Duration::from_millis(slot_ms)).as_millis()
                    as u64,
            );
        if time.saturating_mul(1000).saturating_add(999) < may_from {
            return Err(self.err(format!(
                "producer {} of rank {rank} signed at {time}, before its delay ended",
                hex::encode(&producer[..8])
            )));
        }
        let mut state = self.state.clone();
        let supply_before = state.supply();
        // What apps pay (burned) and what the block mints, for the conservation check.
        let mut burned: u128 = 0;
        let mut minted: u128 = 0;
        let mut fees: u64 = 0;
        let mut kept = Vec::new();
        // A block's signatures are checked on every core first (a producer's own choice of
        // transactions was checked as it chose them).
        if !skip_bad {
            if let Some(i) = first_bad_signature(txs, &self.params.chain) {
                return Err(self.err(format!("transaction {i}: {}", TxError::Signature)));
            }
        }
        for (i, tx) in txs.iter().enumerate() {
            let applied = if skip_bad {
                state.apply(tx, height, &self.params)
            } else {
                state.apply_verified(tx, height, &self.params)
            };
            match applied {
                Ok(fee) => {
                    fees = fees.saturating_add(fee);
                    if let TxBody::AppRegister(spec) | TxBody::AppUpdate(spec) = &tx.body {
                        burned += u128::from(State::price(spec, &self.params).unwrap_or(0));
                    }
                    kept.push(tx.clone());
                }
                Err(e) if skip_bad => {
                    let _: TxError = e;
                }
                Err(e) => return Err(self.err(format!("transaction {i}: {e}"))),
            }
        }
        let p = &self.params;
        let (producer_share, tier_shares) = consensus::split(
            consensus::block_reward(height, self.genesis.slot_secs, p),
            p,
        );
        if let Some(n) = state.nodes.get(producer) {
            let owner = n.owner;
            state.credit(owner, producer_share.saturating_add(fees));
            minted += u128::from(producer_share);
        }
        for (i, tier) in Tier::ALL.into_iter().enumerate() {
            let next = useful
                .iter()
                .filter(|(_, t)| **t == tier)
                .filter_map(|(k, _)| state.nodes.get(k).map(|n| (n.last_paid, *k, n.owner)))
                .min();
            if let Some((_, key, owner)) = next {
                state.credit(owner, tier_shares[i]);
                minted += u128::from(tier_shares[i]);
                state.paid(&key, height);
            }
        }
        state.end_block(height, &self.params);
        // Conservation, on every node at every height: coins and locked collateral change
        // by what the block mints less what apps pay, nothing else.
        let supply_after = state.supply();
        if supply_after + burned != supply_before + minted {
            return Err(self.err(format!(
                "the supply would go from {supply_before} to {supply_after}, not by the \
                 {minted} minted less the {burned} paid for apps"
            )));
        }
        let mut counts = self.counts.clone();
        for _ in 0..slot.saturating_sub(self.tip.slot + 1).min(p.target_window) {
            counts.push_back(0);
        }
        counts.push_back(ranking.len() as u32);
        while counts.len() as u64 > p.target_window {
            counts.pop_front();
        }
        let counts_vec: Vec<u32> = counts.iter().copied().collect();
        let target =
            consensus::next_target(self.target, &counts_vec, self.genesis.want_eligible, p);
        let changes = state.take_changes();
        let mut acc = self.acc.clone();
        let mut prior = Vec::with_capacity(changes.len());
        for (k, new) in &changes {
            let old = self.state.entry_bytes(k);
            acc.change(k, old.as_deref(), new.as_deref());
            prior.push((k.clone(), old));
        }
        let digest = acc.digest(target);
        Ok((
            Outcome {
                state,
                acc,
                digest,
                target,
                counts,
                changes,
                prior,
            },
            kept,
        ))
    }

    /// Checks `block` against the tip and, when every rule holds, makes it the new tip.
    /// `now` (unix seconds) refuses blocks from the future. Returns the changed entries
    /// and the undo record (for storage).
    pub fn apply(&mut self, block: &Block, now: u64) -> Result<Applied, BlockError> {
        let h = &block.header;
        if h.height != self.tip.height + 1 {
            return Err(self.err(format!(
                "height {} does not follow {}",
                h.height, self.tip.height
            )));
        }
        if h.prev != self.tip.hash() {
            return Err(self.err("its parent is not the tip"));
        }
        if h.slot <= self.tip.slot {
            return Err(self.err(format!(
                "slot {} is not after the tip's {}",
                h.slot, self.tip.slot
            )));
        }
        if self.slot_of(h.time) != h.slot {
            return Err(self.err(format!("time {} is not in slot {}", h.time, h.slot)));
        }
        if h.time > now.saturating_add(self.genesis.slot_secs) {
            return Err(self.err(format!("time {} is in the future (now {now})", h.time)));
        }
        if !h.verify() {
            return Err(self.err("bad producer signature"));
        }
        if h.tx_root != Block::tx_root(&block.txs) {
            return Err(self.err("the transaction root does not match"));
        }
        let (txs, bytes) = (block.txs.len() as u64, block.encode().len() as u64);
        if txs > self.params.max_block_txs || bytes > self.params.max_block_bytes {
            return Err(self.err(format!(
                "{txs} transactions in {bytes} bytes: over the limits of {} and {}",
                self.params.max_block_txs, self.params.max_block_bytes
            )));
        }
        let (out, _) = self.execute(&h.producer, h.slot, h.time, &block.txs, false)?;
        if out.digest != h.state_digest {
            return Err(self.err("the state digest does not match"));
        }
        let undo = Undo {
            tip: std::mem::replace(&mut self.tip, h.clone()),
            digest: std::mem::replace(&mut self.digest, out.digest),
            target: std::mem::replace(&mut self.target, out.target),
            counts: std::mem::replace(&mut self.counts, out.counts),
            entries: out.prior,
        };
        self.state = out.state;
        self.acc = out.acc;
        self.view.update(
            &self.state,
            &self.params,
            out.changes.iter().map(|(k, _)| k),
        );
        Ok(Applied {
            changes: out.changes,
            undo,
        })
    }

    /// Takes the tip back to its parent with the tip block's undo record. Refuses a record
    /// that is not the tip's, or whose result does not match the parent's digest (a damaged
    /// record); after that refusal the ledger is part-way back, so reorganisations undo on
    /// a copy (no state is cloned per block).
    pub fn undo(&mut self, block: &Block, undo: &Undo) -> Result<(), BlockError> {
        let bad = |why: String| BlockError {
            height: block.header.height,
            why,
        };
        if block.header != self.tip || undo.tip.hash() != block.header.prev {
            return Err(bad("its undo record is not the tip's".into()));
        }
        let mut done = 0;
        let mut failed = None;
        for (k, old) in &undo.entries {
            let now = self.state.entry_bytes(k);
            if let Err(e) = self.state.set_entry(k.clone(), old.as_deref()) {
                failed = Some(bad(format!("its undo record: {e}")));
                break;
            }
            self.acc.change(k, now.as_deref(), old.as_deref());
            done += 1;
        }
        // The view follows the state even part-way back.
        self.view.update(
            &self.state,
            &self.params,
            undo.entries[..done].iter().map(|(k, _)| k),
        );
        if let Some(e) = failed {
            return Err(e);
        }
        if self.acc.digest(undo.target) != undo.digest {
            return Err(bad(
                "undone, the state does not match its parent's digest".into()
            ));
        }
        self.tip = undo.tip.clone();
        self.digest = undo.digest;
        self.target = undo.target;
        self.counts = undo.counts.clone();
        Ok(())
    }

    /// The block `key` (a useful node eligible in `slot`) signs at `time`, with the
    /// mempool's transactions that apply, by fee, within the block limits.
    pub fn produce(
        &self,
        key: &Ed25519KeyPair,
        slot: u64,
        time: u64,
        mempool: &[Tx],
        max_txs: usize,
    ) -> Result<Block, BlockError> {
        use ring::signature::KeyPair;
        let producer: PublicKey = key.public_key().as_ref().try_into().expect("32 bytes");
        let max_txs = max_txs.min(self.params.max_block_txs as usize);
        let max_bytes = self.params.max_block_bytes as usize;
        // Each id is hashed once (ids were recomputed per pair before: quadratic hashing).
        let mut by_fee: Vec<(&Tx, Hash)> = mempool.iter().map(|t| (t, t.id())).collect();
        by_fee.sort_by_key(|(t, id)| (std::cmp::Reverse(t.fee), t.nonce, *id));
        let mut taken = std::collections::HashSet::new();
        // Passes in fee order until nothing more applies (a later nonce may need an
        // earlier one first), within the count and byte limits.
        let mut chosen: Vec<Tx> = Vec::new();
        let mut bytes = 0usize;
        let mut trial = self.state.clone();
        let height = self.tip.height + 1;
        loop {
            let mut progress = false;
            for (tx, id) in &by_fee {
                if chosen.len() >= max_txs || taken.contains(id) {
                    continue;
                }
                let size = tx.encode().len() + 4;
                if bytes + size > max_bytes - 1024 {
                    continue;
                }
                if trial.apply(tx, height, &self.params).is_ok() {
                    taken.insert(*id);
                    chosen.push((*tx).clone());
                    bytes += size;
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        let (out, kept) = self.execute(&producer, slot, time, &chosen, true)?;
        let mut header = Header {
            height,
            prev: self.tip.hash(),
            slot,
            time,
            producer,
            tx_root: Block::tx_root(&kept),
            state_digest: out.digest,
            signature: [0; 64],
        };
        header.sign(key);
        Ok(Block { header, txs: kept })
    }
}

#[cfg(test)]
mod tests;
