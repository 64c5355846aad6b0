//! Ledger tests: two ledgers fed the same blocks agree; production by rank, rewards by tier,
//! the useful-node rule, and every kind of bad block refused without changing the tip.

use super::*;
use crate::address::Address;
use crate::testnet::{net, owner_of, pk, T0};
use crate::tx::tests::{key, spec};
use crate::tx::{InstanceUsage, TxBody, COIN};

#[test]
fn two_ledgers_fed_the_same_blocks_agree_and_rewards_follow_the_tiers() {
    let n = net(&[1, 2, 3, 1]);
    let mut a = Ledger::new(n.genesis.clone()).unwrap();
    let mut b = Ledger::new(n.genesis.clone()).unwrap();
    assert_eq!(a.digest, b.digest);
    let to = Address([0xee; 20]);
    for i in 0..20 {
        let txs = if i == 3 {
            vec![Tx::signed(
                &n.wallet,
                &n.genesis.hash(),
                0,
                5_000,
                TxBody::Transfer {
                    to,
                    amount: 7 * COIN,
                },
            )]
        } else {
            vec![]
        };
        let blk = n.next(&a, &txs);
        a.apply(&blk, T0 + 1_000).unwrap();
        b.apply(&blk, T0 + 1_000).unwrap();
        assert_eq!((a.digest, a.height()), (b.digest, b.height()));
    }
    assert_eq!(a.state, b.state);
    assert_eq!(
        a.view, b.view,
        "both keep the same placement and useful set"
    );
    assert_eq!(a.view, assign::View::build(&a.state, &a.params));
    assert_eq!(a.state.account(&to).balance, 7 * COIN);
    let paid = |i: usize| a.state.account(&owner_of(i)).balance;
    // 20 blocks: the two Cumulus nodes share the Cumulus coin (longest unpaid first), the
    // Nimbus and Stratus nodes take theirs every block; producers add 0.5 each time.
    let produced: u64 = (0..4).map(paid).sum();
    assert_eq!(produced, 20 * 14 * COIN + 5_000);
    assert!(paid(2) >= 20 * 9 * COIN && paid(1) >= 20 * 350_000_000);
    assert!(
        paid(0) >= 10 * COIN && paid(3) >= 10 * COIN,
        "Cumulus rewards alternate"
    );
}

#[test]
fn a_node_missing_an_assigned_instance_is_not_eligible_until_its_report_is_whole() {
    let n = net(&[1, 1]);
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    let mut s = spec("web");
    s.instances = 1;
    s.ram_bytes = 1 << 20;
    s.disk_bytes = 1 << 20;
    let reg = Tx::signed(
        &n.wallet,
        &n.genesis.hash(),
        0,
        5_000,
        TxBody::AppRegister(s),
    );
    let blk = n.next(&l, &[reg]);
    l.apply(&blk, T0 + 100).unwrap();
    let assigned = assign::assignments(&l.state, &l.params);
    let (holder, _) = assigned.iter().next().unwrap();
    assert!(
        l.useful().contains_key(holder),
        "its last report predates the app: not yet expected"
    );
    let hk = n.keys.iter().find(|k| &pk(k) == holder).unwrap();
    let report = |workload: Vec<InstanceUsage>, nonce: u64| {
        Tx::signed(
            hk,
            &n.genesis.hash(),
            nonce,
            0,
            TxBody::NodeConfirm {
                bench_tier: Some(crate::tx::Tier::Cumulus),
                bench_report: vec![],
                workload,
            },
        )
    };
    // Confirms are accepted 40 blocks after the last one (genesis counts as height 0).
    for _ in 0..40 {
        let blk = n.next(&l, &[]);
        l.apply(&blk, T0 + 1_000).unwrap();
    }
    let blk = n.next(&l, &[report(vec![], 0)]);
    assert_eq!(blk.txs.len(), 1);
    l.apply(&blk, T0 + 1_000).unwrap();
    let useful = l.useful();
    assert!(
        !useful.contains_key(holder),
        "assigned, and its new report lacks it"
    );
    assert_eq!(useful.len(), 1);
    let slot = l.tip.slot + 1;
    assert!(
        l.produce(hk, slot, T0 + slot, &[], 10).is_err(),
        "it may not produce"
    );
    // The other node produces a block carrying the holder's whole report.
    let confirm = report(
        vec![InstanceUsage {
            app: "web".into(),
            instance: 0,
            running: true,
            cpu_usage_usec: 5,
            memory_peak: 6,
        }],
        1,
    );
    for _ in 0..40 {
        let blk = n.next(&l, &[]);
        l.apply(&blk, T0 + 1_000).unwrap();
    }
    let blk = n.next(&l, &[confirm]);
    assert_eq!(blk.txs.len(), 1, "the confirm made it in");
    l.apply(&blk, T0 + 1_000).unwrap();
    assert!(l.useful().contains_key(holder), "useful again");
}

