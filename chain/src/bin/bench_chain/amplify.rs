//! What one hostile peer can make a node do. Node A (`chain::node::start` on its own
//! thread) serves a store of `BLOCKS` blocks; a client on loopback completes the handshake
//! and for `SECS` seconds sends requests at 900 messages a second (under the 1,000/s
//! message limit), alternating a `GetHeaders` of 2,000 and a `GetBlocks` of 128 heights,
//! and reads every reply. The store reads it was served per second (a header is one, a
//! block `BLOCK_READS`) are set against the node's read budget per peer. Headers nobody
//! asked for are refused with a score before any signature check (`p2p::conn`), so a peer
//! causes signature checks only with blocks and transactions, one per message at most.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chain::genesis::Genesis;
use chain::p2p::{BlockIds, Conn, Hello, Limits, Msg, PROTOCOL_VERSION};
use chain::store::Store;

use super::{key, next_block, pk, run_node};

const BLOCKS: u64 = 1_000;
const SECS: u64 = 5;
/// What a block costs in the node's read budget (`node::outbox::BLOCK_READS`).
const BLOCK_READS: u64 = 8;

pub struct Amplify {
    pub secs: f64,
    pub sent: u64,
    pub headers: u64,
    pub blocks: u64,
}

impl Amplify {
    pub fn reads_per_sec(&self) -> f64 {
        (self.headers + BLOCK_READS * self.blocks) as f64 / self.secs
    }
}

pub fn run(work: &Path, g: Genesis) -> Result<Amplify> {
    let dir = work.join("amplify");
    {
        let store = Store::open(&dir.join("db"))?;
        let mut l = store.load(g.clone())?;
        let producer = key(1, 0);
        anyhow::ensure!(
            l.state.nodes.contains_key(&pk(&producer)),
            "the genesis has no node of the producer's key"
        );
        while l.height() < BLOCKS {
            let b = next_block(&l, &producer, &[], 0)?;
            let a = l.apply(&b, u64::MAX)?;
            store.commit(&b, &a, &l)?;
        }
    }
    let hello = Hello {
        chain_id: g.chain_id.clone(),
        genesis: g.hash(),
        version: PROTOCOL_VERSION as u32,
        best_height: 0,
        best_hash: [0; 32],
        listen_port: 0,
    };
    let (node, p2p) = run_node(dir.clone(), g, Vec::new(), 9)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(async {
        let limits = Limits {
            msgs_per_sec: 1_000_000,
            burst: 1_000_000,
            ..Limits::default()
        };
        let mut c = Conn::connect(p2p, limits, Duration::from_secs(5))
            .await
            .context("connect to node A")?;
        c.handshake(&hello, Duration::from_secs(5))
            .await
            .context("handshake with node A")?;
        // Replies are taken only as far as we asked for them, as a node does.
        let credit = c.solicited();
        let (mut reader, mut writer) = c.into_split();
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let seen = counts.clone();
        let reading = tokio::spawn(async move {
            loop {
                match reader.recv(Duration::from_secs(2)).await {
                    Ok(Msg::Headers(h)) => {
                        seen.0.fetch_add(h.len() as u64, Ordering::Relaxed);
                    }
                    Ok(Msg::Block(_)) => {
                        seen.1.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) if e.is_fatal() => break,
                    Err(_) => {}
                }
            }
        });
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_micros(1_111));
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(SECS) {
            tick.tick().await;
            let from = 1 + (sent * 7919) % BLOCKS;
            let msg = if sent.is_multiple_of(2) {
                Msg::GetHeaders {
                    from_height: from,
                    max: 2_000,
                }
            } else {
                Msg::GetBlocks(BlockIds::Heights(
                    (0..128).map(|i| 1 + (from + i) % BLOCKS).collect(),
                ))
            };
            credit.asked(msg.solicits());
            if writer.send(&msg).await.is_err() {
                break;
            }
            sent += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = tokio::time::timeout(Duration::from_secs(5), reading).await;
        anyhow::Ok(Amplify {
            secs,
            sent,
            headers: counts.0.load(Ordering::Relaxed),
            blocks: counts.1.load(Ordering::Relaxed),
        })
    });
    node.stop();
    std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    out
}
