//! Partitions of a network of real `fluxnode chain` processes: two halves that grow their
//! own branches for 20 blocks meet on one tip and one state digest; and a node that comes
//! back to a better branch is SIGKILLed at a random instant while it switches, 20 times,
//! and every restart opens a consistent store (the store checks its state against the tip's
//! digest at open) and joins the others' tip.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::net::Net;
use serde_json::json;

/// One network at a time: each is four processes on two cores, and ports picked free by one
/// network must not be taken by the other before its nodes bind them (seen in CI: a node of
/// one network found its port in use).
static SERIAL: Mutex<()> = Mutex::new(());

/// The hash and digest of every running node's block at `h`, or None while a node lacks it.
fn tips_at(net: &Net, h: u64) -> Option<Vec<(String, String)>> {
    (0..net.nodes.len())
        .filter(|i| net.nodes[*i].child.is_some())
        .map(|i| {
            let b = net.try_rpc(i, "getblock", json!([h]))?;
            Some((
                b["hash"].as_str()?.to_owned(),
                b["statedigest"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Waits until every running node has one block and digest at the lowest of their heights,
/// and that height is at least `h`.
fn wait_agree(net: &Net, h: u64, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let low = (0..net.nodes.len())
            .filter(|i| net.nodes[*i].child.is_some())
            .map(|i| net.height(i))
            .min()
            .unwrap_or(0);
        if low >= h {
            if let Some(t) = tips_at(net, low) {
                if t.windows(2).all(|w| w[0] == w[1]) {
                    return low;
                }
            }
        }
        assert!(
            start.elapsed() < within,
            "the nodes do not agree at or above {h} after {within:?}\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// How many times node `i` has switched branches (its logs over every start).
fn switches(net: &Net, i: usize) -> usize {
    std::fs::read_dir(&net.nodes[i].dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .matches("reorganised")
                .count()
        })
        .sum()
}

fn reorganised(net: &Net, i: usize) -> bool {
    switches(net, i) > 0
}

#[test]
fn two_halves_that_grew_apart_for_20_blocks_meet_on_one_tip() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Nodes 0 and 1 peer with each other only, as do 2 and 3.
    let half = |i: usize| i / 2;
    let mut net = Net::with_peers(&[1, 1, 1, 1], |i, j| half(i) == half(j));
    let start = net.height(0);
    net.wait_height(start + 20, Duration::from_secs(120));
    // Both halves have their own branch: they part somewhere above the start.
    let h = start + 20;
    let a = net.rpc(0, "getblock", json!([h]));
    let b = net.rpc(2, "getblock", json!([h]));
    assert_ne!(a["hash"], b["hash"], "the halves did not part");
    // They meet: node 1 comes back peered with everyone.
    net.kill(1);
    net.nodes[1].peers = [0, 2, 3].iter().map(|j| net.nodes[*j].p2p).collect();
    net.start(1);
    let at = wait_agree(&net, h + 1, Duration::from_secs(120));
    // One side gave up its branch: its nodes reorganised, and the blocks they dropped
    // are the other side's at every height now.
    let losers: Vec<usize> = (0..4).filter(|i| reorganised(&net, *i)).collect();
    assert!(!losers.is_empty(), "nobody reorganised\n{}", net.logs());
    eprintln!("parted at or above {start}, met at {at}; reorganised: {losers:?}");
    for height in [start + 1, h, at] {
        assert!(tips_at(&net, height).is_some_and(|t| t.windows(2).all(|w| w[0] == w[1])));
    }
    // And they go on together.
    wait_agree(&net, at + 3, Duration::from_secs(60));
}

#[test]
fn a_node_killed_while_it_switches_branches_restarts_consistent_20_times() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Node 3 is cut off for a few blocks (its own branch), stopped while the others go
    // further, then brought back peered with them: it must switch, and is SIGKILLed at a
    // random instant of that.
    let mut net = Net::new(&[1, 1, 1, 1]);
    net.wait_height(2, Duration::from_secs(60));
    let seed = std::env::var("FLUXNODE_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill instants from seed {seed} (FLUXNODE_CUT_SEED replays them)");
    let mut rng = seed;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let others = [0, 1, 2].map(|j| net.nodes[j].p2p).to_vec();
    for round in 0..20 {
        // Alone: node 3 grows its own branch.
        net.kill(3);
        net.nodes[3].peers = vec![];
        net.start(3);
        let own = net.height(0);
        std::thread::sleep(Duration::from_secs(3));
        net.kill(3);
        // The others go further than node 3 could in its 3 s.
        net.wait_height(own + 6, Duration::from_secs(60));
        net.nodes[3].peers = others.clone();
        net.start(3);
        let after = Duration::from_millis(next() % 2_500);
        std::thread::sleep(after);
        net.kill(3);
        // Back: whatever the instant, the store opens and the node joins the others.
        net.start(3);
        let at = wait_agree(&net, own + 6, Duration::from_secs(90));
        eprintln!("round {round}: killed {after:?} after its return; all agree at {at}");
    }
    assert!(
        reorganised(&net, 3),
        "node 3 never switched branches\n{}",
        net.logs()
    );
}
