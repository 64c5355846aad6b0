//! JSON-RPC calls to a node's chain through a hostfwd port: plain HTTP/1.1 over a
//! std TcpStream, one request per connection (`Connection: close`: the node closes it after
//! the reply).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

/// The whole JSON-RPC reply to `method(params)`, sent with `token` as the bearer token
/// when given; None when the node does not answer.
pub fn call(port: u16, method: &str, params: Value, token: Option<&str>) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "POST / HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (_, json) = out.split_once("\r\n\r\n")?;
    serde_json::from_str(json).ok()
}

/// The `result` of a call without a token.
pub fn result(port: u16, method: &str, params: Value) -> Option<Value> {
    call(port, method, params, None)?.get("result").cloned()
}

/// The node's block count, when it answers.
pub fn block_count(port: u16) -> Option<u64> {
    result(port, "getblockcount", json!([]))?.as_u64()
}

/// The hash of the block at `height`, when the node has one.
pub fn block_hash(port: u16, height: u64) -> Option<String> {
    result(port, "getblockhash", json!([height]))?
        .as_str()
        .map(str::to_owned)
}
