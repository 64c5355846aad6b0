//! Reorganisation tests on a real sled store: a better branch is taken whole and written
//! at once, a branch that breaks a rule or is no better leaves the store as it was, and
//! at equal length the first block's standing decides.

use super::*;
use crate::address::Address;
use crate::testnet::{net, pk, Net, T0};
use crate::tx::{Tx, TxBody, COIN};

trait Alter {
    fn amount_for_test(&mut self);
}

impl Alter for Tx {
    /// Changes the amount of a transfer (its signature no longer holds).
    fn amount_for_test(&mut self) {
        if let TxBody::Transfer { amount, .. } = &mut self.body {
            *amount += 1;
        }
    }
}

const NOW: u64 = T0 + 10_000;

fn pay(n: &Net, l: &Ledger, to: u8) -> Vec<Tx> {
    let nonce = l
        .state
        .account(&Address::from_public_key(&pk(&n.wallet)))
        .nonce;
    vec![Tx::signed(
        &n.wallet,
        &l.params.chain,
        nonce,
        5_000,
        TxBody::Transfer {
            to: Address([to; 20]),
            amount: COIN,
        },
    )]
}

/// A store holding `len` blocks of `n`, and the ledger at its tip.
fn stored(n: &Net, len: usize) -> (tempfile::TempDir, Store, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut l = store.load(n.genesis.clone()).unwrap();
    for _ in 0..len {
        let b = n.next(&l, &pay(n, &l, 1));
        let a = l.apply(&b, NOW).unwrap();
        store.commit(&b, &a, &l).unwrap();
    }
    (dir, store, l)
}

/// The ledger at our block `fork` (replayed from the stored blocks).
fn at(n: &Net, store: &Store, fork: u64) -> Ledger {
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    for h in 1..=fork {
        l.apply(&store.block_at(h).unwrap().unwrap(), NOW).unwrap();
    }
    l
}

/// `len` blocks on `l`, each paying `to`.
fn grow(n: &Net, mut l: Ledger, len: usize, to: u8) -> Vec<Block> {
    (0..len)
        .map(|_| {
            let b = n.next(&l, &pay(n, &l, to));
            l.apply(&b, NOW).unwrap();
            b
        })
        .collect()
}

#[test]
fn a_longer_valid_branch_is_taken_and_survives_a_reopen() {
    let n = net(&[1, 2]);
    let (dir, store, l) = stored(&n, 10);
    let theirs = grow(&n, at(&n, &store, 6), 5, 9);
    let done = switch(&store, &l, 6, &theirs, NOW).unwrap();
    assert_eq!((done.applied, done.ledger.height()), (5, 11));
    assert_eq!(done.dropped.len(), 4);
    assert_eq!(done.dropped[0].header.height, 10, "from the old tip down");
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let back = store.load(n.genesis.clone()).unwrap();
    assert_eq!(
        (back.tip.clone(), back.digest),
        (done.ledger.tip, done.ledger.digest)
    );
    assert_eq!(store.block_at(7).unwrap().unwrap(), theirs[0]);
}

#[test]
fn a_branch_that_breaks_a_rule_changes_nothing_and_names_the_block() {
    let n = net(&[1, 2]);
    let (_dir, store, l) = stored(&n, 10);
    let mut theirs = grow(&n, at(&n, &store, 6), 6, 9);
    // The third block's transaction is altered: its header (and so every link) is the
    // same, only the full rules see it.
    theirs[2].txs[0].amount_for_test();
    let e = switch(&store, &l, 6, &theirs, NOW).err().unwrap();
    let why = e.invalid().expect("the bad block is named").to_string();
    assert!(why.starts_with("block 9:"), "{why}");
    assert!(matches!(e, Refused::NotBetter { theirs: 8, .. }), "{e}");
    let back = store.load(n.genesis.clone()).unwrap();
    assert_eq!((back.tip, back.digest), (l.tip.clone(), l.digest));
    assert!(store.undo(10).unwrap().is_some());

    // The last block altered: the blocks before it make a longer chain, which is taken;
    // the bad one is named for the peer's score.
    let mut theirs = grow(&n, at(&n, &store, 6), 6, 9);
    theirs[5].txs[0].amount_for_test();
    let done = switch(&store, &l, 6, &theirs, NOW).unwrap();
    assert_eq!((done.applied, done.ledger.height()), (5, 11));
    let why = done.invalid.unwrap().to_string();
    assert!(why.starts_with("block 12:"), "{why}");
}

#[test]
fn a_shorter_or_too_deep_or_unlinked_branch_is_refused_before_any_work() {
    let n = net(&[1]);
    let (_dir, store, l) = stored(&n, 105);
    let short = grow(&n, at(&n, &store, 100), 4, 9);
    assert!(matches!(
        switch(&store, &l, 100, &short, NOW),
        Err(Refused::NotBetter {
            ours: 105,
            theirs: 104,
            invalid: None
        })
    ));
    let deep = grow(&n, at(&n, &store, 3), 1, 9);
    assert!(matches!(
        switch(&store, &l, 3, &deep, NOW),
        Err(Refused::TooDeep {
            tip: 105,
            fork: 3,
            ..
        })
    ));
    let mut unlinked = grow(&n, at(&n, &store, 100), 7, 9);
    unlinked.remove(3);
    assert!(matches!(
        switch(&store, &l, 100, &unlinked, NOW),
        Err(Refused::Unlinked(104))
    ));
}

#[test]
fn at_equal_length_the_first_block_of_better_rank_wins() {
    let n = net(&[1, 1, 1]);
    let (_dir, store, mut l) = stored(&n, 4);
    let fork = at(&n, &store, 4);
    let slot = l.tip.slot + 1;
    // We took the rank-1 block of the slot; the rank-0 one of the same slot wins.
    let ours = n.by_rank(&l, slot, 1, &[]);
    let a = l.apply(&ours, NOW).unwrap();
    store.commit(&ours, &a, &l).unwrap();
    let theirs = n.by_rank(&fork, slot, 0, &[]);
    let done = switch(&store, &l, 4, std::slice::from_ref(&theirs), NOW).unwrap();
    assert_eq!(done.ledger.tip, theirs.header);
    // And the other way round it is refused: the node keeps its better block.
    let e = switch(&store, &done.ledger, 4, std::slice::from_ref(&ours), NOW)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            Refused::NotBetter {
                ours: 5,
                theirs: 5,
                ..
            }
        ),
        "{e}"
    );
}
