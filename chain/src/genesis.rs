//! The genesis file: chain id, genesis time, slot length, initial balances and nodes, the
//! first target and every parameter. Its hash (of a canonical encoding) identifies the
//! network in every p2p handshake.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::encode::Writer;
use crate::params::Params;
use crate::state::{Node, NodeStatus, State};
use crate::tx::{Hash, Tier};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisNode {
    /// Owner address, `fx...`.
    pub owner: String,
    /// The node key, 64 hex digits.
    pub key: String,
    /// 1 Cumulus, 2 Nimbus, 3 Stratus.
    pub tier: u8,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    /// Unix seconds.
    pub time: u64,
    pub slot_secs: u64,
    /// `(address, units)`.
    pub balances: Vec<(String, u64)>,
    /// Nodes confirmed from the start (devnets).
    #[serde(default)]
    pub nodes: Vec<GenesisNode>,
    /// The first eligibility target (u64::MAX: every useful node is eligible).
    pub target: u64,
    /// How many eligible nodes per slot the target aims at.
    pub want_eligible: u32,
    pub enforce_bench: bool,
    #[serde(default)]
    pub confirm_window: Option<u64>,
    #[serde(default)]
    pub expire_after: Option<u64>,
    /// Overrides the re-confirm wait (tests with short chains).
    #[serde(default)]
    pub reconfirm_min: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis {field}: {why}")]
    Field { field: String, why: String },
}

fn bad(field: &str, why: impl Into<String>) -> GenesisError {
    GenesisError::Field {
        field: field.to_owned(),
        why: why.into(),
    }
}

impl Genesis {
    pub fn params(&self) -> Params {
        let d = Params::default();
        Params {
            enforce_bench: self.enforce_bench,
            confirm_window: self.confirm_window.unwrap_or(d.confirm_window),
            expire_after: self.expire_after.unwrap_or(d.expire_after),
            reconfirm_min: self.reconfirm_min.unwrap_or(d.reconfirm_min),
            ..d
        }
    }

    /// The canonical encoding the genesis hash covers.
    pub fn hash(&self) -> Hash {
        let mut w = Writer::new();
        w.u8(1)
            .str(&self.chain_id)
            .u64(self.time)
            .u64(self.slot_secs)
            .list(&self.balances, |w, (a, v)| {
                w.str(a).u64(*v);
            })
            .list(&self.nodes, |w, n| {
                w.str(&n.owner).str(&n.key).u8(n.tier).str(&n.endpoint);
            })
            .u64(self.target)
            .u32(self.want_eligible)
            .u8(self.enforce_bench as u8)
            .u64(self.confirm_window.unwrap_or(0))
            .u64(self.expire_after.unwrap_or(0))
            .u64(self.reconfirm_min.unwrap_or(0));
        ring::digest::digest(&ring::digest::SHA256, &w.finish())
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    /// The state at height 0, or the first field that is wrong.
    pub fn state(&self) -> Result<State, GenesisError> {
        if self.slot_secs == 0 {
            return Err(bad("slot_secs", "must be at least 1"));
        }
        let mut s = State::default();
        for (i, (addr, units)) in self.balances.iter().enumerate() {
            let a: Address = addr
                .parse()
                .map_err(|e| bad(&format!("balances[{i}]"), format!("{e}")))?;
            s.credit(a, *units);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let field = format!("nodes[{i}]");
            let owner: Address = n.owner.parse().map_err(|e| bad(&field, format!("{e}")))?;
            let mut key = [0u8; 32];
            hex::decode_to_slice(&n.key, &mut key)
                .map_err(|_| bad(&field, "key: expected 64 hex digits"))?;
            let tier = Tier::ALL
                .into_iter()
                .find(|t| *t as u8 == n.tier)
                .ok_or_else(|| bad(&field, format!("tier {} is not 1, 2 or 3", n.tier)))?;
            s.nodes.insert(
                key,
                Node {
                    owner,
                    tier,
                    endpoint: n.endpoint.clone(),
                    started_at: 0,
                    status: NodeStatus::Confirmed { last: 0 },
                    collateral: 0,
                    bench_tier: Some(tier),
                    workload: Vec::new(),
                    last_paid: 0,
                },
            );
            s.touched.insert(crate::state::StateKey::Node(key));
        }
        Ok(s)
    }
}
