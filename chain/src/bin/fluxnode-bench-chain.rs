//! The chain's throughput on this host: the driver of `scripts/bench-chain.sh`, built only
//! with the `bench` feature.
//!
//! 1. **Verification**: ring's Ed25519 `UnparsedPublicKey::verify` on one core, over
//!    pre-signed messages of a transfer's signing-bytes size (122 bytes), distinct keys.
//! 2. **Import**: a devnet with one confirmed genesis node and a funded wallet per transfer;
//!    blocks of `--txs-per-block` transfers, each from its own wallet, are produced first
//!    (`Ledger::produce`, untimed), then timed as a fresh node would take them: `Ledger::apply`
//!    alone, and decode + apply + sled `Store::commit` (what `accept_block` does with a block
//!    from a peer). Every transfer needs one signature check, and import / verification on
//!    one core is the ratio (goal: at least 0.7). A block's signatures are checked on every
//!    core (up to 4) before its transfers are applied in order, so with more than one core
//!    the ratio can pass 1. A breakdown of one block's apply says where the time goes.
//! 3. **Sync**: `--sync-blocks` empty blocks are produced into node A's sled store; then A
//!    and an empty node B (each `chain::node::start` on its own thread and current-thread
//!    tokio runtime, neither producing, B with A as its only peer) run over 127.0.0.1, and
//!    the time until B's `getblockcount` reaches the tip is measured, with the longest time
//!    B's height stood still (a peer ban shows there; the nodes' warnings go to stderr).
//!
//! 4. **Reorganisation**: on a chain of `--reorg-height` blocks, the time of a switch of
//!    `--reorg-depth` blocks against the time to import as many (see `bench_chain/reorg.rs`).
//! 5. **Amplification**: what one peer asking as fast as its message limit allows is served
//!    (see `bench_chain/amplify.rs`).
//!
//! Prints a table, then one `RESULT <name> <value> <unit>` line per figure.

#[path = "bench_chain/amplify.rs"]
mod amplify;
#[path = "bench_chain/reorg.rs"]
mod reorg;
#[path = "bench_chain/scale.rs"]
mod scale;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use chain::address::Address;
use chain::block::Block;
use chain::genesis::{Genesis, GenesisNode};
use chain::ledger::Ledger;
use chain::node::{NoWorkload, NodeConfig};
use chain::params::Params;
use chain::store::Store;
use chain::tx::{PublicKey, Tx, TxBody, COIN};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

#[derive(Parser)]
#[command(about = "Ed25519 verification rate, block import rate and loopback sync time")]
struct Args {
    /// Signatures per round of the verification rate.
    #[arg(long, default_value_t = 20_000)]
    verify: usize,
    /// Timed rounds, each of verification and both imports; the medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Blocks of transfers imported per round.
    #[arg(long, default_value_t = 10)]
    blocks: usize,
    /// Transfers per block, each from its own funded wallet.
    #[arg(long, default_value_t = 2_000)]
    txs_per_block: usize,
    /// Blocks node B syncs from node A over loopback (0: no sync test).
    #[arg(long, default_value_t = 10_000)]
    sync_blocks: u64,
    /// Give up on the sync after this long.
    #[arg(long, default_value_t = 900)]
    sync_timeout_secs: u64,
    /// The height of the chain a reorganisation is measured on (0: no reorganisation test).
    #[arg(long, default_value_t = 10_000)]
    reorg_height: u64,
    /// How many blocks each measured reorganisation drops.
    #[arg(long, default_value_t = 99)]
    reorg_depth: u64,
    /// Where the sled stores go (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only the scale table: per size of the network, what a node does per block.
    #[arg(long)]
    scale: bool,
    /// The sizes of `--scale`, as NODESxAPPS,... (default: 1000x100 to 15000x2000).
    #[arg(long, value_delimiter = ',')]
    scale_sizes: Vec<String>,
    /// Give up on one size of `--scale` after this long.
    #[arg(long, default_value_t = 1800)]
    scale_timeout_secs: u64,
    /// One size, measured in this process (how `--scale` runs each size).
    #[arg(long, hide = true)]
    scale_one: Option<String>,
    /// The nodes' log lines of this level and above go to stderr (error, warn, info, debug).
    #[arg(long, default_value = "warn")]
    log: tracing::Level,
}

