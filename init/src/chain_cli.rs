//! `fluxnode chain`: runs the chain node (PID1 supervises it on a node, with its data in
//! /data/chain and its key in /data/keys). `--devnet` makes (once) a one-node devnet whose
//! genesis funds a local wallet and registers this node, so it produces within a few slots.
//! The node confirms only for `--owner` (a devnet's wallet by default). Workload reports
//! come from PID1's runtime over the control socket when there is one.
//! `fluxnode chain consent` signs the node key's consent to a registration (consent_cli).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use chain::address::Address;
use chain::genesis::{Genesis, GenesisNode};
use chain::keys;
use chain::node::{NodeConfig, Workload};
use chain::params::Params;
use chain::tx::{InstanceUsage, COIN};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Sign this node key's consent to be registered by an owner with a tier and endpoint;
    /// prints it (hex) for the owner's `fluxnode tx node-start --consent`.
    Consent(crate::consent_cli::ConsentArgs),
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ChainArgs {
    #[command(subcommand)]
    command: Option<ChainCommand>,
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
    /// The owner address this node confirms for; a registration by anyone else gets no
    /// confirms. A devnet's default is its wallet; otherwise none: no confirms at all.
    #[arg(long)]
    owner: Option<String>,
    #[arg(long, default_value = "0.0.0.0:16125")]
    p2p: SocketAddr,
    /// JSON-RPC's address: this machine only unless opened (e.g. 0.0.0.0:16124).
    #[arg(long, default_value = "127.0.0.1:16124")]
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
        let client = runtime::control::Client::new(
            Path::new(runtime::control::SOCKET),
            std::time::Duration::from_secs(2),
        );
        let Ok(list) = client.app_list() else {
            return Vec::new();
        };
        list.apps
            .iter()
            .map(|a| InstanceUsage {
                app: a.name.clone(),
                instance: a
                    .id
                    .rsplit_once('-')
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(0),
                running: a.state == runtime::control::replies::AppState::Running,
                cpu_usage_usec: a.latest.map_or(0, |s| s.cpu_usage_usec),
                memory_peak: a.latest.map_or(0, |s| s.memory_peak),
            })
            .collect()
    }
}

/// Reports read from a file at each confirm.
struct FileWorkload(PathBuf);

/// One line of a workload file: `{"app": .., "instance": .., "running": ..}`.
#[derive(serde::Deserialize)]
struct FileUsage {
    app: String,
    #[serde(default)]
    instance: u32,
    #[serde(default)]
    running: bool,
}

impl Workload for FileWorkload {
    fn report(&self) -> Vec<InstanceUsage> {
        let Ok(text) = std::fs::read(&self.0) else {
            return Vec::new();
        };
        let usages: Vec<FileUsage> = match serde_json::from_slice(&text) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("workload file {}: {e}; reporting nothing", self.0.display());
                return Vec::new();
            }
        };
        usages
            .into_iter()
            .map(|u| InstanceUsage {
                app: u.app,
                instance: u.instance,
                running: u.running,
                cpu_usage_usec: 0,
                memory_peak: 0,
            })
            .collect()
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
        rules: Params {
            enforce_bench: false,
            ..Params::default()
        },
    };
    runtime::durable::write(path, &serde_json::to_vec_pretty(&g)?, 0o644)?;
    Ok(g)
}

