//! Writes seed inputs for the fuzz targets: valid encodings of every transaction kind, of
//! blocks and headers, of every p2p message, and of a stream of framed messages. A seed that
//! decodes lets libFuzzer start from deep inside each decoder instead of finding the
//! structure (versions, tags, lengths, a 64-byte signature at the end) byte by byte.
//!
//!   cargo run --example seeds -- <corpus dir>   (writes <dir>/<target>/seed-*)
//!
//! ./scripts/fuzz.sh runs it before fuzzing; the corpus is never committed.

use std::fs;
use std::path::Path;

use chain::address::Address;
use chain::block::{Block, Header};
use chain::p2p::{BlockIds, Hello, Msg, PROTOCOL_VERSION};
use chain::tx::{AppSpec, InstanceUsage, Tier, Tx, TxBody, COIN};
use ring::signature::Ed25519KeyPair;

fn key(n: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[n; 32]).expect("a 32-byte seed")
}

fn spec(name: &str) -> AppSpec {
    AppSpec {
        name: name.into(),
        image_ref: "local/busybox:1".into(),
        image_digest: format!("sha256:{}", "ab".repeat(32)),
        command: vec!["/bin/sh".into(), "-c".into(), "sleep 1000".into()],
        env: vec!["A=1".into()],
        ports: vec![8080, 443],
        cpu_millis: 500,
        ram_bytes: 256 << 20,
        disk_bytes: 1 << 30,
        instances: 2,
        expiry_blocks: 1000,
    }
}

fn txs() -> Vec<Tx> {
    let bodies = vec![
        TxBody::Transfer {
            to: Address([7; 20]),
            amount: 5 * COIN,
        },
        TxBody::NodeStart {
            tier: Tier::Nimbus,
            node_key: [3; 32],
            endpoint: "10.0.0.2:16125".into(),
            consent: [6; 64],
        },
        TxBody::NodeConfirm {
            bench_tier: Some(Tier::Cumulus),
            bench_report: b"{\"tier\":1}".to_vec(),
            workload: vec![InstanceUsage {
                app: "web".into(),
                instance: 1,
                running: true,
                cpu_usage_usec: 9,
                memory_peak: 10,
            }],
        },
        TxBody::NodeConfirm {
            bench_tier: None,
            bench_report: Vec::new(),
            workload: Vec::new(),
        },
        TxBody::NodeStop { node_key: [3; 32] },
        TxBody::AppRegister(spec("web")),
        TxBody::AppUpdate(spec("web")),
        TxBody::AppCancel { name: "web".into() },
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| Tx::signed(&key(1), &[9; 32], i as u64, 1_000, b))
        .collect()
}

fn block(height: u64, txs: Vec<Tx>) -> Block {
    let mut header = Header {
        height,
        prev: [4; 32],
        slot: height * 2,
        time: 1_800_000_000 + height,
        producer: [0; 32],
        tx_root: Block::tx_root(&txs),
        state_digest: [5; 32],
        signature: [0; 64],
    };
    header.sign(&key(2));
    Block { header, txs }
}

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    for (i, s) in seeds.iter().enumerate() {
        fs::write(d.join(format!("seed-{i:02}")), s)?;
    }
    println!("{}: {} seeds", d.display(), seeds.len());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    let dir = Path::new(&dir);
    let txs = txs();
    write(
        dir,
        "tx_decode",
        &txs.iter().map(Tx::encode).collect::<Vec<_>>(),
    )?;

    let blocks = [
        block(1, Vec::new()),
        block(2, txs[..1].to_vec()),
        block(3, txs.clone()),
    ];
    let mut block_seeds: Vec<Vec<u8>> = blocks.iter().map(Block::encode).collect();
    block_seeds.push(blocks[0].header.encode());
    write(dir, "block_decode", &block_seeds)?;

    let msgs = vec![
        Msg::Hello(Hello {
            chain_id: "fluxnode-devnet".into(),
            genesis: [9; 32],
            version: PROTOCOL_VERSION.into(),
            best_height: 812,
            best_hash: [8; 32],
            listen_port: 16125,
        }),
        Msg::GetHeaders {
            from_height: 5,
            max: 500,
        },
        Msg::Headers(blocks.iter().map(|b| b.header.clone()).collect()),
        Msg::GetBlocks(BlockIds::Heights(vec![1, 2, 3])),
        Msg::GetBlocks(BlockIds::Hashes(vec![[1; 32], [2; 32]])),
        Msg::Block(blocks[2].clone()),
        Msg::Tx(txs[0].clone()),
        Msg::Tx(txs[5].clone()),
        Msg::Ping(7),
        Msg::Pong(7),
        Msg::Bye {
            reason: "shutting down".into(),
        },
    ];
    let mut frame_seeds: Vec<Vec<u8>> = msgs.iter().map(Msg::encode).collect();
    // Streams of framed messages (the last byte steers how the stream arrives).
    let mut stream = Vec::new();
    for m in &msgs {
        let body = m.encode();
        stream.extend_from_slice(&(body.len() as u32).to_le_bytes());
        stream.extend_from_slice(&body);
    }
    frame_seeds.push(stream.clone());
    stream.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0x33]);
    frame_seeds.push(stream);
    write(dir, "frame_decode", &frame_seeds)?;
    Ok(())
}
