//! The chain as a network of real `fluxnode chain` processes on 127.0.0.1: real sled
//! databases, real TCP, a 1 s slot. Every node must agree on every block and state digest,
//! rewards follow the tiers, transfers spread, killed nodes catch up, and a node missing an
//! assigned instance stops producing until its report is whole.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chain::tx::{Tx, TxBody, COIN};
use common::net::Net;
use serde_json::{json, Value};

/// One network at a time: each is four processes on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn units(v: &Value) -> u64 {
    v["balance"].as_u64().unwrap()
}

#[test]
fn four_nodes_agree_on_every_block_and_rewards_follow_the_tiers() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::new(&[1, 1, 2, 3]);
    net.wait_height(30, Duration::from_secs(120));
    let h = (0..4).map(|i| net.height(i)).min().unwrap();
    net.agree_at(h);
    let producers = net.producers(h);
    for i in 0..4 {
        let k = net.node_key(i);
        assert!(
            producers.contains(&k),
            "node {i} produced none of {h} blocks"
        );
    }
    // Stratus earns 9 coins a block, Nimbus 3.5, Cumulus 1 (to the longest unpaid), and
    // each producer 0.5 a block it made (no fees were paid). Balances are read between two
    // equal heights, so they belong to that height.
    let (tip, bal) = loop {
        let before = net.height(0);
        let bal: Vec<u64> = (0..4)
            .map(|i| units(&net.rpc(0, "getbalance", json!([net.owners[i]]))))
            .collect();
        if net.height(0) == before {
            break (before, bal);
        }
    };
    let at = |i: usize| bal[i];
    let producers = net.producers(tip);
    let made_tip = |i: usize| producers.iter().filter(|p| **p == net.node_key(i)).count() as u64;
    assert_eq!(
        at(3),
        tip * 9 * COIN + made_tip(3) * COIN / 2,
        "Stratus: 9 a block"
    );
    assert_eq!(
        at(2),
        tip * 350_000_000 + made_tip(2) * COIN / 2,
        "Nimbus: 3.5 a block"
    );
    assert_eq!(
        at(0) + at(1),
        tip * COIN + (made_tip(0) + made_tip(1)) * COIN / 2,
        "Cumulus: 1 a block, shared"
    );
    assert!(at(0) > 0 && at(1) > 0, "both Cumulus nodes paid in turn");
}

#[test]
fn a_transfer_reaches_every_node_and_a_killed_node_catches_up() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = Net::new(&[1, 1, 1, 1]);
    net.wait_height(3, Duration::from_secs(60));
    let to = "fx00000000000000000000000000000000000000aa";
    let tx = Tx::signed(
        &net.wallet,
        &net.chain,
        0,
        10_000,
        TxBody::Transfer {
            to: to.parse().unwrap(),
            amount: 5 * COIN,
        },
    );
    net.send(0, &tx);
    let start = Instant::now();
    for i in 0..4 {
        while units(&net.rpc(i, "getbalance", json!([to]))) != 5 * COIN {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "node {i} never saw the transfer"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // kill -9 one node; the others go on; it comes back and catches up.
    net.kill(3);
    let h = net.height(0);
    net.wait_height(h + 5, Duration::from_secs(60));
    net.start(3);
    let target = net.height(0) + 2;
    net.wait_height(target, Duration::from_secs(60));
    net.agree_at(target);
    // Two nodes stopped and brought back later: the network converges on one chain.
    net.kill(2);
    net.kill(3);
    let h = net.height(0);
    net.wait_height(h + 4, Duration::from_secs(60));
    net.start(2);
    net.start(3);
    let target = net.height(0) + 3;
    net.wait_height(target, Duration::from_secs(90));
    net.agree_at(target);
}

#[test]
fn a_node_missing_its_assigned_instance_stops_producing_until_its_report_is_whole() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let net = Net::new(&[1, 1, 1]);
    net.wait_height(2, Duration::from_secs(60));
    let spec = chain::tx::AppSpec {
        name: "web".into(),
        image_ref: "local/busybox".into(),
        image_digest: format!("sha256:{}", "ab".repeat(32)),
        command: vec![],
        env: vec![],
        ports: vec![],
        cpu_millis: 100,
        ram_bytes: 1 << 20,
        disk_bytes: 1 << 20,
        instances: 1,
        expiry_blocks: 10_000,
    };
    net.send(
        0,
        &Tx::signed(
            &net.wallet,
            &net.chain,
            0,
            10_000,
            TxBody::AppRegister(spec),
        ),
    );
    let start = Instant::now();
    let holder = loop {
        let loc = net
            .try_rpc(0, "getapplocation", json!(["web"]))
            .unwrap_or_default();
        if let Some(n) = loc.as_array().and_then(|a| a.first()) {
            break n["node"].as_str().unwrap().to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never assigned");
        std::thread::sleep(Duration::from_millis(300));
    };
    let i = (0..3).find(|i| net.node_key(*i) == holder).unwrap();
    // Every node's kept placement agrees, as listfluxnodes (answered from a copy of the
    // ledger) and the deterministic list show it over the real port.
    net.wait_height(net.height(0) + 1, Duration::from_secs(60));
    for j in 0..3 {
        let list = net.rpc(j, "listfluxnodes", json!([]));
        let list = list.as_array().expect("a list");
        assert_eq!(list.len(), 3, "node {j}: {list:?}");
        for n in list {
            let want = if n["key"] == holder.as_str() {
                json!(["web/0"])
            } else {
                json!([])
            };
            assert_eq!(n["assigned"], want, "node {j} lists {n}");
        }
        let det = net.rpc(j, "viewdeterministicfluxnodelist", json!([]));
        assert_eq!(det.as_array().map(Vec::len), Some(3), "node {j}: {det}");
    }
    let status = |n: &Net| n.rpc(0, "getfluxnodestatus", json!([holder]));
    // Its next confirm carries a report without the instance: from then on it is not useful.
    let start = Instant::now();
    while status(&net)["useful"] != false {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still useful\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let from = net.height(0);
    net.wait_height(from + 8, Duration::from_secs(60));
    let to = net.height(0);
    let idle: Vec<u64> = (from + 1..=to)
        .filter(|h| net.rpc(0, "getblock", json!([h]))["producer"] == holder.as_str())
        .collect();
    assert!(
        idle.is_empty(),
        "the node produced blocks {idle:?} while not useful"
    );
    std::fs::write(
        net.nodes[i].dir.join("workload.json"),
        r#"[{"app":"web","instance":0,"running":true}]"#,
    )
    .unwrap();
    let start = Instant::now();
    while status(&net)["useful"] != true {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never useful again\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let back = net.height(0);
    let start = Instant::now();
    loop {
        let tip = net.height(0);
        let made = (back + 1..=tip)
            .any(|h| net.rpc(0, "getblock", json!([h]))["producer"] == holder.as_str());
        if made {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "useful but never produced"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