/// What is wrong with the genesis file at `path`, or the genesis it holds (checked: a field
/// out of bounds is named).
pub(crate) fn read_genesis(path: &Path) -> std::result::Result<Genesis, String> {
    match std::fs::read(path) {
        Ok(text) if text.iter().all(u8::is_ascii_whitespace) => Err("the file is empty".into()),
        Ok(text) => Genesis::from_json(&text).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("the file is missing".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The genesis the chain store in `data` was made for, when there is a store.
fn stored_genesis(data: &Path) -> Result<Option<Genesis>> {
    let db = data.join("db");
    if !db.is_dir() {
        return Ok(None);
    }
    Ok(chain::store::Store::open(&db)?.genesis()?)
}

/// The genesis: the file when it reads; else the copy the chain store keeps (written back
/// as the data directory's genesis.json); else, for a devnet with no store, a new devnet
/// genesis; else an error that names the file, what is wrong and what to do.
fn genesis(a: &ChainArgs) -> Result<Genesis> {
    let own = a.data.join("genesis.json");
    let path = a.genesis.clone().unwrap_or_else(|| own.clone());
    let problem = match read_genesis(&path) {
        Ok(g) => return Ok(g),
        Err(problem) => problem,
    };
    let missing = !path.exists();
    match stored_genesis(&a.data)? {
        Some(g) if path == own => {
            runtime::durable::write(&path, &serde_json::to_vec_pretty(&g)?, 0o644)?;
            tracing::warn!(
                "genesis {}: {problem}; restored from the chain store {}",
                path.display(),
                a.data.join("db").display()
            );
            Ok(g)
        }
        Some(g) => Err(anyhow!(
            "genesis {}: {problem}; the chain store {} keeps the genesis of chain {:?} it was \
             made for: run without --genesis to use that one, or give the right file",
            path.display(),
            a.data.join("db").display(),
            g.chain_id
        )),
        None if a.devnet => {
            if !missing {
                tracing::warn!(
                    "genesis {}: {problem}; no chain store holds one, so a new devnet genesis \
                     replaces it",
                    path.display()
                );
            }
            devnet_genesis(&path, a)
        }
        None => Err(anyhow!(
            "genesis {}: {problem}: put the network's genesis.json there, or give \
             --genesis FILE (or --devnet for a one-node devnet)",
            path.display()
        )),
    }
}

/// An API token worth keeping: at least 16 visible ASCII characters.
fn usable_token(t: &str) -> bool {
    t.len() >= 16 && t.bytes().all(|b| b.is_ascii_graphic())
}

/// The API token in the data directory, made (random, 0600, durably) when missing, and
/// made again when the file is empty or unreadable: never an empty token.
fn token(data: &Path) -> Result<String> {
    let path = data.join("api.token");
    let replace = match std::fs::read_to_string(&path) {
        Ok(t) if usable_token(t.trim()) => return Ok(t.trim().to_owned()),
        Ok(t) if t.trim().is_empty() => Some("the file is empty".to_owned()),
        Ok(_) => Some("not a token (at least 16 visible ASCII characters)".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(e.to_string()),
    };
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow!("the random generator failed"))?;
    let t = hex::encode(bytes);
    match replace {
        Some(why) => {
            tracing::warn!(
                "api token {}: {why}; a new token replaces it",
                path.display()
            );
            runtime::durable::write(&path, t.as_bytes(), 0o600)?;
        }
        None => match runtime::durable::create_new(&path, t.as_bytes(), 0o600) {
            Ok(()) => {}
            // Another process made it meanwhile: theirs is the token.
            Err(e) if e.already_exists() => {
                let theirs = std::fs::read_to_string(&path)
                    .with_context(|| format!("{}", path.display()))?;
                return Ok(theirs.trim().to_owned());
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(t)
}

/// The owner this node confirms for: `--owner`, else a devnet's wallet, else none.
fn owner(a: &ChainArgs) -> Result<Option<Address>> {
    if let Some(o) = &a.owner {
        return Ok(Some(o.parse().map_err(|e| anyhow!("--owner: {e}"))?));
    }
    if !a.devnet {
        return Ok(None);
    }
    match keys::load(&a.wallet) {
        Ok(wallet) => Ok(Some(Address::from_public_key(&keys::public(&wallet)))),
        Err(e) => {
            tracing::warn!("devnet owner: {e}; with no owner this node confirms for nobody");
            Ok(None)
        }
    }
}

pub fn run(a: ChainArgs) -> Result<()> {
    if let Some(ChainCommand::Consent(c)) = a.command {
        return crate::consent_cli::run(c);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    std::fs::create_dir_all(&a.data).with_context(|| format!("{}", a.data.display()))?;
    let genesis = genesis(&a)?;
    let key = keys::load_or_create(&a.key)?.0;
    let owner = owner(&a)?;
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
        owner,
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
