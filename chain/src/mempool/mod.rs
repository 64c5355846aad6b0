//! The mempool: transactions waiting for a block, kept so that nobody can fill it for free or
//! pin it. A transaction enters only when a block could take it: the rules of
//! `State::apply` against the tip plus its sender's pending transactions (`admission`), a
//! nonce at most `max_ahead` past the account's, within per-sender and total limits. When
//! the pool is full a better one evicts the worst (`evict`). At every new tip what remains
//! is checked again and what waited too long is dropped (`prune`); the transactions of
//! blocks a reorganisation dropped come back (`restore`). A transaction is ready when no
//! nonce is missing before it: only ready ones go to blocks (`txs`) and to peers (the
//! `relay` lists the node sends).

mod admission;
mod evict;
#[cfg(test)]
mod tests;
mod tip;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::address::Address;
use crate::ledger::Ledger;
use crate::state::TxError;
use crate::tx::{Hash, Tx};
use evict::{Rank, Tail};

/// Pending transactions in all.
pub const MAX_TXS: usize = 10_000;
/// Their encoded bytes in all.
pub const MAX_BYTES: usize = 16 << 20;
/// Pending transactions of one sender.
pub const PER_SENDER: usize = 16;
/// How far past its account's nonce a transaction's nonce may be.
pub const MAX_AHEAD: u64 = 16;
/// Blocks a transaction may wait: an hour of 30 s slots.
pub const MAX_AGE_BLOCKS: u64 = 120;

/// The mempool's bounds (the constants above unless a test sets others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub per_sender: usize,
    pub max_ahead: u64,
    pub max_age_blocks: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_txs: MAX_TXS,
            max_bytes: MAX_BYTES,
            per_sender: PER_SENDER,
            max_ahead: MAX_AHEAD,
            max_age_blocks: MAX_AGE_BLOCKS,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("bad signature")]
    Signature,
    #[error("already known")]
    Known,
    #[error("fee {got} is under the minimum {min}")]
    Fee { got: u64, min: u64 },
    #[error("account {account}: nonce {got} is spent (account nonce {next})")]
    NonceSpent {
        account: Address,
        got: u64,
        next: u64,
    },
    #[error("account {account}: nonce {got} is more than {max} past the account nonce {next}")]
    NonceAhead {
        account: Address,
        got: u64,
        next: u64,
        max: u64,
    },
    #[error(
        "account {account}: nonce {nonce} is pending already; a replacement needs a fee of at least {need} (got {got})"
    )]
    Replacement {
        account: Address,
        nonce: u64,
        got: u64,
        need: u64,
    },
    #[error("account {account}: {pending} transactions pending, the most one sender may have")]
    SenderFull { account: Address, pending: usize },
    #[error("node {node}: a confirm is pending already (nonce {nonce})")]
    ConfirmPending { node: String, nonce: u64 },
    #[error(
        "account {account}: balance {balance} does not cover its pending transactions and this one ({need})"
    )]
    Funds {
        account: Address,
        balance: u64,
        need: u64,
    },
    /// A rule a block would apply.
    #[error("{0}")]
    Rule(TxError),
    #[error("account {account}: with it, pending nonce {nonce} would no longer apply: {why}")]
    Spoils {
        account: Address,
        nonce: u64,
        why: TxError,
    },
    #[error(
        "the mempool is full ({txs} transactions, {bytes} bytes) and fee {fee} for {size} bytes outbids nothing it could evict"
    )]
    Full {
        txs: usize,
        bytes: usize,
        fee: u64,
        size: usize,
    },
}

impl MempoolError {
    /// Whether the peer that sent the transaction is at fault: the refusal holds on any
    /// node, whatever its pool or its view of the chain (an honest peer relays only what
    /// it admitted, but its tip or its pool may differ from ours).
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, MempoolError::Signature)
    }
}

/// What an admission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub id: Hash,
    /// What became ready (the transaction itself, and those of its sender that waited on
    /// its nonce): what to send to peers.
    pub relay: Vec<Tx>,
}

