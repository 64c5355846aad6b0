//! Consent and replay, attacked through the real ports of real `fluxnode chain` processes:
//! a transfer made on one devnet and replayed, byte for byte, to another whose genesis gives
//! the same wallet the same funds is refused (over JSON-RPC and over p2p) and moves nothing;
//! a stranger who registers an honest node's key with NodeStart, with no consent or with the
//! consent the node made for its real owner, is refused, while the real owner's start goes
//! through and the node confirms and produces for it; a node with no owner configured
//! confirms for nobody and says why once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::p2p::{Limits, Msg};
use chain::params::Params;
use chain::tx::{Tier, Tx, TxBody, COIN};
use common::pair::peer_from;
use common::{call, chain_node, free_port, height, wait, BIN};
use ring::signature::Ed25519KeyPair;
use serde_json::{json, Value};

/// One network at a time: each test runs two processes on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

const MINUTE: Duration = Duration::from_secs(60);

fn key(path: &Path) -> Ed25519KeyPair {
    keys::load_or_create(path).unwrap().0
}

fn addr(k: &Ed25519KeyPair) -> String {
    keys::address(k)
}

fn genesis(
    chain_id: &str,
    balances: &[(&Ed25519KeyPair, u64)],
    nodes: Vec<GenesisNode>,
) -> Genesis {
    Genesis {
        chain_id: chain_id.into(),
        time: chain::node::now_secs(),
        slot_secs: 1,
        balances: balances.iter().map(|(k, v)| (addr(k), *v)).collect(),
        nodes,
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            confirm_window: 8,
            reconfirm_min: 5,
            expire_after: 40,
            ..Params::default()
        },
    }
}

fn genesis_node(owner: &Ed25519KeyPair, node: &Ed25519KeyPair, p2p: u16) -> GenesisNode {
    GenesisNode {
        owner: addr(owner),
        key: hex::encode(keys::public(node)),
        tier: 1,
        endpoint: format!("127.0.0.1:{p2p}"),
    }
}

fn write_genesis(path: &Path, g: &Genesis) {
    std::fs::write(path, serde_json::to_vec(g).unwrap()).unwrap();
}

/// `sendrawtransaction` with the node's API token (from its data directory); the reply.
fn send_raw(rpc: u16, data: &Path, tx: &Tx) -> Value {
    let token = std::fs::read_to_string(data.join("api.token")).unwrap();
    chain::http::call(
        &format!("127.0.0.1:{rpc}"),
        Some(token.trim()),
        "sendrawtransaction",
        json!([hex::encode(tx.encode())]),
    )
    .unwrap()
}

fn balance(rpc: u16, who: &str) -> (u64, u64) {
    let r = &call(rpc, "getbalance", json!([who]))["result"];
    (r["balance"].as_u64().unwrap(), r["nonce"].as_u64().unwrap())
}

fn hash_at(rpc: u16, h: u64) -> Option<String> {
    call(rpc, "getblockhash", json!([h]))["result"]
        .as_str()
        .map(str::to_owned)
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

/// A node answering with its token written.
fn wait_up(rpc: u16, dir: &Path, min_height: u64) {
    wait("the node answering", MINUTE, || {
        dir.join("api.token").exists() && height(rpc) >= min_height
    });
}

/// Sends one message over p2p from `ip`.
fn gossip(ip: &str, port: u16, genesis: &Genesis, msg: Msg) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = peer_from(ip, port, genesis, Limits::default()).await;
        c.send(&msg).await.unwrap();
        // Held open a moment so the node reads it before the connection closes.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
}

/// Runs the CLI; its stdout, failing the test with its stderr.
fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "fluxnode {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The node side's consent (`fluxnode chain consent`) for `owner` at `endpoint`.
fn consent_cli(node_key: &Path, genesis: &Path, owner: &str, endpoint: &str) -> String {
    let (k, g) = (
        node_key.display().to_string(),
        genesis.display().to_string(),
    );
    cli(&[
        "chain",
        "consent",
        "--owner",
        owner,
        "--tier",
        "cumulus",
        "--endpoint",
        endpoint,
        "--key",
        &k,
        "--genesis",
        &g,
    ])
}

