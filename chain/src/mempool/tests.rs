//! Each admission rule at its edge, eviction, the age limit, the re-check at a new tip and
//! the return of a dropped block's transactions, on a one-node devnet.

use ring::signature::Ed25519KeyPair;

use super::*;
use crate::address::Address;
use crate::testnet::{net, pk, Net, T0};
use crate::tx::tests::key;
use crate::tx::{InstanceUsage, Tier, TxBody, COIN};

const TO: Address = Address([0xee; 20]);

thread_local! {
    /// The chain of the test's devnet, which every transaction signs for.
    static CHAIN: std::cell::Cell<Hash> = const { std::cell::Cell::new([0; 32]) };
}

fn chain() -> Hash {
    CHAIN.with(|c| c.get())
}

/// A node start by `owner` of `node`, with the node's consent.
fn start_of(owner: &Ed25519KeyPair, nonce: u64, node: &Ed25519KeyPair) -> Tx {
    let endpoint = "127.0.0.1:1";
    let consent = crate::consent::sign(
        node,
        &chain(),
        &Address::from_public_key(&pk(owner)),
        Tier::Cumulus,
        endpoint,
    );
    Tx::signed(
        owner,
        &chain(),
        nonce,
        1_000,
        TxBody::NodeStart {
            tier: Tier::Cumulus,
            node_key: pk(node),
            endpoint: endpoint.into(),
            consent,
        },
    )
}

/// A one-node devnet with `funded` extra accounts of 10 coins each.
struct Keys {
    n: Net,
    funded: Vec<Ed25519KeyPair>,
}

/// Its ledger and a pool.
struct World {
    l: Ledger,
    m: Mempool,
}

fn world(funded: usize, limits: Limits) -> (Keys, World) {
    world_with(funded, limits, |_| {})
}

fn world_with(
    funded: usize,
    limits: Limits,
    edit: impl FnOnce(&mut crate::genesis::Genesis),
) -> (Keys, World) {
    let mut n = net(&[1]);
    let funded: Vec<_> = (0..funded).map(|_| key()).collect();
    for k in &funded {
        let a = Address::from_public_key(&pk(k));
        n.genesis.balances.push((a.to_string(), 10 * COIN));
    }
    edit(&mut n.genesis);
    CHAIN.with(|c| c.set(n.genesis.hash()));
    let w = World {
        l: Ledger::new(n.genesis.clone()).unwrap(),
        m: Mempool::with_limits(limits),
    };
    (Keys { n, funded }, w)
}

impl World {
    /// Applies the next block with `txs` and prunes; returns what prune made ready.
    fn mine(&mut self, n: &Net, txs: &[Tx]) -> Vec<Tx> {
        let b = n.next(&self.l, txs);
        assert_eq!(b.txs.len(), txs.len(), "every transaction went in");
        self.l.apply(&b, T0 + 1_000_000).unwrap();
        self.m.prune(&self.l)
    }

    fn add(&mut self, tx: &Tx) -> Result<Admitted, MempoolError> {
        self.m.add(tx.clone(), &self.l)
    }

    fn has(&self, tx: &Tx) -> bool {
        self.m.get(&tx.id()).is_some()
    }
}

fn pay(k: &Ed25519KeyPair, nonce: u64, fee: u64, amount: u64) -> Tx {
    Tx::signed(k, &chain(), nonce, fee, TxBody::Transfer { to: TO, amount })
}

fn confirm(k: &Ed25519KeyPair, nonce: u64, app: &str) -> Tx {
    let workload = vec![InstanceUsage {
        app: app.into(),
        instance: 0,
        running: true,
        cpu_usage_usec: 0,
        memory_peak: 0,
    }];
    let body = TxBody::NodeConfirm {
        bench_tier: Some(Tier::Cumulus),
        bench_report: vec![],
        workload,
    };
    Tx::signed(k, &chain(), nonce, 0, body)
}

fn ids(txs: &[Tx]) -> Vec<Hash> {
    txs.iter().map(Tx::id).collect()
}

