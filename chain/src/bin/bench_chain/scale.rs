//! The chain at Flux's scale (`--scale`): for each size (confirmed nodes, apps of 3
//! instances), a child process of this driver builds a ledger of that size (the nodes and
//! apps written straight into the state, each node's workload report listing its assigned
//! instances running, so every node is useful) and times what a node does per block:
//! validate + apply of a block of 5 transfers, producing it, a produce-loop tick, a block
//! that confirms one new node (it joins the assignment) and one that registers one app,
//! `listfluxnodes` through the JSON-RPC dispatcher, and the child's peak resident memory
//! (ledger, one copy for apply, the RPC reply). One child per size, so each peak is its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chain::address::Address;
use chain::block::Block;
use chain::genesis::{Genesis, GenesisNode};
use chain::ledger::Ledger;
use chain::mempool::{Limits, Mempool};
use chain::params::Params;
use chain::rpc::Rpc;
use chain::state::{App, Node, NodeStatus};
use chain::store::Store;
use chain::tx::{AppSpec, InstanceUsage, PublicKey, Tier, Tx, TxBody, COIN};
use ring::signature::Ed25519KeyPair;

use super::{key, median, pk, FEE};

/// The sizes of `--scale`: (confirmed nodes, apps).
pub const SIZES: [(usize, usize); 6] = [
    (1_000, 100),
    (1_000, 2_000),
    (5_000, 100),
    (5_000, 2_000),
    (15_000, 100),
    (15_000, 2_000),
];

/// One size's figures, in seconds (memory in bytes).
pub struct Row {
    pub nodes: usize,
    pub apps: usize,
    pub apply: f64,
    pub produce: f64,
    pub rank: f64,
    pub tick: f64,
    pub join: f64,
    pub register: f64,
    pub list: f64,
    pub build: f64,
    pub peak_rss: u64,
}

impl Row {
    /// The line a child prints and the parent parses.
    pub fn line(&self) -> String {
        format!(
            "SCALE {} {} {:.6} {:.6} {:.6} {:.9} {:.6} {:.6} {:.6} {:.3} {}",
            self.nodes,
            self.apps,
            self.apply,
            self.produce,
            self.rank,
            self.tick,
            self.join,
            self.register,
            self.list,
            self.build,
            self.peak_rss
        )
    }

    pub fn parse(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.strip_prefix("SCALE ")?.split(' ').collect();
        let x = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        Some(Row {
            nodes: f.first()?.parse().ok()?,
            apps: f.get(1)?.parse().ok()?,
            apply: x(2)?,
            produce: x(3)?,
            rank: x(4)?,
            tick: x(5)?,
            join: x(6)?,
            register: x(7)?,
            list: x(8)?,
            build: x(9)?,
            peak_rss: f.get(10)?.parse().ok()?,
        })
    }
}

const TIERS: [Tier; 3] = [Tier::Cumulus, Tier::Nimbus, Tier::Stratus];

fn spec(name: &str) -> AppSpec {
    AppSpec {
        name: name.into(),
        image_ref: "registry.example/web:1".into(),
        image_digest: format!("sha256:{}", "ab".repeat(32)),
        command: vec![],
        env: vec![],
        ports: vec![],
        cpu_millis: 500,
        ram_bytes: 1_000_000_000,
        disk_bytes: 10_000_000_000,
        instances: 3,
        expiry_blocks: 1 << 30,
    }
}

fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

/// The ledger of one size, with the keys of its nodes.
fn build(nodes: usize, apps: usize) -> Result<(Ledger, Vec<Ed25519KeyPair>)> {
    let keys: Vec<Ed25519KeyPair> = (0..nodes as u64).map(|i| key(9, i)).collect();
    let wallet = Address::from_public_key(&pk(&key(8, 0)));
    let genesis = Genesis {
        chain_id: format!("bench-scale-{nodes}-{apps}"),
        time: super::now_secs().saturating_sub(1_000_000),
        slot_secs: 30,
        balances: vec![(wallet.to_string(), 1_000_000 * COIN)],
        nodes: vec![GenesisNode {
            owner: Address([1; 20]).to_string(),
            key: hex::encode(pk(&keys[0])),
            tier: 1,
            endpoint: "10.0.0.0:16125".into(),
        }],
        target: u64::MAX,
        want_eligible: 1,
        rules: Params {
            enforce_bench: false,
            expire_after: 1 << 40,
            ..Params::default()
        },
    };
    let mut l = Ledger::new(genesis)?;
    for (i, k) in keys.iter().enumerate().skip(1) {
        let tier = TIERS[i % 3];
        l.state.nodes.insert(
            pk(k),
            Node {
                owner: Address([1; 20]),
                tier,
                endpoint: format!("10.{}.{}.{}:16125", i >> 16, (i >> 8) & 255, i & 255),
                started_at: 0,
                status: NodeStatus::Confirmed { last: 1 },
                collateral: l.params.collateral(tier),
                bench_tier: Some(tier),
                workload: vec![],
                last_paid: 0,
            },
        );
    }
    for a in 0..apps {
        let name = format!("app{a:05}");
        l.state.apps.insert(
            name.clone(),
            App {
                owner: Address([2; 20]),
                spec: spec(&name),
                expires_at: 1 << 30,
            },
        );
    }
    l.state.take_changes();
    l.rederive();
    // Every node reports its assigned instances running.
    let view = l.view.clone();
    for (k, n) in l.state.nodes.iter_mut() {
        n.status = NodeStatus::Confirmed { last: 1 };
        n.workload = view
            .assigned(k)
            .into_iter()
            .map(|(app, instance)| InstanceUsage {
                app,
                instance,
                running: true,
                cpu_usage_usec: 1,
                memory_peak: 1,
            })
            .collect();
    }
    l.rederive();
    Ok((l, keys))
}

