//! Genesis tests: every field out of bounds is named, unknown fields are refused, missing
//! rules take today's values, and the hash covers every rule.

use super::*;
use crate::ledger::Ledger;
use crate::testnet::net;

/// One edit of a genesis or its rules.
type Change<T> = Box<dyn Fn(&mut T)>;

fn named(g: &Genesis, field: &str) {
    let e = g.check().unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("genesis {field}: ")),
        "{field}: the error names something else: {e}"
    );
    assert!(
        Ledger::new(g.clone()).is_err(),
        "{field}: a ledger was made"
    );
}

#[test]
fn every_field_out_of_bounds_is_named() {
    let good = net(&[1, 2]).genesis;
    good.check().unwrap();
    let cases: Vec<(&str, Change<Genesis>)> = vec![
        ("chain_id", Box::new(|g| g.chain_id = String::new())),
        ("chain_id", Box::new(|g| g.chain_id = "a b".into())),
        ("chain_id", Box::new(|g| g.chain_id = "x".repeat(65))),
        ("time", Box::new(|g| g.time = (1 << 40) + 1)),
        ("slot_secs", Box::new(|g| g.slot_secs = 0)),
        ("slot_secs", Box::new(|g| g.slot_secs = 3_601)),
        ("target", Box::new(|g| g.target = 0)),
        ("want_eligible", Box::new(|g| g.want_eligible = 0)),
        ("want_eligible", Box::new(|g| g.want_eligible = 1_001)),
        (
            "balances[0]",
            Box::new(|g| g.balances[0].0 = "fxnope".into()),
        ),
        (
            "balances[1]",
            Box::new(|g| {
                let a = g.balances[0].0.clone();
                g.balances.push((a, u64::MAX));
            }),
        ),
        (
            "nodes[1]",
            Box::new(|g| g.nodes[1].key = g.nodes[0].key.clone()),
        ),
        ("nodes[0]", Box::new(|g| g.nodes[0].tier = 4)),
        (
            "nodes[0]",
            Box::new(|g| g.nodes[0].endpoint = "e".repeat(1025)),
        ),
        (
            "rules.collateral[0]",
            Box::new(|g| g.rules.collateral[0] = 0),
        ),
        (
            "rules.collateral[2]",
            Box::new(|g| g.rules.collateral[2] = 1),
        ),
        (
            "rules.confirm_window",
            Box::new(|g| g.rules.confirm_window = 0),
        ),
        (
            "rules.dos_blocks",
            Box::new(|g| g.rules.dos_blocks = (1 << 40) + 1),
        ),
        ("rules.expire_after", Box::new(|g| g.rules.expire_after = 0)),
        (
            "rules.reconfirm_min",
            Box::new(|g| g.rules.reconfirm_min = 641),
        ),
        (
            "rules.unlock_after",
            Box::new(|g| g.rules.unlock_after = u64::MAX),
        ),
        ("rules.min_fee", Box::new(|g| g.rules.min_fee = u64::MAX)),
        ("rules.app_price", Box::new(|g| g.rules.app_price = 0)),
        (
            "rules.target_window",
            Box::new(|g| g.rules.target_window = 0),
        ),
        (
            "rules.target_window",
            Box::new(|g| g.rules.target_window = 65),
        ),
        (
            "rules.target_step_down_pct",
            Box::new(|g| g.rules.target_step_down_pct = 101),
        ),
        (
            "rules.target_step_up_pct",
            Box::new(|g| g.rules.target_step_up_pct = 99),
        ),
        (
            "rules.block_reward",
            Box::new(|g| g.rules.block_reward = u64::MAX),
        ),
        (
            "rules.reward_cut_pct",
            Box::new(|g| g.rules.reward_cut_pct = 101),
        ),
        (
            "rules.reward_year_secs",
            Box::new(|g| g.rules.reward_year_secs = 0),
        ),
        (
            "rules.reward_shares[3]",
            Box::new(|g| g.rules.reward_shares[3] = 1_001),
        ),
        (
            "rules.reward_shares",
            Box::new(|g| g.rules.reward_shares = [0; 4]),
        ),
        (
            "rules.max_block_txs",
            Box::new(|g| g.rules.max_block_txs = 0),
        ),
        (
            "rules.max_block_txs",
            Box::new(|g| g.rules.max_block_txs = 4_097),
        ),
        (
            "rules.max_block_bytes",
            Box::new(|g| g.rules.max_block_bytes = 1_000),
        ),
        (
            "rules.max_block_bytes",
            Box::new(|g| g.rules.max_block_bytes = 3 << 20),
        ),
        ("rules.max_reorg", Box::new(|g| g.rules.max_reorg = 0)),
        ("rules.max_reorg", Box::new(|g| g.rules.max_reorg = 10_001)),
    ];
    for (field, change) in cases {
        let mut g = good.clone();
        change(&mut g);
        named(&g, field);
    }
}

