//! Hostile peers against the limits on peers and requests, over the real p2p port of two
//! real nodes: a peer that shows a branch signed by a registered node's key and a huge
//! height and delivers nothing; one address opening connection after connection; and a
//! peer asking for blocks as fast as its message limit allows. Each time the honest nodes
//! keep their chain, go on producing and agree.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain::block::Header;
use chain::keys;
use chain::p2p::{BlockIds, Conn, Hello, Limits, Msg};
use common::pair::{
    answer_headers, connect_from, hash_at, hello, hello_from, signed_branch, two_nodes, Pair,
};
use common::{height, wait};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The honest nodes go on producing and agree below their tips.
fn still_agree(net: &Pair) {
    let h = height(net.ra);
    wait("blocks after the attack", Duration::from_secs(30), || {
        height(net.ra) > h + 2
    });
    let top = height(net.ra).min(height(net.rb)) - 1;
    assert_eq!(
        hash_at(net.ra, top),
        hash_at(net.rb, top),
        "the nodes agree at {top}"
    );
}

/// A peer claims a huge height and shows a longer branch from three blocks back, signed
/// with node B's own key (a registered producer: the headers pass every check a header
/// can), then answers nothing it is asked. Node A asks for the branch's blocks, undoes
/// nothing while it waits, scores the peer for not delivering, and keeps its chain.
#[test]
fn a_branch_shown_and_never_delivered_rolls_nothing_back() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let net = two_nodes(t);
    wait("six blocks", Duration::from_secs(30), || {
        height(net.ra) >= 6
    });
    let fork = height(net.ra) - 3;
    let kept = hash_at(net.ra, fork + 1).unwrap();
    let fork_hash: [u8; 32] = hex::decode(hash_at(net.ra, fork).unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let log_before = std::fs::read_to_string(t.join("n0/log")).unwrap().len();
    let insider = keys::load(&t.join("n1/node.key")).unwrap();
    runtime().block_on(async {
        let claim = Hello {
            best_height: 1_000_000,
            best_hash: [9; 32],
            ..hello(&net.genesis)
        };
        let (mut c, _) = hello_from("127.0.0.9", net.pa, &claim).await.unwrap();
        let headers = signed_branch(&insider, &net.genesis, fork, fork_hash, 20);
        assert!(answer_headers(&mut c, headers, Duration::from_secs(10)).await);
        // Asked for blocks and headers, it answers with nothing (empty headers to a
        // request for those after the node's tip, which its claim said it had).
        let end = Instant::now() + Duration::from_secs(14);
        while Instant::now() < end {
            match c.recv(Duration::from_millis(500)).await {
                Ok(Msg::GetHeaders { .. }) => {
                    let _ = c.send(&Msg::Headers(vec![])).await;
                }
                Ok(Msg::Ping(n)) => {
                    let _ = c.send(&Msg::Pong(n)).await;
                }
                Ok(_) => {}
                Err(e) if e.is_fatal() => break,
                Err(_) => {}
            }
        }
    });
    let log = std::fs::read_to_string(t.join("n0/log")).unwrap();
    let after = &log[log_before..];
    assert!(!after.contains("reorganised"), "rolled back:\n{after}");
    assert_eq!(hash_at(net.ra, fork + 1).as_deref(), Some(kept.as_str()));
    assert!(
        after.contains("delivered 0 of its"),
        "the undelivered branch is not scored:\n{after}"
    );
    assert!(
        after.contains("claimed height 1000000"),
        "the empty answer to its claim is not scored:\n{after}"
    );
    still_agree(&net);
}

/// One address opens 20 connections and completes the handshake on each it can: at most
/// 4 are kept; a peer from another address still gets in.
#[test]
fn one_address_cannot_take_every_peer_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let net = two_nodes(tmp.path());
    runtime().block_on(async {
        let mut kept = Vec::new();
        for _ in 0..20 {
            if let Ok((c, _)) = hello_from("127.0.0.10", net.pa, &hello(&net.genesis)).await {
                kept.push(c);
            }
        }
        // Those the node dropped at accept fail their next read.
        let mut open = 0;
        for c in &mut kept {
            c.send(&Msg::Ping(7)).await.ok();
            if let Ok(Msg::Pong(7)) = c.recv(Duration::from_secs(3)).await {
                open += 1;
            }
        }
        assert!(open <= 4, "{open} connections from one address kept");
        assert!(open >= 1, "not even one connection from the address kept");
        let other = hello_from("127.0.0.11", net.pa, &hello(&net.genesis)).await;
        assert!(
            other.is_ok(),
            "another address is refused: {:?}",
            other.err()
        );
    });
    still_agree(&net);
}