#[test]
fn bad_blocks_are_refused_and_leave_the_tip_alone() {
    let n = net(&[1, 2]);
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    let good = n.next(&l, &[]);
    let before = (l.digest, l.height());
    let refuse = |l: &mut Ledger, b: &Block, want: &str| {
        let e = l.apply(b, T0 + 1_000).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    };
    let mut b = good.clone();
    b.header.state_digest[0] ^= 1;
    b.header.sign(&n.keys[0]);
    refuse(&mut l, &b, "not");
    let stranger = key();
    let mut b = good.clone();
    b.header.sign(&stranger);
    refuse(&mut l, &b, "is not a useful node");
    let mut b = good.clone();
    b.header.signature[0] ^= 1;
    refuse(&mut l, &b, "bad producer signature");
    let mut b = good.clone();
    b.header.height = 5;
    refuse(&mut l, &b, "does not follow");
    let future = l.produce(&n.keys[0], 5_000, T0 + 5_000, &[], 10).unwrap();
    let e = l.apply(&future, T0 + 10).unwrap_err().to_string();
    assert!(e.contains("in the future"), "{e}");
    let bad_tx = Tx::signed(
        &stranger,
        &n.genesis.hash(),
        0,
        5_000,
        TxBody::Transfer {
            to: Address([1; 20]),
            amount: 1,
        },
    );
    let mut b = good.clone();
    b.txs.push(bad_tx);
    b.header.tx_root = Block::tx_root(&b.txs);
    let signer = n
        .keys
        .iter()
        .find(|k| pk(k) == good.header.producer)
        .unwrap();
    b.header.sign(signer);
    refuse(&mut l, &b, "transaction 0");
    // The genesis' block limits, not the build's.
    let mut tight = l.clone();
    tight.params.max_block_txs = 0;
    refuse(&mut tight, &b, "1 transactions in");
    assert_eq!((l.digest, l.height()), before);
    l.apply(&good, T0 + 1_000).unwrap();
    refuse(&mut l, &good, "does not follow");
}

#[test]
fn the_target_falls_when_too_many_nodes_are_eligible() {
    let n = net(&[1, 1, 1, 1, 1, 1, 1, 1]);
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    let first = l.target;
    for _ in 0..10 {
        let blk = n.next(&l, &[]);
        l.apply(&blk, T0 + 1_000).unwrap();
    }
    assert!(l.target < first, "8 eligible of a wanted 3");
    let floor = first as f64 * 0.8f64.powi(10) * 0.999;
    assert!(l.target as f64 >= floor, "at most 0.8x per block");
}

#[test]
fn undo_takes_every_kind_of_change_back_with_the_kept_view_and_a_rank_must_wait_its_delay() {
    let n = net(&[1, 2, 3]);
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    let c = l.params.chain;
    let stranger = key();
    let endpoint = "10.0.0.9:16125";
    let consent = crate::consent::sign(
        &stranger,
        &c,
        &Address::from_public_key(&pk(&n.wallet)),
        crate::tx::Tier::Cumulus,
        endpoint,
    );
    let txs = vec![
        Tx::signed(&n.wallet, &c, 0, 5_000, TxBody::AppRegister(spec("web"))),
        Tx::signed(
            &n.wallet,
            &c,
            1,
            5_000,
            TxBody::NodeStart {
                tier: crate::tx::Tier::Cumulus,
                node_key: pk(&stranger),
                endpoint: endpoint.into(),
                consent,
            },
        ),
    ];
    let mut history = vec![l.clone()];
    let mut blocks = Vec::new();
    for i in 0..6 {
        let b = n.next(&l, if i == 2 { &txs } else { &[] });
        let a = l.apply(&b, T0 + 1_000).unwrap();
        blocks.push((b, a.undo));
        history.push(l.clone());
    }
    assert!(l.state.apps.contains_key("web"));
    for (b, undo) in blocks.iter().rev() {
        l.undo(b, undo).unwrap();
        let want = &history[l.height() as usize];
        assert_eq!(
            (&l.tip, l.digest, l.target),
            (&want.tip, want.digest, want.target)
        );
        assert_eq!(
            (&l.state.accounts, &l.state.nodes),
            (&want.state.accounts, &want.state.nodes)
        );
        assert_eq!(
            (&l.state.apps, &l.state.dos, &l.counts),
            (&want.state.apps, &want.state.dos, &want.counts)
        );
        assert_eq!(l.acc, crate::digest::Acc::of(&l.state));
        // The kept placement and useful set come back exactly.
        assert_eq!(l.view, want.view);
        assert_eq!(l.view, assign::View::build(&l.state, &l.params));
    }
    assert!(
        history[3].view.assignments() != history[0].view.assignments(),
        "the app's registration changed the placement that was undone"
    );
    // A record that is not the tip's is refused.
    let e = l.undo(&blocks[3].0, &blocks[3].1).unwrap_err();
    assert!(e.why.contains("not the tip's"), "{e}");

    // Rank 1 waits 1/8 of the slot: with 16 s slots, 2 s. A block it signs with an
    // earlier time is refused, and produce will not make one.
    let mut n = net(&[1, 2, 3]);
    n.genesis.slot_secs = 16;
    let l = Ledger::new(n.genesis.clone()).unwrap();
    let slot = 1;
    let k = n
        .keys
        .iter()
        .find(|k| l.rank(&pk(k), slot) == Some(1))
        .unwrap();
    let start = T0 + 16;
    assert!(l.produce(k, slot, start + 1, &[], 10).is_err());
    let mut b = l.produce(k, slot, start + 2, &[], 10).unwrap();
    assert!(l.clone().apply(&b, start + 100).is_ok());
    b.header.time = start + 1;
    b.header.sign(k);
    let e = l.clone().apply(&b, start + 100).unwrap_err();
    assert!(e.why.contains("before its delay ended"), "{e}");
}