#[test]
fn a_transfer_is_admitted_relayed_and_dropped_once_mined() {
    let (ks, mut w) = world(0, Limits::default());
    let t0 = pay(&ks.n.wallet, 0, 5_000, COIN);
    let a = w.add(&t0).unwrap();
    assert_eq!((a.id, ids(&a.relay)), (t0.id(), vec![t0.id()]));
    assert_eq!(w.add(&t0), Err(MempoolError::Known));
    assert_eq!(
        w.add(&pay(&ks.n.wallet, 1, 999, 1)),
        Err(MempoolError::Fee {
            got: 999,
            min: 1_000
        })
    );
    let mut forged = pay(&ks.n.wallet, 1, 5_000, 1);
    forged.fee += 1;
    assert_eq!(w.add(&forged), Err(MempoolError::Signature));
    assert!(MempoolError::Signature.is_peer_fault());
    let broke = key();
    let e = w.add(&pay(&broke, 0, 5_000, 1)).unwrap_err();
    assert!(!e.is_peer_fault());
    assert!(
        e.to_string()
            .contains("balance 0 does not cover its pending transactions and this one (5001)"),
        "{e}"
    );
    let all = w.m.txs();
    assert!(w.mine(&ks.n, &all).is_empty());
    assert!(w.m.is_empty() && w.m.bytes() == 0);
    let e = w.add(&t0).unwrap_err();
    assert!(
        matches!(
            e,
            MempoolError::NonceSpent {
                got: 0,
                next: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("nonce 0 is spent (account nonce 1)"));
}

#[test]
fn a_nonce_16_ahead_waits_unrelayed_and_17_ahead_is_refused() {
    let (ks, mut w) = world(0, Limits::default());
    let wallet = &ks.n.wallet;
    let far = pay(wallet, 16, 1_000, 1);
    assert!(
        w.add(&far).unwrap().relay.is_empty(),
        "not ready: not relayed"
    );
    let e = w.add(&pay(wallet, 17, 1_000, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            MempoolError::NonceAhead {
                got: 17,
                next: 0,
                max: 16,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("nonce 17 is more than 16 past"),
        "{e}"
    );
    assert!(w.m.txs().is_empty() && w.m.ready() == 0 && w.m.len() == 1);
    // Nonce 1 waits too; nonce 0 fills the gap and takes 1 along.
    let t1 = pay(wallet, 1, 1_000, 1);
    assert!(w.add(&t1).unwrap().relay.is_empty());
    let t0 = pay(wallet, 0, 1_000, 1);
    assert_eq!(
        ids(&w.add(&t0).unwrap().relay),
        ids(&[t0.clone(), t1.clone()])
    );
    assert_eq!(ids(&w.m.txs()), ids(&[t0, t1]));
    // Up to 16 pending per sender: 0, 1, 2..=14 and 16.
    for nonce in 2..=14 {
        w.add(&pay(wallet, nonce, 1_000, 1)).unwrap();
    }
    let e = w.add(&pay(wallet, 15, 1_000, 1)).unwrap_err();
    assert_eq!(
        e,
        MempoolError::SenderFull {
            account: Address::from_public_key(&pk(wallet)),
            pending: 16
        }
    );
    assert!(!e.is_peer_fault());
    assert_eq!((w.m.len(), w.m.ready()), (16, 15));
    // The gapped one is not offered to blocks; the ready ones go in nonce order.
    let ready = w.m.txs();
    assert!(w.mine(&ks.n, &ready).is_empty());
    assert_eq!((w.m.len(), w.m.ready()), (1, 0), "16 still waits on 15");
    let t15 = pay(wallet, 15, 1_000, 1);
    assert_eq!(
        ids(&w.add(&t15).unwrap().relay),
        ids(&[t15, far]),
        "15 fills the gap"
    );
}

#[test]
fn the_balance_must_cover_every_pending_transaction() {
    let (ks, mut w) = world(1, Limits::default());
    let k = &ks.funded[0];
    let a = Address::from_public_key(&pk(k));
    w.add(&pay(k, 0, 1_000, 6 * COIN)).unwrap();
    w.add(&pay(k, 1, 1_000, 3 * COIN)).unwrap();
    // 10 coins less 9 and two fees: 99_998_000 left.
    let e = w.add(&pay(k, 2, 1_000, COIN)).unwrap_err();
    assert_eq!(
        e,
        MempoolError::Funds {
            account: a,
            balance: 10 * COIN,
            need: 10 * COIN + 3_000
        }
    );
    w.add(&pay(k, 2, 2_000, COIN - 4_000)).unwrap();
    // A gap counts as free: a later nonce is checked against what the pending ones leave.
    let e = w.add(&pay(k, 4, 1_000, 1)).unwrap_err();
    assert!(matches!(e, MempoolError::Funds { .. }), "{e}");
    // Replacing nonce 0 by a dearer one would leave nonce 1 unfunded.
    let e = w.add(&pay(k, 0, 3_000, 7 * COIN)).unwrap_err();
    assert!(
        matches!(
            e,
            MempoolError::Spoils {
                nonce: 1,
                why: TxError::Funds { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("pending nonce 1 would no longer apply"),
        "{e}"
    );
    // A replacement pays at least the old fee plus the minimum.
    let e = w.add(&pay(k, 0, 1_999, 5 * COIN)).unwrap_err();
    assert!(
        matches!(e, MempoolError::Replacement { need: 2_000, .. }),
        "{e}"
    );
    let cheaper = pay(k, 0, 2_000, 5 * COIN);
    assert_eq!(ids(&w.add(&cheaper).unwrap().relay), vec![cheaper.id()]);
    assert_eq!(w.m.len(), 3);
    assert_eq!(w.m.txs()[0], cheaper);
}

#[test]
fn a_confirm_comes_only_from_a_registered_node_that_is_due_one_at_a_time() {
    let (ks, mut w) = world_with(0, Limits::default(), |g| g.rules.reconfirm_min = 3);
    let node = &ks.n.keys[0];
    let stranger = key();
    let e = w.add(&confirm(&stranger, 0, "a")).unwrap_err();
    assert!(e.to_string().ends_with("not registered"), "{e}");
    assert!(!e.is_peer_fault(), "a peer may know a node we do not yet");
    // Confirmed at 0 (genesis): due from height 3.
    let early = confirm(node, 0, "a");
    let e = w.add(&early).unwrap_err();
    assert!(e.to_string().contains("next confirm from 3"), "{e}");
    w.mine(&ks.n, &[]);
    w.mine(&ks.n, &[]);
    let c = confirm(node, 0, "a");
    assert_eq!(ids(&w.add(&c).unwrap().relay), vec![c.id()]);
    let e = w.add(&confirm(node, 1, "b")).unwrap_err();
    assert_eq!(
        e,
        MempoolError::ConfirmPending {
            node: hex::encode(&pk(node)[..8]),
            nonce: 0
        }
    );
    let e = w.add(&confirm(node, 0, "b")).unwrap_err();
    assert!(
        matches!(e, MempoolError::Replacement { need: 1_000, .. }),
        "{e}"
    );
    w.mine(&ks.n, &[c]);
    assert!(w.m.is_empty());
    let e = w.add(&confirm(node, 1, "c")).unwrap_err();
    assert!(e.to_string().contains("next confirm from 6"), "{e}");
}

#[test]
fn a_full_pool_evicts_the_lowest_fee_then_the_oldest_but_never_a_tx_others_wait_on() {
    let limits = Limits {
        max_txs: 3,
        ..Limits::default()
    };
    let (ks, mut w) = world(6, limits);
    let k = &ks.funded;
    let s1_0 = pay(&k[0], 0, 1_000, 1);
    let s1_1 = pay(&k[0], 1, 3_000, 1);
    let s2 = pay(&k[1], 0, 2_000, 1);
    for t in [&s1_0, &s1_1, &s2] {
        w.add(t).unwrap();
    }
    // s1_0 pays least but s1_1 waits on it: only the tails (s1_1, s2) may go, and both
    // pay more than 1_500.
    let e = w.add(&pay(&k[2], 0, 1_500, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            MempoolError::Full {
                txs: 3,
                fee: 1_500,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.is_peer_fault());
    let s3 = pay(&k[2], 0, 2_500, 1);
    w.add(&s3).unwrap();
    assert!(!w.has(&s2) && w.has(&s1_0) && w.m.len() == 3, "s2 evicted");
    // Among equal fees the oldest goes.
    let s4 = pay(&k[3], 0, 3_000, 1);
    w.add(&s4).unwrap();
    assert!(!w.has(&s3), "s3 (2_500) evicted");
    let s5 = pay(&k[4], 0, 3_500, 1);
    w.add(&s5).unwrap();
    assert!(
        !w.has(&s1_1) && w.has(&s4),
        "s1_1 is older than s4 at 3_000"
    );
    let again = pay(&k[0], 1, 3_200, 1);
    w.add(&again).unwrap();
    assert!(
        !w.has(&s4) && w.has(&s1_0),
        "s4 went, not s1_0 that s1_1 waits on"
    );
    // A sender's own queue is never evicted for its next nonce, however little it pays.
    let e = w.add(&pay(&k[0], 2, 3_000, 1)).unwrap_err();
    assert!(matches!(e, MempoolError::Full { .. }), "{e}");
    assert_eq!(w.m.len(), 3);
    assert!(w.has(&again) && w.has(&s5));
    assert_eq!(w.m.bytes(), 3 * s5.encode().len());
}

#[test]
fn a_gapped_tx_is_evicted_first_and_a_confirm_last() {
    let limits = Limits {
        max_txs: 2,
        ..Limits::default()
    };
    let (ks, mut w) = world_with(3, limits, |g| g.rules.reconfirm_min = 1);
    let k = &ks.funded;
    let gapped = pay(&k[0], 1, 900_000, 1);
    let c = confirm(&ks.n.keys[0], 0, "a");
    w.add(&gapped).unwrap();
    w.add(&c).unwrap();
    // A gapped newcomer cannot push out a ready one, whatever it pays.
    let e = w.add(&pay(&k[1], 5, 900_000, 1)).unwrap_err();
    assert!(matches!(e, MempoolError::Full { .. }), "{e}");
    // A ready one at the minimum fee evicts the gapped one.
    let cheap = pay(&k[1], 0, 1_000, 1);
    w.add(&cheap).unwrap();
    assert!(!w.has(&gapped) && w.has(&c));
    // A better fee evicts the cheap one, never the free confirm.
    w.add(&pay(&k[2], 0, 900_000, 1)).unwrap();
    assert!(w.has(&c) && !w.has(&cheap));
    assert_eq!(w.m.len(), 2);
    // With room for one, the confirm outranks any fee.
    let limits = Limits {
        max_txs: 1,
        ..limits
    };
    let (ks, mut w) = world_with(1, limits, |g| g.rules.reconfirm_min = 1);
    w.add(&confirm(&ks.n.keys[0], 0, "a")).unwrap();
    let e = w.add(&pay(&ks.funded[0], 0, 9 * COIN, 1)).unwrap_err();
    assert!(matches!(e, MempoolError::Full { .. }), "{e}");
}

#[test]
fn the_byte_limit_evicts_as_many_as_a_big_newcomer_needs() {
    let small = pay(&key(), 0, 1_000, 1).encode().len();
    let limits = Limits {
        max_bytes: 4 * small,
        ..Limits::default()
    };
    let (ks, mut w) = world(5, limits);
    let k = &ks.funded;
    let olds: Vec<Tx> = (0..4).map(|i| pay(&k[i], 0, 1_000 + i as u64, 1)).collect();
    for t in &olds {
        w.add(t).unwrap();
    }
    let mut spec = crate::tx::tests::spec("big");
    spec.instances = 1;
    spec.expiry_blocks = 1;
    let bare = Tx::signed(
        &k[4],
        &chain(),
        0,
        1_000_000,
        TxBody::AppRegister(spec.clone()),
    );
    spec.env = vec!["x".repeat(small * 5 / 2 - bare.encode().len())];
    let big = Tx::signed(&k[4], &chain(), 0, 1_000_000, TxBody::AppRegister(spec));
    let size = big.encode().len();
    assert!(size > 2 * small && size < 3 * small);
    w.add(&big).unwrap();
    assert_eq!(
        olds.iter().map(|t| w.has(t)).collect::<Vec<_>>(),
        vec![false, false, false, true],
        "the three cheapest went"
    );
    assert_eq!(w.m.bytes(), size + small);
}

#[test]
fn transactions_older_than_the_age_limit_are_dropped_with_those_after_them() {
    let limits = Limits {
        max_age_blocks: 3,
        ..Limits::default()
    };
    let (ks, mut w) = world(1, limits);
    let k = &ks.funded[0];
    let old = pay(k, 1, 1_000, 1);
    w.add(&old).unwrap();
    w.mine(&ks.n, &[]);
    let young = pay(k, 2, 1_000, 1);
    w.add(&young).unwrap();
    w.mine(&ks.n, &[]);
    w.mine(&ks.n, &[]);
    assert!(w.has(&old) && w.has(&young), "3 blocks old: kept");
    w.mine(&ks.n, &[]);
    assert!(
        w.m.is_empty(),
        "old is 4 blocks old, and young waited on it"
    );
}

#[test]
fn a_new_tip_drops_what_no_longer_applies_and_relays_what_it_made_ready() {
    let (ks, mut w) = world_with(2, Limits::default(), |g| g.rules.confirm_window = 10);
    let k = &ks.funded[0];
    let a0 = pay(k, 0, 1_000, 4 * COIN);
    let a1 = pay(k, 1, 1_000, 4 * COIN);
    w.add(&a0).unwrap();
    w.add(&a1).unwrap();
    // Another node mined a different nonce 0 of the same sender, spending 8 coins: a0 is
    // spent and a1 no longer funded.
    let other = pay(k, 0, 1_000, 8 * COIN);
    // The second sender's nonce 1 waits; its nonce 0 comes in the block.
    let j = &ks.funded[1];
    let b1 = pay(j, 1, 1_000, 1);
    w.add(&b1).unwrap();
    // A node started by the wallet, whose confirm is pending when its stop is mined.
    let node = key();
    let start = start_of(&ks.n.wallet, 0, &node);
    let ready = w.mine(&ks.n, &[other, pay(j, 0, 1_000, 1), start]);
    assert_eq!(ids(&ready), vec![b1.id()], "b1 became ready");
    assert!(!w.has(&a0) && !w.has(&a1));
    let c = confirm(&node, 0, "a");
    w.add(&c).unwrap();
    let stop = Tx::signed(
        &ks.n.wallet,
        &chain(),
        1,
        1_000,
        TxBody::NodeStop {
            node_key: pk(&node),
        },
    );
    w.mine(&ks.n, &[stop, b1.clone()]);
    assert!(!w.has(&c), "a stopping node's confirm no longer applies");
    assert!(w.m.is_empty());
}

#[test]
fn a_started_nodes_confirm_goes_when_its_window_closes() {
    let (ks, mut w) = world_with(0, Limits::default(), |g| g.rules.confirm_window = 2);
    let node = key();
    let start = start_of(&ks.n.wallet, 0, &node);
    w.mine(&ks.n, &[start]);
    let c = confirm(&node, 0, "a");
    w.add(&c).unwrap();
    w.mine(&ks.n, &[]);
    assert!(w.has(&c), "due at 3 = 1 + 2");
    w.mine(&ks.n, &[]);
    assert!(!w.has(&c), "its window closed at 3");
}

#[test]
fn restore_after_a_reorg_puts_back_what_still_applies() {
    let (ks, mut w) = world(2, Limits::default());
    let fork = w.l.clone();
    let (k, j) = (&ks.funded[0], &ks.funded[1]);
    let kept = pay(k, 0, 1_000, COIN);
    let spent = pay(j, 0, 1_000, COIN);
    let both = pay(&ks.n.wallet, 0, 1_000, COIN);
    for t in [&kept, &spent, &both] {
        w.add(t).unwrap();
    }
    w.mine(&ks.n, &[kept.clone(), spent.clone(), both.clone()]);
    assert!(w.m.is_empty());
    let later = pay(k, 1, 1_000, COIN);
    w.add(&later).unwrap();
    assert!(w.m.txs().contains(&later));
    // The other branch: from the fork, a block in a later slot with another nonce 0 of j's
    // and the wallet's transfer, without k's.
    let rival = pay(j, 0, 2_000, 2 * COIN);
    let b = fork
        .produce(&ks.n.keys[0], 2, T0 + 2, &[rival, both.clone()], 100)
        .unwrap();
    let mut l = fork;
    l.apply(&b, T0 + 1_000_000).unwrap();
    w.l = l;
    assert!(w.m.prune(&w.l).is_empty());
    assert!(
        w.has(&later) && w.m.txs().is_empty(),
        "later waits on k's nonce 0 now"
    );
    let ready =
        w.m.restore(vec![kept.clone(), spent.clone(), both.clone()], &w.l);
    assert_eq!(ids(&ready), ids(&[kept.clone(), later.clone()]));
    assert!(w.has(&kept) && !w.has(&spent) && !w.has(&both));
    assert_eq!(ids(&w.m.txs()), ids(&[kept, later]));
}
