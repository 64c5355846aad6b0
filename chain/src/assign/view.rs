//! The placement and the useful set, kept up to date by what each block changes instead of
//! computed from scratch (`assignments` walks every node for every instance: about 12 s at
//! 13,000 nodes and 6,000 instances with a SHA-256 per pair).
//!
//! The placement rule places apps in name order, so an app's placement depends only on the
//! apps before it and on the nodes it looked at. The view remembers, per app, the nodes it
//! was placed on and the nodes it passed over (they scored higher than its choice but had
//! no room, or held the app already). When a block changes nodes or apps, only the apps
//! that can see the change are placed again, in name order:
//! - an app whose entry changed (registered, updated, cancelled, expired);
//! - for a node that joined: the apps for one of whose instances it now scores above the
//!   chosen node (one cheap score per instance), and the apps that found no room anywhere;
//! - for a node that left or changed tier: the apps placed on it or that passed over it,
//!   and the apps that found no room;
//! - for a node whose load changed when an app moved: the later apps placed on it or that
//!   passed over it (and the apps that found no room, when it gained room).
//!
//! Placing one app scans the candidate nodes once per instance with the cheap score. The
//! useful set is re-checked for the nodes whose entry or placement changed. Undoing a block
//! is the same update over the entries its undo record restores, so the view is always the
//! function of the state that the oracle computes (tested over long random sequences).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};

use super::{instance_hash, node_hash, reports_all, score, Need, Room};
use crate::params::Params;
use crate::state::{NodeStatus, State, StateKey};
use crate::tx::{PublicKey, Tier};

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeRec {
    hash: u64,
    /// The tier while the node is confirmed (a placement candidate). A record of a node that
    /// is not stays only while apps still refer to it.
    tier: Option<Tier>,
    /// The apps placed here, with the instance.
    placed: BTreeMap<String, u32>,
    /// The apps that passed over this node.
    passed: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AppRec {
    need: Need,
    /// Per instance: its hash and where it is placed, with the pair's score.
    instances: Vec<(u64, Option<(u64, PublicKey)>)>,
    /// The nodes passed over (scored above the chosen node but could not take it).
    passed: Vec<PublicKey>,
}

impl AppRec {
    fn nodes(&self) -> impl Iterator<Item = &PublicKey> {
        self.instances
            .iter()
            .filter_map(|(_, c)| c.as_ref().map(|(_, k)| k))
    }
}

/// The kept placement and useful set of a ledger's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    nodes: BTreeMap<PublicKey, NodeRec>,
    /// The confirmed nodes, in key order, with their hashes: what a placement scans.
    candidates: Vec<(PublicKey, u64)>,
    apps: BTreeMap<String, AppRec>,
    /// Apps with an instance that found room nowhere.
    starved: BTreeSet<String>,
    /// Confirmed nodes with a benchmark covering their tier (when enforced).
    eligible: BTreeMap<PublicKey, Tier>,
    /// Those of them that report every assigned instance running.
    strict: BTreeMap<PublicKey, Tier>,
}

impl View {
    /// The view of `state`, built as one update over all of it.
    pub fn build(state: &State, p: &Params) -> View {
        let keys: Vec<StateKey> = state
            .nodes
            .keys()
            .map(|k| StateKey::Node(*k))
            .chain(state.apps.keys().map(|a| StateKey::App(a.clone())))
            .collect();
        let mut v = View::default();
        v.update(state, p, &keys);
        v
    }

    /// The useful nodes with their tiers (every eligible node when none is strictly useful,
    /// see `assign::useful`).
    pub fn useful(&self) -> &BTreeMap<PublicKey, Tier> {
        if self.strict.is_empty() {
            &self.eligible
        } else {
            &self.strict
        }
    }

    /// The instances assigned to `node`, `(app, instance)` in order.
    pub fn assigned(&self, node: &PublicKey) -> Vec<(String, u32)> {
        self.nodes
            .get(node)
            .map(|r| r.placed.iter().map(|(a, i)| (a.clone(), *i)).collect())
            .unwrap_or_default()
    }

