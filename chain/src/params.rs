//! The chain's parameters, fixed in its genesis: tier collaterals, the node lifecycle windows
//! (Flux's numbers, in blocks), fees and app prices.

use crate::tx::{Tier, COIN};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
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
    /// Whether a confirm must carry a benchmark tier covering the collateral tier (devnets
    /// and tests on small machines waive it, as Flux's testnet does).
    pub enforce_bench: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            collateral: [1_000 * COIN, 12_500 * COIN, 40_000 * COIN],
            confirm_window: 240,
            dos_blocks: 720,
            reconfirm_min: 40,
            expire_after: 640,
            unlock_after: 100,
            min_fee: 1_000,
            app_price: 10_000,
            enforce_bench: true,
        }
    }
}

impl Params {
    pub fn collateral(&self, tier: Tier) -> u64 {
        self.collateral[tier as usize - 1]
    }
}
