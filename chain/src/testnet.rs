//! A devnet for tests: confirmed genesis nodes of chosen tiers, a funded wallet, and the
//! block the best-ranked node would produce next.

use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::address::Address;
use crate::block::Block;
use crate::genesis::{Genesis, GenesisNode};
use crate::ledger::Ledger;
use crate::params::Params;
use crate::tx::tests::key;
use crate::tx::{PublicKey, Tx, COIN};

pub const T0: u64 = 1_800_000_000;

pub struct Net {
    pub keys: Vec<Ed25519KeyPair>,
    pub wallet: Ed25519KeyPair,
    pub genesis: Genesis,
}

pub fn pk(k: &Ed25519KeyPair) -> PublicKey {
    k.public_key().as_ref().try_into().unwrap()
}

pub fn owner_of(i: usize) -> Address {
    Address([i as u8 + 1; 20])
}

/// A devnet of confirmed nodes of the given tiers and a funded wallet.
pub fn net(tiers: &[u8]) -> Net {
    let keys: Vec<_> = tiers.iter().map(|_| key()).collect();
    let wallet = key();
    let genesis = Genesis {
        chain_id: "test".into(),
        time: T0,
        slot_secs: 1,
        balances: vec![(
            Address::from_public_key(&pk(&wallet)).to_string(),
            1_000_000 * COIN,
        )],
        nodes: keys
            .iter()
            .zip(tiers)
            .enumerate()
            .map(|(i, (k, t))| GenesisNode {
                owner: owner_of(i).to_string(),
                key: hex::encode(pk(k)),
                tier: *t,
                endpoint: format!("127.0.0.1:{}", 20000 + i),
            })
            .collect(),
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            ..Params::default()
        },
    };
    Net {
        keys,
        wallet,
        genesis,
    }
}

impl Net {
    /// The block of the best-ranked node of the first slot after the tip that has an
    /// eligible node (a slot where none is eligible passes with no block).
    pub fn next(&self, l: &Ledger, txs: &[Tx]) -> Block {
        for slot in l.tip.slot + 1..l.tip.slot + 100 {
            let best = self
                .keys
                .iter()
                .filter(|k| l.rank(&pk(k), slot).is_some())
                .min_by_key(|k| l.rank(&pk(k), slot));
            if let Some(k) = best {
                return l.produce(k, slot, T0 + slot, txs, 100).unwrap();
            }
        }
        panic!("nobody eligible in 100 slots");
    }

    /// The block the node of rank `rank` in `slot` makes on the tip, signed as soon as its
    /// rank's delay allows.
    pub fn by_rank(&self, l: &Ledger, slot: u64, rank: usize, txs: &[Tx]) -> Block {
        let k = self
            .keys
            .iter()
            .find(|k| l.rank(&pk(k), slot) == Some(rank))
            .expect("a node of that rank");
        let delay = crate::consensus::rank_delay(rank, std::time::Duration::from_secs(1));
        l.produce(k, slot, T0 + slot + delay.as_secs(), txs, 100)
            .unwrap()
    }
}
