//! Reorganisations: switching the node to another branch only when that branch is better
//! and every block of it has validated. On a copy of the ledger, the blocks above the fork
//! are undone with their stored undo records (no replay from genesis), the other branch's
//! blocks are applied through the ledger's full rules against the state at the fork, and
//! only if the result is better than our chain (longer, or as long with a first block of
//! better standing: see `consensus::prefer`) is it written, in one batch and one flush
//! (`Store::switch`). Nothing is changed before that write, so a refused or interrupted
//! switch leaves the node on its old tip.

use std::collections::BTreeSet;

use crate::block::Block;
use crate::consensus::{self, Standing};
use crate::ledger::{BlockError, Ledger, Undo};
use crate::state::StateKey;
use crate::store::{Store, Switch};

/// Why a branch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a reorganisation from {tip} back to {fork} is deeper than {max}")]
    TooDeep { tip: u64, fork: u64, max: u64 },
    #[error("the branch does not link at height {0}")]
    Unlinked(u64),
    #[error("the branch to height {theirs} is not better than ours to {ours}")]
    NotBetter {
        ours: u64,
        theirs: u64,
        /// The first block of the branch that broke a rule, if one did.
        invalid: Option<BlockError>,
    },
    #[error("the branch is invalid: {0}")]
    Invalid(BlockError),
    #[error("cannot undo block {height}: {why}")]
    Undo { height: u64, why: String },
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl Refused {
    /// The rule a block of the branch broke, for scoring the peer that sent it.
    pub fn invalid(&self) -> Option<&BlockError> {
        match self {
            Refused::Invalid(e) => Some(e),
            Refused::NotBetter { invalid, .. } => invalid.as_ref(),
            _ => None,
        }
    }
}

/// A switch made: the new ledger, the blocks dropped (from the old tip down) and how many
/// of the branch's blocks were applied (a later one that broke a rule is left out, and
/// named).
pub struct Switched {
    pub ledger: Ledger,
    pub dropped: Vec<Block>,
    pub applied: usize,
    pub invalid: Option<BlockError>,
}

/// Where a block stands among the blocks its parent allows (ledger at its parent).
fn standing(at_parent: &Ledger, b: &Block) -> Standing {
    let rank = at_parent
        .rank(&b.header.producer, b.header.slot)
        .unwrap_or(usize::MAX);
    (b.header.slot, rank)
}

/// Takes `current` to the branch `blocks` whose first block's parent is our block at
/// `fork`, if it is better; writes the switch to `store`. `now` refuses future blocks.
pub fn switch(
    store: &Store,
    current: &Ledger,
    fork: u64,
    blocks: &[Block],
    now: u64,
) -> Result<Switched, Refused> {
    let tip = current.height();
    let max = current.params.max_reorg;
    if tip.saturating_sub(fork) > max {
        return Err(Refused::TooDeep { tip, fork, max });
    }
    let their_len = fork + blocks.len() as u64;
    // Cheap checks first: the length and the links.
    if their_len < tip || blocks.is_empty() {
        return Err(Refused::NotBetter {
            ours: tip,
            theirs: their_len,
            invalid: None,
        });
    }
    for (i, b) in blocks.iter().enumerate() {
        let linked = b.header.height == fork + 1 + i as u64
            && (i == 0 || b.header.prev == blocks[i - 1].header.hash());
        if !linked {
            return Err(Refused::Unlinked(fork + 1 + i as u64));
        }
    }
    let mut next = current.clone();
    let mut dropped = Vec::new();
    let mut touched: BTreeSet<StateKey> = BTreeSet::new();
    for h in (fork + 1..=tip).rev() {
        let undo_err = |why: String| Refused::Undo { height: h, why };
        let block = store
            .block_at(h)?
            .ok_or_else(|| undo_err("the block is not stored".into()))?;
        let undo: Undo = store
            .undo(h)?
            .ok_or_else(|| undo_err("its undo record is not kept".into()))?;
        next.undo(&block, &undo)
            .map_err(|e| undo_err(e.why.clone()))?;
        touched.extend(undo.entries.iter().map(|(k, _)| k.clone()));
        dropped.push(block);
    }
    if blocks[0].header.prev != next.tip.hash() {
        return Err(Refused::Unlinked(fork + 1));
    }
    let first_better = match dropped.last() {
        None => true,
        Some(ours) => {
            consensus::prefer(
                tip,
                standing(&next, ours),
                their_len,
                standing(&next, &blocks[0]),
            ) == std::cmp::Ordering::Greater
        }
    };
    if their_len == tip && !first_better {
        return Err(Refused::NotBetter {
            ours: tip,
            theirs: their_len,
            invalid: None,
        });
    }
    let mut added = Vec::new();
    let mut invalid = None;
    for b in blocks {
        match next.apply(b, now) {
            Ok(a) => {
                touched.extend(a.changes.iter().map(|(k, _)| k.clone()));
                added.push((b.clone(), a.undo));
            }
            Err(e) => {
                invalid = Some(e);
                break;
            }
        }
    }
    let new_len = fork + added.len() as u64;
    let better = new_len > tip || (new_len == tip && first_better);
    if added.is_empty() {
        if let Some(e) = invalid {
            return Err(Refused::Invalid(e));
        }
    }
    if !better {
        return Err(Refused::NotBetter {
            ours: tip,
            theirs: new_len,
            invalid,
        });
    }
    store.switch(
        Switch {
            dropped: &dropped,
            added: &added,
        },
        &touched,
        &next,
    )?;
    Ok(Switched {
        ledger: next,
        dropped,
        applied: added.len(),
        invalid,
    })
}

#[cfg(test)]
mod tests;
