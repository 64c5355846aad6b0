//! The wallet flow through the command line, against real `fluxnode chain` processes: a
//! fresh key is funded, starts a Cumulus node (its key file at hand signs the consent; the
//! node, its owner configured, then confirms itself), registers an app and sees it
//! assigned; a node started with the consent it printed (`fluxnode chain consent`) but
//! never run lands on the DoS list, and one that stops confirming expires.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{chain_node, free_port, wait, BIN};

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::params::Params;
use chain::tx::COIN;
use serde_json::{json, Value};

/// Runs the CLI; returns its stdout, failing the test with its stderr.
fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "fluxnode {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn call(rpc: u16, method: &str, params: Value) -> Value {
    common::call(rpc, method, params)
}

#[test]
fn a_fresh_wallet_funds_starts_a_node_registers_an_app_and_sees_it_assigned() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let p = |s: &str| -> PathBuf { t.join(s) };
    let s = |p: &PathBuf| p.display().to_string();
    let funder = keys::load_or_create(&p("funder.key")).unwrap().0;
    let k1 = keys::load_or_create(&p("n1/node.key")).unwrap().0;
    let (p2p1, rpc1) = (free_port(), free_port());
    let genesis = Genesis {
        chain_id: "wallet-flow".into(),
        time: chain::node::now_secs(),
        slot_secs: 1,
        balances: vec![(keys::address(&funder), 100_000 * COIN)],
        nodes: vec![GenesisNode {
            owner: keys::address(&funder),
            key: hex::encode(keys::public(&k1)),
            tier: 1,
            endpoint: format!("127.0.0.1:{p2p1}"),
        }],
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            confirm_window: 8,
            expire_after: 15,
            reconfirm_min: 5,
            ..Params::default()
        },
    };
    std::fs::write(p("genesis.json"), serde_json::to_vec(&genesis).unwrap()).unwrap();
    let _n1 = chain_node(
        &p("n1"),
        &p("genesis.json"),
        &p("n1/node.key"),
        p2p1,
        rpc1,
        &[],
        &[],
    );
    let rpc = format!("127.0.0.1:{rpc1}");
    wait("the first node answering", Duration::from_secs(30), || {
        chain::http::call(&rpc, None, "getblockcount", json!([])).is_ok()
            && p("n1/api.token").exists()
    });
    let token = ["--rpc", &rpc, "--token-file", &s(&p("n1/api.token"))];

    // A fresh wallet, funded by the genesis wallet.
    let me = cli(&["wallet", "new", "--wallet", &s(&p("me.key"))]);
    assert!(me.starts_with("fx") && me.len() == 42, "{me}");
    let mut args = vec!["tx", "transfer", &me, "1500", "--wallet"];
    let funder_path = s(&p("funder.key"));
    args.push(&funder_path);
    args.extend(token);
    cli(&args);
    wait("the transfer", Duration::from_secs(30), || {
        call(rpc1, "getbalance", json!([me]))["result"]["coins"] == "1500.00000000"
    });
    let me_path = s(&p("me.key"));
    let bal = cli(&["wallet", "balance", "--wallet", &me_path, "--rpc", &rpc]);
    assert!(bal.contains("1500.00000000 coins"), "{bal}");

    // It starts a Cumulus node whose key file it holds (which signs the consent); the node,
    // whose owner it is, then confirms itself.
    let k2 = keys::load_or_create(&p("n2/node.key")).unwrap().0;
    let (p2p2, rpc2) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{p2p2}");
    let k2_path = s(&p("n2/node.key"));
    let mut args = vec![
        "tx",
        "node-start",
        "--tier",
        "cumulus",
        "--node-key-file",
        &k2_path,
        "--endpoint",
        &endpoint,
        "--wallet",
        &me_path,
    ];
    args.extend(token);
    cli(&args);
    let k2_hex = hex::encode(keys::public(&k2));
    wait("the node start", Duration::from_secs(30), || {
        call(rpc1, "getfluxnodestatus", json!([k2_hex]))["result"]["status"] == "STARTED"
    });
    let _n2 = chain_node(
        &p("n2"),
        &p("genesis.json"),
        &p("n2/node.key"),
        p2p2,
        rpc2,
        &[p2p1],
        &["--owner", &me],
    );
    wait("the node's confirm", Duration::from_secs(60), || {
        call(rpc1, "getfluxnodestatus", json!([k2_hex]))["result"]["status"] == "CONFIRMED"
    });
    let bal = call(rpc1, "getbalance", json!([me]))["result"]["balance"]
        .as_u64()
        .unwrap();
    assert_eq!(
        bal,
        1500 * COIN - 1000 * COIN - 10_000,
        "collateral locked, fee paid"
    );

    // It registers an app and sees it assigned to a confirmed node.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut args = vec![
        "tx",
        "app-register",
        "web",
        "--image-ref",
        "local/busybox",
        "--digest",
        &digest,
        "--cpu",
        "0.1",
        "--ram",
        "1M",
        "--disk",
        "1M",
        "--instances",
        "2",
        "--expiry",
        "500",
        "--wallet",
        &me_path,
    ];
    args.extend(token);
    cli(&args);
    wait("the app's assignment", Duration::from_secs(30), || {
        call(rpc1, "getapplocation", json!(["web"]))["result"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    // Both nodes now hold an instance: they stay useful (and the chain goes on) only when
    // their reports show it running, as PID1's runtime would report it.
    let running =
        r#"[{"app":"web","instance":0,"running":true},{"app":"web","instance":1,"running":true}]"#;
    std::fs::write(p("n1/workload.json"), running).unwrap();
    std::fs::write(p("n2/workload.json"), running).unwrap();
    let spec = call(rpc1, "getappspecs", json!(["web"]))["result"].clone();
    assert_eq!(
        (spec["owner"].as_str(), spec["instances"].as_u64()),
        (Some(me.as_str()), Some(2))
    );

    // A node that is started but never runs misses its confirm window: DoS list.
    let k3 = keys::load_or_create(&p("n3/node.key")).unwrap().0;
    let k3_hex = hex::encode(keys::public(&k3));
    let mut args = vec!["tx", "transfer", &me, "2000", "--wallet", &funder_path];
    args.extend(token);
    cli(&args);
    wait("more funds", Duration::from_secs(30), || {
        call(rpc1, "getbalance", json!([me]))["result"]["balance"]
            .as_u64()
            .unwrap()
            > 2000 * COIN
    });
    // The node side makes the consent; the wallet, with only the key's hex, sends it.
    let genesis_path = s(&p("genesis.json"));
    let consent = cli(&[
        "chain",
        "consent",
        "--owner",
        &me,
        "--endpoint",
        "127.0.0.1:1",
        "--key",
        &s(&p("n3/node.key")),
        "--genesis",
        &genesis_path,
    ]);
    assert_eq!(consent.len(), 128, "{consent}");
    let mut args = vec![
        "tx",
        "node-start",
        "--node-key",
        &k3_hex,
        "--endpoint",
        "127.0.0.1:1",
        "--wallet",
        &me_path,
    ];
    args.extend(token);
    let refused = Command::new(BIN).args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("fluxnode chain consent --owner"),
        "a node start without a consent: {err}"
    );
    args.extend(["--consent", &consent, "--genesis", &genesis_path]);
    cli(&args);
    wait("the DoS list", Duration::from_secs(60), || {
        call(rpc1, "getfluxnodestatus", json!([k3_hex]))["result"]["status"] == "DOS"
    });

    // The second node stops (killed): without confirms it expires.
    drop(_n2);
    wait("the expiry", Duration::from_secs(90), || {
        call(rpc1, "getfluxnodestatus", json!([k2_hex]))["error"]["code"] == -5
    });
}
