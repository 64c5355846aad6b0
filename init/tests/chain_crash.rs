//! Crash safety of block import: a node syncing 4000 blocks from a peer is killed with
//! SIGKILL at 20 random instants, each followed by a restart. After every restart its
//! stored tip's state digest equals the peer's at that height, and in the end it reaches
//! the peer's tip with the same digest.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::ledger::Ledger;
use chain::params::Params;
use chain::store::Store;
use chain::tx::{Tx, TxBody, COIN};
use common::{call, chain_node, free_port, height, wait};
use serde_json::json;

const BLOCKS: u64 = 4000;

/// A small pseudo-random sequence seeded from the clock (the instants differ per run; the
/// seed is printed so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn digest_at(rpc: u16, h: u64) -> Option<String> {
    call(rpc, "getblock", json!([h]))["result"]["statedigest"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn a_node_killed_twenty_times_during_import_always_restarts_on_a_consistent_state() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let wallet = keys::load_or_create(&t.join("wallet.key")).unwrap().0;
    let producer = keys::load_or_create(&t.join("a/node.key")).unwrap().0;
    let (pa, ra, pc, rc) = (free_port(), free_port(), free_port(), free_port());
    let genesis = Genesis {
        chain_id: "crash".into(),
        time: chain::node::now_secs() - 2 * BLOCKS,
        slot_secs: 1,
        balances: vec![(keys::address(&wallet), 1_000_000 * COIN)],
        nodes: vec![GenesisNode {
            owner: keys::address(&wallet),
            key: hex::encode(keys::public(&producer)),
            tier: 1,
            endpoint: format!("127.0.0.1:{pa}"),
        }],
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            expire_after: 100_000,
            ..Params::default()
        },
    };
    let gpath = t.join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    // The peer's chain, built here: a transfer in every block, so each changes the state.
    {
        let store = Store::open(&t.join("a/db")).unwrap();
        let mut l: Ledger = store.load(genesis.clone()).unwrap();
        for i in 0..BLOCKS {
            let tx = Tx::signed(
                &wallet,
                &genesis.hash(),
                i,
                10_000,
                TxBody::Transfer {
                    to: chain::address::Address([(i % 250) as u8; 20]),
                    amount: COIN,
                },
            );
            let slot = l.tip.slot + 1;
            let b = l
                .produce(&producer, slot, genesis.time + slot, &[tx], 10)
                .unwrap();
            let changes = l.apply(&b, u64::MAX).unwrap();
            store.commit(&b, &changes, &l).unwrap();
        }
    }
    let _a = chain_node(
        &t.join("a"),
        &gpath,
        &t.join("a/node.key"),
        pa,
        ra,
        &[],
        &["--no-produce"],
    );
    wait("the peer", Duration::from_secs(30), || height(ra) == BLOCKS);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill instants seeded with {seed}");
    let mut rng = Lcg(seed);
    let ckey = t.join("c/node.key");
    let mut seen = Vec::new();
    for round in 0..20 {
        let c = chain_node(
            &t.join("c"),
            &gpath,
            &ckey,
            pc,
            rc,
            &[pa],
            &["--no-produce"],
        );
        // Consistent on restart: its tip's digest is the peer's at that height.
        wait("the node answering", Duration::from_secs(30), || {
            call(rc, "getblockcount", json!([]))["result"].is_u64()
        });
        let h = height(rc);
        if h > 0 {
            assert_eq!(
                digest_at(rc, h),
                digest_at(ra, h),
                "round {round}: height {h} differs"
            );
        }
        seen.push(h);
        std::thread::sleep(Duration::from_millis(400 + rng.next(800)));
        drop(c); // SIGKILL
    }
    eprintln!("heights at the restarts: {seen:?}");
    let _c = chain_node(
        &t.join("c"),
        &gpath,
        &ckey,
        pc,
        rc,
        &[pa],
        &["--no-produce"],
    );
    let start = std::time::Instant::now();
    while height(rc) != BLOCKS {
        if start.elapsed() > Duration::from_secs(120) {
            let tail = |p: &str| {
                let text = std::fs::read_to_string(t.join(p)).unwrap_or_default();
                text.lines().rev().take(15).collect::<Vec<_>>().join("\n")
            };
            panic!(
                "no catch-up: at {}\nnode log (newest first):\n{}\npeer log:\n{}",
                height(rc),
                tail("c/log"),
                tail("a/log")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(digest_at(rc, BLOCKS), digest_at(ra, BLOCKS));
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never went back: {seen:?}"
    );
    assert!(
        seen.iter().any(|h| *h > 0 && *h < BLOCKS),
        "some kills hit mid-import: {seen:?}"
    );
}
