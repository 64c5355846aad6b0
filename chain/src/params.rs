//! The chain's rules, fixed in its genesis (`"rules"`): tier collaterals, the node lifecycle
//! windows (Flux's numbers, in blocks), fees and app prices, the eligibility target's window
//! and steps, the reward schedule, the block limits and the deepest reorganisation. Each has
//! today's value as its default (a genesis names only what it changes), and the genesis hash
//! covers every one: two builds whose defaults differ make two chains that refuse each other
//! at the handshake, never one chain that forks. `check` bounds each field by name.

use serde::{Deserialize, Serialize};

use crate::block::{MAX_BLOCK_BYTES, MAX_BLOCK_TXS};
use crate::encode::Writer;
use crate::genesis::GenesisError;
use crate::tx::{Hash, Tier, COIN, MAX_TX_BYTES};

/// The longest lifecycle window a genesis may set, in blocks (2^40: far beyond any chain's
/// life, and far from overflowing a height).
pub const MAX_WINDOW: u64 = 1 << 40;
/// The most units any one amount parameter may be (a billion coins).
pub const MAX_AMOUNT: u64 = 1_000_000_000 * COIN;
/// The deepest reorganisation a genesis may allow.
pub const MAX_REORG_LIMIT: u64 = 10_000;
/// The store keeps at most this many per-slot counts for the target.
pub const MAX_TARGET_WINDOW: u64 = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// The chain these rules belong to: its genesis hash, which every signature covers (see
    /// `Tx::signing_bytes` and `consent`). Set from the genesis, never read from it.
    #[serde(skip)]
    pub chain: Hash,
    /// Whether a confirm must carry a benchmark tier covering the collateral tier (devnets
    /// and tests on small machines waive it, as Flux's testnet does).
    pub enforce_bench: bool,
    /// Collateral locked by a node of each tier, indexed by `Tier as usize - 1`.
    pub collateral: [u64; 3],
    /// A started node must confirm within this many blocks, or it goes on the DoS list.
    pub confirm_window: u64,
    /// How long a node key stays on the DoS list.
    pub dos_blocks: u64,
    /// A confirmed node may confirm again only this many blocks after its last confirm.
    pub reconfirm_min: u64,
    /// A confirmed node expires this many blocks after its last confirm.
    pub expire_after: u64,
    /// A stopped node's collateral unlocks this many blocks after the stop.
    pub unlock_after: u64,
    /// The least fee of every transaction but a node confirm (which may be free).
    pub min_fee: u64,
    /// Units per app instance per block, paid up front for the whole registration.
    pub app_price: u64,
    /// Blocks whose counts of eligible nodes the target averages.
    pub target_window: u64,
    /// The target moves by at most these percentages per block (down, up).
    pub target_step_down_pct: u64,
    pub target_step_up_pct: u64,
    /// The block reward at height 1, in units.
    pub block_reward: u64,
    /// The reward falls by this percentage for each `reward_year_secs` of slots.
    pub reward_cut_pct: u64,
    pub reward_year_secs: u64,
    /// The reward's split in parts of their sum: producer, then Cumulus, Nimbus, Stratus.
    pub reward_shares: [u64; 4],
    /// The most transactions, and encoded bytes, in one block.
    pub max_block_txs: u64,
    pub max_block_bytes: u64,
    /// The deepest reorganisation a node takes.
    pub max_reorg: u64,
    /// The most registered nodes, registered apps, instances of one app, and app instances
    /// on one node (also the longest workload report): the sizes every block and method
    /// walks are bounded by them.
    pub max_nodes: u64,
    pub max_apps: u64,
    pub max_app_instances: u64,
    pub max_apps_per_node: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            chain: [0; 32],
            enforce_bench: true,
            collateral: [1_000 * COIN, 12_500 * COIN, 40_000 * COIN],
            confirm_window: 240,
            dos_blocks: 720,
            reconfirm_min: 40,
            expire_after: 640,
            unlock_after: 100,
            min_fee: 1_000,
            app_price: 10_000,
            target_window: 30,
            target_step_down_pct: 80,
            target_step_up_pct: 125,
            block_reward: 14 * COIN,
            reward_cut_pct: 10,
            reward_year_secs: 365 * 24 * 3600,
            reward_shares: [1, 2, 7, 18],
            max_block_txs: MAX_BLOCK_TXS as u64,
            max_block_bytes: MAX_BLOCK_BYTES as u64,
            max_reorg: 100,
            max_nodes: 100_000,
            max_apps: 10_000,
            max_app_instances: 100,
            max_apps_per_node: 32,
        }
    }
}