/// The owner's wallet sends the node start with the node's consent (`fluxnode tx node-start`).
fn node_start_cli(
    wallet: &Path,
    node: &Ed25519KeyPair,
    endpoint: &str,
    consent: &str,
    rpc: u16,
    data: &Path,
) {
    let (w, t) = (
        wallet.display().to_string(),
        data.join("api.token").display().to_string(),
    );
    let node_hex = hex::encode(keys::public(node));
    let rpc = format!("127.0.0.1:{rpc}");
    cli(&[
        "tx",
        "node-start",
        "--tier",
        "cumulus",
        "--node-key",
        &node_hex,
        "--endpoint",
        endpoint,
        "--consent",
        consent,
        "--wallet",
        &w,
        "--rpc",
        &rpc,
        "--token-file",
        &t,
    ]);
}

fn status(rpc: u16, node: &Ed25519KeyPair) -> Value {
    call(
        rpc,
        "getfluxnodestatus",
        json!([hex::encode(keys::public(node))]),
    )
}

#[test]
fn a_transfer_replayed_to_another_devnet_is_refused_and_moves_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let wallet = key(&t.join("wallet.key"));
    let payee = "fx00000000000000000000000000000000000000aa";
    // Two devnets of the same name, each funding the wallet alike; their nodes (and owners,
    // who earn the rewards) differ, so their genesis hashes do.
    let mut nets = Vec::new();
    for name in ["a", "b"] {
        let dir = t.join(name);
        let (p2p, rpc) = (free_port(), free_port());
        let node = key(&dir.join("node.key"));
        let owner = key(&dir.join("owner.key"));
        let g = genesis(
            "replay",
            &[(&wallet, 1_000 * COIN)],
            vec![genesis_node(&owner, &node, p2p)],
        );
        write_genesis(&dir.join("genesis.json"), &g);
        let proc = chain_node(
            &dir,
            &dir.join("genesis.json"),
            &dir.join("node.key"),
            p2p,
            rpc,
            &[],
            &[],
        );
        nets.push((dir, g, p2p, rpc, proc));
    }
    let [(da, ga, _, ra, _a), (db, gb, pb, rb, _b)] = <[_; 2]>::try_from(nets).ok().unwrap();
    wait_up(ra, &da, 2);
    wait_up(rb, &db, 2);
    let info = |rpc| call(rpc, "getinfo", json!([]))["result"].clone();
    assert_eq!(info(ra)["chain"], info(rb)["chain"], "one chain id");
    assert_ne!(
        info(ra)["genesis"],
        info(rb)["genesis"],
        "two genesis hashes"
    );

    // A transfer on devnet a goes through.
    let transfer = TxBody::Transfer {
        to: payee.parse().unwrap(),
        amount: 5 * COIN,
    };
    let tx = Tx::signed(&wallet, &ga.hash(), 0, 10_000, transfer);
    let sent = send_raw(ra, &da, &tx);
    assert!(sent["error"].is_null(), "devnet a: {sent}");
    wait("the transfer on devnet a", MINUTE, || {
        balance(ra, payee).0 == 5 * COIN
    });
    assert_eq!(balance(ra, &addr(&wallet)).1, 1, "spent nonce 0 on a");

    // The same bytes on devnet b: refused over JSON-RPC...
    let replayed = send_raw(rb, &db, &tx);
    assert_eq!(replayed["error"]["code"], -26, "{replayed}");
    let why = replayed["error"]["message"].as_str().unwrap();
    assert!(why.contains("bad signature"), "{why}");
    // ...and over p2p, where the sender is banned for it.
    gossip("127.0.0.7", pb, &gb, Msg::Tx(tx.clone()));
    wait("the replaying peer's ban", MINUTE, || {
        log_of(&db).lines().any(|l| {
            l.contains("peer 127.0.0.7:") && l.contains("banned") && l.contains("bad signature")
        })
    });
    // Blocks go on on b, and nothing moved there.
    let h = height(rb);
    wait("blocks on devnet b", MINUTE, || height(rb) >= h + 3);
    assert_eq!(
        balance(rb, &addr(&wallet)),
        (1_000 * COIN, 0),
        "the wallet on b"
    );
    assert_eq!(balance(rb, payee), (0, 0), "the payee on b");
    let id = hex::encode(tx.id());
    assert_eq!(
        call(rb, "getrawtransaction", json!([id]))["error"]["code"],
        -5
    );
}

