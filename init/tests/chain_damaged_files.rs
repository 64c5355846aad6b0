//! Files the chain node reads at start, damaged as a power cut on an older node left them
//! (empty): a devnet whose genesis and API token are empty restarts from its store with
//! the genesis restored and a new token that authorises sends; a genesis that cannot be
//! restored is refused naming the file, what is wrong and what to do.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{call, devnet, free_port, height, wait, BIN};
use serde_json::json;

fn hash_at(rpc: u16, h: u64) -> Option<String> {
    call(rpc, "getblockhash", json!([h]))["result"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn an_empty_genesis_and_token_are_restored_and_the_devnet_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (p2p, rpc) = (free_port(), free_port());
    let node = devnet(d, p2p, rpc);
    wait("three blocks", Duration::from_secs(60), || height(rpc) >= 3);
    let seen: Vec<(u64, String)> = (1..=height(rpc))
        .filter_map(|h| hash_at(rpc, h).map(|x| (h, x)))
        .collect();
    drop(node);
    let genesis = std::fs::read(d.join("genesis.json")).unwrap();

    // What the issue saw after a power cut: both files empty.
    std::fs::write(d.join("genesis.json"), b"").unwrap();
    std::fs::write(d.join("api.token"), b"").unwrap();
    let node = devnet(d, p2p, rpc);
    wait(
        "the restarted node answering",
        Duration::from_secs(30),
        || height(rpc) >= 3,
    );
    let log = std::fs::read_to_string(d.join("log")).unwrap();
    assert!(
        log.contains("genesis.json: the file is empty; restored from the chain store"),
        "{log}"
    );
    assert!(
        log.contains("api.token: the file is empty; a new token replaces it"),
        "{log}"
    );
    assert_eq!(std::fs::read(d.join("genesis.json")).unwrap(), genesis);
    for (h, hash) in &seen {
        assert_eq!(hash_at(rpc, *h).as_ref(), Some(hash), "block {h}");
    }
    let token = std::fs::read_to_string(d.join("api.token")).unwrap();
    assert_eq!(token.len(), 64, "{token:?}");
    let start = height(rpc);
    wait("production going on", Duration::from_secs(30), || {
        height(rpc) >= start + 2
    });

    // The new token authorises a send: a transfer from the devnet wallet lands.
    let out = Command::new(BIN)
        .args([
            "tx",
            "transfer",
            "fx00000000000000000000000000000000000000ab",
            "2",
        ])
        .arg("--wallet")
        .arg(d.join("wallet.key"))
        .args(["--rpc", &format!("127.0.0.1:{rpc}")])
        .arg("--token-file")
        .arg(d.join("api.token"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait("the transfer in a block", Duration::from_secs(30), || {
        call(
            rpc,
            "getbalance",
            json!(["fx00000000000000000000000000000000000000ab"]),
        )["result"]["coins"]
            == "2.00000000"
    });
    drop(node);
}

#[test]
fn a_devnet_genesis_garbled_before_any_store_exists_is_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("genesis.json"), b"{\"chain_id\": \"half").unwrap();
    let (p2p, rpc) = (free_port(), free_port());
    let _node = devnet(d, p2p, rpc);
    wait("two blocks", Duration::from_secs(60), || height(rpc) >= 2);
    let log = std::fs::read_to_string(d.join("log")).unwrap();
    assert!(
        log.contains("no chain store holds one, so a new devnet genesis replaces it"),
        "{log}"
    );
    assert!(hash_at(rpc, 1).is_some());
}

#[test]
fn a_damaged_genesis_with_nothing_to_restore_it_from_is_named_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let g = d.join("genesis.json");
    std::fs::write(&g, b"").unwrap();
    let out = Command::new(BIN)
        .args(["chain", "--data"])
        .arg(d)
        .arg("--key")
        .arg(d.join("node.key"))
        .args(["--p2p", "127.0.0.1:0", "--rpc", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("genesis {}: the file is empty", g.display())),
        "{err}"
    );
    assert!(
        err.contains("put the network's genesis.json there"),
        "{err}"
    );
}
