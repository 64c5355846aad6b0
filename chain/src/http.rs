//! JSON-RPC's HTTP transport: `POST /` with a JSON body, served by hyper (HTTP/1.1, keep-alive).
//! Everything a client can make the node hold is bounded before it is used:
//! - at most [`MAX_CONNECTIONS`] connections at once; one more is closed as it arrives;
//! - the request line and headers within [`READ_TIME`] (hyper's header timeout, which
//!   also ends a keep-alive connection that sends nothing) and within hyper's buffer;
//! - the body within [`READ_TIME`] and [`MAX_BODY`] bytes. A larger declared
//!   Content-Length is refused with 413 before a byte of it is read. A chunked body is
//!   counted as it arrives, never allocated ahead.
//!
//! The API token comes as `Authorization: Bearer <token>`, and the handler decides what needs it.
//! The listening address is the caller's (`fluxnode chain --rpc`, 127.0.0.1 by default).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const MAX_BODY: usize = 4 << 20;
/// Connections served at once; the RPC is for the operator's tools and the node's own.
pub const MAX_CONNECTIONS: usize = 64;
const READ_TIME: Duration = Duration::from_secs(10);

/// A request as the handler sees it: its body and whether it carried the token.
pub struct Request {
    pub body: Vec<u8>,
    pub authorized: bool,
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON-RPC "invalid request" error with an HTTP status and the reason.
fn refuse(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": why}, "id": null});
    let mut r = json_reply(status, body.to_string().into_bytes());
    // Whatever of the body was not read stays unread: the connection ends here.
    r.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn answer<F, Fut>(
    req: hyper::Request<Incoming>,
    token: Arc<str>,
    handle: F,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Option<Vec<u8>>>,
{
    if req.method() != Method::POST {
        return Ok(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST is served",
        ));
    }
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !token.is_empty() && same(t.trim().as_bytes(), token.as_bytes()));
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
    }
    let body = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(READ_TIME, body).await {
        Err(_) => return Ok(refuse(StatusCode::REQUEST_TIMEOUT, "body not sent in time")),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, "body too large"))
        }
        Ok(Err(_)) => return Ok(refuse(StatusCode::BAD_REQUEST, "body cut short")),
        Ok(Ok(b)) => b.to_bytes().to_vec(),
    };
    let out = handle(Request { body, authorized })
        .await
        .unwrap_or_default();
    Ok(json_reply(StatusCode::OK, out))
}

/// Serves connections on `listener` forever, each in its own task; `handle` turns a request
/// into the reply body (None: an empty reply, for notifications).
pub async fn serve<F, Fut>(listener: TcpListener, token: String, handle: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Vec<u8>>> + Send,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let token: Arc<str> = token.into();
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!("rpc: {peer} refused: {MAX_CONNECTIONS} connections open");
            drop(stream);
            continue;
        };
        let token = token.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| answer(req, token.clone(), handle.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIME)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("rpc: {peer}: {e}");
            }
            drop(permit);
        });
    }
}

/// A blocking JSON-RPC call (for the wallet CLI and tests): returns the reply's JSON. A
/// plain HTTP/1.1 request written here (one request, `Connection: close`, read to the end)
/// keeps the CLI free of an async runtime and an HTTP client stack for one POST.
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
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
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
mod tests;