/// A devnet of one genesis node owned by `owner`, and a second node (its key `n1/node.key`)
/// not registered, run with `extra` arguments (its owner, or none).
struct Pair {
    g: Genesis,
    gpath: PathBuf,
    d0: PathBuf,
    d1: PathBuf,
    r0: u16,
    r1: u16,
    p0: u16,
    p1: u16,
    _procs: [common::Proc; 2],
}

fn pair(t: &Path, owner: &Ed25519KeyPair, stranger: &Ed25519KeyPair, extra: &[&str]) -> Pair {
    let (d0, d1) = (t.join("n0"), t.join("n1"));
    let (p0, r0, p1, r1) = (free_port(), free_port(), free_port(), free_port());
    let n0 = key(&d0.join("node.key"));
    key(&d1.join("node.key"));
    let g = genesis(
        "consent",
        &[(owner, 5_000 * COIN), (stranger, 5_000 * COIN)],
        vec![genesis_node(owner, &n0, p0)],
    );
    let gpath = t.join("genesis.json");
    write_genesis(&gpath, &g);
    let a = chain_node(&d0, &gpath, &d0.join("node.key"), p0, r0, &[p1], &[]);
    let b = chain_node(&d1, &gpath, &d1.join("node.key"), p1, r1, &[p0], extra);
    wait_up(r0, &d0, 2);
    wait_up(r1, &d1, 2);
    Pair {
        g,
        gpath,
        d0,
        d1,
        r0,
        r1,
        p0,
        p1,
        _procs: [a, b],
    }
}