#[derive(Debug)]
struct Entry {
    tx: Tx,
    id: Hash,
    size: usize,
    /// Admission order (older is lower).
    seq: u64,
    /// The tip's height at admission.
    since: u64,
    /// No nonce is missing between the account's and this one.
    ready: bool,
}

impl Entry {
    fn confirm(&self) -> bool {
        matches!(self.tx.body, crate::tx::TxBody::NodeConfirm { .. })
    }

    /// Ranked as a confirm is: above every fee (free, and bounded by its own rule).
    fn rank(&self) -> Rank {
        Rank::of(self.ready, self.tx.body.is_free(), self.tx.fee, self.size)
    }
}

/// One sender's pending transactions by nonce.
#[derive(Debug, Default)]
struct Queue {
    /// The account's nonce at the tip they were last checked against.
    next: u64,
    txs: BTreeMap<u64, Entry>,
}

#[derive(Debug, Default)]
pub struct Mempool {
    limits: Limits,
    queues: BTreeMap<Address, Queue>,
    ids: HashMap<Hash, (Address, u64)>,
    /// Every sender's last transaction: the eviction candidates.
    tails: BTreeSet<Tail>,
    bytes: usize,
    seq: u64,
}

impl Mempool {
    pub fn with_limits(limits: Limits) -> Self {
        Mempool {
            limits,
            ..Mempool::default()
        }
    }

    /// Admits `tx` against the ledger's tip; returns its id and what to relay.
    pub fn add(&mut self, tx: Tx, ledger: &Ledger) -> Result<Admitted, MempoolError> {
        self.admit(tx, ledger, false)
    }

    /// The ready transactions (what a block may take), each sender's in nonce order.
    pub fn txs(&self) -> Vec<Tx> {
        self.queues
            .values()
            .flat_map(|q| q.txs.values().take_while(|e| e.ready))
            .map(|e| e.tx.clone())
            .collect()
    }

    /// Every pending transaction, ready or not.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The encoded bytes of every pending transaction.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many pending transactions are ready.
    pub fn ready(&self) -> usize {
        self.queues
            .values()
            .map(|q| q.txs.values().take_while(|e| e.ready).count())
            .sum()
    }

    /// How many transactions `sender` has pending.
    pub fn pending_from(&self, sender: &Address) -> usize {
        self.queues.get(sender).map_or(0, |q| q.txs.len())
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn get(&self, id: &Hash) -> Option<&Tx> {
        let (a, n) = self.ids.get(id)?;
        Some(&self.queues.get(a)?.txs.get(n)?.tx)
    }

    /// Takes a sender's queue out to change it (its tail leaves the candidates).
    fn take(&mut self, sender: &Address) -> Queue {
        let q = self.queues.remove(sender).unwrap_or_default();
        if let Some((_, e)) = q.txs.last_key_value() {
            self.tails.remove(&Tail::of(*sender, e));
        }
        q
    }

    /// Puts a changed queue back: marks what is ready, makes its tail a candidate; returns
    /// what became ready.
    fn put(&mut self, sender: Address, mut q: Queue) -> Vec<Tx> {
        let mut want = q.next;
        let mut fresh = Vec::new();
        for (n, e) in q.txs.iter_mut() {
            let ready = *n == want;
            if ready {
                want += 1;
                if !e.ready {
                    fresh.push(e.tx.clone());
                }
            }
            e.ready = ready;
        }
        if let Some((_, e)) = q.txs.last_key_value() {
            self.tails.insert(Tail::of(sender, e));
            self.queues.insert(sender, q);
        }
        fresh
    }

    fn remove(&mut self, q: &mut Queue, nonce: u64) {
        if let Some(e) = q.txs.remove(&nonce) {
            self.ids.remove(&e.id);
            self.bytes -= e.size;
        }
    }

    /// Removes `nonce` and everything after it.
    fn cut(&mut self, q: &mut Queue, nonce: u64) {
        for e in q.txs.split_off(&nonce).into_values() {
            self.ids.remove(&e.id);
            self.bytes -= e.size;
        }
    }
}
