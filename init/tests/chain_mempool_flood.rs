//! An attacker floods a node's mempool over the real p2p port of a two-node network of real
//! processes: free confirms from thousands of fresh keys, nonces far ahead from a funded
//! account, and transfers from empty accounts. Nothing of it is kept but what the rules
//! allow (16 waiting transactions of the funded account, not ready), none of it reaches
//! the other node or a listening peer, an honest transfer sent over RPC meanwhile is
//! admitted, relayed and mined, the attacker is not banned for what an honest peer could
//! send, and both nodes go on producing the same chain.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::p2p::{Limits, Msg};
use chain::params::Params;
use chain::tx::{Hash, Tier, Tx, TxBody, COIN};
use common::pair::peer_from;
use common::{call, chain_node, free_port, height, wait};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use serde_json::{json, Value};

const FRESH_CONFIRMS: usize = 3_000;
const FAR_NONCES: u64 = 100;
const EMPTY_SENDERS: usize = 300;

fn fresh_key() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

/// The flood's own connections receive without a rate limit of their own.
fn wide() -> Limits {
    Limits {
        msgs_per_sec: 100_000,
        burst: 100_000,
        ..Limits::default()
    }
}

fn pool(rpc: u16) -> Value {
    call(rpc, "getmempoolinfo", json!([]))["result"].clone()
}

fn size(rpc: u16) -> u64 {
    pool(rpc)["size"].as_u64().unwrap_or(u64::MAX)
}

/// Whether the node has the transaction, in a block or its mempool; the block's height.
fn lookup(rpc: u16, id: &Hash) -> Option<Value> {
    let r = call(rpc, "getrawtransaction", json!([hex::encode(id), true]));
    r.get("error")
        .is_none()
        .then(|| r["result"]["height"].clone())
}

