//! The placement rule's examples, and the kept view against the from-scratch oracle over
//! long random sequences of changes (and their undoing).

use super::*;
use crate::address::Address;
use crate::state::{App, Node, StateKey};
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
    let p = Params::default();
    let a = assignments(&s, &p);
    assert_eq!(a, assignments(&s.clone(), &p));
    assert_eq!(a.len(), 2, "two instances on two nodes: {a:?}");
    assert!(
        !a.contains_key(&[4; 32]),
        "an unconfirmed node gets nothing"
    );
    assert_eq!(View::build(&s, &p).assignments(), a);
}

#[test]
fn capacity_and_the_apps_per_node_limit_decide_where_instances_go() {
    let mut s = world();
    let mut p = Params::default();
    s.apps.get_mut("web").unwrap().spec.ram_bytes = 9_000_000_000;
    assert!(assignments(&s, &p).is_empty(), "no Cumulus node has 9 GB");
    s.nodes.insert([9; 32], node(Tier::Nimbus, true));
    let a = assignments(&s, &p);
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[&[9; 32]],
        vec![("web".to_owned(), 0)],
        "one instance per node"
    );
    // With one app per node, a second app goes where the first is not.
    p.max_apps_per_node = 1;
    let mut other = spec("zz");
    other.instances = 1;
    other.ram_bytes = 1;
    s.apps.insert(
        "zz".into(),
        App {
            owner: Address([0; 20]),
            spec: other,
            expires_at: 100,
        },
    );
    let a = assignments(&s, &p);
    assert_eq!(a[&[9; 32]].len(), 1, "{a:?}");
    assert_eq!(a.values().map(Vec::len).sum::<usize>(), 2);
    assert_eq!(View::build(&s, &p).assignments(), a);
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
    assert_eq!(View::build(&s, &p).useful(), &all);
}

#[test]
fn a_node_missing_an_assigned_instance_is_not_useful() {
    let mut s = world();
    let p = Params::default();
    let a = assignments(&s, &p);
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

/// splitmix64: a small deterministic generator, so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const GB: u64 = 1_000_000_000;

/// One random change to a node or an app of a small, crowded world (instances that need
/// most of a node, few app slots per node), so that room runs out and apps move.
fn change(s: &mut State, r: &mut Rng) -> StateKey {
    if r.below(2) == 0 {
        let k = [r.below(24) as u8 + 1; 32];
        let tiers = [Tier::Cumulus, Tier::Nimbus, Tier::Stratus];
        match r.below(7) {
            0 => {
                s.nodes.remove(&k);
            }
            1 | 2 => {
                let mut n = node(tiers[r.below(3) as usize], r.below(4) != 0);
                n.status = match r.below(5) {
                    0 => NodeStatus::Started,
                    1 => NodeStatus::Stopping { unlock_at: 9 },
                    _ => NodeStatus::Confirmed { last: r.below(100) },
                };
                n.bench_tier = [None, Some(n.tier), Some(Tier::Cumulus)][r.below(3) as usize];
                s.nodes.insert(k, n);
            }
            3 => {
                if let Some(n) = s.nodes.get_mut(&k) {
                    n.tier = tiers[r.below(3) as usize];
                }
            }
            _ => {
                // A workload report: its assigned instances, each running or not, some
                // missing, one it was never given.
                let mine = View::build(s, &Params::default()).assigned(&k);
                if let Some(n) = s.nodes.get_mut(&k) {
                    n.workload = Vec::new();
                    for (app, i) in &mine {
                        if r.below(6) != 0 {
                            n.workload.push(InstanceUsage {
                                app: app.clone(),
                                instance: *i,
                                running: r.below(5) != 0,
                                cpu_usage_usec: 1,
                                memory_peak: 1,
                            });
                        }
                    }
                    if let NodeStatus::Confirmed { last } = &mut n.status {
                        *last = r.below(100);
                    }
                }
            }
        }
        StateKey::Node(k)
    } else {
        let name = format!("app{}", r.below(10));
        if r.below(4) == 0 {
            s.apps.remove(&name);
        } else {
            let mut sp = spec(&name);
            sp.instances = 1 + r.below(5) as u32;
            sp.ram_bytes = [1, 3 * GB, 5 * GB, 20 * GB, 40 * GB][r.below(5) as usize];
            sp.cpu_millis = [100, 2_000, 6_000][r.below(3) as usize];
            sp.expiry_blocks = 50;
            s.apps.insert(
                name.clone(),
                App {
                    owner: Address([0; 20]),
                    spec: sp,
                    expires_at: 40 + r.below(80),
                },
            );
        }
        StateKey::App(name)
    }
}

#[test]
fn the_kept_view_equals_the_oracle_after_every_change_and_after_undoing_it() {
    // How often the sequences reached the cases that matter: an instance placed nowhere,
    // and an instance of an app whose entry did not change moving to another node.
    let (mut starved, mut moved) = (0, 0);
    for seed in 0..12u64 {
        let mut r = Rng(seed);
        let p = Params {
            max_apps_per_node: 1 + seed % 3,
            enforce_bench: seed % 2 == 0,
            ..Params::default()
        };
        let mut s = State::default();
        let mut v = View::build(&s, &p);
        for step in 0..400 {
            let before_state = s.clone();
            let before_view = v.clone();
            // A "block": one to four changes at once.
            let keys: Vec<StateKey> = (0..1 + r.below(4))
                .map(|_| change(&mut s, &mut r))
                .collect();
            let old_places = before_view.assignments();
            v.update(&s, &p, &keys);
            let at = format!("seed {seed}, step {step}");
            let placed: usize = v.assignments().values().map(Vec::len).sum();
            let wanted: u32 = s.apps.values().map(|a| a.spec.instances).sum();
            starved += usize::from(placed < wanted as usize);
            let new_places = v.assignments();
            moved += usize::from(old_places.iter().any(|(k, mine)| {
                mine.iter().any(|(app, _)| {
                    !keys.contains(&StateKey::App(app.clone()))
                        && s.nodes.contains_key(k)
                        && !new_places
                            .get(k)
                            .is_some_and(|n| n.iter().any(|(a, _)| a == app))
                })
            }));
            assert_eq!(v.assignments(), assignments(&s, &p), "assignments at {at}");
            assert_eq!(v.useful(), &useful(&s, &p), "useful set at {at}");
            assert_eq!(
                v,
                View::build(&s, &p),
                "the kept view is the built one at {at}"
            );
            // Every third step, undo it as a reorganisation would: restore the entries and
            // update over the same keys.
            if step % 3 == 0 {
                s = before_state;
                v.update(&s, &p, &keys);
                assert_eq!(v, before_view, "undone at {at}");
            }
        }
    }
    assert!(
        starved > 100 && moved > 100,
        "starved {starved}, moved {moved} times"
    );
}

#[test]
fn two_views_that_see_the_same_changes_in_different_batches_agree() {
    let p = Params {
        max_apps_per_node: 2,
        ..Params::default()
    };
    let mut r = Rng(99);
    let mut s = State::default();
    let (mut one, mut batched) = (View::default(), View::default());
    let mut pending = Vec::new();
    for step in 0..300 {
        let k = change(&mut s, &mut r);
        one.update(&s, &p, [&k]);
        pending.push(k);
        if step % 7 == 6 {
            batched.update(&s, &p, &pending);
            pending.clear();
            assert_eq!(one, batched, "step {step}");
        }
    }
}
