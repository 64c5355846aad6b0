//! A hostile peer against a two-node network of real processes: a wrong genesis, garbage
//! frames, an oversized frame, a transaction with a bad signature and blocks from the
//! future. Each sender (its own loopback address, as bans are per address) is banned, named
//! in the node's log, and refused when it comes back; the network keeps producing.

mod common;

use std::time::Duration;

use chain::block::{Block, Header};
use chain::keys;
use chain::p2p::{write_frame, Hello, Msg};
use chain::tx::{Tx, TxBody};
use common::pair::{
    answer_headers, connect_from, hash_at, hello, hello_from, signed_branch, two_nodes, Pair,
};
use common::{height, wait};
use tokio::io::AsyncWriteExt;

#[test]
fn a_hostile_peer_is_banned_and_the_network_keeps_producing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let Pair {
        genesis,
        wallet,
        pa,
        ra,
        rb,
        _nodes,
    } = two_nodes(t);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let good = hello(&genesis);
    rt.block_on(async {
        // 127.0.0.2: another genesis.
        let wrong = Hello {
            genesis: [7; 32],
            ..good.clone()
        };
        assert!(hello_from("127.0.0.2", pa, &wrong)
            .await
            .unwrap_err()
            .contains("genesis hash differs"));

        // 127.0.0.3: frames that are not messages.
        let mut s = connect_from("127.0.0.3", pa).await;
        write_frame(&mut s, &Msg::Hello(good.clone()).encode())
            .await
            .unwrap();
        for _ in 0..6 {
            let _ = write_frame(&mut s, b"\x01\xffgarbage").await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        // 127.0.0.4: an oversized frame, twice.
        for _ in 0..2 {
            let mut s = connect_from("127.0.0.4", pa).await;
            write_frame(&mut s, &Msg::Hello(good.clone()).encode())
                .await
                .unwrap();
            let _ = s.write_all(&u32::MAX.to_le_bytes()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // 127.0.0.5: a transaction whose signature does not verify.
        let (mut c, _) = hello_from("127.0.0.5", pa, &good).await.unwrap();
        let mut tx = Tx::signed(
            &wallet,
            &genesis.hash(),
            0,
            10_000,
            TxBody::Transfer {
                to: "fx00000000000000000000000000000000000000aa"
                    .parse()
                    .unwrap(),
                amount: 1,
            },
        );
        tx.signature[0] ^= 1;
        let _ = c.send(&Msg::Tx(tx)).await;

        // 127.0.0.6: blocks from an hour ahead, each on the node's tip of the moment (one
        // made on a tip the node has just left is only not the next block).
        let (mut c, _) = hello_from("127.0.0.6", pa, &good).await.unwrap();
        let stranger = keys::load_or_create(&t.join("stranger.key")).unwrap().0;
        for i in 0..12u64 {
            let time = chain::node::now_secs() + 3_600 + i;
            let tip = height(ra);
            let Some(tip_hash) = hash_at(ra, tip) else {
                continue;
            };
            let mut header = Header {
                height: tip + 1,
                prev: hex::decode(tip_hash).unwrap().try_into().unwrap(),
                slot: time - genesis.time,
                time,
                producer: [0; 32],
                tx_root: [0; 32],
                state_digest: [0; 32],
                signature: [0; 64],
            };
            header.sign(&stranger);
            if c.send(&Msg::Block(Block {
                header,
                txs: vec![],
            }))
            .await
            .is_err()
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;

        // Everyone is refused when they come back.
        for ip in [
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
            "127.0.0.5",
            "127.0.0.6",
        ] {
            assert!(
                hello_from(ip, pa, &good).await.is_err(),
                "{ip} is not banned"
            );
        }
    });
    let log = std::fs::read_to_string(t.join("n0/log")).unwrap();
    for (ip, why) in [
        ("127.0.0.2", "genesis hash differs"),
        ("127.0.0.3", "undecodable message"),
        ("127.0.0.4", "frame of"),
        ("127.0.0.5", "bad signature"),
        ("127.0.0.6", "in the future"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("peer {ip}:")) && l.contains("banned for 10 min"))
            .unwrap_or_else(|| panic!("no ban of {ip} in the log:\n{log}"));
        assert!(line.contains(why), "{ip}: {line}");
    }
    let (ha, hb) = (height(ra), height(rb));
    wait(
        "more blocks after the attack",
        Duration::from_secs(30),
        || height(ra) > ha + 2 && height(rb) > hb + 2,
    );
}

/// A peer that claims a huge height in its hello and sends a longer branch of headers from
/// three blocks back, signed by a key that is no node of the chain: nothing is rolled back
/// (before, the claim and one such header made the node drop its last blocks), the nodes
/// agree and go on producing.
#[test]
fn a_forged_fork_and_a_claimed_height_roll_nothing_back() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let net = two_nodes(t);
    wait("six blocks", Duration::from_secs(30), || {
        height(net.ra) >= 6
    });
    let fork = height(net.ra) - 3;
    let fork_hash = hash_at(net.ra, fork).unwrap();
    let kept = hash_at(net.ra, fork + 1).unwrap();
    let log_before = std::fs::read_to_string(t.join("n0/log")).unwrap().len();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let claim = Hello {
            best_height: 1_000_000,
            best_hash: [9; 32],
            ..hello(&net.genesis)
        };
        let (mut c, _) = hello_from("127.0.0.8", net.pa, &claim).await.unwrap();
        let forger = keys::load_or_create(&t.join("forger.key")).unwrap().0;
        let fork_hash = hex::decode(&fork_hash).unwrap().try_into().unwrap();
        let headers = signed_branch(&forger, &net.genesis, fork, fork_hash, 20);
        // Asked for headers (its claim puts it ahead), it answers with the forged ones.
        assert!(answer_headers(&mut c, headers, Duration::from_secs(10)).await);
        // Several slots for a switch to happen, were it taken.
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let log = std::fs::read_to_string(t.join("n0/log")).unwrap();
    let after = &log[log_before..];
    assert!(
        !after.contains(&format!("to {fork}")),
        "rolled back to the forged fork point {fork}:\n{after}"
    );
    assert_eq!(hash_at(net.ra, fork + 1).as_deref(), Some(kept.as_str()));
    let h = height(net.ra);
    wait(
        "blocks after the forged fork",
        Duration::from_secs(30),
        || height(net.ra) > h + 2,
    );
    let top = height(net.ra).min(height(net.rb)) - 1;
    assert_eq!(
        hash_at(net.ra, top),
        hash_at(net.rb, top),
        "the nodes agree at {top}"
    );
}
