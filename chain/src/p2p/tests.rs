//! Connections over real TCP on 127.0.0.1: handshakes, refusals that name the peer, hostile
//! bytes, the rate limit, and a peer's offences scored into a ban.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::conn::{ConnErrorKind, MAX_HELLO_FRAME};
use super::msg::tests::{header, hello};
use super::*;

const T: Duration = Duration::from_secs(10);

/// A connected pair of raw streams: (ours, theirs).
async fn streams() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(l.local_addr().unwrap()), l.accept());
    (b.unwrap().0, a.unwrap())
}

/// A connection, and the raw stream of its peer (whose address the connection names).
async fn conn_and_raw(limits: Limits) -> (Conn, TcpStream, SocketAddr) {
    let (ours, theirs) = streams().await;
    let addr = theirs.local_addr().unwrap();
    (Conn::new(ours, limits).unwrap(), theirs, addr)
}

async fn pair() -> (Conn, Conn) {
    let (a, b) = streams().await;
    (
        Conn::new(a, Limits::default()).unwrap(),
        Conn::new(b, Limits::default()).unwrap(),
    )
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn peers_on_one_chain_shake_hands_and_talk() {
    let (mut a, mut b) = pair().await;
    let ha = hello();
    let mut hb = hello();
    hb.best_height = 900;
    hb.listen_port = 0;
    let (ra, rb) = tokio::join!(a.handshake(&ha, T), b.handshake(&hb, T));
    assert_eq!(ra.unwrap(), hb);
    assert_eq!(rb.unwrap(), ha);
    let headers = Msg::Headers((0..2000).map(header).collect());
    b.solicited().asked(1);
    a.send(&headers).await.unwrap();
    a.send(&Msg::Ping(7)).await.unwrap();
    assert_eq!(b.recv(T).await.unwrap(), headers);
    assert_eq!(b.recv(T).await.unwrap(), Msg::Ping(7));
    let (mut br, mut bw) = b.into_split();
    bw.send(&Msg::Pong(7)).await.unwrap();
    assert_eq!(a.recv(T).await.unwrap(), Msg::Pong(7));
    drop(a);
    let e = br.recv(T).await.unwrap_err();
    assert!(
        matches!(e.kind, ConnErrorKind::Frame(FrameError::Closed)),
        "{e}"
    );
    assert!(e.is_fatal() && e.misbehaviour().is_none());
}

/// Shakes hands as `ours` with a peer saying `theirs`; returns our error and the peer's
/// address as we see it.
async fn refused(ours: Hello, theirs: Hello) -> (ConnError, SocketAddr) {
    let (mut a, mut b) = pair().await;
    let addr = a.peer();
    let (ra, _) = tokio::join!(a.handshake(&ours, T), b.handshake(&theirs, T));
    (ra.unwrap_err(), addr)
}

#[tokio::test]
async fn another_chain_genesis_or_version_is_refused_naming_the_peer_and_the_difference() {
    let mut other = hello();
    other.genesis = [0xab; 32];
    let (e, addr) = refused(hello(), other).await;
    assert_eq!(
        e.to_string(),
        format!(
            "peer {addr}: genesis hash differs: theirs {}, ours {}",
            "ab".repeat(32),
            "09".repeat(32)
        )
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::WrongChain));
    assert!(e.is_fatal());

    let mut other = hello();
    other.chain_id = "fluxnode-main".into();
    let (e, addr) = refused(hello(), other).await;
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: chain id differs: theirs \"fluxnode-main\", ours \"fluxnode-test\"")
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::WrongChain));

    let mut other = hello();
    other.version = 2;
    let (e, addr) = refused(hello(), other).await;
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: protocol version differs: theirs 2, ours 1")
    );
    assert_eq!(e.misbehaviour(), None, "another version is not an offence");
}

#[tokio::test]
async fn a_newer_wire_version_or_a_message_before_hello_is_refused() {
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    let mut b = Msg::Hello(hello()).encode();
    b[0] = 2;
    raw.write_all(&framed(&b)).await.unwrap();
    let e = c.handshake(&hello(), T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: protocol version differs: theirs 2, ours 1")
    );

    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    raw.write_all(&framed(&Msg::Ping(1).encode()))
        .await
        .unwrap();
    let e = c.handshake(&hello(), T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: sent ping before the handshake")
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Garbage));
}

