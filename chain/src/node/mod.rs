//! The running chain node: the ledger and its sled store, the mempool, peers over TCP
//! (headers-first sync, gossip of transactions and blocks, scores and bans), block
//! production in the node's slots, its own confirms carrying its workload report, and
//! JSON-RPC over HTTP. Everything shared sits in `Shared` behind short locks; every network
//! input is bounded (see `p2p`) and checked before use.

mod branch;
mod equivocation;
mod outbox;
mod peer;
mod produce;
pub use produce::RankMemo;
pub mod reorg;
mod sync;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::signature::Ed25519KeyPair;
use tokio::net::TcpListener;
use tracing::info;

use crate::block::Block;
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::mempool::Mempool;
use outbox::PeerHandle;

use crate::p2p::{Hello, Msg, ScoreConfig, Scores, PROTOCOL_VERSION};
use crate::rpc::Rpc;
use crate::store::{Store, StoreError};
use crate::tx::InstanceUsage;

/// Where a node's workload reports come from: PID1's runtime on a real node, a feeder in
/// tests, nothing before the runtime exists.
pub trait Workload: Send + Sync {
    /// Usage of the app instances this node runs.
    fn report(&self) -> Vec<InstanceUsage>;
}

/// Reports no instances (a node with nothing assigned is complete with it).
pub struct NoWorkload;

impl Workload for NoWorkload {
    fn report(&self) -> Vec<InstanceUsage> {
        Vec::new()
    }
}

/// A report set from outside (tests, or a file).
#[derive(Default)]
pub struct FedWorkload(pub Mutex<Vec<InstanceUsage>>);

impl Workload for FedWorkload {
    fn report(&self) -> Vec<InstanceUsage> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub genesis: Genesis,
    pub key: Ed25519KeyPair,
    pub p2p_listen: SocketAddr,
    pub rpc_listen: SocketAddr,
    pub peers: Vec<SocketAddr>,
    pub max_peers: usize,
    pub produce: bool,
    pub workload: Arc<dyn Workload>,
    /// The API token that methods changing anything need.
    pub token: String,
    /// The tier of this node's benchmark, and its signed report, sent with its confirms.
    pub bench_tier: Option<crate::tx::Tier>,
    pub bench_report: Vec<u8>,
    /// The owner this node confirms for: registered by anyone else, or with no owner set,
    /// it sends no confirms.
    pub owner: Option<crate::address::Address>,
}

pub struct Shared {
    ledger: Mutex<Ledger>,
    store: Store,
    mempool: Mutex<Mempool>,
    scores: Mutex<Scores>,
    peers: Mutex<HashMap<SocketAddr, PeerHandle>>,
    /// The highest block height asked for in the current sync round.
    asked_to: std::sync::atomic::AtomicU64,
    /// The last slot this node signed a block for (at start: the slot of the moment, so a
    /// restart never signs a second block for a slot). A switch to another branch never
    /// makes it sign again for a slot it has signed for: that would be an equivocation.
    signed_slot: std::sync::atomic::AtomicU64,
    /// Headers seen by producer and slot, to catch an equivocation.
    seen: Mutex<equivocation::Seen>,
    /// The competing branch whose blocks are being fetched, if any.
    branch: Mutex<Option<branch::Pending>>,
    cfg: NodeConfig,
}

