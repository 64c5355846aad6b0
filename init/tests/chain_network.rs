//! The chain as a network of real `fluxnode chain` processes on 127.0.0.1: real sled
//! databases, real TCP, a 1 s slot. Every node must agree on every block and state digest,
//! rewards follow the tiers, transfers spread, killed nodes catch up, and a node missing an
//! assigned instance stops producing until its report is whole.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::params::Params;
use chain::tx::{Tx, TxBody, COIN};
use serde_json::{json, Value};

/// One network at a time: each is four processes on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    dir: PathBuf,
    p2p: u16,
    rpc: u16,
    child: Option<Child>,
    peers: Vec<u16>,
}

struct Net {
    _tmp: tempfile::TempDir,
    nodes: Vec<Node>,
    genesis: PathBuf,
    wallet: ring::signature::Ed25519KeyPair,
    owners: Vec<String>,
    /// The genesis hash, which transactions are signed for.
    chain: [u8; 32],
}

impl Net {
    /// Nodes of these tiers, confirmed in the genesis, all peered with each other.
    fn new(tiers: &[u8]) -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let wallet = keys::load_or_create(&tmp.path().join("wallet.key"))
            .unwrap()
            .0;
        let mut nodes = Vec::new();
        let mut gnodes = Vec::new();
        let mut owners = Vec::new();
        for (i, t) in tiers.iter().enumerate() {
            let dir = tmp.path().join(format!("n{i}"));
            let key = keys::load_or_create(&dir.join("node.key")).unwrap().0;
            let owner = keys::load_or_create(&dir.join("owner.key")).unwrap().0;
            let p2p = free_port();
            gnodes.push(GenesisNode {
                owner: keys::address(&owner),
                key: hex::encode(keys::public(&key)),
                tier: *t,
                endpoint: format!("127.0.0.1:{p2p}"),
            });
            owners.push(keys::address(&owner));
            nodes.push(Node {
                dir,
                p2p,
                rpc: free_port(),
                child: None,
                peers: vec![],
            });
        }
        let all: Vec<u16> = nodes.iter().map(|n| n.p2p).collect();
        for n in &mut nodes {
            n.peers = all.iter().copied().filter(|p| *p != n.p2p).collect();
        }
        let now = chain::node::now_secs();
        let g = Genesis {
            chain_id: "test-net".into(),
            time: now,
            slot_secs: 1,
            balances: vec![(keys::address(&wallet), 1_000 * COIN)],
            nodes: gnodes,
            target: u64::MAX,
            want_eligible: 3,
            rules: Params {
                enforce_bench: false,
                reconfirm_min: 5,
                ..Params::default()
            },
        };
        let genesis = tmp.path().join("genesis.json");
        std::fs::write(&genesis, serde_json::to_vec(&g).unwrap()).unwrap();
        let mut net = Net {
            _tmp: tmp,
            nodes,
            genesis,
            wallet,
            owners,
            chain: g.hash(),
        };
        for i in 0..net.nodes.len() {
            net.start(i);
        }
        net
    }

    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fluxnode"));
        cmd.arg("chain")
            .arg("--data")
            .arg(n.dir.join("chain"))
            .arg("--genesis")
            .arg(&self.genesis)
            .arg("--key")
            .arg(n.dir.join("node.key"))
            .arg("--p2p")
            .arg(format!("127.0.0.1:{}", n.p2p))
            .arg("--rpc")
            .arg(format!("127.0.0.1:{}", n.rpc))
            .arg("--workload-file")
            .arg(n.dir.join("workload.json"))
            .arg("--owner")
            .arg(&self.owners[i]);
        for p in &n.peers {
            cmd.arg("--peer").arg(format!("127.0.0.1:{p}"));
        }
        let log = std::fs::File::create(
            n.dir
                .join(format!("log-{}", Instant::now().elapsed().as_nanos())),
        )
        .unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        n.child = Some(cmd.spawn().unwrap());
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// The result of a call that may fail for now (None on an error).
    fn try_rpc(&self, i: usize, method: &str, params: Value) -> Option<Value> {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        let r = chain::http::call(&addr, None, method, params).ok()?;
        r.get("error").is_none().then(|| r["result"].clone())
    }

    fn rpc(&self, i: usize, method: &str, params: Value) -> Value {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        let token = std::fs::read_to_string(self.nodes[i].dir.join("chain/api.token")).ok();
        let r = chain::http::call(&addr, token.as_deref(), method, params)
            .unwrap_or_else(|e| panic!("node {i}: {e}"));
        if let Some(e) = r.get("error") {
            panic!("node {i} {method}: {e}");
        }
        r["result"].clone()
    }

    fn height(&self, i: usize) -> u64 {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        chain::http::call(&addr, None, "getblockcount", json!([]))
            .ok()
            .and_then(|r| r["result"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until every running node is at `h` or above.
    fn wait_height(&self, h: u64, within: Duration) {
        let start = Instant::now();
        loop {
            let hs: Vec<u64> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].child.is_some())
                .map(|i| self.height(i))
                .collect();
            if hs.iter().all(|x| *x >= h) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "heights {hs:?} not all at {h} after {within:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for e in std::fs::read_dir(&n.dir).unwrap().flatten() {
                if e.file_name().to_string_lossy().starts_with("log") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(8).collect();
                    out.push_str(&format!(
                        "--- node {i}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
        }
        out
    }

    /// Every running node has the same block and state digest at `h`.
    fn agree_at(&self, h: u64) -> Value {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].child.is_some())
            .collect();
        let first = self.rpc(running[0], "getblock", json!([h]));
        for i in &running[1..] {
            let b = self.rpc(*i, "getblock", json!([h]));
            assert_eq!(
                (&b["hash"], &b["statedigest"]),
                (&first["hash"], &first["statedigest"]),
                "node {i} differs at {h}"
            );
        }
        first
    }

    fn producers(&self, upto: u64) -> Vec<String> {
        (1..=upto)
            .map(|h| {
                self.rpc(0, "getblock", json!([h]))["producer"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn node_key(&self, i: usize) -> String {
        hex::encode(keys::public(
            &keys::load(&self.nodes[i].dir.join("node.key")).unwrap(),
        ))
    }

    fn send(&self, i: usize, tx: &Tx) -> Value {
        self.rpc(i, "sendrawtransaction", json!([hex::encode(tx.encode())]))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

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