/// The fee of every benchmark transfer (the minimum).
const FEE: u64 = 1_000;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A deterministic key: its seed is `tag` and `i`.
fn key(tag: u8, i: u64) -> Ed25519KeyPair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed")
}

fn pk(k: &Ed25519KeyPair) -> PublicKey {
    k.public_key().as_ref().try_into().expect("32 bytes")
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The median, in seconds, of `reps` runs of `run`, which returns the time it measured.
fn timed(reps: usize, mut run: impl FnMut() -> Duration) -> f64 {
    median((0..reps).map(|_| run().as_secs_f64()).collect())
}

/// A devnet genesis: one confirmed node (`producer`) that never expires, `wallets` funded.
fn genesis(chain_id: &str, time: u64, producer: &PublicKey, wallets: &[Address]) -> Genesis {
    Genesis {
        chain_id: chain_id.into(),
        time,
        slot_secs: 1,
        balances: wallets
            .iter()
            .map(|a| (a.to_string(), 1_000 * COIN))
            .collect(),
        nodes: vec![GenesisNode {
            owner: Address([1; 20]).to_string(),
            key: hex::encode(producer),
            tier: 1,
            endpoint: "127.0.0.1:16125".into(),
        }],
        target: u64::MAX,
        want_eligible: 1,
        rules: Params {
            enforce_bench: false,
            // Confirmed at genesis and never again here: it must outlive every benchmark chain.
            expire_after: 1 << 40,
            ..Params::default()
        },
    }
}

/// The next block of `producer` on `l`: the first slot after the tip where it is eligible.
fn next_block(l: &Ledger, producer: &Ed25519KeyPair, txs: &[Tx], max_txs: usize) -> Result<Block> {
    let me = pk(producer);
    let slot = (l.tip.slot + 1..l.tip.slot + 1000)
        .find(|s| l.rank(&me, *s).is_some())
        .context("the producer is eligible in none of the next 1000 slots")?;
    let time = l.genesis.time + slot * l.genesis.slot_secs;
    Ok(l.produce(producer, slot, time, txs, max_txs)?)
}

/// Transfer-sized messages, signed by distinct keys: `(public key, message, signature)`.
type Signed = Vec<(PublicKey, Vec<u8>, [u8; 64])>;

fn presign(n: usize) -> Result<Signed> {
    let keys: Vec<Ed25519KeyPair> = (0..256).map(|i| key(7, i)).collect();
    let signed: Signed = (0..n)
        .map(|i| {
            let k = &keys[i % keys.len()];
            let tx = Tx::signed(
                k,
                &[0xbe; 32],
                i as u64,
                FEE,
                TxBody::Transfer {
                    to: Address([(i % 251) as u8; 20]),
                    amount: i as u64,
                },
            );
            (tx.signer, tx.signing_bytes(&[0xbe; 32]), tx.signature)
        })
        .collect();
    ensure!(
        signed[0].1.len() == 122,
        "a transfer's signing bytes are {} bytes, not 122",
        signed[0].1.len()
    );
    Ok(signed)
}

/// Verifications per second on this thread, over `signed`.
fn verify_rate(signed: &Signed) -> Result<f64> {
    let t = Instant::now();
    for (signer, msg, sig) in signed {
        UnparsedPublicKey::new(&ED25519, signer)
            .verify(msg, sig)
            .map_err(|_| anyhow::anyhow!("a good signature failed to verify"))?;
    }
    Ok(signed.len() as f64 / t.elapsed().as_secs_f64())
}

/// Medians over the rounds, each of which times verification, then apply, then decode +
/// apply + commit, so that all three meet the same load on a shared host.
struct Import {
    /// Verifications per second.
    verify: f64,
    txs: usize,
    /// Seconds per round.
    apply: f64,
    full: f64,
    /// The decode and the commit parts of `full`.
    decode: f64,
    commit: f64,
    produce_per_block: f64,
    breakdown: Vec<(&'static str, f64)>,
}

fn import(args: &Args, work: &Path) -> Result<Import> {
    let signed = presign(args.verify)?;
    let n_blocks = args.blocks;
    let per = args.txs_per_block;
    let n = n_blocks * per;
    let b = bar(n as u64, "wallets and transfers");
    let wallets: Vec<Ed25519KeyPair> = (0..n as u64)
        .map(|i| {
            b.inc(1);
            key(1, i)
        })
        .collect();
    let addrs: Vec<Address> = wallets
        .iter()
        .map(|k| Address::from_public_key(&pk(k)))
        .collect();
    let producer = key(2, 0);
    let g = genesis(
        "bench-import",
        now_secs() - 10 * n_blocks as u64 - 1_000,
        &pk(&producer),
        &addrs,
    );
    let chain = g.hash();
    // Each wallet sends once, to the next wallet.
    let transfers: Vec<Tx> = wallets
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let body = TxBody::Transfer {
                to: addrs[(i + 1) % n],
                amount: COIN,
            };
            Tx::signed(k, &chain, 0, FEE, body)
        })
        .collect();
    b.finish_and_clear();

    let b = bar(n_blocks as u64, "producing blocks");
    let mut l = Ledger::new(g.clone())?;
    let mut blocks = Vec::new();
    let t = Instant::now();
    for chunk in transfers.chunks(per) {
        let block = next_block(&l, &producer, chunk, per)?;
        ensure!(
            block.txs.len() == chunk.len(),
            "block {} holds {} of {} transfers",
            block.header.height,
            block.txs.len(),
            chunk.len()
        );
        l.apply(&block, u64::MAX)?;
        blocks.push(block);
        b.inc(1);
    }
    let produce_per_block = t.elapsed().as_secs_f64() / n_blocks as f64;
    b.finish_and_clear();
    let encoded: Vec<Vec<u8>> = blocks.iter().map(Block::encode).collect();

    let now = now_secs();
    let b = bar(args.rounds as u64, "verifying, importing");
    let (mut verify_rates, mut apply, mut full) = (Vec::new(), Vec::new(), Vec::new());
    let (mut decodes, mut commits) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        verify_rates.push(verify_rate(&signed)?);
        let mut l = Ledger::new(g.clone())?;
        let t = Instant::now();
        for block in &blocks {
            l.apply(block, now)?;
        }
        apply.push(t.elapsed().as_secs_f64());

        let dir = work.join(format!("import-{round}"));
        let store = Store::open(&dir)?;
        let mut l = store.load(g.clone())?;
        let (mut decode, mut commit) = (Duration::ZERO, Duration::ZERO);
        let t = Instant::now();
        for bytes in &encoded {
            let d = Instant::now();
            let block = Block::decode(bytes)?;
            decode += d.elapsed();
            let applied = l.apply(&block, now)?;
            let c = Instant::now();
            store.commit(&block, &applied, &l)?;
            commit += c.elapsed();
        }
        full.push(t.elapsed().as_secs_f64());
        decodes.push(decode.as_secs_f64());
        commits.push(commit.as_secs_f64());
        drop(store);
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
        b.inc(1);
    }
    b.finish_and_clear();

    // Where one block's apply goes: its parts, each timed on its own on the genesis ledger
    // (the median of several runs, as the host is shared).
    let reps = args.rounds.max(5);
    let l = Ledger::new(g.clone())?;
    let block = &blocks[0];
    let mut changes = Vec::new();
    let apply_one = timed(reps, || {
        let mut fresh = l.clone();
        let t = Instant::now();
        changes = fresh
            .apply(block, now)
            .expect("the block applied before")
            .changes;
        t.elapsed()
    });
    let verify = timed(reps, || {
        let t = Instant::now();
        assert!(
            block.txs.iter().all(|t| t.verify(&l.params.chain)),
            "a transfer fails to verify"
        );
        t.elapsed()
    });
    let clone = timed(reps, || {
        let t = Instant::now();
        let state = l.state.clone();
        let e = t.elapsed();
        drop(state);
        e
    });
    let mut applied = l.state.clone();
    let state_apply = timed(reps, || {
        let mut state = l.state.clone();
        let t = Instant::now();
        for tx in &block.txs {
            state
                .apply_verified(tx, 1, &l.params)
                .expect("the transfer applied before");
        }
        let e = t.elapsed();
        applied = state;
        e
    });
    let root = timed(reps, || {
        let t = Instant::now();
        std::hint::black_box(Block::tx_root(&block.txs));
        t.elapsed()
    });
    let entries = timed(reps, || {
        let mut state = applied.clone();
        let t = Instant::now();
        std::hint::black_box(state.take_changes());
        t.elapsed()
    });
    let digest = timed(reps, || {
        let t = Instant::now();
        let mut acc = l.acc.clone();
        for (k, v) in &changes {
            acc.change(k, l.state.entry_bytes(k).as_deref(), v.as_deref());
        }
        std::hint::black_box(acc.digest(l.target));
        t.elapsed()
    });
    let useful = timed(reps, || {
        let t = Instant::now();
        std::hint::black_box(l.useful());
        t.elapsed()
    });
    let parallel = timed(reps, || {
        let t = Instant::now();
        assert!(chain::ledger::first_bad_signature(&block.txs, &l.params.chain).is_none());
        t.elapsed()
    });
    let parts = parallel + state_apply + clone + root + entries + digest + 2.0 * useful;
    let breakdown = vec![
        ("apply (whole block)", apply_one),
        ("signatures, on every core", parallel),
        ("  (on one core it takes)", verify),
        ("State::apply_verified, in order", state_apply),
        ("tx ids + merkle root", root),
        ("state clone", clone),
        ("changed entries' encodings", entries),
        ("state digest", digest),
        ("useful nodes (x2: rank, execute)", 2.0 * useful),
        ("the rest", apply_one - parts),
    ];
    Ok(Import {
        verify: median(verify_rates),
        txs: n,
        apply: median(apply),
        full: median(full),
        decode: median(decodes),
        commit: median(commits),
        produce_per_block,
        breakdown,
    })
}

fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A running node on its own thread; dropping `stop` ends it.
struct RunningNode {
    rpc: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn run_node(
    data_dir: PathBuf,
    g: Genesis,
    peers: Vec<SocketAddr>,
    seed: u64,
) -> Result<(RunningNode, SocketAddr)> {
    let p2p = free_addr()?;
    let rpc = free_addr()?;
    let cfg = NodeConfig {
        data_dir,
        genesis: g,
        key: key(3, seed),
        p2p_listen: p2p,
        rpc_listen: rpc,
        peers,
        max_peers: 8,
        produce: false,
        workload: Arc::new(NoWorkload),
        token: "bench".into(),
        bench_tier: None,
        bench_report: Vec::new(),
        owner: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel::<Result<(), String>>();
    let thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("tokio runtime: {e}")));
                return;
            }
        };
        rt.block_on(async move {
            match chain::node::start(cfg).await {
                Ok(_shared) => {
                    let _ = ready_tx.send(Ok(()));
                    let _ = stopped.await;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            }
        });
    });
    ready
        .recv()
        .context("the node thread ended before starting")?
        .map_err(|e| anyhow::anyhow!("node: {e}"))?;
    Ok((
        RunningNode {
            rpc: rpc.to_string(),
            stop,
            thread,
        },
        p2p,
    ))
}

