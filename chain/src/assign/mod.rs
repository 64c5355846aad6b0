//! Which node runs which app instance, and which nodes are useful. Instances go to confirmed
//! nodes by rendezvous hashing: apps in name order, instances in order, each to the node
//! with the highest score for it among the nodes with room left (the tier's CPU, RAM and
//! disk less what earlier apps took, and fewer than `max_apps_per_node` apps) that hold no
//! other instance of the app; ties go to the higher key. Every node computes the same
//! answer from the same state at every block.
//!
//! A pair's score is cheap by design: each node key and each instance is hashed once with
//! SHA-256 (`node_hash`, `instance_hash`), and the pair's score mixes the two 64-bit halves
//! with a full-avalanche finalizer (`score`), so a placement scan over 15,000 nodes costs
//! microseconds, not a SHA-256 per pair. The ledger keeps the placement and the useful set
//! up to date block by block (`view`); `assignments` and `useful` here compute them from
//! scratch, as the oracle the kept view is tested against.
//!
//! A useful node is confirmed, has a benchmark (when the chain enforces them), and its last
//! workload report shows every instance assigned to it running.

mod view;

pub use view::View;

use std::collections::BTreeMap;

use ring::digest::{digest, Context, SHA256};

use crate::params::Params;
use crate::state::{NodeStatus, State};
use crate::tx::{AppSpec, PublicKey, Tier};

/// Each node's assigned instances, `(app, instance)` in order.
pub type Assigned = BTreeMap<PublicKey, Vec<(String, u32)>>;

/// What a node of each tier can host: the tier table's threads (as thousandths of a
/// core), RAM and SSD.
pub fn tier_capacity(tier: Tier) -> (u64, u64, u64) {
    const GB: u64 = 1_000_000_000;
    match tier {
        Tier::Cumulus => (4_000, 8 * GB, 220 * GB),
        Tier::Nimbus => (8_000, 32 * GB, 440 * GB),
        Tier::Stratus => (16_000, 64 * GB, 880 * GB),
    }
}

fn first_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

/// A node's half of its scores: the first 8 bytes of SHA-256 of its key.
pub fn node_hash(node: &PublicKey) -> u64 {
    first_u64(digest(&SHA256, node).as_ref())
}

/// An instance's half of its scores: the first 8 bytes of SHA-256(app || instance).
pub fn instance_hash(app: &str, instance: u32) -> u64 {
    let mut c = Context::new(&SHA256);
    c.update(app.as_bytes());
    c.update(&instance.to_le_bytes());
    first_u64(c.finish().as_ref())
}

/// The score of a node (by its `node_hash`) for an instance (by its `instance_hash`):
/// MurmurHash3's 64-bit finalizer over their xor, a bijection in which every input bit
/// flips every output bit with probability one half.
pub fn score(node: u64, instance: u64) -> u64 {
    let mut h = node ^ instance;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// What an app's instance takes from a node: CPU (thousandths of a core), RAM and disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    pub cpu: u64,
    pub ram: u64,
    pub disk: u64,
}

impl Need {
    pub fn of(s: &AppSpec) -> Need {
        Need {
            cpu: s.cpu_millis,
            ram: s.ram_bytes,
            disk: s.disk_bytes,
        }
    }
}

/// What a node has left: CPU, RAM, disk and app slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    pub cpu: u64,
    pub ram: u64,
    pub disk: u64,
    pub slots: u64,
}

impl Room {
    /// An empty node of `tier`.
    pub fn of(tier: Tier, p: &Params) -> Room {
        let (cpu, ram, disk) = tier_capacity(tier);
        Room {
            cpu,
            ram,
            disk,
            slots: p.max_apps_per_node,
        }
    }

    pub fn fits(&self, n: &Need) -> bool {
        self.slots > 0 && self.cpu >= n.cpu && self.ram >= n.ram && self.disk >= n.disk
    }