    /// Where `app`'s instances run: `(instance, node)` for those placed.
    pub fn locations(&self, app: &str) -> Vec<(u32, PublicKey)> {
        self.apps
            .get(app)
            .map(|a| {
                a.instances
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (_, c))| c.map(|(_, k)| (i as u32, k)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every node's assigned instances (as `assign::assignments` gives them).
    pub fn assignments(&self) -> super::Assigned {
        self.nodes
            .iter()
            .filter(|(_, r)| !r.placed.is_empty())
            .map(|(k, r)| (*k, r.placed.iter().map(|(a, i)| (a.clone(), *i)).collect()))
            .collect()
    }

    /// Brings the view up to `state` after the entries `changed` changed (a block's changes,
    /// or an undo record's entries). Accounts and DoS entries do not matter to it.
    pub fn update<'a>(
        &mut self,
        state: &State,
        p: &Params,
        changed: impl IntoIterator<Item = &'a StateKey>,
    ) {
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        let mut recheck: BTreeSet<PublicKey> = BTreeSet::new();
        for key in changed {
            match key {
                StateKey::Node(k) => {
                    self.node_changed(state, k, &mut dirty);
                    recheck.insert(*k);
                }
                StateKey::App(name) => {
                    dirty.insert(name.clone());
                }
                StateKey::Account(_) | StateKey::Dos(_) => {}
            }
        }
        while let Some(app) = dirty.pop_first() {
            self.place_again(state, p, &app, &mut dirty, &mut recheck);
        }
        for k in recheck {
            self.recheck(state, p, &k);
            let drop = self
                .nodes
                .get(&k)
                .is_some_and(|r| r.tier.is_none() && r.placed.is_empty() && r.passed.is_empty());
            if drop {
                self.nodes.remove(&k);
            }
        }
    }

    /// A node's entry changed: marks the apps that can see it.
    fn node_changed(&mut self, state: &State, k: &PublicKey, dirty: &mut BTreeSet<String>) {
        let now = state.nodes.get(k).and_then(|n| match n.status {
            NodeStatus::Confirmed { .. } => Some(n.tier),
            _ => None,
        });
        let rec = self.nodes.entry(*k).or_insert_with(|| NodeRec {
            hash: node_hash(k),
            tier: None,
            placed: BTreeMap::new(),
            passed: BTreeSet::new(),
        });
        let was = rec.tier;
        if was == now {
            return;
        }
        rec.tier = now;
        let hash = rec.hash;
        dirty.extend(rec.placed.keys().cloned());
        dirty.extend(rec.passed.iter().cloned());
        let at = self.candidates.binary_search_by(|(c, _)| c.cmp(k));
        match (at, now) {
            (Err(i), Some(_)) => self.candidates.insert(i, (*k, hash)),
            (Ok(i), None) => {
                self.candidates.remove(i);
            }
            _ => {}
        }
        if now.is_some() {
            // It may have room now where apps found none.
            dirty.extend(self.starved.iter().cloned());
        }
        if was.is_none() && now.is_some() {
            // A newcomer matters to the instances it outscores the chosen node of.
            for (name, a) in &self.apps {
                let beats = a
                    .instances
                    .iter()
                    .any(|(ih, chosen)| chosen.is_none_or(|c| (score(hash, *ih), *k) > c));
                if beats {
                    dirty.insert(name.clone());
                }
            }
        }
    }

    /// What `node` has left for the app `app`: its tier's room less the apps before `app`.
    fn room_before(&self, node: &PublicKey, app: &str, p: &Params) -> Option<Room> {
        let r = self.nodes.get(node)?;
        let mut room = Room::of(r.tier?, p);
        for (other, _) in r.placed.range::<str, _>((Unbounded, Excluded(app))) {
            if let Some(a) = self.apps.get(other) {
                room.take(&a.need);
            }
        }
        Some(room)
    }

    /// Places `name` from scratch among the candidates, given the apps before it.
    fn place(&self, name: &str, need: Need, instances: u32, p: &Params) -> AppRec {
        let mut out = AppRec {
            need,
            instances: Vec::with_capacity(instances as usize),
            passed: Vec::new(),
        };
        let mut passed: BTreeSet<PublicKey> = BTreeSet::new();
        for i in 0..instances {
            let ih = instance_hash(name, i);
            let mut best: Option<(u64, PublicKey)> = None;
            let mut refused: Vec<(u64, PublicKey)> = Vec::new();
            for (k, h) in &self.candidates {
                let s = (score(*h, ih), *k);
                if best.is_some_and(|b| s < b) {
                    continue;
                }
                let taken = out.nodes().any(|n| n == k);
                let fits = !taken && self.room_before(k, name, p).is_some_and(|r| r.fits(&need));
                if fits {
                    best = Some(s);
                } else {
                    refused.push(s);
                }
            }
            // An instance placed nowhere passed over every candidate: it is kept among the
            // starved apps instead (placed again whenever any node gains room), so one app
            // that fits nowhere does not sit in every node's record.
            if let Some(b) = best {
                passed.extend(refused.into_iter().filter(|r| *r > b).map(|(_, k)| k));
            }
            out.instances.push((ih, best));
        }
        out.passed = passed.into_iter().collect();
        out
    }

    /// Places `name` again (or drops it when it is gone) and marks the later apps that see
    /// a node whose load changed.
    fn place_again(
        &mut self,
        state: &State,
        p: &Params,
        name: &str,
        dirty: &mut BTreeSet<String>,
        recheck: &mut BTreeSet<PublicKey>,
    ) {
        let old = self.apps.remove(name);
        if let Some(o) = &old {
            for k in o.nodes() {
                if let Some(r) = self.nodes.get_mut(k) {
                    r.placed.remove(name);
                }
            }
            for k in &o.passed {
                if let Some(r) = self.nodes.get_mut(k) {
                    r.passed.remove(name);
                }
            }
        }
        self.starved.remove(name);
        let new = state.apps.get(name).map(|a| {
            let s = &a.spec;
            self.place(name, Need::of(s), s.instances, p)
        });
        let old_nodes: BTreeSet<PublicKey> = old.iter().flat_map(|o| o.nodes().copied()).collect();
        let new_nodes: BTreeSet<PublicKey> = new.iter().flat_map(|o| o.nodes().copied()).collect();
        let same_need = matches!((&old, &new), (Some(o), Some(n)) if o.need == n.need);
        // Nodes whose load changed, and whether one of them gained room.
        let (changed, freed): (Vec<PublicKey>, bool) = if same_need {
            let gone: Vec<PublicKey> = old_nodes.difference(&new_nodes).copied().collect();
            let freed = !gone.is_empty();
            let mut c = gone;
            c.extend(new_nodes.difference(&old_nodes).copied());
            (c, freed)
        } else {
            (
                old_nodes.union(&new_nodes).copied().collect(),
                !old_nodes.is_empty(),
            )
        };
        for k in &changed {
            if let Some(r) = self.nodes.get(k) {
                let later = (Excluded(name), Unbounded);
                dirty.extend(r.placed.range::<str, _>(later).map(|(a, _)| a.clone()));
                dirty.extend(r.passed.range::<str, _>(later).cloned());
            }
        }
        if freed {
            let later = (Excluded(name), Unbounded);
            dirty.extend(self.starved.range::<str, _>(later).cloned());
        }
        recheck.extend(old_nodes.union(&new_nodes).copied());
        if let Some(n) = new {
            for (i, (_, c)) in n.instances.iter().enumerate() {
                match c {
                    Some((_, k)) => {
                        if let Some(r) = self.nodes.get_mut(k) {
                            r.placed.insert(name.to_owned(), i as u32);
                        }
                    }
                    None => {
                        self.starved.insert(name.to_owned());
                    }
                }
            }
            for k in &n.passed {
                if let Some(r) = self.nodes.get_mut(k) {
                    r.passed.insert(name.to_owned());
                }
            }
            self.apps.insert(name.to_owned(), n);
        }
    }

    /// Whether `k` is eligible and strictly useful now.
    fn recheck(&mut self, state: &State, p: &Params, k: &PublicKey) {
        self.eligible.remove(k);
        self.strict.remove(k);
        let Some(n) = state.nodes.get(k) else {
            return;
        };
        let NodeStatus::Confirmed { last } = n.status else {
            return;
        };
        if p.enforce_bench && n.bench_tier.is_none_or(|b| b < n.tier) {
            return;
        }
        self.eligible.insert(*k, n.tier);
        if reports_all(state, k, last, &self.assigned(k)) {
            self.strict.insert(*k, n.tier);
        }
    }
}
