//! The RPC's HTTP server over real TCP, written as a client that misbehaves would use it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::*;

/// A server on a free loopback port whose handler echoes the method and the token check.
fn server() -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        rt.block_on(serve(
            listener,
            "s3cret".into(),
            |req: Request| async move {
                let v: serde_json::Value = serde_json::from_slice(&req.body).ok()?;
                Some(
                    serde_json::json!({"method": v["method"], "authorized": req.authorized})
                        .to_string()
                        .into_bytes(),
                )
            },
        ))
    });
    addr
}

/// Sends `raw` and reads what comes back until the server closes (or 15 s pass).
fn exchange(addr: &str, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn requests_get_replies_and_the_token_is_checked() {
    let addr = server();
    let r = call(&addr, Some("s3cret"), "getinfo", serde_json::json!([])).unwrap();
    assert_eq!(
        (r["method"].as_str(), r["authorized"].as_bool()),
        (Some("getinfo"), Some(true))
    );
    let r = call(&addr, Some("wrong"), "getinfo", serde_json::json!([])).unwrap();
    assert_eq!(r["authorized"], false);
    let r = call(&addr, None, "getinfo", serde_json::json!([])).unwrap();
    assert_eq!(r["authorized"], false);
}

#[test]
fn two_requests_share_a_kept_alive_connection() {
    let addr = server();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"a"}"#;
    let one = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let last = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = exchange(&addr, format!("{one}{last}").as_bytes());
    assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
}

#[test]
fn other_methods_are_refused_with_405() {
    let addr = server();
    let out = exchange(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
    assert!(out.contains("only POST is served"), "{out}");
}

#[test]
fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let addr = server();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    // No body is sent: a server that waited for it would answer 408 after the read time.
    let out = exchange(&addr, head.as_bytes());
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(out.contains("body too large"), "{out}");
}

#[test]
fn a_chunked_body_is_counted_as_it_arrives_and_stopped_at_the_limit() {
    let addr = server();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    // Up to twice the limit; the server answers and closes once past it.
    while sent < 2 * MAX_BODY {
        let head = format!("{:x}\r\n", chunk.len());
        if s.write_all(head.as_bytes()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
}

#[test]
fn a_body_that_never_comes_ends_in_408() {
    let addr = server();
    let out = exchange(
        &addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"",
    );
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
}

#[test]
fn connections_past_the_cap_are_closed_and_served_again_once_others_end() {
    let addr = server();
    let held: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // The server has taken every held connection once one past them is refused; a refused
    // connection reads end-of-file at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => break true,
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(refused, "a connection past {MAX_CONNECTIONS} was kept");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match call(&addr, None, "getinfo", serde_json::json!([])) {
            Ok(r) => {
                assert_eq!(r["method"], "getinfo");
                break;
            }
            Err(e) if Instant::now() > deadline => panic!("not served again: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
