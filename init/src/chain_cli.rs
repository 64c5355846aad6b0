//! `fluxnode chain`: runs the chain node (PID1 supervises it on a node, with its data in
//! /data/chain and its key in /data/keys). `--devnet` makes (once) a one-node devnet whose
//! genesis funds a local wallet and registers this node, so it produces within a few slots.
//! Workload reports come from PID1's runtime over the control socket when there is one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::node::{NodeConfig, Workload};
use chain::tx::{InstanceUsage, COIN};
use clap::Args;

#[derive(Args)]
pub struct ChainArgs {
    /// Where the chain keeps its database, genesis and API token.
    #[arg(long, default_value = "/data/chain")]
    data: PathBuf,
    /// The genesis file (JSON); with --devnet, made in the data directory when missing.
    #[arg(long)]
    genesis: Option<PathBuf>,
    #[arg(long)]
    devnet: bool,
    /// The devnet's slot length in seconds.
    #[arg(long, default_value_t = 2)]
    slot: u64,
    /// The node key (created when missing).
    #[arg(long, default_value = "/data/keys/node.key")]
    key: PathBuf,
    /// The wallet the devnet genesis funds (created when missing).
    #[arg(long, default_value = "/data/keys/wallet.key")]
    wallet: PathBuf,
    #[arg(long, default_value = "0.0.0.0:16125")]
    p2p: SocketAddr,
    #[arg(long, default_value = "0.0.0.0:16124")]
    rpc: SocketAddr,
    /// A peer to keep a connection to (repeatable).
    #[arg(long = "peer")]
    peers: Vec<SocketAddr>,
    #[arg(long, default_value_t = 16)]
    max_peers: usize,
    /// Follow the chain without producing blocks.
    #[arg(long)]
    no_produce: bool,
    /// Rebuild the state from the stored blocks before starting.
    #[arg(long)]
    reindex: bool,
    /// The signed benchmark report sent with confirms.
    #[arg(long, default_value = "/data/bench/latest.json")]
    bench_report: PathBuf,
    /// Take workload reports from this JSON file ([{"app":..,"instance":..,"running":..}])
    /// instead of PID1's control socket (tests).
    #[arg(long)]
    workload_file: Option<PathBuf>,
}

/// Reports from PID1's runtime: every app instance it runs, from `app.list`.
struct ControlWorkload;

impl Workload for ControlWorkload {
    fn report(&self) -> Vec<InstanceUsage> {
        let req = runtime::control::Request::AppList;
        let Ok(reply) = runtime::control::call(
            Path::new(runtime::control::SOCKET),
            &req,
            std::time::Duration::from_secs(2),
        ) else {
            return Vec::new();
        };
        let apps = reply
            .data
            .as_ref()
            .and_then(|d| d["apps"].as_array().cloned())
            .unwrap_or_default();
        apps.iter()
            .map(|a| InstanceUsage {
                app: a["name"].as_str().unwrap_or_default().to_owned(),
                instance: a["id"]
                    .as_str()
                    .and_then(|id| id.rsplit_once('-'))
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(0),
                running: a["state"] == "running",
                cpu_usage_usec: a["latest"]["cpu_usage_usec"].as_u64().unwrap_or(0),
                memory_peak: a["latest"]["memory_peak"].as_u64().unwrap_or(0),
            })
            .collect()
    }
}

/// Reports read from a file at each confirm.
struct FileWorkload(PathBuf);

