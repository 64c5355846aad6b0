//! Two honest nodes of a 1 s-slot chain "hostile" as real processes, and the means of a
//! hostile peer against them: connecting from a chosen loopback address (bans are per
//! address) and the handshake.

use std::net::SocketAddr;
use std::time::Duration;

use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::p2p::{Conn, Hello, Limits, PROTOCOL_VERSION};
use chain::params::Params;
use chain::tx::COIN;
use tokio::net::TcpSocket;

use super::{chain_node, free_port, height, wait, Proc};

pub async fn connect_from(ip: &str, to: u16) -> tokio::net::TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    s.connect(SocketAddr::from(([127, 0, 0, 1], to)))
        .await
        .unwrap()
}

pub async fn hello_from(ip: &str, to: u16, hello: &Hello) -> Result<(Conn, Hello), String> {
    let mut c = Conn::new(connect_from(ip, to).await, Limits::default()).unwrap();
    let theirs = c
        .handshake(hello, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    Ok((c, theirs))
}

/// Two honest nodes of a 1 s-slot chain "hostile", producing.
pub struct Pair {
    pub genesis: Genesis,
    pub wallet: ring::signature::Ed25519KeyPair,
    pub pa: u16,
    pub ra: u16,
    pub rb: u16,
    pub _nodes: [Proc; 2],
}

pub fn two_nodes(t: &std::path::Path) -> Pair {
    let wallet = keys::load_or_create(&t.join("wallet.key")).unwrap().0;
    let (pa, ra, pb, rb) = (free_port(), free_port(), free_port(), free_port());
    let mut nodes = Vec::new();
    for (i, p) in [pa, pb].iter().enumerate() {
        let k = keys::load_or_create(&t.join(format!("n{i}/node.key")))
            .unwrap()
            .0;
        nodes.push(GenesisNode {
            owner: keys::address(&wallet),
            key: hex::encode(keys::public(&k)),
            tier: 1,
            endpoint: format!("127.0.0.1:{p}"),
        });
    }
    let genesis = Genesis {
        chain_id: "hostile".into(),
        time: chain::node::now_secs(),
        slot_secs: 1,
        balances: vec![(keys::address(&wallet), 1_000 * COIN)],
        nodes,
        target: u64::MAX,
        want_eligible: 3,
        rules: Params {
            enforce_bench: false,
            reconfirm_min: 5,
            ..Params::default()
        },
    };
    let gpath = t.join("genesis.json");
    std::fs::write(&gpath, serde_json::to_vec(&genesis).unwrap()).unwrap();
    let a = chain_node(
        &t.join("n0"),
        &gpath,
        &t.join("n0/node.key"),
        pa,
        ra,
        &[pb],
        &[],
    );
    let b = chain_node(
        &t.join("n1"),
        &gpath,
        &t.join("n1/node.key"),
        pb,
        rb,
        &[pa],
        &[],
    );
    wait("blocks", Duration::from_secs(30), || {
        height(ra) >= 3 && height(rb) >= 3
    });
    Pair {
        genesis,
        wallet,
        pa,
        ra,
        rb,
        _nodes: [a, b],
    }
}

/// The hash (hex) of a node's block at height `h`.
pub fn hash_at(rpc: u16, h: u64) -> Option<String> {
    super::call(rpc, "getblockhash", serde_json::json!([h]))["result"]
        .as_str()
        .map(str::to_owned)
}

pub fn hello(genesis: &Genesis) -> Hello {
    Hello {
        chain_id: genesis.chain_id.clone(),
        genesis: genesis.hash(),
        version: PROTOCOL_VERSION as u32,
        best_height: 0,
        best_hash: [0; 32],
        listen_port: 0,
    }
}

/// Waits (up to `within`) for the node to ask `c` for headers, answering pings meanwhile,
/// and answers with `headers`; false when no request came. Headers are only taken as an
/// answer: a hostile peer gets asked by claiming a height in its hello.
pub async fn answer_headers(
    c: &mut Conn,
    headers: Vec<chain::block::Header>,
    within: Duration,
) -> bool {
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        match c.recv(Duration::from_millis(500)).await {
            Ok(chain::p2p::Msg::GetHeaders { .. }) => {
                return c.send(&chain::p2p::Msg::Headers(headers)).await.is_ok();
            }
            Ok(chain::p2p::Msg::Ping(n)) => {
                let _ = c.send(&chain::p2p::Msg::Pong(n)).await;
            }
            Ok(_) => {}
            Err(e) if e.is_fatal() => return false,
            Err(_) => {}
        }
    }
    false
}

/// A peer from `ip` (its own loopback address) that shook hands with the node at `port` on
/// `genesis`' chain, receiving within `limits`.
pub async fn peer_from(ip: &str, port: u16, genesis: &Genesis, limits: Limits) -> Conn {
    let mut c = Conn::new(connect_from(ip, port).await, limits).unwrap();
    c.handshake(&hello(genesis), Duration::from_secs(5))
        .await
        .unwrap();
    c
}

/// `n` headers that link from `fork` (whose hash is `fork_hash`), each signed by `key` with
/// the time of the moment: a branch as a peer holding that key would show it.
pub fn signed_branch(
    key: &ring::signature::Ed25519KeyPair,
    genesis: &Genesis,
    fork: u64,
    fork_hash: [u8; 32],
    n: u64,
) -> Vec<chain::block::Header> {
    let mut prev = fork_hash;
    (1..=n)
        .map(|i| {
            let time = chain::node::now_secs();
            let mut h = chain::block::Header {
                height: fork + i,
                prev,
                slot: time - genesis.time,
                time,
                producer: keys::public(key),
                tx_root: [0; 32],
                state_digest: [0; 32],
                signature: [0; 64],
            };
            h.sign(key);
            prev = h.hash();
            h
        })
        .collect()
}