/// The block the first-ranked node of the next slot signs on `l` with `txs`.
fn block(
    l: &Ledger,
    by: &BTreeMap<PublicKey, usize>,
    keys: &[Ed25519KeyPair],
    txs: &[Tx],
) -> Result<Block> {
    let slot = l.tip.slot + 1;
    let useful = l.useful();
    let first = chain::consensus::ranking(useful.keys(), &l.tip.hash(), slot, l.target)
        .first()
        .map(|(k, _)| *k)
        .context("no useful node")?;
    let k = &keys[by[&first]];
    let t = l.genesis.time + slot * l.genesis.slot_secs;
    let mut trial = l.state.clone();
    for tx in txs {
        trial
            .apply(tx, l.height() + 1, &l.params)
            .with_context(|| format!("a {:?} of the benchmark", tx.body))?;
    }
    Ok(l.produce(k, slot, t, txs, 2_000)?)
}

/// Validate + apply of `b` on a copy of `l` (the copy untimed), median of `reps`.
fn apply_time(l: &Ledger, b: &Block, reps: usize) -> Result<(Ledger, f64)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let mut c = l.clone();
        let t = Instant::now();
        c.apply(b, u64::MAX / 2)?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(c);
    }
    Ok((last.context("at least one rep")?, median(times)))
}

