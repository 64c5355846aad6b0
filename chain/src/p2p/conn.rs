//! One peer connection over TCP: the handshake (each side sends its `Hello`; chain id,
//! genesis hash and protocol version must match), then messages in frames. Receiving is
//! bounded per peer: frames of at most 4 MiB (1 KiB before the handshake), and a token
//! bucket that reports a flood instead of reading on. `recv` is cancel-safe, so a timeout
//! loses nothing. Errors name the peer, and say which misbehaviour (if any) to score.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::bucket::Bucket;
use super::frame::{write_frame, FrameError, FrameReader, MAX_FRAME};
use super::msg::{is_headers, is_reply, Hello, Msg, PROTOCOL_VERSION};
use super::score::{human, Misbehaviour};
use crate::encode::DecodeError;

/// The largest frame before the handshake (a `Hello` is under 200 bytes).
pub const MAX_HELLO_FRAME: usize = 1024;

/// What a `Mismatch` names when only the protocol version differs (not an offence).
const VERSION: &str = "protocol version";

/// The most replies that may be owed to us at once (requests beyond it get no credit).
pub const MAX_SOLICITED: u32 = 4096;

/// Replies we asked a peer for and have not had yet. Headers and blocks that answer our
/// requests use this credit instead of the rate limit, so a fast sync is not a flood;
/// anything unasked for still counts against the bucket.
#[derive(Debug, Clone, Default)]
pub struct Solicited(Arc<AtomicU32>);

