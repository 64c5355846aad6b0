//! Admission: whether a block could take a transaction, against the tip plus its sender's
//! pending transactions. Cheap checks come first (known id, fee, nonce window, the sender's
//! limit, one confirm per node, a quick look at whether a full pool could make room), then
//! the rules: the sender's queue with the newcomer in its place goes in nonce order through
//! `State::apply` on a view of the tip state that holds only the entries it reads
//! (`State::view`), at the height of the next block. A queue is at most
//! `Limits::per_sender` long, so this costs a few map copies and no signature: each is
//! verified once, last, before the newcomer takes its place (evicting what it outranks).

use crate::address::Address;
use crate::ledger::Ledger;
use crate::state::TxError;
use crate::tx::Tx;

use super::evict::Rank;
use super::{Admitted, Entry, Mempool, MempoolError, Queue};

impl Mempool {
    /// Admission. Cheap checks come first, then the rules on the sender's queue, then the
    /// signature (unless the transaction comes from a block), then room.
    pub(super) fn admit(
        &mut self,
        tx: Tx,
        ledger: &Ledger,
        verified: bool,
    ) -> Result<Admitted, MempoolError> {
        let id = tx.id();
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Known);
        }
        let free = tx.body.is_free();
        let confirm = matches!(tx.body, crate::tx::TxBody::NodeConfirm { .. });
        let min = ledger.params.min_fee;
        if !free && tx.fee < min {
            return Err(MempoolError::Fee { got: tx.fee, min });
        }
        let sender = tx.sender();
        let next = ledger.state.account(&sender).nonce;
        if tx.nonce < next {
            return Err(MempoolError::NonceSpent {
                account: sender,
                got: tx.nonce,
                next,
            });
        }
        let max = self.limits.max_ahead;
        if tx.nonce - next > max {
            return Err(MempoolError::NonceAhead {
                account: sender,
                got: tx.nonce,
                next,
                max,
            });
        }
        let empty = Queue::default();
        let queue = self.queues.get(&sender).unwrap_or(&empty);
        let pending = queue.txs.range(next..);
        let replaced = queue.txs.get(&tx.nonce);
        match replaced {
            Some(old) => {
                let need = old.tx.fee.saturating_add(min);
                if tx.fee < need {
                    return Err(MempoolError::Replacement {
                        account: sender,
                        nonce: tx.nonce,
                        got: tx.fee,
                        need,
                    });
                }
            }
            None if pending.clone().count() >= self.limits.per_sender => {
                return Err(MempoolError::SenderFull {
                    account: sender,
                    pending: pending.count(),
                });
            }
            None => {}
        }
        if confirm {
            if let Some((n, _)) = pending
                .clone()
                .find(|(n, e)| **n != tx.nonce && e.confirm())
            {
                return Err(MempoolError::ConfirmPending {
                    node: hex::encode(&tx.signer[..8]),
                    nonce: *n,
                });
            }
        }
        let replacing = replaced.is_some();
        let size = tx.encode().len();
        let ready = (next..tx.nonce).all(|n| queue.txs.contains_key(&n));
        let rank = Rank::of(ready, free, tx.fee, size);
        let (kept, kept_bytes) = match replaced {
            Some(old) => (self.len() - 1, self.bytes - old.size),
            None => (self.len(), self.bytes),
        };
        let over = (kept + 1).saturating_sub(self.limits.max_txs);
        let over_bytes = (kept_bytes + size).saturating_sub(self.limits.max_bytes);
        let full = || MempoolError::Full {
            txs: self.len(),
            bytes: self.bytes,
            fee: tx.fee,
            size,
        };
        if (over > 0 || over_bytes > 0) && !self.outbids_lowest(rank, &sender) {
            return Err(full());
        }

        // The rules, on the sender's queue with this transaction in its place.
        let mut run: Vec<&Tx> = pending
            .filter(|(n, _)| **n != tx.nonce)
            .map(|(_, e)| &e.tx)
            .collect();
        let at = run.partition_point(|t| t.nonce < tx.nonce);
        run.insert(at, &tx);
        if let Err(r) = check(ledger, &run) {
            return Err(refused(ledger, sender, &run, at, r));
        }
        if !verified && !tx.verify(&ledger.params.chain) {
            return Err(MempoolError::Signature);
        }
        let victims = if over > 0 || over_bytes > 0 {
            self.plan(&sender, rank, over, over_bytes)
                .ok_or_else(full)?
        } else {
            Vec::new()
        };

        for (a, n) in victims {
            let mut q = self.take(&a);
            self.cut(&mut q, n);
            self.put(a, q);
        }
        let mut q = self.take(&sender);
        q.next = next;
        let spent: Vec<u64> = q.txs.range(..next).map(|(n, _)| *n).collect();
        for n in spent.into_iter().chain(replacing.then_some(tx.nonce)) {
            self.remove(&mut q, n);
        }
        self.seq += 1;
        self.bytes += size;
        self.ids.insert(id, (sender, tx.nonce));
        q.txs.insert(
            tx.nonce,
            Entry {
                tx,
                id,
                size,
                seq: self.seq,
                since: ledger.height(),
                ready: false,
            },
        );
        let relay = self.put(sender, q);
        Ok(Admitted { id, relay })
    }
}

/// The first transaction of a queue that no longer applies, and why.
#[derive(Debug)]
pub(super) struct Refusal {
    pub index: usize,
    pub why: TxError,
}

/// Runs `txs`, one sender's, in nonce order, as the next block would. A missing nonce
/// counts as filled by a transaction that costs nothing: the balance must cover every
/// pending transaction, and one after a gap is checked against the state as it stands.
pub(super) fn check(ledger: &Ledger, txs: &[&Tx]) -> Result<(), Refusal> {
    let height = ledger.height() + 1;
    let mut view = ledger.state.view(txs.iter().copied());
    for (index, tx) in txs.iter().enumerate() {
        let acc = view.accounts.entry(tx.sender()).or_default();
        acc.nonce = acc.nonce.max(tx.nonce);
        view.apply_verified(tx, height, &ledger.params)
            .map_err(|why| Refusal { index, why })?;
    }
    Ok(())
}

/// The error for a newcomer whose queue check failed at `r`, the newcomer being at `at`.
pub(super) fn refused(
    ledger: &Ledger,
    sender: Address,
    txs: &[&Tx],
    at: usize,
    r: Refusal,
) -> MempoolError {
    if r.index != at {
        return MempoolError::Spoils {
            account: sender,
            nonce: txs.get(r.index).map_or(0, |t| t.nonce),
            why: r.why,
        };
    }
    match r.why {
        // The balance left after the pending transactions before it: say what all of
        // them and this one need of the balance at the tip.
        TxError::Funds { balance, need, .. } => {
            let tip = ledger.state.account(&sender).balance;
            MempoolError::Funds {
                account: sender,
                balance: tip,
                need: tip.saturating_sub(balance).saturating_add(need),
            }
        }
        why => MempoolError::Rule(why),
    }
}