/// One size, measured in this process.
pub fn one(nodes: usize, apps: usize, reps: usize) -> Result<Row> {
    let (built, build_secs) = time(|| build(nodes, apps));
    let (mut l, keys) = built?;
    let by: BTreeMap<PublicKey, usize> = keys.iter().enumerate().map(|(i, k)| (pk(k), i)).collect();
    let wallet = key(8, 0);
    let chain_id = l.params.chain;
    let transfer = |nonce: u64| {
        Tx::signed(
            &wallet,
            &chain_id,
            nonce,
            FEE,
            TxBody::Transfer {
                to: Address([3; 20]),
                amount: 1,
            },
        )
    };
    let txs: Vec<Tx> = (0..5).map(transfer).collect();
    // Producing (the first-ranked node of the next slot).
    let slot = l.tip.slot + 1;
    let first = chain::consensus::ranking(l.useful().keys(), &l.tip.hash(), slot, l.target)
        .first()
        .map(|(k, _)| *k)
        .context("no useful node")?;
    // The produce loop works out its rank once per tip and slot (timed as "rank"); every
    // 50 ms tick after that reads it (timed as "tick").
    let mut memo = chain::node::RankMemo::default();
    let (_, rank_secs) = time(|| memo.rank(&l, &first, slot));
    let producer = &keys[by[&first]];
    let t = l.genesis.time + slot * l.genesis.slot_secs;
    let mut produced = Vec::new();
    let mut b = None;
    for _ in 0..reps {
        let (out, s) = time(|| l.produce(producer, slot, t, &txs, 2_000));
        produced.push(s);
        b = Some(out?);
    }
    let b = b.context("at least one rep")?;
    // A produce-loop tick: what the loop does every 50 ms while it waits for its turn.
    let tick = median(
        (0..101)
            .map(|_| time(|| memo.rank(&l, &first, slot)).1)
            .collect(),
    );
    let (next, apply_secs) = apply_time(&l, &b, reps)?;
    l = next;
    // A node joins: its start, then (timed) the block with its confirm.
    let newbie = key(10, 0);
    let owner = Address::from_public_key(&pk(&wallet));
    let endpoint = "10.255.255.255:16125";
    let consent = chain::consent::sign(&newbie, &chain_id, &owner, Tier::Cumulus, endpoint);
    let start = Tx::signed(
        &wallet,
        &chain_id,
        5,
        FEE,
        TxBody::NodeStart {
            tier: Tier::Cumulus,
            node_key: pk(&newbie),
            endpoint: endpoint.into(),
            consent,
        },
    );
    let b = block(&l, &by, &keys, &[start])?;
    l.apply(&b, u64::MAX / 2)?;
    let confirm = Tx::signed(
        &newbie,
        &chain_id,
        0,
        0,
        TxBody::NodeConfirm {
            bench_tier: Some(Tier::Cumulus),
            bench_report: vec![],
            workload: vec![],
        },
    );
    let b = block(&l, &by, &keys, &[confirm])?;
    if b.txs.is_empty() {
        bail!("the new node's confirm did not apply");
    }
    let (next, join_secs) = apply_time(&l, &b, reps)?;
    l = next;
    // An app is registered.
    let reg = Tx::signed(
        &wallet,
        &chain_id,
        6,
        FEE,
        TxBody::AppRegister(spec("zz-new-app")),
    );
    let b = block(&l, &by, &keys, &[reg])?;
    if b.txs.is_empty() {
        bail!("the app registration did not apply");
    }
    let (next, register_secs) = apply_time(&l, &b, reps)?;
    l = next;
    // listfluxnodes through the dispatcher, as the HTTP transport calls it.
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let mut mempool = Mempool::with_limits(Limits::default());
    let mut rpc = Rpc {
        ledger: &l,
        store: &store,
        mempool: &mut mempool,
        authorized: false,
        peers: 0,
        version: "bench",
        relay: vec![],
    };
    // One node's entry first: where listing all would take over two minutes, the table
    // gives that estimate (negative: estimated) instead of waiting for it.
    let status = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"getfluxnodestatus","params":["{}"]}}"#,
        hex::encode(first)
    );
    let (_, one_secs) = time(|| rpc.handle(status.as_bytes()));
    let list_secs = if one_secs * (nodes + 1) as f64 > 120.0 {
        -one_secs * (nodes + 1) as f64
    } else {
        let (reply, secs) =
            time(|| rpc.handle(br#"{"jsonrpc":"2.0","id":1,"method":"listfluxnodes"}"#));
        let listed = reply
            .and_then(|r| r["result"].as_array().map(|a| a.len()))
            .context("listfluxnodes gave no list")?;
        if listed != nodes + 1 {
            bail!("listfluxnodes listed {listed} nodes, not {}", nodes + 1);
        }
        secs
    };
    Ok(Row {
        nodes,
        apps,
        apply: apply_secs,
        produce: median(produced),
        rank: rank_secs,
        tick,
        join: join_secs,
        register: register_secs,
        list: list_secs,
        build: build_secs,
        peak_rss: peak_rss(),
    })
}

/// Runs every size in a child process of this driver and prints the table.
pub fn run(sizes: &[(usize, usize)], reps: usize, timeout: Duration) -> Result<Vec<Row>> {
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    println!(
        "{:>6} {:>5} | {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} | {:>8} {:>8}",
        "nodes",
        "apps",
        "apply ms",
        "produce ms",
        "rank ms",
        "tick ms",
        "join ms",
        "app reg ms",
        "list ms",
        "RSS MB",
        "build s"
    );
    for &(nodes, apps) in sizes {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--scale-one",
                &format!("{nodes},{apps}"),
                "--rounds",
                &reps.to_string(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting the size's child process")?;
        let started = Instant::now();
        let out = loop {
            if let Some(status) = child.try_wait()? {
                let mut s = String::new();
                if let Some(mut o) = child.stdout.take() {
                    std::io::Read::read_to_string(&mut o, &mut s)?;
                }
                if !status.success() {
                    bail!("the child for {nodes} nodes and {apps} apps failed: {status}");
                }
                break s;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                bail!("{nodes} nodes and {apps} apps: over the timeout of {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let row = out
            .lines()
            .find_map(Row::parse)
            .with_context(|| format!("no SCALE line from the child for {nodes} nodes"))?;
        let ms = |s: f64| s * 1e3;
        let list = if row.list < 0.0 {
            format!("~{:.0}", -ms(row.list))
        } else {
            format!("{:.1}", ms(row.list))
        };
        println!(
            "{:>6} {:>5} | {:>10.2} {:>10.2} {:>10.2} {:>10.4} {:>10.2} {:>10.2} {:>10} | {:>8.0} {:>8.1}",
            row.nodes, row.apps, ms(row.apply), ms(row.produce), ms(row.rank), ms(row.tick),
            ms(row.join), ms(row.register), list, row.peak_rss as f64 / 1e6, row.build
        );
        rows.push(row);
    }
    Ok(rows)
}