impl Solicited {
    /// Records a request for `n` replies (capped at `MAX_SOLICITED` owed).
    pub fn asked(&self, n: u32) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_add(n).min(MAX_SOLICITED))
            });
    }

    /// Takes one credit; false when none is left.
    fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1))
            .is_ok()
    }

    pub fn owed(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-peer limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_frame: usize,
    /// Messages per second the token bucket refills.
    pub msgs_per_sec: u32,
    /// The most messages in a burst.
    pub burst: u32,
    /// How long one `send` may take.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: MAX_FRAME,
            msgs_per_sec: 200,
            burst: 400,
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// What went wrong with a peer. Displays as `peer <addr>: <kind>`; the whole story is in
/// the message (no error sources to print twice).
#[derive(Debug, thiserror::Error)]
#[error("peer {peer}: {kind}")]
pub struct ConnError {
    pub peer: SocketAddr,
    pub kind: ConnErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnErrorKind {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("undecodable message: {0}")]
    Decode(DecodeError),
    #[error("no {waiting_for} within {}", human(*after))]
    Timeout {
        waiting_for: &'static str,
        after: Duration,
    },
    #[error("{what} differs: theirs {theirs}, ours {ours}")]
    Mismatch {
        what: &'static str,
        theirs: String,
        ours: String,
    },
    #[error("sent {got} before the handshake")]
    NotHello { got: &'static str },
    #[error("over the message rate limit ({rate}/s, burst {burst})")]
    Flood { rate: u32, burst: u32 },
    #[error("not sent: {0}")]
    Unsendable(String),
    /// Headers are only ever a reply: unasked, they would cost us a signature check each.
    #[error("sent headers nobody asked for")]
    Unrequested,
}

impl From<DecodeError> for ConnErrorKind {
    fn from(e: DecodeError) -> Self {
        ConnErrorKind::Decode(e)
    }
}

impl ConnError {
    fn new(peer: SocketAddr, kind: impl Into<ConnErrorKind>) -> Self {
        ConnError {
            peer,
            kind: kind.into(),
        }
    }

    /// What to score the peer for, if it misbehaved.
    pub fn misbehaviour(&self) -> Option<Misbehaviour> {
        match &self.kind {
            ConnErrorKind::Frame(FrameError::TooLarge { .. }) => Some(Misbehaviour::Oversized),
            ConnErrorKind::Frame(FrameError::Empty) => Some(Misbehaviour::Garbage),
            ConnErrorKind::Decode(_) | ConnErrorKind::NotHello { .. } => {
                Some(Misbehaviour::Garbage)
            }
            ConnErrorKind::Mismatch { what, .. } if *what != VERSION => {
                Some(Misbehaviour::WrongChain)
            }
            ConnErrorKind::Flood { .. } => Some(Misbehaviour::Flood),
            ConnErrorKind::Unrequested => Some(Misbehaviour::Unrequested),
            _ => None,
        }
    }

    /// Whether the connection can go on: the stream is still at a frame boundary and the
    /// peer is on our chain. The caller may still drop it (e.g. after a ban).
    pub fn is_fatal(&self) -> bool {
        match &self.kind {
            ConnErrorKind::Frame(f) => !f.in_sync(),
            ConnErrorKind::Decode(_)
            | ConnErrorKind::Flood { .. }
            | ConnErrorKind::Unrequested
            | ConnErrorKind::Unsendable(_) => false,
            ConnErrorKind::Timeout { waiting_for, .. } => *waiting_for != "message",
            ConnErrorKind::Mismatch { .. } | ConnErrorKind::NotHello { .. } => true,
        }
    }
}

/// The receiving half of a connection.
#[derive(Debug)]
pub struct ConnReader {
    half: OwnedReadHalf,
    peer: SocketAddr,
    frames: FrameReader,
    limits: Limits,
    bucket: Bucket,
    solicited: Solicited,
}

/// The sending half of a connection.
#[derive(Debug)]
pub struct ConnWriter {
    half: OwnedWriteHalf,
    peer: SocketAddr,
    send_timeout: Duration,
}

/// A peer connection.
#[derive(Debug)]
pub struct Conn {
    reader: ConnReader,
    writer: ConnWriter,
}

impl ConnReader {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn err(&self, kind: impl Into<ConnErrorKind>) -> ConnError {
        ConnError::new(self.peer, kind)
    }

    /// The next frame of at most `max` bytes, counted against the rate limit unless it is
    /// a reply we asked for.
    async fn frame(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>, ConnError> {
        let read = self.frames.read(&mut self.half, max);
        let body = match tokio::time::timeout(timeout, read).await {
            Ok(r) => r.map_err(|e| self.err(e))?,
            Err(_) => {
                return Err(self.err(ConnErrorKind::Timeout {
                    waiting_for: "message",
                    after: timeout,
                }))
            }
        };
        let asked_for = is_reply(&body) && self.solicited.take();
        if !asked_for && is_headers(&body) {
            return Err(self.err(ConnErrorKind::Unrequested));
        }
        if !asked_for && !self.bucket.take(Instant::now()) {
            return Err(self.err(ConnErrorKind::Flood {
                rate: self.limits.msgs_per_sec,
                burst: self.limits.burst,
            }));
        }
        Ok(body)
    }

    /// The next message, waiting at most `timeout`. Cancel-safe.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Msg, ConnError> {
        let body = self.frame(self.limits.max_frame, timeout).await?;
        Msg::decode(&body).map_err(|e| self.err(e))
    }

    /// The peer's `Hello`, checked against ours.
    async fn hello(&mut self, our: &Hello, timeout: Duration) -> Result<Hello, ConnError> {
        let body = self.frame(MAX_HELLO_FRAME, timeout).await?;
        if body[0] != PROTOCOL_VERSION {
            return Err(self.err(ConnErrorKind::Mismatch {
                what: VERSION,
                theirs: body[0].to_string(),
                ours: PROTOCOL_VERSION.to_string(),
            }));
        }
        let theirs = match Msg::decode(&body).map_err(|e| self.err(e))? {
            Msg::Hello(h) => h,
            other => return Err(self.err(ConnErrorKind::NotHello { got: other.name() })),
        };
        let differ = |what, theirs: String, ours: String| {
            Err(self.err(ConnErrorKind::Mismatch { what, theirs, ours }))
        };
        if theirs.version != our.version {
            return differ(VERSION, theirs.version.to_string(), our.version.to_string());
        }
        if theirs.chain_id != our.chain_id {
            return differ(
                "chain id",
                format!("{:?}", theirs.chain_id),
                format!("{:?}", our.chain_id),
            );
        }
        if theirs.genesis != our.genesis {
            return differ(
                "genesis hash",
                hex::encode(theirs.genesis),
                hex::encode(our.genesis),
            );
        }
        Ok(theirs)
    }
}

impl ConnWriter {
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one message, taking at most the send timeout. After an error other than
    /// `Unsendable` the connection is unusable.
    pub async fn send(&mut self, msg: &Msg) -> Result<(), ConnError> {
        msg.check()
            .map_err(|why| ConnError::new(self.peer, ConnErrorKind::Unsendable(why)))?;
        self.send_body(&msg.encode()).await
    }

    /// Sends one message already encoded (and checked) by the caller.
    pub async fn send_body(&mut self, body: &[u8]) -> Result<(), ConnError> {
        let peer = self.peer;
        match tokio::time::timeout(self.send_timeout, write_frame(&mut self.half, body)).await {
            Ok(r) => r.map_err(|e| ConnError::new(peer, e)),
            Err(_) => Err(ConnError::new(
                peer,
                ConnErrorKind::Timeout {
                    waiting_for: "send",
                    after: self.send_timeout,
                },
            )),
        }
    }
}

impl Conn {
    /// Wraps an open TCP stream (either side).
    pub fn new(stream: TcpStream, limits: Limits) -> std::io::Result<Conn> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Ok(Conn {
            writer: ConnWriter {
                half: w,
                peer,
                send_timeout: limits.send_timeout,
            },
            reader: ConnReader {
                half: r,
                peer,
                frames: FrameReader::new(),
                bucket: Bucket::new(limits.msgs_per_sec, limits.burst, Instant::now()),
                limits,
                solicited: Solicited::default(),
            },
        })
    }

    /// Connects to `peer` within `timeout`.
    pub async fn connect(
        peer: SocketAddr,
        limits: Limits,
        timeout: Duration,
    ) -> Result<Conn, ConnError> {
        let io = |e: std::io::Error| ConnError::new(peer, FrameError::Io(e));
        let stream = tokio::time::timeout(timeout, TcpStream::connect(peer))
            .await
            .map_err(|_| {
                ConnError::new(
                    peer,
                    ConnErrorKind::Timeout {
                        waiting_for: "connection",
                        after: timeout,
                    },
                )
            })?
            .map_err(io)?;
        Conn::new(stream, limits).map_err(io)
    }

    pub fn peer(&self) -> SocketAddr {
        self.reader.peer
    }

    /// The credit of replies we asked this peer for (see [`Solicited`]).
    pub fn solicited(&self) -> Solicited {
        self.reader.solicited.clone()
    }

    /// Sends our `Hello` and reads the peer's within `timeout`; refuses a peer on another
    /// chain, genesis or protocol version, naming what differs.
    pub async fn handshake(&mut self, our: &Hello, timeout: Duration) -> Result<Hello, ConnError> {
        let peer = self.peer();
        let both = async {
            self.writer.send(&Msg::Hello(our.clone())).await?;
            self.reader.hello(our, timeout).await
        };
        tokio::time::timeout(timeout, both)
            .await
            .unwrap_or_else(|_| {
                Err(ConnError::new(
                    peer,
                    ConnErrorKind::Timeout {
                        waiting_for: "handshake",
                        after: timeout,
                    },
                ))
            })
    }

    pub async fn send(&mut self, msg: &Msg) -> Result<(), ConnError> {
        self.writer.send(msg).await
    }

    /// The next message, waiting at most `timeout`. Cancel-safe.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Msg, ConnError> {
        self.reader.recv(timeout).await
    }

    /// The halves, to receive and send from different tasks.
    pub fn into_split(self) -> (ConnReader, ConnWriter) {
        (self.reader, self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2, 4, t0);
        assert!((0..4).all(|_| b.take(t0)));
        assert!(!b.take(t0), "the burst is spent");
        assert!(!b.take(t0 + Duration::from_millis(400)));
        assert!(b.take(t0 + Duration::from_millis(600)), "a token in 0.5 s");
        assert!(!b.take(t0 + Duration::from_millis(600)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| b.take(later)).count(),
            4,
            "capped at burst"
        );
    }
}
