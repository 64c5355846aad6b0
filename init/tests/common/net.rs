//! A network of real `fluxnode chain` processes on 127.0.0.1 for the tests: a genesis of
//! confirmed nodes, each with its own data directory, started, killed (SIGKILL) and
//! restarted at will, with RPC helpers to compare them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::params::Params;
use chain::tx::{Tx, COIN};
use serde_json::{json, Value};

use super::free_port;

pub struct Node {
    pub dir: PathBuf,
    pub p2p: u16,
    pub rpc: u16,
    pub child: Option<Child>,
    pub peers: Vec<u16>,
}

pub struct Net {
    pub _tmp: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub genesis: PathBuf,
    pub wallet: ring::signature::Ed25519KeyPair,
    pub owners: Vec<String>,
    /// The genesis hash, which transactions are signed for.
    pub chain: [u8; 32],
}

impl Net {
    /// Nodes of these tiers, confirmed in the genesis, all peered with each other.
    pub fn new(tiers: &[u8]) -> Net {
        Net::with_peers(tiers, |_, _| true)
    }

    /// Nodes of these tiers, node i peered with node j when `peered(i, j)`.
    pub fn with_peers(tiers: &[u8], peered: impl Fn(usize, usize) -> bool) -> Net {
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
        for (i, n) in nodes.iter_mut().enumerate() {
            n.peers = (0..all.len())
                .filter(|j| *j != i && peered(i, *j))
                .map(|j| all[j])
                .collect();
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

    pub fn start(&mut self, i: usize) {
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
        // One log per start, named by the time it began.
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let log = std::fs::File::create(n.dir.join(format!("log-{started}"))).unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        n.child = Some(cmd.spawn().unwrap());
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// The result of a call that may fail for now (None on an error).
    pub fn try_rpc(&self, i: usize, method: &str, params: Value) -> Option<Value> {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        let r = chain::http::call(&addr, None, method, params).ok()?;
        r.get("error").is_none().then(|| r["result"].clone())
    }

    pub fn rpc(&self, i: usize, method: &str, params: Value) -> Value {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        let token = std::fs::read_to_string(self.nodes[i].dir.join("chain/api.token")).ok();
        let r = chain::http::call(&addr, token.as_deref(), method, params)
            .unwrap_or_else(|e| panic!("node {i}: {e}"));
        if let Some(e) = r.get("error") {
            panic!("node {i} {method}: {e}");
        }
        r["result"].clone()
    }

    pub fn height(&self, i: usize) -> u64 {
        let addr = format!("127.0.0.1:{}", self.nodes[i].rpc);
        chain::http::call(&addr, None, "getblockcount", json!([]))
            .ok()
            .and_then(|r| r["result"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until every running node is at `h` or above.
    pub fn wait_height(&self, h: u64, within: Duration) {
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

    pub fn logs(&self) -> String {
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
    pub fn agree_at(&self, h: u64) -> Value {
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

    pub fn producers(&self, upto: u64) -> Vec<String> {
        (1..=upto)
            .map(|h| {
                self.rpc(0, "getblock", json!([h]))["producer"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    pub fn node_key(&self, i: usize) -> String {
        hex::encode(keys::public(
            &keys::load(&self.nodes[i].dir.join("node.key")).unwrap(),
        ))
    }

    pub fn send(&self, i: usize, tx: &Tx) -> Value {
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