/// The conservation check: at every height, the coins in accounts plus the collateral
/// locked in nodes change by exactly what the block mints (the producer's share, and each
/// tier's share when that tier has a useful node) less what apps pay (burned), through
/// transfers, an app registration, a node's start, stop and refund.
#[test]
fn supply_changes_by_what_each_block_mints_less_app_payments_at_every_height() {
    let mut n = net(&[1, 2, 3]);
    n.genesis.rules.unlock_after = 3;
    let mut l = Ledger::new(n.genesis.clone()).unwrap();
    let c = l.params.chain;
    let supply = |l: &Ledger| -> u128 {
        let coins: u128 = l.state.accounts.values().map(|a| a.balance as u128).sum();
        let locked: u128 = l.state.nodes.values().map(|n| n.collateral as u128).sum();
        coins + locked
    };
    let wallet = Address::from_public_key(&pk(&n.wallet));
    let stranger = key();
    let endpoint = "10.0.0.7:16125";
    let consent = crate::consent::sign(&stranger, &c, &wallet, crate::tx::Tier::Cumulus, endpoint);
    let app = spec("web");
    let app_price = (app.instances as u64) * app.expiry_blocks * l.params.app_price;
    let mut prev = supply(&l);
    for h in 1..=30u64 {
        let nonce = l.state.account(&wallet).nonce;
        let body = match h {
            5 => Some(TxBody::AppRegister(app.clone())),
            7 => Some(TxBody::NodeStart {
                tier: crate::tx::Tier::Cumulus,
                node_key: pk(&stranger),
                endpoint: endpoint.into(),
                consent,
            }),
            9 => Some(TxBody::NodeStop {
                node_key: pk(&stranger),
            }),
            h if h % 3 == 0 => Some(TxBody::Transfer {
                to: Address([h as u8; 20]),
                amount: h * COIN,
            }),
            _ => None,
        };
        let burned = if h == 5 { app_price } else { 0 };
        let txs: Vec<Tx> = body
            .into_iter()
            .map(|b| Tx::signed(&n.wallet, &c, nonce, 5_000, b))
            .collect();
        let useful = l.useful();
        let (producer, shares) = consensus::split(
            consensus::block_reward(h, l.genesis.slot_secs, &l.params),
            &l.params,
        );
        let minted = producer
            + crate::tx::Tier::ALL
                .iter()
                .enumerate()
                .filter(|(_, t)| useful.values().any(|u| u == *t))
                .map(|(i, _)| shares[i])
                .sum::<u64>();
        let b = n.next(&l, &txs);
        assert_eq!(
            b.txs.len(),
            txs.len(),
            "height {h}: every transaction went in"
        );
        l.apply(&b, T0 + 1_000_000).unwrap();
        let now = supply(&l);
        assert_eq!(
            now,
            prev + minted as u128 - burned as u128,
            "height {h}: supply {now}, was {prev}, minted {minted}, burned {burned}"
        );
        prev = now;
    }
    assert!(
        !l.state.nodes.contains_key(&pk(&stranger)),
        "the stopped node left with its collateral"
    );
}
