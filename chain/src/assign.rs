//! Which node runs which app instance, and which nodes are useful. Instances go to confirmed
//! nodes by rendezvous hashing: the highest SHA-256(app || instance || node key) among the
//! nodes with capacity left, apps and instances taken in order, so every node computes the
//! same answer from the same state at every block. A useful node is confirmed, has a
//! benchmark (when the chain enforces them), and its last workload report shows every
//! instance assigned to it running.

use std::collections::BTreeMap;

use ring::digest::{Context, SHA256};

use crate::params::Params;
use crate::state::{NodeStatus, State};
use crate::tx::{PublicKey, Tier};

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

fn score(app: &str, instance: u32, node: &PublicKey) -> [u8; 32] {
    let mut c = Context::new(&SHA256);
    c.update(app.as_bytes());
    c.update(&instance.to_le_bytes());
    c.update(node);
    c.finish().as_ref().try_into().expect("32 bytes")
}

/// Each confirmed node's assigned instances, `(app, instance)` in order. Instances that fit
/// nowhere are left out.
pub fn assignments(state: &State) -> BTreeMap<PublicKey, Vec<(String, u32)>> {
    let mut left: BTreeMap<PublicKey, (u64, u64, u64)> = state
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.status, NodeStatus::Confirmed { .. }))
        .map(|(k, n)| (*k, tier_capacity(n.tier)))
        .collect();
    let mut out: BTreeMap<PublicKey, Vec<(String, u32)>> = BTreeMap::new();
    for (name, app) in &state.apps {
        let s = &app.spec;
        for i in 0..s.instances {
            let best = left
                .iter()
                .filter(|(k, c)| {
                    c.0 >= s.cpu_millis
                        && c.1 >= s.ram_bytes
                        && c.2 >= s.disk_bytes
                        // One instance of an app per node.
                        && !out.get(*k).is_some_and(|v| v.iter().any(|(a, _)| a == name))
                })
                .max_by_key(|(k, _)| score(name, i, k))
                .map(|(k, _)| *k);
            if let Some(k) = best {
                let c = left.get_mut(&k).expect("chosen from left");
                c.0 -= s.cpu_millis;
                c.1 -= s.ram_bytes;
                c.2 -= s.disk_bytes;
                out.entry(k).or_default().push((name.clone(), i));
            }
        }
    }
    out
}

