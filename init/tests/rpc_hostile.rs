//! JSON-RPC's port under attack, against a real `fluxnode chain --devnet` process: more
//! connections than the cap, held open; bodies declared past the limit; bodies that never
//! come; a chunked body with no end. The node refuses each, keeps producing blocks while it
//! happens, and answers an honest call afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{call, devnet, free_port, height, wait};
use serde_json::json;

/// Sends `raw` on a new connection and returns what the node answers before it closes.
fn exchange(rpc: u16, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", rpc)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_rpc_port_holds_against_floods_and_oversized_or_slow_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let (p2p, rpc) = (free_port(), free_port());
    let _node = devnet(tmp.path(), p2p, rpc);
    wait("the devnet's first blocks", Duration::from_secs(60), || {
        height(rpc) >= 2
    });

    // 200 connections held open, far past the cap (64). Those past it are closed by the
    // node at once; blocks are still made meanwhile.
    let held: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", rpc)).ok())
        .collect();
    let mut closed = 0;
    for s in &held {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1];
        if matches!((&*s).read(&mut b), Ok(0)) {
            closed += 1;
        }
    }
    assert!(
        closed >= 200 - chain::http::MAX_CONNECTIONS,
        "{closed} of 200 held connections closed by the node"
    );
    let before = std::fs::read_to_string(tmp.path().join("log")).unwrap();
    let blocks = before.matches("produced block").count();
    wait(
        "blocks while the port is flooded",
        Duration::from_secs(60),
        || {
            let log = std::fs::read_to_string(tmp.path().join("log")).unwrap();
            log.matches("produced block").count() >= blocks + 3
        },
    );
    drop(held);

    // A body declared past 4 MiB: refused before it is sent.
    let out = exchange(
        rpc,
        format!(
            "POST / HTTP/1.1\r\nHost: n\r\nContent-Length: {}\r\n\r\n",
            chain::http::MAX_BODY + 1
        )
        .as_bytes(),
    );
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    // A body that never comes: 408 after the read time.
    let out = exchange(
        rpc,
        b"POST / HTTP/1.1\r\nHost: n\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":",
    );
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    // Headers that never end: the connection is closed without a reply.
    let out = exchange(rpc, b"POST / HTTP/1.1\r\nHost: n\r\nX-Slow: 1\r\n");
    assert!(!out.contains("200 OK"), "{out}");
    // A chunked body past the limit.
    let mut s = TcpStream::connect(("127.0.0.1", rpc)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: n\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..8 {
        let ok = s.write_all(b"100000\r\n").is_ok()
            && s.write_all(&chunk).is_ok()
            && s.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");

    // An honest call is answered, and the chain went on.
    let h = height(rpc);
    assert!(h >= 5, "height {h}");
    let info = call(rpc, "getinfo", json!([]));
    assert_eq!(info["result"]["chain"], "fluxnode-devnet", "{info}");
}