/// A peer asks for 128 blocks per message, as fast as its message limit lets it, for 3 s,
/// and reads every reply: what it gets is bounded by its read budget (20,000 reads a second
/// and as many in a burst, a block being 8 reads), not by its message rate (which would
/// allow 128 x 1,000 blocks a second).
#[test]
fn a_peer_asking_for_blocks_at_full_rate_is_served_within_its_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let net = two_nodes(tmp.path());
    wait("ten blocks", Duration::from_secs(30), || {
        height(net.ra) >= 10
    });
    let got = Arc::new(AtomicU64::new(0));
    let secs = runtime().block_on(async {
        let limits = Limits {
            msgs_per_sec: 1_000_000,
            burst: 1_000_000,
            ..Limits::default()
        };
        let mut c = Conn::new(connect_from("127.0.0.12", net.pa).await, limits).unwrap();
        c.handshake(&hello(&net.genesis), Duration::from_secs(5))
            .await
            .unwrap();
        let (mut reader, mut writer) = c.into_split();
        let count = got.clone();
        let reading = tokio::spawn(async move {
            while let Ok(m) = reader.recv(Duration::from_secs(2)).await {
                if matches!(m, Msg::Block(_)) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let start = Instant::now();
        let ask = Msg::GetBlocks(BlockIds::Heights((0..128).map(|i| 1 + i % 8).collect()));
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        while start.elapsed() < Duration::from_secs(3) {
            tick.tick().await;
            if writer.send(&ask).await.is_err() {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = tokio::time::timeout(Duration::from_secs(5), reading).await;
        secs
    });
    let got = got.load(Ordering::Relaxed);
    // The burst and the rate, over the time asked plus the 2 s the last replies may take.
    let bound = (20_000.0 + 20_000.0 * (secs + 2.0)) / 8.0;
    eprintln!("served {got} blocks in {secs:.1} s (bound {bound:.0})");
    assert!(got > 0, "nothing served at all");
    assert!(
        (got as f64) <= bound,
        "{got} blocks served, over {bound:.0}"
    );
    still_agree(&net);
}

/// Node B's key signs two different headers for one slot (a producer that equivocates),
/// and a peer shows both to node A: A sends the evidence, a block carries it, and B stops
/// producing with its key on the DoS list, on both nodes; A goes on alone.
#[test]
fn an_equivocation_is_caught_put_in_a_block_and_bars_the_producer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let net = two_nodes(t);
    wait("four blocks", Duration::from_secs(30), || {
        height(net.ra) >= 4
    });
    let insider = keys::load(&t.join("n1/node.key")).unwrap();
    let b_key = hex::encode(keys::public(&insider));
    let tip = height(net.ra) - 1;
    let parent: [u8; 32] = hex::decode(hash_at(net.ra, tip - 1).unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let time = chain::node::now_secs();
    let two: Vec<Header> = [1u8, 2]
        .iter()
        .map(|n| {
            let mut h = Header {
                height: tip,
                prev: parent,
                slot: time - net.genesis.time,
                time,
                producer: keys::public(&insider),
                tx_root: [*n; 32],
                state_digest: [0; 32],
                signature: [0; 64],
            };
            h.sign(&insider);
            h
        })
        .collect();
    runtime().block_on(async {
        // It claims a height, so the node asks it for headers: it answers each of two
        // requests with one of the two headers.
        let claim = Hello {
            best_height: 1_000_000,
            ..hello(&net.genesis)
        };
        let (mut c, _) = hello_from("127.0.0.13", net.pa, &claim).await.unwrap();
        for h in &two {
            assert!(answer_headers(&mut c, vec![h.clone()], Duration::from_secs(10)).await);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let status = |rpc: u16| {
        common::call(rpc, "getfluxnodestatus", serde_json::json!([b_key]))["result"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !(status(net.ra) == "DOS" && status(net.rb) == "DOS") {
        assert!(
            Instant::now() < end,
            "B is {:?} on A and {:?} on B after 30 s; A's log:\n{}",
            status(net.ra),
            status(net.rb),
            std::fs::read_to_string(t.join("n0/log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let log = std::fs::read_to_string(t.join("n0/log")).unwrap();
    assert!(log.contains("signed two headers for slot"), "{log}");
    still_agree(&net);
}
