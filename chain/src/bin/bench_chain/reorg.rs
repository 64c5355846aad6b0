//! The cost of a reorganisation against an import of the same depth, on a chain of at least
//! `--reorg-height` blocks in a real sled store (one producer; each block carries
//! `REORG_TXS` transfers). Each round imports `--reorg-depth` blocks the way
//! `accept_block` does (apply + commit, one flush each: the "import" time), then switches
//! to a branch of depth + 1 blocks from the same fork with `chain::node::reorg::switch`
//! (undo `depth` blocks with their undo records, validate and apply depth + 1, one batch and
//! one flush: the "reorg" time). The ratio reorg / import has the goal of at most 2.

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Result};
use chain::address::Address;
use chain::ledger::Ledger;
use chain::store::Store;
use chain::tx::{Tx, TxBody};

use super::{bar, genesis, key, median, next_block, now_secs, pk, FEE};

/// Transfers per block of the reorganisation chain.
const REORG_TXS: u64 = 10;

pub struct Reorg {
    pub height: u64,
    pub depth: u64,
    pub import_secs: f64,
    pub switch_secs: f64,
    pub build_secs: f64,
}

/// The next block on `l`, its transfers paying `to`.
fn block(
    l: &Ledger,
    producer: &ring::signature::Ed25519KeyPair,
    wallet: &ring::signature::Ed25519KeyPair,
    to: u8,
) -> Result<chain::block::Block> {
    let nonce = l
        .state
        .account(&Address::from_public_key(&pk(wallet)))
        .nonce;
    let txs: Vec<Tx> = (0..REORG_TXS)
        .map(|i| {
            Tx::signed(
                wallet,
                &l.params.chain,
                nonce + i,
                FEE,
                TxBody::Transfer {
                    to: Address([to; 20]),
                    amount: 1 + i,
                },
            )
        })
        .collect();
    next_block(l, producer, &txs, txs.len())
}

pub fn run(work: &Path, height: u64, depth: u64, rounds: usize) -> Result<Reorg> {
    ensure!(
        (1..100).contains(&depth),
        "the reorganisation depth must be 1 to 99"
    );
    let producer = key(11, 0);
    let wallet = key(12, 0);
    let g = genesis(
        "bench-reorg",
        now_secs().saturating_sub(10_000_000),
        &pk(&producer),
        &[Address::from_public_key(&pk(&wallet))],
    );
    let dir = work.join("reorg");
    let store = Store::open(&dir)?;
    let mut l = store.load(g)?;
    let b = bar(height, "building the chain");
    let t = Instant::now();
    while l.height() < height {
        let blk = block(&l, &producer, &wallet, 1)?;
        let a = l.apply(&blk, u64::MAX)?;
        store.commit(&blk, &a, &l)?;
        b.inc(1);
    }
    let build_secs = t.elapsed().as_secs_f64();
    b.finish_and_clear();
    let (mut imports, mut switches) = (Vec::new(), Vec::new());
    let b = bar(rounds as u64, "reorganisations");
    for _ in 0..rounds {
        let fork = l.clone();
        let ours: Vec<_> = {
            let mut m = l.clone();
            (0..depth)
                .map(|_| {
                    let blk = block(&m, &producer, &wallet, 2)?;
                    m.apply(&blk, u64::MAX)?;
                    Ok(blk)
                })
                .collect::<Result<_>>()?
        };
        let t = Instant::now();
        for blk in &ours {
            let a = l.apply(blk, u64::MAX)?;
            store.commit(blk, &a, &l)?;
        }
        imports.push(t.elapsed().as_secs_f64());
        let theirs: Vec<_> = {
            let mut m = fork.clone();
            (0..=depth)
                .map(|_| {
                    let blk = block(&m, &producer, &wallet, 3)?;
                    m.apply(&blk, u64::MAX)?;
                    Ok(blk)
                })
                .collect::<Result<_>>()?
        };
        let t = Instant::now();
        let done = chain::node::reorg::switch(&store, &l, fork.height(), &theirs, u64::MAX)?;
        switches.push(t.elapsed().as_secs_f64());
        ensure!(
            done.applied as u64 == depth + 1 && done.dropped.len() as u64 == depth,
            "the switch applied {} and dropped {}",
            done.applied,
            done.dropped.len()
        );
        l = done.ledger;
        b.inc(1);
    }
    b.finish_and_clear();
    drop(store);
    let back = Store::open(&dir)?.load(l.genesis.clone())?;
    ensure!(
        back.digest == l.digest,
        "the reopened store is not at the switched tip"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(Reorg {
        height,
        depth,
        import_secs: median(imports),
        switch_secs: median(switches),
        build_secs,
    })
}