impl RunningNode {
    fn call(&self, method: &str) -> Result<serde_json::Value> {
        let reply = chain::http::call(&self.rpc, None, method, serde_json::json!([]))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match reply.get("result") {
            Some(r) => Ok(r.clone()),
            None => bail!("rpc {method}: {reply}"),
        }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

struct Sync {
    blocks: u64,
    store_secs: f64,
    secs: f64,
    /// The longest time B's height stood still, and its height then.
    stall_secs: f64,
    stall_at: u64,
}

fn sync(args: &Args, work: &Path) -> Result<Sync> {
    let n = args.sync_blocks;
    let producer = key(2, 1);
    let g = genesis(
        "bench-sync",
        now_secs() - 2 * n - 1_000,
        &pk(&producer),
        &[Address([2; 20])],
    );
    let dir_a = work.join("sync-a");
    let dir_b = work.join("sync-b");
    let b = bar(n, "storing blocks on A");
    let t = Instant::now();
    {
        let store = Store::open(&dir_a.join("db"))?;
        let mut l = store.load(g.clone())?;
        for _ in 0..n {
            let block = next_block(&l, &producer, &[], 0)?;
            let applied = l.apply(&block, u64::MAX)?;
            store.commit(&block, &applied, &l)?;
            b.inc(1);
        }
    }
    let store_secs = t.elapsed().as_secs_f64();
    b.finish_and_clear();

    let (a, a_p2p) = run_node(dir_a, g.clone(), Vec::new(), 1)?;
    ensure!(
        a.call("getblockcount")?.as_u64() == Some(n),
        "node A does not start at height {n}"
    );
    let b = bar(n, "B syncing from A");
    let t = Instant::now();
    let (node_b, _) = run_node(dir_b, g, vec![a_p2p], 2)?;
    let deadline = Duration::from_secs(args.sync_timeout_secs);
    // The longest time B's height stood still, and where (a peer ban shows up here).
    let (mut last_h, mut last_move, mut stall) = (0, Instant::now(), (Duration::ZERO, 0));
    let result = loop {
        let h = node_b.call("getblockcount")?.as_u64().unwrap_or(0);
        b.set_position(h);
        if h != last_h {
            (last_h, last_move) = (h, Instant::now());
        } else if last_move.elapsed() > stall.0 {
            stall = (last_move.elapsed(), h);
        }
        if h >= n {
            break Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > deadline {
            break Err(anyhow::anyhow!(
                "node B reached only height {h} of {n} in {}s (it stood still at {} for {:.1} s)",
                deadline.as_secs(),
                stall.1,
                stall.0.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    b.finish_and_clear();
    let same = result.is_ok() && a.call("getbestblockhash")? == node_b.call("getbestblockhash")?;
    node_b.stop();
    a.stop();
    let secs = result?;
    ensure!(same, "node B synced to another tip than node A's");
    Ok(Sync {
        blocks: n,
        store_secs,
        secs,
        stall_secs: stall.0.as_secs_f64(),
        stall_at: stall.1,
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(args.log)
        .with_writer(std::io::stderr)
        .init();
    ensure!(
        args.rounds > 0 && args.blocks > 0 && args.txs_per_block > 0,
        "counts must be at least 1"
    );
    if let Some(size) = &args.scale_one {
        let (n, a) = size
            .split_once(',')
            .and_then(|(n, a)| Some((n.parse().ok()?, a.parse().ok()?)))
            .context("--scale-one takes NODES,APPS")?;
        println!("{}", scale::one(n, a, args.rounds)?.line());
        return Ok(());
    }
    if args.scale {
        let sizes: Vec<(usize, usize)> = if args.scale_sizes.is_empty() {
            scale::SIZES.to_vec()
        } else {
            args.scale_sizes
                .iter()
                .map(|s| {
                    s.split_once('x')
                        .and_then(|(n, a)| Some((n.parse().ok()?, a.parse().ok()?)))
                        .with_context(|| format!("--scale-sizes: {s:?} is not NODESxAPPS"))
                })
                .collect::<Result<_>>()?
        };
        let rows = scale::run(
            &sizes,
            args.rounds,
            Duration::from_secs(args.scale_timeout_secs),
        )?;
        for r in &rows {
            let tag = format!("{}x{}", r.nodes, r.apps);
            println!("RESULT scale_{tag}_apply_secs {:.6} s", r.apply);
            println!("RESULT scale_{tag}_tick_secs {:.9} s", r.tick);
            println!("RESULT scale_{tag}_list_secs {:.6} s", r.list);
            println!("RESULT scale_{tag}_peak_rss_bytes {} B", r.peak_rss);
        }
        return Ok(());
    }
    let tmp;
    let work = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };

    let imp = import(&args, &work)?;
    let verify = imp.verify;
    println!("ring Ed25519 verify, one core:      {verify:>10.0} verifications/s");
    let apply_rate = imp.txs as f64 / imp.apply;
    let full_rate = imp.txs as f64 / imp.full;
    println!(
        "import, Ledger::apply:               {apply_rate:>10.0} tx/s   ratio {:.3}",
        apply_rate / verify
    );
    println!(
        "import, decode + apply + commit:     {full_rate:>10.0} tx/s   ratio {:.3}",
        full_rate / verify
    );
    println!(
        "  of which Block::decode {:.2} us/tx, Store::commit {:.2} us/tx",
        imp.decode * 1e6 / imp.txs as f64,
        imp.commit * 1e6 / imp.txs as f64
    );
    println!(
        "  ({} blocks of {} transfers; Ledger::produce took {:.2} s per block, untimed)",
        args.blocks, args.txs_per_block, imp.produce_per_block
    );
    println!("  where one block's apply goes:");
    let whole = imp.breakdown[0].1;
    for (what, secs) in &imp.breakdown {
        println!(
            "    {what:<34} {:>9.2} ms {:>5.1}%  {:>6.2} us/tx",
            secs * 1e3,
            100.0 * secs / whole,
            secs * 1e6 / args.txs_per_block as f64
        );
    }
    let synced = if args.sync_blocks > 0 {
        let s = sync(&args, &work)?;
        println!(
            "sync of {} blocks over loopback:  {:>10.2} s   ({:.0} blocks/s; storing them on A took {:.1} s)",
            s.blocks,
            s.secs,
            s.blocks as f64 / s.secs,
            s.store_secs
        );
        println!(
            "  B's height stood still for at most {:.1} s (at height {})",
            s.stall_secs, s.stall_at
        );
        Some(s)
    } else {
        None
    };

    let reorged = if args.reorg_height > 0 {
        let r = reorg::run(&work, args.reorg_height, args.reorg_depth, args.rounds)?;
        println!(
            "reorganisation of {} blocks at height {}: {:>8.3} s; importing them: {:.3} s; ratio {:.2} (building the chain took {:.1} s)",
            r.depth,
            r.height,
            r.switch_secs,
            r.import_secs,
            r.switch_secs / r.import_secs,
            r.build_secs
        );
        Some(r)
    } else {
        None
    };

    let amp = amplify::run(
        &work,
        genesis(
            "bench-amplify",
            now_secs().saturating_sub(1_000_000),
            &pk(&key(1, 0)),
            &[],
        ),
    )?;
    println!(
        "one peer at the message limit: {} requests in {:.1} s, served {} headers and {} blocks: {:.0} store reads/s (budget 20,000/s per peer); header signature checks caused: 0 (unasked headers are refused)",
        amp.sent,
        amp.secs,
        amp.headers,
        amp.blocks,
        amp.reads_per_sec()
    );

    println!("RESULT verify_per_sec {verify:.0} 1/s");
    println!("RESULT import_apply_tx_per_sec {apply_rate:.0} tx/s");
    println!("RESULT import_tx_per_sec {full_rate:.0} tx/s");
    println!("RESULT ratio_apply {:.3} -", apply_rate / verify);
    println!("RESULT ratio {:.3} -", full_rate / verify);
    println!(
        "RESULT produce_secs_per_block {:.3} s",
        imp.produce_per_block
    );
    if let Some(s) = synced {
        println!("RESULT sync_blocks {} blocks", s.blocks);
        println!("RESULT sync_secs {:.2} s", s.secs);
        println!("RESULT sync_longest_stall_secs {:.2} s", s.stall_secs);
    }
    println!(
        "RESULT amplify_reads_per_sec {:.0} 1/s",
        amp.reads_per_sec()
    );
    if let Some(r) = reorged {
        println!("RESULT reorg_depth {} blocks", r.depth);
        println!("RESULT reorg_secs {:.4} s", r.switch_secs);
        println!("RESULT reorg_import_secs {:.4} s", r.import_secs);
        println!("RESULT reorg_ratio {:.3} -", r.switch_secs / r.import_secs);
    }
    Ok(())
}