impl Workload for FileWorkload {
    fn report(&self) -> Vec<InstanceUsage> {
        let Ok(text) = std::fs::read(&self.0) else {
            return Vec::new();
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
            return Vec::new();
        };
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|u| InstanceUsage {
                        app: u["app"].as_str().unwrap_or_default().to_owned(),
                        instance: u["instance"].as_u64().unwrap_or(0) as u32,
                        running: u["running"].as_bool().unwrap_or(false),
                        cpu_usage_usec: 0,
                        memory_peak: 0,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The node's benchmark: the tier its signed report gives, and the report's bytes (none
/// when there is no valid report; a chain that enforces attestations then refuses its
/// confirms, naming why).
fn bench(path: &Path) -> (Option<chain::tx::Tier>, Vec<u8>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, Vec::new());
    };
    match runtime::bench::report::verify(&text) {
        Ok(signed) => {
            use runtime::bench::tier::Tier as T;
            let tier = signed.report.verdict.tier.map(|t| match t {
                T::Cumulus => chain::tx::Tier::Cumulus,
                T::Nimbus => chain::tx::Tier::Nimbus,
                T::Stratus => chain::tx::Tier::Stratus,
            });
            (tier, text.into_bytes())
        }
        Err(e) => {
            tracing::warn!(
                "benchmark report {}: {e}; confirms carry none",
                path.display()
            );
            (None, Vec::new())
        }
    }
}

fn devnet_genesis(path: &Path, a: &ChainArgs) -> Result<Genesis> {
    let node = keys::load_or_create(&a.key)?.0;
    let wallet = keys::load_or_create(&a.wallet)?.0;
    let now = chain::node::now_secs();
    let g = Genesis {
        chain_id: "fluxnode-devnet".into(),
        time: now - now % a.slot.max(1),
        slot_secs: a.slot.max(1),
        balances: vec![(keys::address(&wallet), 1_000_000 * COIN)],
        nodes: vec![GenesisNode {
            owner: keys::address(&wallet),
            key: hex::encode(keys::public(&node)),
            tier: 1,
            endpoint: a.p2p.to_string(),
        }],
        target: u64::MAX,
        want_eligible: 3,
        enforce_bench: false,
        confirm_window: None,
        expire_after: None,
        reconfirm_min: None,
    };
    std::fs::write(path, serde_json::to_vec_pretty(&g)?)
        .with_context(|| format!("{}", path.display()))?;
    Ok(g)
}

fn genesis(a: &ChainArgs) -> Result<Genesis> {
    let path = a
        .genesis
        .clone()
        .unwrap_or_else(|| a.data.join("genesis.json"));
    if path.exists() {
        let text = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        return serde_json::from_slice(&text)
            .with_context(|| format!("genesis {}", path.display()));
    }
    if a.devnet {
        return devnet_genesis(&path, a);
    }
    Err(anyhow!(
        "no genesis: {} is missing (give --genesis FILE or --devnet)",
        path.display()
    ))
}

/// The API token in the data directory, made (random, 0600) when missing.
fn token(data: &Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join("api.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow!("the random generator failed"))?;
    let t = hex::encode(bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("{}", path.display()))?;
    f.write_all(t.as_bytes())?;
    Ok(t)
}

pub fn run(a: ChainArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    std::fs::create_dir_all(&a.data).with_context(|| format!("{}", a.data.display()))?;
    let genesis = genesis(&a)?;
    let key = keys::load_or_create(&a.key)?.0;
    if a.reindex {
        let store = chain::store::Store::open(&a.data.join("db"))?;
        let l = store.reindex(genesis.clone())?;
        tracing::info!("reindexed to height {}", l.height());
    }
    let (bench_tier, bench_report) = bench(&a.bench_report);
    let workload: Arc<dyn Workload> = match &a.workload_file {
        Some(f) => Arc::new(FileWorkload(f.clone())),
        None => Arc::new(ControlWorkload),
    };
    let cfg = NodeConfig {
        data_dir: a.data.clone(),
        token: token(&a.data)?,
        genesis,
        key,
        p2p_listen: a.p2p,
        rpc_listen: a.rpc,
        peers: a.peers,
        max_peers: a.max_peers,
        produce: !a.no_produce,
        workload,
        bench_tier,
        bench_report,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        chain::node::start(cfg).await?;
        std::future::pending::<()>().await;
        Ok::<(), anyhow::Error>(())
    })
}