/// The account of a key (a node key's confirms and evidence are sent from it).
fn keys_account(key: &Ed25519KeyPair) -> crate::address::Address {
    crate::address::Address::from_public_key(&crate::keys::public(key))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn hello(&self) -> Hello {
        let l = lock(&self.ledger);
        Hello {
            chain_id: l.genesis.chain_id.clone(),
            genesis: l.genesis_hash,
            version: PROTOCOL_VERSION as u32,
            best_height: l.height(),
            best_hash: l.tip.hash(),
            listen_port: self.cfg.p2p_listen.port(),
        }
    }

    /// Applies a block on the tip, stores it, prunes the mempool. Ok(false) when it is not
    /// the next block (the caller syncs); Err when it breaks a rule.
    fn accept_block(&self, block: &Block) -> Result<bool, String> {
        let mut l = lock(&self.ledger);
        if block.header.height != l.height() + 1 {
            return Ok(false);
        }
        let applied = l.apply(block, now_secs()).map_err(|e| e.to_string())?;
        self.store
            .commit(block, &applied, &l)
            .map_err(|e| format!("store: {e}"))?;
        let ready = lock(&self.mempool).prune(&l);
        drop(l);
        // What the block made ready (a gap it filled) goes to the peers now.
        for tx in ready {
            self.broadcast(&Msg::Tx(tx), None);
        }
        Ok(true)
    }

    /// Switches to the branch `blocks` (consecutive, the first one's parent at height
    /// `fork` of our chain) when it is better than ours and validates (see `reorg`); the
    /// transactions of the dropped blocks go back to the mempool when they still apply.
    /// Returns how many blocks of the branch were applied, and the rule a later one broke.
    fn reorg(
        &self,
        fork: u64,
        blocks: &[Block],
    ) -> Result<(usize, Option<crate::ledger::BlockError>), reorg::Refused> {
        let mut l = lock(&self.ledger);
        let from = l.height();
        let done = reorg::switch(&self.store, &l, fork, blocks, now_secs())?;
        *l = done.ledger;
        tracing::warn!(
            "reorganised: from height {from} back to {fork}, then {} block(s) of another \
             branch to {}",
            done.applied,
            l.height()
        );
        let mut ready = {
            let mut m = lock(&self.mempool);
            let mut ready = m.prune(&l);
            // What no longer applies on the new branch is simply not taken back.
            let dropped: Vec<_> = done
                .dropped
                .iter()
                .rev()
                .flat_map(|b| b.txs.clone())
                .collect();
            ready.extend(m.restore(dropped, &l));
            ready
        };
        drop(l);
        ready.dedup_by_key(|t| t.id());
        for tx in ready {
            self.broadcast(&Msg::Tx(tx), None);
        }
        Ok((done.applied, done.invalid))
    }

    /// Sends `msg` to every peer but `except`.
    fn broadcast(&self, msg: &Msg, except: Option<SocketAddr>) {
        let Some(body) = outbox::encode(msg) else {
            return;
        };
        for (addr, p) in lock(&self.peers).iter() {
            if Some(*addr) != except && !p.push(&body, msg.solicits()) {
                tracing::debug!("peer {addr}: queue full, a {} dropped", msg.name());
            }
        }
    }

    /// A request that only lists every node (about 0.1 s at 15,000 nodes) is answered
    /// from a copy of the ledger taken under the lock (a few ms), so block acceptance and
    /// other calls do not wait for it. The copy's mempool is an empty scratch one, which
    /// those methods never read.
    fn rpc(&self, body: &[u8], authorized: bool) -> Option<Vec<u8>> {
        if crate::rpc::only_node_lists(body) {
            let copy = lock(&self.ledger).clone();
            let mut scratch = crate::mempool::Mempool::with_limits(Default::default());
            let mut rpc = Rpc {
                ledger: &copy,
                store: &self.store,
                mempool: &mut scratch,
                authorized,
                peers: lock(&self.peers).len(),
                version: env!("CARGO_PKG_VERSION"),
                relay: Vec::new(),
            };
            return rpc.handle(body).map(|v| v.to_string().into_bytes());
        }
        let l = lock(&self.ledger);
        let mut m = lock(&self.mempool);
        let peers = lock(&self.peers).len();
        let mut rpc = Rpc {
            ledger: &l,
            store: &self.store,
            mempool: &mut m,
            authorized,
            peers,
            version: env!("CARGO_PKG_VERSION"),
            relay: Vec::new(),
        };
        let out = rpc.handle(body);
        // What a sendrawtransaction admitted and made ready goes to the peers, and only that.
        let relay = std::mem::take(&mut rpc.relay);
        drop(m);
        drop(l);
        for tx in relay {
            self.broadcast(&Msg::Tx(tx), None);
        }
        out.map(|v| v.to_string().into_bytes())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listen {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the store and starts every task; returns when the listeners are bound (the node
/// runs until the runtime stops).
pub async fn start(cfg: NodeConfig) -> Result<Arc<Shared>, NodeError> {
    let store = Store::open(&cfg.data_dir.join("db"))?;
    let ledger = store.load(cfg.genesis.clone())?;
    info!(
        "chain {}: height {}, tip {}",
        ledger.genesis.chain_id,
        ledger.height(),
        hex::encode(&ledger.tip.hash()[..8])
    );
    let p2p = TcpListener::bind(cfg.p2p_listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.p2p_listen,
            source,
        })?;
    let rpc = TcpListener::bind(cfg.rpc_listen)
        .await
        .map_err(|source| NodeError::Listen {
            addr: cfg.rpc_listen,
            source,
        })?;
    let shared = Arc::new(Shared {
        ledger: Mutex::new(ledger),
        store,
        mempool: Mutex::new(Mempool::default()),
        scores: Mutex::new(Scores::new(ScoreConfig::default())),
        peers: Mutex::new(HashMap::new()),
        asked_to: std::sync::atomic::AtomicU64::new(0),
        branch: Mutex::new(None),
        seen: Mutex::new(equivocation::Seen::default()),
        signed_slot: std::sync::atomic::AtomicU64::new(crate::consensus::slot_of(
            now_secs(),
            cfg.genesis.time,
            cfg.genesis.slot_secs,
        )),
        cfg,
    });
    let s = shared.clone();
    tokio::spawn(crate::http::serve(rpc, s.cfg.token.clone(), move |req| {
        let s = s.clone();
        // Methods read the store and take the ledger's lock: off the async workers.
        async move {
            tokio::task::spawn_blocking(move || s.rpc(&req.body, req.authorized))
                .await
                .ok()
                .flatten()
        }
    }));
    tokio::spawn(peer::listen(shared.clone(), p2p));
    for addr in shared.cfg.peers.clone() {
        tokio::spawn(peer::dial(shared.clone(), addr));
    }
    tokio::spawn(sync::sync_loop(shared.clone()));
    if shared.cfg.produce {
        tokio::spawn(produce::produce_loop(shared.clone()));
    }
    tokio::spawn(produce::confirm_loop(shared.clone()));
    Ok(shared)
}