#[tokio::test]
async fn hostile_bytes_are_errors_not_panics_or_allocations() {
    // An HTTP request on the p2p port: "GET " is a length of 542393671.
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let e = c.handshake(&hello(), T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: a frame of 542393671 bytes is over the limit of {MAX_HELLO_FRAME}")
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Oversized));
    assert!(e.is_fatal());
    assert!(
        std::error::Error::source(&e).is_none(),
        "all in the message"
    );

    // The largest length there is, after the handshake: refused from the 4 bytes alone.
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    raw.write_all(&[0xff; 4]).await.unwrap();
    let e = c.recv(T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: a frame of 4294967295 bytes is over the limit of 4194304")
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Oversized));

    // Garbage in a frame, trailing junk, and an empty frame: the frame is dropped, the
    // stream stays in step and the next message arrives.
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    let mut junk = Msg::Ping(5).encode();
    junk.extend_from_slice(b"junk");
    let mut wire = framed(&[0xde, 0xad, 0xbe, 0xef]);
    wire.extend(framed(&junk));
    wire.extend([0, 0, 0, 0]);
    wire.extend(framed(&Msg::Ping(6).encode()));
    raw.write_all(&wire).await.unwrap();
    let e = c.recv(T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: undecodable message: message at byte 1: version 222 is unknown (expected 1)")
    );
    let e = c.recv(T).await.unwrap_err();
    assert!(
        e.to_string()
            .ends_with("message at byte 10: 4 trailing bytes"),
        "{e}"
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Garbage));
    assert!(!e.is_fatal());
    let e = c.recv(T).await.unwrap_err();
    assert_eq!(e.to_string(), format!("peer {addr}: an empty frame"));
    assert!(!e.is_fatal());
    assert_eq!(c.recv(T).await.unwrap(), Msg::Ping(6));

    // A frame cut short by the peer closing.
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    raw.write_all(&[100, 0, 0, 0, 1, 2, 3]).await.unwrap();
    drop(raw);
    let e = c.recv(T).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: the connection closed inside a frame (7 of 104 bytes)")
    );
    assert_eq!(e.misbehaviour(), None);
}

#[tokio::test]
async fn a_timed_out_recv_loses_nothing() {
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    let wire = framed(&Msg::Ping(9).encode());
    raw.write_all(&wire[..6]).await.unwrap();
    raw.flush().await.unwrap();
    let e = c.recv(Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: no message within 50 ms")
    );
    assert!(!e.is_fatal());
    raw.write_all(&wire[6..]).await.unwrap();
    assert_eq!(c.recv(T).await.unwrap(), Msg::Ping(9));
}

#[tokio::test]
async fn a_flood_trips_the_rate_limit() {
    let limits = Limits {
        msgs_per_sec: 1,
        burst: 5,
        ..Limits::default()
    };
    let (mut c, mut raw, addr) = conn_and_raw(limits).await;
    let wire: Vec<u8> = (0..50)
        .flat_map(|i| framed(&Msg::Ping(i).encode()))
        .collect();
    raw.write_all(&wire).await.unwrap();
    let mut got = 0;
    let e = loop {
        match c.recv(T).await {
            Ok(_) => got += 1,
            Err(e) => break e,
        }
    };
    assert!((5..50).contains(&got), "{got} messages before the limit");
    assert_eq!(
        e.to_string(),
        format!("peer {addr}: over the message rate limit (1/s, burst 5)")
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Flood));
}

#[tokio::test]
async fn replies_we_asked_for_pass_the_rate_limit_but_no_more_than_we_asked() {
    let limits = Limits {
        msgs_per_sec: 1,
        burst: 5,
        ..Limits::default()
    };
    let (mut c, mut raw, addr) = conn_and_raw(limits).await;
    // We asked for 40 headers replies (as a sync does); 40 arrive at once, then the
    // peer sends 10 more messages nobody asked for.
    c.solicited().asked(40);
    let wire: Vec<u8> = (0..40)
        .flat_map(|i| framed(&Msg::Headers(vec![header(i)]).encode()))
        .chain((0..10).flat_map(|i| framed(&Msg::Ping(i).encode())))
        .collect();
    raw.write_all(&wire).await.unwrap();
    let mut got = 0;
    let e = loop {
        match c.recv(T).await {
            Ok(_) => got += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(c.solicited().owed(), 0);
    assert!(
        (45..50).contains(&got),
        "the 40 asked for and the burst of 5 pass: {got}"
    );
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Flood), "{e} ({addr})");
}

#[tokio::test]
async fn headers_nobody_asked_for_are_refused_and_scored_without_ending_the_connection() {
    let (mut c, mut raw, _) = conn_and_raw(Limits::default()).await;
    let wire: Vec<u8> = framed(&Msg::Headers(vec![header(1)]).encode())
        .into_iter()
        .chain(framed(&Msg::Ping(3).encode()))
        .collect();
    raw.write_all(&wire).await.unwrap();
    let e = c.recv(T).await.unwrap_err();
    assert!(matches!(e.kind, ConnErrorKind::Unrequested), "{e}");
    assert_eq!(e.misbehaviour(), Some(Misbehaviour::Unrequested));
    assert!(!e.is_fatal());
    assert_eq!(c.recv(T).await.unwrap(), Msg::Ping(3));
}

#[tokio::test]
async fn offences_over_a_connection_add_up_to_a_ban_that_expires() {
    let (mut c, mut raw, addr) = conn_and_raw(Limits::default()).await;
    let mut wire = Vec::new();
    for _ in 0..5 {
        wire.extend(framed(b"\x01\xee"));
    }
    raw.write_all(&wire).await.unwrap();
    let mut scores = Scores::default();
    let t0 = Instant::now();
    let mut ban = None;
    for _ in 0..5 {
        let e = c.recv(T).await.unwrap_err();
        assert!(!scores.is_banned(addr.ip(), t0));
        ban = scores.record(e.peer, e.misbehaviour().unwrap(), e.kind.to_string(), t0);
    }
    let ban = ban.expect("5 x 20 points ban");
    assert_eq!(
        ban.to_string(),
        format!("peer {addr} banned for 10 min: undecodable message: message at byte 2: message tag 238 is unknown")
    );
    assert!(scores.is_banned(addr.ip(), t0 + Duration::from_secs(599)));
    assert!(!scores.is_banned(addr.ip(), t0 + Duration::from_secs(600)));
}