fn best(rpc: u16) -> Option<String> {
    call(rpc, "getbestblockhash", json!([]))["result"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn a_mempool_flood_keeps_nothing_it_should_not_and_relays_none_of_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let wallet = keys::load_or_create(&t.join("wallet.key")).unwrap().0;
    let attacker = fresh_key();
    let (pa, ra, pb, rb) = (free_port(), free_port(), free_port(), free_port());
    let mut nodes = Vec::new();
    for (i, p) in [pa, pb].iter().enumerate() {
        let k = keys::load_or_create(&t.join(format!("n{i}/node.key")))
            .unwrap()
            .0;
        nodes.push(GenesisNode {
            owner: keys::address(&wallet),
            key: hex::encode(keys::public(&k)),
            tier: 1,
            endpoint: format!("127.0.0.1:{p}"),
        });
    }
    let genesis = Genesis {
        chain_id: "flood".into(),
        time: chain::node::now_secs(),
        slot_secs: 1,
        balances: vec![
            (keys::address(&wallet), 1_000 * COIN),
            (keys::address(&attacker), 10 * COIN),
        ],
        nodes,
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            // The honest nodes confirm every few blocks during the flood.
            reconfirm_min: 5,
            ..Params::default()
        },
    };
    let c = genesis.hash();
    let gpath = t.join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let (a, b) = (t.join("n0"), t.join("n1"));
    let _a = chain_node(&a, &gpath, &a.join("node.key"), pa, ra, &[pb], &[]);
    let _b = chain_node(&b, &gpath, &b.join("node.key"), pb, rb, &[pa], &[]);
    wait("blocks", Duration::from_secs(30), || {
        height(ra) >= 3 && height(rb) >= 3
    });

    // The junk, made before the attack.
    let fresh: Vec<Tx> = (0..FRESH_CONFIRMS)
        .map(|i| {
            let body = TxBody::NodeConfirm {
                bench_tier: Some(Tier::Cumulus),
                bench_report: vec![],
                workload: vec![],
            };
            Tx::signed(&fresh_key(), &c, (i % 3) as u64, 0, body)
        })
        .collect();
    let to = "fx00000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    // Nonce 0 never comes: 1..=16 may wait, the rest is too far ahead.
    let far: Vec<Tx> = (1..=FAR_NONCES)
        .map(|n| Tx::signed(&attacker, &c, n, 1_000, TxBody::Transfer { to, amount: 1 }))
        .collect();
    let empty: Vec<Tx> = (0..EMPTY_SENDERS)
        .map(|i| {
            let body = TxBody::Transfer { to, amount: 1 };
            Tx::signed(&fresh_key(), &c, (i % 20) as u64, 1_000, body)
        })
        .collect();
    let junk: Vec<&Tx> = fresh.iter().chain(&far).chain(&empty).collect();
    let junk_ids: HashSet<Hash> = junk.iter().map(|t| t.id()).collect();

    let token = std::fs::read_to_string(a.join("api.token")).unwrap();
    let wallet_nonce = call(ra, "getbalance", json!([keys::address(&wallet)]))["result"]["nonce"]
        .as_u64()
        .unwrap();
    let honest = Tx::signed(
        &wallet,
        &c,
        wallet_nonce,
        10_000,
        TxBody::Transfer {
            to,
            amount: 5 * COIN,
        },
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relayed: Arc<Mutex<HashSet<Hash>>> = Arc::default();
    let (mut peak_a, mut peak_b, mut peak_ready_a) = (0, 0, 0);
    let spy = rt.block_on(async {
        // A listening peer: every transaction node A relays to it.
        let (mut spy_rx, _spy_tx) = peer_from("127.0.0.10", pa, &genesis, wide())
            .await
            .into_split();
        let seen = relayed.clone();
        let spy = tokio::spawn(async move {
            loop {
                match spy_rx.recv(Duration::from_secs(120)).await {
                    Ok(Msg::Tx(tx)) => {
                        seen.lock().unwrap().insert(tx.id());
                    }
                    Ok(_) => {}
                    Err(e) if e.is_fatal() => break,
                    Err(_) => {}
                }
            }
            _spy_tx
        });
        let mut c = peer_from("127.0.0.9", pa, &genesis, wide()).await;
        // Under the node's per-peer rate (1,000 a second): the mempool is what is tested.
        for (i, batch) in junk.chunks(100).enumerate() {
            for tx in batch {
                c.send(&Msg::Tx((*tx).clone())).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            if i == 10 {
                let r = chain::http::call(
                    &format!("127.0.0.1:{ra}"),
                    Some(token.trim()),
                    "sendrawtransaction",
                    json!([hex::encode(honest.encode())]),
                )
                .unwrap();
                assert_eq!(
                    r["result"],
                    json!(hex::encode(honest.id())),
                    "the honest transfer is admitted during the flood: {r}"
                );
            }
            let (pa_info, pb_size) = (pool(ra), size(rb));
            peak_a = peak_a.max(pa_info["size"].as_u64().unwrap_or(u64::MAX));
            peak_ready_a = peak_ready_a.max(pa_info["ready"].as_u64().unwrap_or(u64::MAX));
            peak_b = peak_b.max(pb_size);
        }
        // The attacker is still connected: refusals an honest peer could cause cost nothing.
        c.send(&Msg::Ping(7)).await.unwrap();
        let mut ponged = false;
        for _ in 0..1_000 {
            match c.recv(Duration::from_secs(10)).await {
                Ok(Msg::Pong(7)) => {
                    ponged = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("the attacker's connection ended: {e}"),
            }
        }
        assert!(ponged, "no pong");
        spy.abort_handle()
    });

    // 16 waiting transfers of the attacker, the honest transfer and the two nodes' own
    // confirms at most; none ready but those three.
    assert!(peak_a <= 16 + 3, "node A's pool reached {peak_a}");
    assert!(peak_ready_a <= 3, "{peak_ready_a} ready on node A");
    assert!(peak_b <= 3, "node B's pool reached {peak_b}");
    for tx in &far[..16] {
        assert_eq!(
            lookup(ra, &tx.id()),
            Some(Value::Null),
            "nonce {} waits on A",
            tx.nonce
        );
    }

    wait(
        "the honest transfer mined on both nodes",
        Duration::from_secs(60),
        || {
            [ra, rb]
                .iter()
                .all(|r| lookup(*r, &honest.id()).is_some_and(|h| h.is_u64()))
        },
    );
    for (i, tx) in junk.iter().enumerate().step_by(7) {
        assert_eq!(lookup(rb, &tx.id()), None, "junk {i} reached node B");
        if !matches!(tx.body, TxBody::Transfer { .. }) || tx.signer != keys::public(&attacker) {
            assert_eq!(lookup(ra, &tx.id()), None, "junk {i} kept by node A");
        }
    }
    for tx in &far[16..] {
        assert_eq!(
            lookup(ra, &tx.id()),
            None,
            "nonce {} is too far ahead",
            tx.nonce
        );
    }
    spy.abort();
    let seen = relayed.lock().unwrap().clone();
    assert!(
        seen.contains(&honest.id()),
        "the listening peer got the honest transfer"
    );
    let leaked: Vec<_> = seen.intersection(&junk_ids).collect();
    assert!(
        leaked.is_empty(),
        "{} junk transactions relayed",
        leaked.len()
    );

    let log = std::fs::read_to_string(a.join("log")).unwrap();
    assert!(
        !log.lines()
            .any(|l| l.contains("127.0.0.9") && l.contains("banned")),
        "the attacker was banned for what an honest peer could send"
    );
    let (ha, hb) = (height(ra), height(rb));
    wait(
        "more blocks after the flood",
        Duration::from_secs(30),
        || height(ra) > ha + 2 && height(rb) > hb + 2,
    );
    wait(
        "the same tip on both nodes",
        Duration::from_secs(30),
        || best(ra).is_some() && best(ra) == best(rb),
    );
}