#[test]
fn missing_rules_take_today_s_values_and_unknown_fields_are_refused() {
    let g = net(&[1]).genesis;
    let mut v = serde_json::to_value(&g).unwrap();
    v.as_object_mut().unwrap().remove("rules");
    let back = Genesis::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(back.rules, Params::default());
    assert!(
        back.rules.enforce_bench,
        "attestations are enforced unless waived"
    );
    v["rules"] = serde_json::json!({"reconfirm_min": 5});
    let back = Genesis::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(back.rules.reconfirm_min, 5);
    assert_eq!(back.rules.expire_after, 640);
    v["rules"] = serde_json::json!({"reconfirm_mni": 5});
    let e = Genesis::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("unknown field `reconfirm_mni`"),
        "{e}"
    );
    v["rules"] = serde_json::json!({});
    v["confirm_window"] = serde_json::json!(8);
    let e = Genesis::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("unknown field `confirm_window`"),
        "{e}"
    );
    v.as_object_mut().unwrap().remove("confirm_window");
    v["slot_secs"] = serde_json::json!(0);
    let e = Genesis::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().starts_with("genesis slot_secs: "), "{e}");
    let d = Params::default();
    assert_eq!(
        (
            d.target_window,
            d.max_reorg,
            d.block_reward,
            d.reward_cut_pct
        ),
        (30, 100, 14 * crate::tx::COIN, 10)
    );
}

#[test]
fn the_hash_covers_every_rule_and_the_params_carry_it() {
    let g = net(&[1]).genesis;
    let changes: Vec<Change<Params>> = vec![
        Box::new(|p| p.enforce_bench ^= true),
        Box::new(|p| p.collateral[2] += 1),
        Box::new(|p| p.confirm_window += 1),
        Box::new(|p| p.dos_blocks += 1),
        Box::new(|p| p.reconfirm_min += 1),
        Box::new(|p| p.expire_after += 1),
        Box::new(|p| p.unlock_after += 1),
        Box::new(|p| p.min_fee += 1),
        Box::new(|p| p.app_price += 1),
        Box::new(|p| p.target_window += 1),
        Box::new(|p| p.target_step_down_pct += 1),
        Box::new(|p| p.target_step_up_pct += 1),
        Box::new(|p| p.block_reward += 1),
        Box::new(|p| p.reward_cut_pct += 1),
        Box::new(|p| p.reward_year_secs += 1),
        Box::new(|p| p.reward_shares[0] += 1),
        Box::new(|p| p.max_block_txs -= 1),
        Box::new(|p| p.max_block_bytes -= 1),
        Box::new(|p| p.max_reorg += 1),
    ];
    let mut seen = BTreeSet::from([g.hash()]);
    for change in changes {
        let mut other = g.clone();
        change(&mut other.rules);
        assert!(seen.insert(other.hash()), "a rule the hash misses");
    }
    assert_eq!(g.params().chain, g.hash());
    assert_eq!(Ledger::new(g.clone()).unwrap().params.chain, g.hash());
}
