//! What a new tip or a reorganisation does to the pool: `prune` checks every sender's queue
//! again against the new state, and `restore` takes back the transactions of dropped blocks.
//! The re-check runs every queue (no signatures, a view per sender): its cost grows with the
//! pool, which `Limits` bounds, not with the chain.

use crate::address::Address;
use crate::ledger::Ledger;
use crate::tx::Tx;

use super::{admission, Mempool};

impl Mempool {
    /// Checks what remains against a new tip: drops spent nonces, what waited more than
    /// `max_age_blocks`, and what no longer applies (a confirm no longer due, a balance
    /// that no longer covers), each with the same sender's later transactions (they wait
    /// on its nonce). Returns what became ready (to relay).
    pub fn prune(&mut self, ledger: &Ledger) -> Vec<Tx> {
        let height = ledger.height();
        let senders: Vec<Address> = self.queues.keys().copied().collect();
        let mut relay = Vec::new();
        for a in senders {
            let mut q = self.take(&a);
            q.next = ledger.state.account(&a).nonce;
            let spent: Vec<u64> = q.txs.range(..q.next).map(|(n, _)| *n).collect();
            for n in spent {
                self.remove(&mut q, n);
            }
            let (next, limits) = (q.next, self.limits);
            let stale = q.txs.iter().find(|(n, e)| {
                **n - next > limits.max_ahead
                    || height.saturating_sub(e.since) > limits.max_age_blocks
            });
            if let Some(n) = stale.map(|(n, _)| *n) {
                self.cut(&mut q, n);
            }
            let run: Vec<&Tx> = q.txs.values().map(|e| &e.tx).collect();
            let broken = admission::check(ledger, &run)
                .err()
                .and_then(|r| run.get(r.index).map(|t| t.nonce));
            if let Some(n) = broken {
                self.cut(&mut q, n);
            }
            relay.extend(self.put(a, q));
        }
        relay
    }

    /// Takes back the transactions of blocks a reorganisation dropped (`ledger` is the new
    /// tip): each is admitted as a new one would be (its signature is not checked again),
    /// so what the new branch spent or no longer allows stays out, and so does what is past
    /// a sender's limits. Returns what became ready (to relay).
    pub fn restore(&mut self, txs: Vec<Tx>, ledger: &Ledger) -> Vec<Tx> {
        let mut txs: Vec<(Address, Tx)> = txs.into_iter().map(|t| (t.sender(), t)).collect();
        txs.sort_by_key(|(a, t)| (*a, t.nonce));
        let mut relay = Vec::new();
        for (_, tx) in txs {
            match self.admit(tx, ledger, true) {
                Ok(a) => relay.extend(a.relay),
                Err(e) => tracing::debug!("a transaction of a dropped block stays out: {e}"),
            }
        }
        relay
    }
}
