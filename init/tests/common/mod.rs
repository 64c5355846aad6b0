//! Shared by the chain process tests: free ports, `fluxnode chain` processes that are
//! killed when dropped (each given the owner its genesis lists for its key, as an operator
//! configures it), JSON-RPC calls and waiting for a condition.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod net;
pub mod pair;

pub const BIN: &str = env!("CARGO_BIN_EXE_fluxnode");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process killed (SIGKILL) and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The owner the genesis at `genesis` lists for the node key at `key`, if it lists one.
pub fn genesis_owner(genesis: &Path, key: &Path) -> Option<String> {
    let g: chain::genesis::Genesis = serde_json::from_slice(&std::fs::read(genesis).ok()?).ok()?;
    let me = hex::encode(chain::keys::public(&chain::keys::load(key).ok()?));
    g.nodes.into_iter().find(|n| n.key == me).map(|n| n.owner)
}

/// `fluxnode chain` with its data in `dir` (its stderr appended to `dir/log`); its owner is
/// the genesis' for its key unless `extra` gives `--owner`.
pub fn chain_node(
    dir: &Path,
    genesis: &Path,
    key: &Path,
    p2p: u16,
    rpc: u16,
    peers: &[u16],
    extra: &[&str],
) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["chain", "--data"])
        .arg(dir)
        .arg("--genesis")
        .arg(genesis)
        .arg("--key")
        .arg(key)
        .args([
            "--p2p",
            &format!("127.0.0.1:{p2p}"),
            "--rpc",
            &format!("127.0.0.1:{rpc}"),
        ])
        .arg("--workload-file")
        .arg(dir.join("workload.json"))
        .args(extra);
    if !extra.contains(&"--owner") {
        if let Some(owner) = genesis_owner(genesis, key) {
            cmd.args(["--owner", &owner]);
        }
    }
    for p in peers {
        cmd.args(["--peer", &format!("127.0.0.1:{p}")]);
    }
    std::fs::create_dir_all(dir).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    Proc(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// `fluxnode chain --devnet` with everything in `dir`.
pub fn devnet(dir: &Path, p2p: u16, rpc: u16) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap();
    let child = Command::new(BIN)
        .args(["chain", "--devnet", "--slot", "1", "--data"])
        .arg(dir)
        .arg("--key")
        .arg(dir.join("node.key"))
        .arg("--wallet")
        .arg(dir.join("wallet.key"))
        .args(["--p2p", &format!("127.0.0.1:{p2p}")])
        .args(["--rpc", &format!("127.0.0.1:{rpc}")])
        .arg("--workload-file")
        .arg(dir.join("workload.json"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// A JSON-RPC call without the token; the whole reply.
pub fn call(rpc: u16, method: &str, params: Value) -> Value {
    chain::http::call(&format!("127.0.0.1:{rpc}"), None, method, params).unwrap_or(Value::Null)
}

pub fn height(rpc: u16) -> u64 {
    call(rpc, "getblockcount", serde_json::json!([]))["result"]
        .as_u64()
        .unwrap_or(0)
}

pub fn wait(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
