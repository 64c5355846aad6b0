//! Store tests on a real sled database in a temporary directory.

use super::*;
use crate::testnet::{net, T0};
use crate::tx::{Tx, TxBody, COIN};

fn chain_of(n: &crate::testnet::Net, store: &Store, blocks: usize) -> Ledger {
    let mut l = store.load(n.genesis.clone()).unwrap();
    for i in 0..blocks {
        let txs = vec![Tx::signed(
            &n.wallet,
            &n.genesis.hash(),
            i as u64,
            5_000,
            TxBody::Transfer {
                to: crate::address::Address([i as u8; 20]),
                amount: COIN,
            },
        )];
        let b = n.next(&l, &txs);
        let applied = l.apply(&b, T0 + 10_000).unwrap();
        store.commit(&b, &applied, &l).unwrap();
    }
    l
}

#[test]
fn a_reopened_store_gives_the_same_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1, 2, 3]);
    let l = {
        let store = Store::open(dir.path()).unwrap();
        chain_of(&n, &store, 15)
    };
    let store = Store::open(dir.path()).unwrap();
    let back = store.load(n.genesis.clone()).unwrap();
    assert_eq!(
        (back.height(), back.digest, back.target),
        (15, l.digest, l.target)
    );
    let mut a = back.state.clone();
    a.touched.clear();
    let mut b = l.state.clone();
    b.touched.clear();
    assert_eq!(a, b);
    assert_eq!(back.tip, l.tip);
    assert_eq!(store.block_at(7).unwrap().unwrap().header.height, 7);
    assert!(store.block_at(16).unwrap().is_none());
    let b3 = store.block_at(3).unwrap().unwrap();
    let (found, tx) = store.transaction(&b3.txs[0].id()).unwrap().unwrap();
    assert_eq!((found.header.height, tx), (3, b3.txs[0].clone()));
    assert!(store.transaction(&[0; 32]).unwrap().is_none());
}

#[test]
fn reindex_rebuilds_the_same_state_from_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1, 1]);
    let store = Store::open(dir.path()).unwrap();
    let l = chain_of(&n, &store, 12);
    let again = store.reindex(n.genesis.clone()).unwrap();
    assert_eq!((again.height(), again.digest), (12, l.digest));
    let reopened = store.load(n.genesis.clone()).unwrap();
    assert_eq!(reopened.digest, l.digest);
}

/// A branch of `len` blocks from the stored block at `fork`, each paying `to`.
fn branch(n: &crate::testnet::Net, store: &Store, fork: u64, len: u64, to: u8) -> Vec<Block> {
    let mut l = store.load(n.genesis.clone()).unwrap();
    let tip = l.height();
    for h in (fork + 1..=tip).rev() {
        let b = store.block_at(h).unwrap().unwrap();
        l.undo(&b, &store.undo(h).unwrap().unwrap()).unwrap();
    }
    let nonce = l
        .state
        .account(&crate::address::Address::from_public_key(
            &crate::testnet::pk(&n.wallet),
        ))
        .nonce;
    let mut out = Vec::new();
    for i in 0..len {
        let tx = Tx::signed(
            &n.wallet,
            &l.params.chain,
            nonce + i,
            5_000,
            TxBody::Transfer {
                to: crate::address::Address([to; 20]),
                amount: COIN,
            },
        );
        let b = n.next(&l, &[tx]);
        l.apply(&b, T0 + 10_000).unwrap();
        out.push(b);
    }
    out
}

