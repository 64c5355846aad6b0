//! A small HTTP/1.1 server for JSON-RPC: `POST /` with a JSON body, one request per
//! connection. Everything is bounded (header bytes, body size, read time) before it is
//! used. The API token comes as `Authorization: Bearer <token>`; the handler decides what
//! needs it.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_BODY: usize = 4 << 20;
const READ_TIME: Duration = Duration::from_secs(10);

/// A parsed request: its body and whether it carried the token.
pub struct Request {
    pub body: Vec<u8>,
    pub authorized: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Bad(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_request(stream: &mut TcpStream, token: &str) -> Result<Request, HttpError> {
    let mut reader = BufReader::new(stream);
    let mut header_bytes = 0;
    let mut line = String::new();
    let mut first = true;
    let mut length: Option<usize> = None;
    let mut authorized = false;
    loop {
        line.clear();
        let n = (&mut reader)
            .take((MAX_HEADER_BYTES - header_bytes) as u64)
            .read_line(&mut line)
            .await?;
        header_bytes += n;
        if n == 0 || !line.ends_with('\n') {
            return Err(HttpError::Bad("headers too long or cut short"));
        }
        let l = line.trim_end();
        if first {
            first = false;
            if !l.starts_with("POST ") {
                return Err(HttpError::Bad("only POST is served"));
            }
            continue;
        }
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(HttpError::Bad("a header line has no colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse()
                    .map_err(|_| HttpError::Bad("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("authorization") {
            authorized = value
                .strip_prefix("Bearer ")
                .is_some_and(|t| !token.is_empty() && same(t.trim().as_bytes(), token.as_bytes()));
        }
    }
    let length = length.ok_or(HttpError::Bad("no Content-Length"))?;
    if length > MAX_BODY {
        return Err(HttpError::Bad("body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Request { body, authorized })
}

async fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// Serves connections on `listener` forever, each in its own task; `handle` turns a request
/// into the reply body (None: an empty reply for notifications).
pub async fn serve<F, Fut>(listener: TcpListener, token: String, handle: F)
where
    F: Fn(Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<Vec<u8>>> + Send,
{
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let token = token.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(READ_TIME, read_request(&mut stream, &token)).await {
                Ok(Ok(req)) => {
                    let body = handle(req).await.unwrap_or_default();
                    let _ = respond(&mut stream, "200 OK", &body).await;
                }
                Ok(Err(HttpError::Bad(why))) => {
                    let body = serde_json::json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": why}, "id": null});
                    let _ =
                        respond(&mut stream, "400 Bad Request", body.to_string().as_bytes()).await;
                }
                _ => {}
            }
        });
    }
}

/// A blocking JSON-RPC call (for the wallet CLI and tests): returns the reply's JSON.
pub fn call(
    addr: &str,
    token: Option<&str>,
    method: &str,
    params: serde_json::Value,
) -> Result<serde_json::Value, String> {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("rpc {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("rpc {addr}: {e}"))?;
    let mut out = Vec::new();
    s.take(MAX_BODY as u64 + 4096)
        .read_to_end(&mut out)
        .map_err(|e| format!("rpc {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let (_, json) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("rpc {addr}: no HTTP reply"))?;
    serde_json::from_str(json).map_err(|e| format!("rpc {addr}: bad reply: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_real_tcp_get_replies_and_bad_ones_400() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
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
        let r = call(&addr, Some("s3cret"), "getinfo", serde_json::json!([])).unwrap();
        assert_eq!(
            (r["method"].as_str(), r["authorized"].as_bool()),
            (Some("getinfo"), Some(true))
        );
        let r = call(&addr, Some("wrong"), "getinfo", serde_json::json!([])).unwrap();
        assert_eq!(r["authorized"], false);
        let r = call(&addr, None, "getinfo", serde_json::json!([])).unwrap();
        assert_eq!(r["authorized"], false);
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(
            format!(
                "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )
            .as_bytes(),
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.contains("body too large"), "{out}");
        drop(server);
    }
}