#[test]
fn a_stranger_cannot_register_an_honest_nodes_key_and_the_node_works_for_its_owner() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let owner = key(&t.join("owner.key"));
    let stranger = key(&t.join("stranger.key"));
    let owner_addr = addr(&owner);
    let net = pair(t, &owner, &stranger, &["--owner", &owner_addr]);
    let honest = key(&net.d1.join("node.key"));
    let endpoint = format!("127.0.0.1:{}", net.p1);
    let chain = net.g.hash();
    // The honest node's consent, made for its real owner (as a stranger could read it off
    // the owner's node start in the mempool, and try to get in first).
    let consent = consent_cli(&net.d1.join("node.key"), &net.gpath, &owner_addr, &endpoint);
    let mut for_owner = [0u8; 64];
    hex::decode_to_slice(&consent, &mut for_owner).unwrap();
    let start = |consent: [u8; 64], nonce: u64| {
        let body = TxBody::NodeStart {
            tier: Tier::Cumulus,
            node_key: keys::public(&honest),
            endpoint: endpoint.clone(),
            consent,
        };
        Tx::signed(&stranger, &chain, nonce, 10_000, body)
    };

    // Over JSON-RPC: no consent, then the owner's consent.
    let r = send_raw(net.r0, &net.d0, &start([0; 64], 0));
    assert_eq!(r["error"]["code"], -26, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("carries no consent"),
        "{r}"
    );
    let r = send_raw(net.r0, &net.d0, &start(for_owner, 0));
    assert_eq!(r["error"]["code"], -26, "{r}");
    let why = r["error"]["message"].as_str().unwrap();
    assert!(
        why.contains(&format!("did not consent to owner {}", addr(&stranger))),
        "{why}"
    );
    // Over p2p, to both nodes.
    let gossiped = start(for_owner, 0);
    gossip("127.0.0.9", net.p0, &net.g, Msg::Tx(gossiped.clone()));
    gossip("127.0.0.9", net.p1, &net.g, Msg::Tx(start([0; 64], 0)));
    let h = height(net.r0);
    wait("blocks after the attempts", MINUTE, || {
        height(net.r0) >= h + 3
    });
    for rpc in [net.r0, net.r1] {
        assert_eq!(
            status(rpc, &honest)["error"]["code"],
            -5,
            "registered by the stranger"
        );
        assert_eq!(
            balance(rpc, &addr(&stranger)),
            (5_000 * COIN, 0),
            "the stranger paid"
        );
        let id = hex::encode(gossiped.id());
        assert_eq!(
            call(rpc, "getrawtransaction", json!([id]))["error"]["code"],
            -5
        );
    }

    // The real owner's start, with the node's consent, goes through; the node confirms for
    // its owner, again when it may, and produces; both nodes stay on one chain.
    node_start_cli(
        &t.join("owner.key"),
        &honest,
        &endpoint,
        &consent,
        net.r0,
        &net.d0,
    );
    let confirmed = |rpc| status(rpc, &honest)["result"]["confirmed_height"].as_u64();
    wait("the honest node's confirm", MINUTE, || {
        confirmed(net.r0).is_some()
    });
    assert_eq!(
        status(net.r0, &honest)["result"]["owner"],
        owner_addr.as_str()
    );
    let first = confirmed(net.r0).unwrap();
    wait("its next confirm", MINUTE, || {
        confirmed(net.r0).is_some_and(|c| c > first)
    });
    let me = hex::encode(keys::public(&honest));
    let mut seen = first;
    wait("a block by the honest node", MINUTE, || {
        let top = height(net.r0);
        let found = (seen..=top)
            .any(|h| call(net.r0, "getblock", json!([h]))["result"]["producer"] == me.as_str());
        seen = top;
        found
    });
    let h = height(net.r0);
    wait("both nodes past it", MINUTE, || {
        height(net.r0) > h + 2 && height(net.r1) > h + 2
    });
    let top = height(net.r0).min(height(net.r1)) - 1;
    assert_eq!(
        hash_at(net.r0, top),
        hash_at(net.r1, top),
        "one chain at {top}"
    );
    assert!(
        !log_of(&net.d1).contains("no confirm:"),
        "{}",
        log_of(&net.d1)
    );
}

#[test]
fn a_node_with_no_owner_configured_confirms_for_nobody_and_says_why_once() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let owner = key(&t.join("owner.key"));
    let stranger = key(&t.join("stranger.key"));
    let net = pair(t, &owner, &stranger, &[]);
    let node = key(&net.d1.join("node.key"));
    let endpoint = format!("127.0.0.1:{}", net.p1);
    let consent = consent_cli(
        &net.d1.join("node.key"),
        &net.gpath,
        &addr(&owner),
        &endpoint,
    );
    node_start_cli(
        &t.join("owner.key"),
        &node,
        &endpoint,
        &consent,
        net.r0,
        &net.d0,
    );
    wait("the start", MINUTE, || {
        status(net.r0, &node)["result"]["status"] == "STARTED"
    });
    // Never confirmed: its window passes and it goes on the DoS list.
    wait("the DoS list", MINUTE, || {
        status(net.r0, &node)["result"]["status"] == "DOS"
    });
    let log = log_of(&net.d1);
    let said: Vec<&str> = log.lines().filter(|l| l.contains("no confirm:")).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains(&format!("registered by {}", addr(&owner)))
            && said[0].contains("no owner configured"),
        "{}",
        said[0]
    );
}
