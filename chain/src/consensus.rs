//! Who may produce a block, when, and which chain wins. A slot is
//! `(time - genesis time) / slot length`. A useful node's eligibility hash for a slot is
//! SHA-256(node key || previous block hash || slot); it is eligible when the hash's first 8
//! bytes (big-endian) are under the target. Eligible nodes rank by hash, and rank r waits
//! r x slot/8. The target moves toward a set number of eligible nodes per slot, averaged
//! over the genesis' window of blocks (30 by default), by at most its steps per block
//! (0.8x-1.25x). The block reward is the genesis' (14 coins), cut by its percentage (10%)
//! each year. Fork choice: the longer chain, then the first differing block's slot and
//! rank; never a reorganisation deeper than the genesis allows (100). Every number
//! that decides what is valid comes from the genesis rules (`Params`), never from the build.

use std::time::Duration;

use ring::digest::{Context, SHA256};

use crate::params::Params;
use crate::tx::{Hash, PublicKey};

/// The slot that `time` (unix seconds) falls in.
pub fn slot_of(time: u64, genesis_time: u64, slot_secs: u64) -> u64 {
    time.saturating_sub(genesis_time) / slot_secs.max(1)
}

pub fn eligibility_hash(node: &PublicKey, prev: &Hash, slot: u64) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(node);
    c.update(prev);
    c.update(&slot.to_le_bytes());
    c.finish().as_ref().try_into().expect("32 bytes")
}

fn lead(h: &Hash) -> u64 {
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

pub fn is_eligible(hash: &Hash, target: u64) -> bool {
    lead(hash) < target
}

/// How long a node of rank `rank` waits into its slot before producing.
pub fn rank_delay(rank: usize, slot: Duration) -> Duration {
    slot * rank as u32 / 8
}

/// The eligible nodes of a slot, best first, with their hashes.
pub fn ranking<'a>(
    useful: impl IntoIterator<Item = &'a PublicKey>,
    prev: &Hash,
    slot: u64,
    target: u64,
) -> Vec<(PublicKey, Hash)> {
    let mut r: Vec<(PublicKey, Hash)> = useful
        .into_iter()
        .map(|k| (*k, eligibility_hash(k, prev, slot)))
        .filter(|(_, h)| is_eligible(h, target))
        .collect();
    r.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    r
}

/// The next target from the last blocks' counts of eligible nodes (a missed slot counts as
/// none): toward `want` eligible nodes per slot, moving at most the rules' steps.
pub fn next_target(target: u64, counts: &[u32], want: u32, p: &Params) -> u64 {
    if counts.is_empty() {
        return target;
    }
    let t = target.max(1) as u128;
    let lowest = t * p.target_step_down_pct as u128 / 100;
    let highest = t * p.target_step_up_pct as u128 / 100;
    let sum: u128 = counts.iter().map(|c| *c as u128).sum();
    // target * want * n / sum, clamped; sum 0 means the most a step allows.
    let wanted = (t * want as u128 * counts.len() as u128)
        .checked_div(sum)
        .unwrap_or(highest);
    wanted.clamp(lowest, highest).min(u64::MAX as u128) as u64
}

/// The block reward at `height`: the rules' reward, cut by their percentage for each year
/// of blocks (at most 200 cuts: the count of years is bounded, the loop too).
pub fn block_reward(height: u64, slot_secs: u64, p: &Params) -> u64 {
    let per_year = (p.reward_year_secs / slot_secs.max(1)).max(1);
    let years = height / per_year;
    let keep = 100 - p.reward_cut_pct.min(100) as u128;
    let mut r = p.block_reward as u128;
    for _ in 0..years.min(200) {
        r = r * keep / 100;
    }
    r as u64
}

/// The reward's split by the rules' shares: the producer's part, then Cumulus, Nimbus and
/// Stratus (by default 1, 2, 7 and 18 of 28: 0.5, 1, 3.5 and 9 of every 14 coins).
pub fn split(reward: u64, p: &Params) -> (u64, [u64; 3]) {
    let total: u128 = p
        .reward_shares
        .iter()
        .map(|s| *s as u128)
        .sum::<u128>()
        .max(1);
    let part = |i: usize| (reward as u128 * p.reward_shares[i] as u128 / total) as u64;
    (part(0), [part(1), part(2), part(3)])
}

/// Where a branch's first block stands among the blocks its parent allows: its slot, then
/// its producer's eligibility rank in that slot. Neither can be ground by the producer: the
/// rank follows from the parent's hash, the slot and the producer's key.
pub type Standing = (u64, usize);