#[test]
fn a_switch_undoes_with_the_records_and_writes_the_branch_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    let store = Store::open(dir.path()).unwrap();
    let old = chain_of(&n, &store, 10);
    let old6 = store.block_at(6).unwrap().unwrap();
    let theirs = branch(&n, &store, 4, 7, 0xee);
    // Undo to 4 with the records, then the branch: the same ledger as replaying it.
    let mut l = old.clone();
    let mut dropped = Vec::new();
    let mut touched = BTreeSet::new();
    for h in (5..=10).rev() {
        let b = store.block_at(h).unwrap().unwrap();
        let u = store.undo(h).unwrap().unwrap();
        touched.extend(u.entries.iter().map(|(k, _)| k.clone()));
        l.undo(&b, &u).unwrap();
        dropped.push(b);
    }
    assert_eq!(l.tip, store.block_at(4).unwrap().unwrap().header);
    let mut added = Vec::new();
    for b in &theirs {
        let a = l.apply(b, T0 + 10_000).unwrap();
        touched.extend(a.changes.iter().map(|(k, _)| k.clone()));
        added.push((b.clone(), a.undo));
    }
    store
        .switch(
            Switch {
                dropped: &dropped,
                added: &added,
            },
            &touched,
            &l,
        )
        .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let back = store.load(n.genesis.clone()).unwrap();
    assert_eq!((back.height(), back.digest), (11, l.digest));
    assert_ne!(back.digest, old.digest);
    assert_eq!(store.block_at(6).unwrap().unwrap(), theirs[1]);
    assert!(store.transaction(&old6.txs[0].id()).unwrap().is_none());
    let (found, _) = store.transaction(&theirs[1].txs[0].id()).unwrap().unwrap();
    assert_eq!(found.header.height, 6);
    // The old branch's bodies stay, by hash; the new one's undo records are there.
    assert!(store.block(&old6.header.hash()).unwrap().is_some());
    assert_eq!(store.undo(11).unwrap().unwrap().tip, theirs[5].header);
    // A reindex from the blocks agrees with the switched state.
    assert_eq!(store.reindex(n.genesis.clone()).unwrap().digest, l.digest);
}

#[test]
fn a_state_that_does_not_match_the_tip_is_refused_at_open_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    let l = {
        let store = Store::open(dir.path()).unwrap();
        let l = chain_of(&n, &store, 3);
        // An entry lost behind the store's back.
        let wallet = crate::address::Address::from_public_key(&crate::testnet::pk(&n.wallet));
        store
            .db
            .remove(key(STATE, &StateKey::Account(wallet).encode()))
            .unwrap();
        store.flush().unwrap();
        l
    };
    let store = Store::open(dir.path()).unwrap();
    let e = store.load(n.genesis.clone()).unwrap_err().to_string();
    assert!(
        e.contains("does not match the digest") && e.contains("--reindex"),
        "{e}"
    );
    assert_eq!(store.reindex(n.genesis.clone()).unwrap().digest, l.digest);
    assert_eq!(store.load(n.genesis.clone()).unwrap().height(), 3);
}

#[test]
fn undo_records_are_kept_for_the_reorganisation_window_only() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    let store = Store::open(dir.path()).unwrap();
    let l = chain_of(&n, &store, 3);
    assert!(store.undo(3).unwrap().is_some());
    // A block at 2 x max_reorg + 1 drops the record of block 1.
    let mut batch = sled::Batch::default();
    let mut far = store.block_at(3).unwrap().unwrap();
    far.header.height = UNDO_KEPT * l.params.max_reorg + 1;
    Store::put_block(
        &mut batch,
        &far,
        &store.undo(3).unwrap().unwrap(),
        l.params.max_reorg,
    );
    store.db.apply_batch(batch).unwrap();
    assert!(store.undo(1).unwrap().is_none());
    assert!(store.undo(2).unwrap().is_some());
    drop(l);
}

#[test]
fn a_store_of_another_chain_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    Store::open(dir.path())
        .unwrap()
        .load(n.genesis.clone())
        .unwrap();
    let mut other = n.genesis.clone();
    other.chain_id = "other".into();
    let e = Store::open(dir.path()).unwrap().load(other).unwrap_err();
    assert!(e.to_string().contains("made for genesis"), "{e}");
}

#[test]
fn a_store_in_the_old_five_tree_layout_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.open_tree("blocks").unwrap().insert(b"x", b"y").unwrap();
        db.flush().unwrap();
    }
    let e = Store::open(dir.path()).err().unwrap().to_string();
    assert!(e.contains("older fluxnode"), "{e}");
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
}

#[test]
fn the_store_keeps_its_genesis_through_blocks_and_a_reindex() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1, 2]);
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.genesis().unwrap(), None);
        chain_of(&n, &store, 5);
        store.reindex(n.genesis.clone()).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.genesis().unwrap(), Some(n.genesis.clone()));
    // Its hash is the one the store was made for: loading with it works.
    assert_eq!(store.load(n.genesis.clone()).unwrap().height(), 5);
}

#[test]
fn a_store_made_before_the_genesis_was_kept_gets_it_at_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    {
        let store = Store::open(dir.path()).unwrap();
        chain_of(&n, &store, 2);
        store.db.remove(key(META, META_GENESIS_FILE)).unwrap();
        store.db.flush().unwrap();
        assert_eq!(store.genesis().unwrap(), None);
    }
    let store = Store::open(dir.path()).unwrap();
    store.load(n.genesis.clone()).unwrap();
    assert_eq!(store.genesis().unwrap(), Some(n.genesis.clone()));
}