/// The useful nodes, each with its tier.
///
/// An instance of an app registered (or updated) after the node's last confirm is not yet
/// expected in its report: the report could not know it. And when no node at all is useful,
/// every confirmed node with a benchmark may produce, so that confirms (and cancels) can
/// still reach a block and the chain recovers instead of halting for good.
pub fn useful(state: &State, p: &Params) -> BTreeMap<PublicKey, Tier> {
    let assigned = assignments(state);
    let confirmed: Vec<(&PublicKey, &crate::state::Node, u64)> = state
        .nodes
        .iter()
        .filter_map(|(k, n)| match n.status {
            NodeStatus::Confirmed { last } => Some((k, n, last)),
            _ => None,
        })
        .filter(|(_, n, _)| !p.enforce_bench || n.bench_tier.is_some_and(|b| b >= n.tier))
        .collect();
    let since = |app: &str| {
        state
            .apps
            .get(app)
            .map(|a| a.expires_at.saturating_sub(a.spec.expiry_blocks))
            .unwrap_or(0)
    };
    let strict: BTreeMap<PublicKey, Tier> = confirmed
        .iter()
        .filter(|(k, n, last)| {
            assigned.get(*k).is_none_or(|mine| {
                mine.iter()
                    .filter(|(app, _)| since(app) < *last)
                    .all(|(app, i)| {
                        n.workload
                            .iter()
                            .any(|u| &u.app == app && u.instance == *i && u.running)
                    })
            })
        })
        .map(|(k, n, _)| (**k, n.tier))
        .collect();
    if strict.is_empty() {
        return confirmed.iter().map(|(k, n, _)| (**k, n.tier)).collect();
    }
    strict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::{App, Node};
    use crate::tx::tests::spec;
    use crate::tx::InstanceUsage;

    fn node(tier: Tier, confirmed: bool) -> Node {
        Node {
            owner: Address([0; 20]),
            tier,
            endpoint: String::new(),
            started_at: 0,
            status: if confirmed {
                NodeStatus::Confirmed { last: 1 }
            } else {
                NodeStatus::Started
            },
            collateral: 0,
            bench_tier: Some(tier),
            workload: vec![],
            last_paid: 0,
        }
    }

    fn world() -> State {
        let mut s = State::default();
        for k in 1..=4u8 {
            s.nodes.insert([k; 32], node(Tier::Cumulus, k != 4));
        }
        s.apps.insert(
            "web".into(),
            App {
                owner: Address([0; 20]),
                spec: spec("web"),
                expires_at: 100,
            },
        );
        s
    }

    #[test]
    fn instances_go_to_distinct_confirmed_nodes_the_same_way_every_time() {
        let s = world();
        let a = assignments(&s);
        assert_eq!(a, assignments(&s.clone()));
        let holders: Vec<_> = a.iter().filter(|(_, v)| !v.is_empty()).collect();
        assert_eq!(holders.len(), 2, "two instances on two nodes: {a:?}");
        assert!(
            !a.contains_key(&[4; 32]),
            "an unconfirmed node gets nothing"
        );
    }

    #[test]
    fn capacity_limits_where_instances_go() {
        let mut s = world();
        s.apps.get_mut("web").unwrap().spec.ram_bytes = 9_000_000_000;
        assert!(assignments(&s).is_empty(), "no Cumulus node has 9 GB");
        s.nodes.insert([9; 32], node(Tier::Nimbus, true));
        let a = assignments(&s);
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[&[9; 32]],
            vec![("web".to_owned(), 0)],
            "one instance per node"
        );
    }

    #[test]
    fn new_instances_wait_for_the_next_report_and_no_useful_node_means_all_may_produce() {
        let mut s = world();
        let p = Params::default();
        // Registered at 50, after every node's last confirm (1): not yet expected.
        s.apps.get_mut("web").unwrap().expires_at = 1050;
        assert_eq!(useful(&s, &p).len(), 3);
        // Registered before: expected, and every confirmed node is assigned one... but
        // with two instances on three nodes, the third stays useful.
        s.apps.get_mut("web").unwrap().expires_at = 1000;
        assert_eq!(useful(&s, &p).len(), 1);
        // Three instances, one per node, none reported: nobody is useful, so all may produce.
        s.apps.get_mut("web").unwrap().spec.instances = 3;
        let all = useful(&s, &p);
        assert_eq!(all.len(), 3, "{all:?}");
    }

    #[test]
    fn a_node_missing_an_assigned_instance_is_not_useful() {
        let mut s = world();
        let p = Params::default();
        let a = assignments(&s);
        let before = useful(&s, &p);
        assert_eq!(before.len(), 1, "only the node without work: {before:?}");
        for (k, mine) in &a {
            let n = s.nodes.get_mut(k).unwrap();
            n.workload = mine
                .iter()
                .map(|(app, i)| InstanceUsage {
                    app: app.clone(),
                    instance: *i,
                    running: true,
                    cpu_usage_usec: 1,
                    memory_peak: 1,
                })
                .collect();
        }
        assert_eq!(useful(&s, &p).len(), 3);
        let (k, _) = a.iter().next().unwrap();
        s.nodes.get_mut(k).unwrap().workload[0].running = false;
        assert!(!useful(&s, &p).contains_key(k));
        s.nodes.get_mut(&[1; 32]).unwrap().bench_tier = None;
        assert!(
            !useful(&s, &p).contains_key(&[1; 32]),
            "no benchmark, not useful while benchmarks are enforced"
        );
    }
}
