//! The mempool: transactions waiting for a block, bounded in count and bytes. A
//! transaction is admitted when its signature verifies for this chain, its fee meets the
//! minimum, its nonce is not spent, its signer's balance covers the fee and, for a node
//! start, the node key's consent verifies; the full rules run when a block is built. Applied transactions and the ones a new tip makes stale are dropped.

use std::collections::BTreeMap;

use crate::ledger::Ledger;
use crate::tx::{Hash, Tx, TxBody};

pub const MAX_TXS: usize = 10_000;
pub const MAX_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("bad signature")]
    Signature,
    #[error("fee {0} is under the minimum {1}")]
    Fee(u64, u64),
    #[error("nonce {0} is spent (account nonce {1})")]
    Nonce(u64, u64),
    #[error("balance {0} does not cover the fee {1}")]
    Funds(u64, u64),
    #[error(transparent)]
    Refused(#[from] crate::state::TxError),
    #[error("already known")]
    Known,
    #[error("the mempool is full")]
    Full,
}

#[derive(Debug, Default)]
pub struct Mempool {
    txs: BTreeMap<Hash, Tx>,
    bytes: usize,
}

impl Mempool {
    /// Admits `tx` against the ledger's tip state; returns its id.
    pub fn add(&mut self, tx: Tx, ledger: &Ledger) -> Result<Hash, MempoolError> {
        let id = tx.id();
        if self.txs.contains_key(&id) {
            return Err(MempoolError::Known);
        }
        if !tx.verify(&ledger.params.chain) {
            return Err(MempoolError::Signature);
        }
        crate::consent::check_tx(&tx, &ledger.params.chain)?;
        let free = matches!(tx.body, TxBody::NodeConfirm { .. });
        let min = ledger.params.min_fee;
        if !free && tx.fee < min {
            return Err(MempoolError::Fee(tx.fee, min));
        }
        let acc = ledger.state.account(&tx.sender());
        if tx.nonce < acc.nonce {
            return Err(MempoolError::Nonce(tx.nonce, acc.nonce));
        }
        if acc.balance < tx.fee {
            return Err(MempoolError::Funds(acc.balance, tx.fee));
        }
        let size = tx.encode().len();
        if self.txs.len() >= MAX_TXS || self.bytes + size > MAX_BYTES {
            return Err(MempoolError::Full);
        }
        self.bytes += size;
        self.txs.insert(id, tx);
        Ok(id)
    }

    pub fn txs(&self) -> Vec<Tx> {
        self.txs.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn get(&self, id: &Hash) -> Option<&Tx> {
        self.txs.get(id)
    }

    /// Drops what a new tip applied or made stale (spent nonces).
    pub fn prune(&mut self, ledger: &Ledger) {
        let mut bytes = 0;
        self.txs.retain(|_, tx| {
            let keep = tx.nonce >= ledger.state.account(&tx.sender()).nonce;
            if keep {
                bytes += tx.encode().len();
            }
            keep
        });
        self.bytes = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::testnet::{net, T0};
    use crate::tx::COIN;

    #[test]
    fn admission_checks_and_pruning_after_a_block() {
        let n = net(&[1]);
        let mut l = Ledger::new(n.genesis.clone()).unwrap();
        let mut m = Mempool::default();
        let c = l.params.chain;
        let to = Address([1; 20]);
        let t0 = Tx::signed(
            &n.wallet,
            &c,
            0,
            5_000,
            TxBody::Transfer { to, amount: COIN },
        );
        let id = m.add(t0.clone(), &l).unwrap();
        assert_eq!(m.add(t0.clone(), &l), Err(MempoolError::Known));
        let cheap = Tx::signed(&n.wallet, &c, 1, 1, TxBody::Transfer { to, amount: 1 });
        assert_eq!(m.add(cheap, &l), Err(MempoolError::Fee(1, 1_000)));
        let mut forged = Tx::signed(&n.wallet, &c, 1, 5_000, TxBody::Transfer { to, amount: 1 });
        forged.nonce = 2;
        assert_eq!(m.add(forged, &l), Err(MempoolError::Signature));
        let broke = crate::tx::tests::key();
        let t = Tx::signed(&broke, &c, 0, 5_000, TxBody::Transfer { to, amount: 1 });
        assert_eq!(m.add(t, &l), Err(MempoolError::Funds(0, 5_000)));
        let b = n.next(&l, &m.txs());
        assert_eq!(b.txs.len(), 1);
        l.apply(&b, T0 + 100).unwrap();
        m.prune(&l);
        assert!(m.get(&id).is_none() && m.is_empty());
        assert_eq!(m.add(t0, &l), Err(MempoolError::Nonce(0, 1)));
        let elsewhere = Tx::signed(
            &n.wallet,
            &[9; 32],
            1,
            5_000,
            TxBody::Transfer { to, amount: 1 },
        );
        assert_eq!(m.add(elsewhere, &l), Err(MempoolError::Signature));
        let node = crate::tx::tests::key();
        let start = TxBody::NodeStart {
            tier: crate::tx::Tier::Cumulus,
            node_key: crate::testnet::pk(&node),
            endpoint: "127.0.0.1:1".into(),
            consent: [0; 64],
        };
        let e = m
            .add(Tx::signed(&n.wallet, &c, 1, 5_000, start), &l)
            .unwrap_err();
        assert!(e.to_string().contains("carries no consent"), "{e}");
    }
}