    /// Takes one instance (saturating: only called after `fits`).
    pub fn take(&mut self, n: &Need) {
        self.slots = self.slots.saturating_sub(1);
        self.cpu = self.cpu.saturating_sub(n.cpu);
        self.ram = self.ram.saturating_sub(n.ram);
        self.disk = self.disk.saturating_sub(n.disk);
    }
}

/// Each confirmed node's assigned instances, computed from scratch (the oracle: every node
/// against every instance). Instances that fit nowhere are left out.
pub fn assignments(state: &State, p: &Params) -> Assigned {
    let mut nodes: Vec<(PublicKey, u64, Room)> = state
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.status, NodeStatus::Confirmed { .. }))
        .map(|(k, n)| (*k, node_hash(k), Room::of(n.tier, p)))
        .collect();
    let mut out = Assigned::new();
    for (name, app) in &state.apps {
        let need = Need::of(&app.spec);
        let mut taken: Vec<usize> = Vec::new();
        for i in 0..app.spec.instances {
            let ih = instance_hash(name, i);
            let best = nodes
                .iter()
                .enumerate()
                .filter(|(j, n)| !taken.contains(j) && n.2.fits(&need))
                .max_by_key(|(_, n)| (score(n.1, ih), n.0))
                .map(|(j, _)| j);
            if let Some(j) = best {
                nodes[j].2.take(&need);
                taken.push(j);
                out.entry(nodes[j].0).or_default().push((name.clone(), i));
            }
        }
    }
    out
}

/// The height an app's current registration (or update) took effect: instances of it are
/// expected only in reports confirmed after it.
pub fn registered_at(state: &State, app: &str) -> u64 {
    state
        .apps
        .get(app)
        .map(|a| a.expires_at.saturating_sub(a.spec.expiry_blocks))
        .unwrap_or(0)
}

/// Whether the confirmed node `key` (confirmed last at `last`) reports every instance
/// assigned to it running, but for those of apps registered after its report.
pub fn reports_all(state: &State, key: &PublicKey, last: u64, mine: &[(String, u32)]) -> bool {
    let Some(n) = state.nodes.get(key) else {
        return false;
    };
    mine.iter()
        .filter(|(app, _)| registered_at(state, app) < last)
        .all(|(app, i)| {
            n.workload
                .iter()
                .any(|u| &u.app == app && u.instance == *i && u.running)
        })
}

/// The confirmed nodes that may be useful at all, with their tiers: a benchmark covering
/// their tier when the chain enforces them. Their last confirm's height too.
pub fn eligible(state: &State, p: &Params) -> BTreeMap<PublicKey, (Tier, u64)> {
    state
        .nodes
        .iter()
        .filter_map(|(k, n)| match n.status {
            NodeStatus::Confirmed { last } => Some((*k, (n.tier, last))),
            _ => None,
        })
        .filter(|(k, _)| {
            let n = &state.nodes[k];
            !p.enforce_bench || n.bench_tier.is_some_and(|b| b >= n.tier)
        })
        .collect()
}

/// The useful nodes, each with its tier, computed from scratch (the oracle).
///
/// An instance of an app registered (or updated) after the node's last confirm is not yet
/// expected in its report: the report could not know it. And when no node at all is useful,
/// every confirmed node with a benchmark may produce, so that confirms (and cancels) can
/// still reach a block and the chain recovers instead of halting for good.
pub fn useful(state: &State, p: &Params) -> BTreeMap<PublicKey, Tier> {
    let assigned = assignments(state, p);
    let confirmed = eligible(state, p);
    let strict: BTreeMap<PublicKey, Tier> = confirmed
        .iter()
        .filter(|(k, (_, last))| reports_all(state, k, *last, assigned.get(*k).map_or(&[], |v| v)))
        .map(|(k, (t, _))| (*k, *t))
        .collect();
    if strict.is_empty() {
        return confirmed.into_iter().map(|(k, (t, _))| (k, t)).collect();
    }
    strict
}

#[cfg(test)]
mod tests;
