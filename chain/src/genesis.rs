//! The genesis file: chain id, genesis time, slot length, initial balances and nodes, the
//! first target and every rule (`rules`, see `params`). Its hash (of a canonical encoding
//! covering all of these) identifies the network in every p2p handshake, and every
//! signature covers it, so nothing signed for one chain is valid on another. A genesis is
//! checked before use: the first field out of bounds is named.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::encode::Writer;
use crate::params::Params;
use crate::state::{Node, NodeStatus, State};
use crate::tx::{Hash, Tier, MAX_TEXT};

/// The genesis encoding's version (2: the rules are covered).
const GENESIS_VERSION: u8 = 2;
/// The latest genesis time accepted (2^40 seconds: far beyond any real date, and far from
/// overflowing the milliseconds the node counts slots in).
pub const MAX_TIME: u64 = 1 << 40;
/// The longest slot, in seconds.
pub const MAX_SLOT_SECS: u64 = 3_600;
/// The most eligible nodes per slot the target may aim at.
pub const MAX_WANT_ELIGIBLE: u32 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
    /// Every other rule; each one missing takes its default.
    #[serde(default)]
    pub rules: Params,
}

#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis {field}: {why}")]
    Field { field: String, why: String },
    #[error("genesis: not a genesis: {0}")]
    Json(String),
}

impl GenesisError {
    pub fn field(field: &str, why: impl Into<String>) -> GenesisError {
        GenesisError::Field {
            field: field.to_owned(),
            why: why.into(),
        }
    }
}

fn bad(field: &str, why: impl Into<String>) -> GenesisError {
    GenesisError::field(field, why)
}

impl Genesis {
    /// A genesis from its JSON, checked.
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        let g: Genesis =
            serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        g.check()?;
        Ok(g)
    }

    /// The rules, bound to this chain.
    pub fn params(&self) -> Params {
        Params {
            chain: self.hash(),
            ..self.rules.clone()
        }
    }

    /// The canonical encoding the genesis hash covers.
    pub fn hash(&self) -> Hash {
        let mut w = Writer::new();
        w.u8(GENESIS_VERSION)
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
            .u32(self.want_eligible);
        self.rules.encode(&mut w);
        ring::digest::digest(&ring::digest::SHA256, &w.finish())
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    /// The first field that is out of bounds or does not parse, named.
    pub fn check(&self) -> Result<(), GenesisError> {
        self.state().map(|_| ())
    }

    /// The state at height 0, or the first field that is wrong.
    pub fn state(&self) -> Result<State, GenesisError> {
        self.check_scalars()?;
        self.rules.check()?;
        self.build()
    }

    fn check_scalars(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= crate::p2p::msg::MAX_CHAIN_ID
            && self.chain_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(bad(
                "chain_id",
                format!(
                    "{:?}: expected 1 to {} visible ASCII characters",
                    self.chain_id,
                    crate::p2p::msg::MAX_CHAIN_ID
                ),
            ));
        }
        if self.time > MAX_TIME {
            return Err(bad("time", format!("{} is after 2^40", self.time)));
        }
        if !(1..=MAX_SLOT_SECS).contains(&self.slot_secs) {
            return Err(bad(
                "slot_secs",
                format!(
                    "{} is out of bounds: it must be from 1 to {MAX_SLOT_SECS}",
                    self.slot_secs
                ),
            ));
        }
        if self.target == 0 {
            return Err(bad(
                "target",
                "must be at least 1 (0: no node is ever eligible)",
            ));
        }
        if !(1..=MAX_WANT_ELIGIBLE).contains(&self.want_eligible) {
            return Err(bad(
                "want_eligible",
                format!(
                    "{} is out of bounds: it must be from 1 to {MAX_WANT_ELIGIBLE}",
                    self.want_eligible
                ),
            ));
        }
        Ok(())
    }

    fn build(&self) -> Result<State, GenesisError> {
        let mut s = State::default();
        let mut total: u64 = 0;
        for (i, (addr, units)) in self.balances.iter().enumerate() {
            let field = format!("balances[{i}]");
            let a: Address = addr.parse().map_err(|e| bad(&field, format!("{e}")))?;
            total = total
                .checked_add(*units)
                .ok_or_else(|| bad(&field, "the balances' total overflows 64 bits"))?;
            s.credit(a, *units);
        }
        let mut keys = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let field = format!("nodes[{i}]");
            let owner: Address = n.owner.parse().map_err(|e| bad(&field, format!("{e}")))?;
            let mut key = [0u8; 32];
            hex::decode_to_slice(&n.key, &mut key)
                .map_err(|_| bad(&field, "key: expected 64 hex digits"))?;
            if !keys.insert(key) {
                return Err(bad(&field, format!("key {} is listed twice", n.key)));
            }
            let tier = Tier::ALL
                .into_iter()
                .find(|t| *t as u8 == n.tier)
                .ok_or_else(|| bad(&field, format!("tier {} is not 1, 2 or 3", n.tier)))?;
            if n.endpoint.len() > MAX_TEXT {
                return Err(bad(&field, format!("endpoint: over {MAX_TEXT} bytes")));
            }
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

#[cfg(test)]
mod tests;