fn within(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), GenesisError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(GenesisError::field(
            &format!("rules.{field}"),
            format!("{v} is out of bounds: it must be from {lo} to {hi}"),
        ))
    }
}

impl Params {
    pub fn collateral(&self, tier: Tier) -> u64 {
        self.collateral[tier as usize - 1]
    }

    /// The first field out of its bounds, named.
    pub fn check(&self) -> Result<(), GenesisError> {
        for (i, c) in self.collateral.iter().enumerate() {
            within(&format!("collateral[{i}]"), *c, 1, MAX_AMOUNT)?;
            if i > 0 && *c < self.collateral[i - 1] {
                return Err(GenesisError::field(
                    &format!("rules.collateral[{i}]"),
                    format!(
                        "{c} is less than the tier below's {}",
                        self.collateral[i - 1]
                    ),
                ));
            }
        }
        within("confirm_window", self.confirm_window, 1, MAX_WINDOW)?;
        within("dos_blocks", self.dos_blocks, 1, MAX_WINDOW)?;
        within("expire_after", self.expire_after, 1, MAX_WINDOW)?;
        // A node must be able to confirm again before it expires.
        within("reconfirm_min", self.reconfirm_min, 1, self.expire_after)?;
        within("unlock_after", self.unlock_after, 0, MAX_WINDOW)?;
        within("min_fee", self.min_fee, 0, MAX_AMOUNT)?;
        within("app_price", self.app_price, 1, MAX_AMOUNT)?;
        within("target_window", self.target_window, 1, MAX_TARGET_WINDOW)?;
        within("target_step_down_pct", self.target_step_down_pct, 1, 100)?;
        within("target_step_up_pct", self.target_step_up_pct, 100, 1_000)?;
        within("block_reward", self.block_reward, 0, MAX_AMOUNT)?;
        within("reward_cut_pct", self.reward_cut_pct, 0, 100)?;
        within(
            "reward_year_secs",
            self.reward_year_secs,
            1,
            100 * 365 * 24 * 3600,
        )?;
        for (i, s) in self.reward_shares.iter().enumerate() {
            within(&format!("reward_shares[{i}]"), *s, 0, 1_000)?;
        }
        if self.reward_shares.iter().sum::<u64>() == 0 {
            return Err(GenesisError::field(
                "rules.reward_shares",
                "the shares are all 0",
            ));
        }
        within("max_block_txs", self.max_block_txs, 1, MAX_BLOCK_TXS as u64)?;
        // A block must hold the largest transaction.
        let least = (MAX_TX_BYTES + 4096) as u64;
        within(
            "max_block_bytes",
            self.max_block_bytes,
            least,
            MAX_BLOCK_BYTES as u64,
        )?;
        within("max_reorg", self.max_reorg, 1, MAX_REORG_LIMIT)?;
        within("max_nodes", self.max_nodes, 1, 1_000_000)?;
        within("max_apps", self.max_apps, 1, 1_000_000)?;
        within("max_app_instances", self.max_app_instances, 1, 1_000)?;
        within("max_apps_per_node", self.max_apps_per_node, 1, 1_000)?;
        Ok(())
    }

    /// The canonical encoding the genesis hash covers: every rule but `chain`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.enforce_bench as u8);
        for c in self.collateral {
            w.u64(c);
        }
        w.u64(self.confirm_window)
            .u64(self.dos_blocks)
            .u64(self.reconfirm_min)
            .u64(self.expire_after)
            .u64(self.unlock_after)
            .u64(self.min_fee)
            .u64(self.app_price)
            .u64(self.target_window)
            .u64(self.target_step_down_pct)
            .u64(self.target_step_up_pct)
            .u64(self.block_reward)
            .u64(self.reward_cut_pct)
            .u64(self.reward_year_secs);
        for s in self.reward_shares {
            w.u64(s);
        }
        w.u64(self.max_block_txs)
            .u64(self.max_block_bytes)
            .u64(self.max_reorg)
            .u64(self.max_nodes)
            .u64(self.max_apps)
            .u64(self.max_app_instances)
            .u64(self.max_apps_per_node);
    }
}
