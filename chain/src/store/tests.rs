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
        let changes = l.apply(&b, T0 + 10_000).unwrap();
        store.commit(&b, &changes, &l).unwrap();
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

#[test]
fn rewind_goes_back_to_a_height_and_the_chain_grows_again_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1]);
    let store = Store::open(dir.path()).unwrap();
    let full = chain_of(&n, &store, 10);
    let mut l = store.rewind(n.genesis.clone(), 4).unwrap();
    assert_eq!(l.height(), 4);
    assert_eq!(l.tip, store.block_at(4).unwrap().unwrap().header);
    assert!(store.block_at(5).unwrap().is_none());
    assert_eq!(store.load(n.genesis.clone()).unwrap().digest, l.digest);
    assert_ne!(l.digest, full.digest);
    let next = n.next(&l, &[]);
    let changes = l.apply(&next, T0 + 10_000).unwrap();
    store.commit(&next, &changes, &l).unwrap();
    assert_eq!(store.load(n.genesis.clone()).unwrap().height(), 5);
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
fn the_store_keeps_its_genesis_through_blocks_and_a_rewind() {
    let dir = tempfile::tempdir().unwrap();
    let n = net(&[1, 2]);
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.genesis().unwrap(), None);
        chain_of(&n, &store, 5);
        store.rewind(n.genesis.clone(), 3).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.genesis().unwrap(), Some(n.genesis.clone()));
    // Its hash is the one the store was made for: loading with it works.
    assert_eq!(store.load(n.genesis.clone()).unwrap().height(), 3);
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