/// Fork choice between two branches from one parent (Less: `a` is preferred): more blocks
/// wins; at equal length the branch whose first block has the better standing (the earlier
/// slot, then the better rank) wins, and a tie keeps the branch a node already has.
pub fn prefer(a_len: u64, a_first: Standing, b_len: u64, b_first: Standing) -> std::cmp::Ordering {
    b_len.cmp(&a_len).then(a_first.cmp(&b_first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::COIN;

    #[test]
    fn slots_count_from_genesis() {
        assert_eq!(slot_of(1_000, 1_000, 30), 0);
        assert_eq!(slot_of(1_029, 1_000, 30), 0);
        assert_eq!(slot_of(1_030, 1_000, 30), 1);
        assert_eq!(slot_of(999, 1_000, 30), 0, "before genesis is slot 0");
    }

    #[test]
    fn eligibility_depends_on_node_block_and_slot_and_ranks_order_by_hash() {
        let prev = [1; 32];
        let a = eligibility_hash(&[1; 32], &prev, 5);
        assert_ne!(a, eligibility_hash(&[2; 32], &prev, 5));
        assert_ne!(a, eligibility_hash(&[1; 32], &[2; 32], 5));
        assert_ne!(a, eligibility_hash(&[1; 32], &prev, 6));
        let nodes: Vec<PublicKey> = (1..=20u8).map(|i| [i; 32]).collect();
        let all = ranking(&nodes, &prev, 5, u64::MAX);
        assert_eq!(all.len(), 20);
        assert!(all.windows(2).all(|w| w[0].1 <= w[1].1));
        let some = ranking(&nodes, &prev, 5, u64::MAX / 4);
        assert!(some.len() < 20, "a lower target admits fewer");
        assert!(ranking(&nodes, &prev, 5, 0).is_empty());
        assert_eq!(rank_delay(0, Duration::from_secs(8)), Duration::ZERO);
        assert_eq!(
            rank_delay(3, Duration::from_secs(8)),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn the_target_moves_at_most_a_quarter_per_block() {
        let p = Params::default();
        let next_target = |t, c: &[u32], w| next_target(t, c, w, &p);
        let t = 1_000_000;
        assert_eq!(next_target(t, &[3; 30], 3), t, "on target");
        assert_eq!(
            next_target(t, &[30; 30], 3),
            t * 4 / 5,
            "too many: clamped to 0.8x"
        );
        assert_eq!(next_target(t, &[0; 30], 3), t * 5 / 4, "none: 1.25x");
        assert_eq!(
            next_target(t, &[4; 30], 3),
            750_000 + 50_000,
            "0.75x clamped to 0.8x"
        );
        assert_eq!(
            next_target(t, &[2; 30], 3),
            1_250_000,
            "1.5x clamped to 1.25x"
        );
        assert_eq!(
            next_target(u64::MAX, &[0; 30], 3),
            u64::MAX,
            "never overflows"
        );
    }

    #[test]
    fn the_reward_falls_ten_percent_a_year_and_splits_by_tier() {
        let p = Params::default();
        let per_year = 365 * 24 * 3600 / 30;
        assert_eq!(block_reward(0, 30, &p), 14 * COIN);
        assert_eq!(block_reward(per_year - 1, 30, &p), 14 * COIN);
        assert_eq!(block_reward(per_year, 30, &p), 1_260_000_000);
        let (producer, tiers) = split(14 * COIN, &p);
        assert_eq!(producer, COIN / 2);
        assert_eq!(tiers, [COIN, 350_000_000, 9 * COIN]);
    }

    #[test]
    fn the_schedule_is_the_rules_and_today_s_numbers_are_their_defaults() {
        // The old build constants, written out: the defaults must give the same numbers.
        let p = Params::default();
        for reward in [0, 1, 27, 28, 29, 14 * COIN, 13 * COIN + 7, u32::MAX as u64] {
            let old = (
                reward / 28,
                [reward * 2 / 28, reward * 7 / 28, reward * 18 / 28],
            );
            assert_eq!(split(reward, &p), old, "{reward}");
        }
        let mut old = 14 * COIN;
        for year in 0..250u64 {
            assert_eq!(block_reward(year * 1_051_200, 30, &p), old, "year {year}");
            if year < 200 {
                old = old * 9 / 10;
            }
        }
        for t in [1, 5, 1_000_003, u64::MAX / 3, u64::MAX] {
            for counts in [[0u32; 30], [1; 30], [9; 30]] {
                let tt = t as u128;
                let want = (tt * 3 * 30).checked_div(counts.iter().map(|c| *c as u128).sum());
                let old = want
                    .unwrap_or(tt * 5 / 4)
                    .clamp(tt * 4 / 5, tt * 5 / 4)
                    .min(u64::MAX as u128) as u64;
                assert_eq!(next_target(t, &counts, 3, &p), old);
            }
        }
        let rules = Params {
            block_reward: 100,
            reward_cut_pct: 50,
            reward_year_secs: 10,
            reward_shares: [1, 1, 1, 1],
            target_step_up_pct: 200,
            ..Params::default()
        };
        assert_eq!(block_reward(0, 1, &rules), 100);
        assert_eq!(block_reward(10, 1, &rules), 50);
        assert_eq!(split(100, &rules), (25, [25, 25, 25]));
        assert_eq!(next_target(100, &[0; 3], 3, &rules), 200);
    }

    #[test]
    fn the_longer_chain_wins_then_the_earlier_slot_then_the_better_rank() {
        use std::cmp::Ordering::*;
        assert_eq!(prefer(10, (9, 5), 9, (1, 0)), Less, "a is longer: a first");
        assert_eq!(prefer(10, (4, 0), 10, (5, 0)), Less, "the earlier slot");
        assert_eq!(prefer(10, (5, 2), 10, (5, 1)), Greater, "the better rank");
        assert_eq!(prefer(10, (5, 1), 10, (5, 1)), Equal);
    }
}
