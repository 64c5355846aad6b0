//! The node's own work: producing a block when it is useful and eligible in the current
//! slot (after its rank's delay), and sending its confirm, with its workload report, as
//! soon as the lifecycle rules allow one, and only when the owner who registered it is the
//! owner configured for this node.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::{lock, Shared};
use crate::address::Address;
use crate::keys;
use crate::ledger::Ledger;
use crate::p2p::Msg;
use crate::state::NodeStatus;
use crate::tx::{Hash, PublicKey, Tx, TxBody};

const TICK: Duration = Duration::from_millis(50);
const MAX_TXS: usize = 2_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A node's rank, worked out once per tip and slot: a tick that finds both unchanged
/// reads it instead of hashing every useful node again.
#[derive(Debug, Default)]
pub struct RankMemo {
    at: Option<(Hash, u64)>,
    rank: Option<usize>,
}

impl RankMemo {
    /// `node`'s rank in `slot` on `l`'s tip.
    pub fn rank(&mut self, l: &Ledger, node: &PublicKey, slot: u64) -> Option<usize> {
        let at = (l.tip.hash(), slot);
        if self.at != Some(at) {
            self.rank = l.rank(node, slot);
            self.at = Some(at);
        }
        self.rank
    }
}

/// Produces in every slot where this node ranks, once its rank's delay has passed. Each
/// tick runs on tokio's blocking pool: producing applies a block and writes it to the store.
pub async fn produce_loop(s: Arc<Shared>) {
    let memo = Arc::new(std::sync::Mutex::new(RankMemo::default()));
    loop {
        tokio::time::sleep(TICK).await;
        let (s2, m2) = (s.clone(), memo.clone());
        let _ = tokio::task::spawn_blocking(move || tick(&s2, &mut lock(&m2))).await;
    }
}

/// Produces now if this node may: a slot after the tip's, where it ranks and its delay is
/// over.
fn tick(s: &Shared, memo: &mut RankMemo) {
    let me = keys::public(&s.cfg.key);
    let now = now_ms();
    let block = {
        let l = lock(&s.ledger);
        let slot_ms = l.genesis.slot_secs * 1000;
        let slot = l.slot_of(now / 1000);
        let signed = s.signed_slot.load(std::sync::atomic::Ordering::Relaxed);
        if slot <= l.tip.slot || slot <= signed {
            return;
        }
        let Some(rank) = memo.rank(&l, &me, slot) else {
            return;
        };
        let start = l.genesis.time * 1000 + slot * slot_ms;
        let delay = crate::consensus::rank_delay(rank, Duration::from_millis(slot_ms));
        if now < start + delay.as_millis() as u64 {
            return;
        }
        let txs = lock(&s.mempool).txs();
        match l.produce(&s.cfg.key, slot, now / 1000, &txs, MAX_TXS) {
            Ok(b) => {
                s.signed_slot
                    .store(slot, std::sync::atomic::Ordering::Relaxed);
                b
            }
            Err(e) => {
                warn!("cannot produce in slot {slot}: {e}");
                return;
            }
        }
    };
    match s.accept_block(&block) {
        Ok(true) => {
            info!(
                "produced block {} in slot {} with {} transaction(s)",
                block.header.height,
                block.header.slot,
                block.txs.len()
            );
            s.broadcast(&Msg::Block(block), None);
        }
        Ok(false) => {}
        Err(e) => warn!("own block refused: {e}"),
    }
}

/// Why this node sends no confirm for a registration by `registered`, if it sends none: it
/// confirms only for the owner configured for it.
fn not_for_owner(configured: Option<&Address>, registered: &Address) -> Option<String> {
    match configured {
        None => Some(format!(
            "registered by {registered}, but this node has no owner configured (--owner, \
             [chain] owner): it confirms for nobody"
        )),
        Some(owner) if owner != registered => Some(format!(
            "registered by {registered}, not by this node's owner {owner}: it confirms for \
             its owner only"
        )),
        Some(_) => None,
    }
}

/// Sends this node's confirm whenever the rules allow one: right after its start, and
/// again each time the re-confirm wait has passed, with the current workload report; never
/// for a registration by anyone but its configured owner (each reason logged once).
pub async fn confirm_loop(s: Arc<Shared>) {
    let me = keys::public(&s.cfg.key);
    let account = crate::address::Address::from_public_key(&me);
    let mut last_refusal = None;
    let mut said: Option<String> = None;
    if s.cfg.owner.is_none() {
        warn!("no owner configured (--owner, [chain] owner): this node confirms for nobody");
    }
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The nonce of a confirm that is due now, for this node's owner, with none pending.
        let due = |s: &Shared, said: &mut Option<String>| {
            let l = lock(&s.ledger);
            let node = l.state.nodes.get(&me)?;
            if let Some(why) = not_for_owner(s.cfg.owner.as_ref(), &node.owner) {
                if said.as_deref() != Some(why.as_str()) {
                    warn!("no confirm: {why}");
                    *said = Some(why);
                }
                return None;
            }
            let due = match node.status {
                NodeStatus::Started => true,
                NodeStatus::Confirmed { last } => {
                    l.height() + 1 >= last.saturating_add(l.params.reconfirm_min)
                }
                NodeStatus::Stopping { .. } => false,
            };
            let pending = lock(&s.mempool).pending_from(&account) > 0;
            (due && !pending).then(|| (l.state.account(&account).nonce, l.params.chain))
        };
        if due(&s, &mut said).is_none() {
            continue;
        }
        // PID1's report is asked for outside the ledger's lock (its socket may be slow).
        let s2 = s.clone();
        let Ok(workload) = tokio::task::spawn_blocking(move || s2.cfg.workload.report()).await
        else {
            continue;
        };
        // Still due on the tip of now (it may have moved while PID1 answered).
        let Some((nonce, chain)) = due(&s, &mut said) else {
            continue;
        };
        let body = TxBody::NodeConfirm {
            bench_tier: s.cfg.bench_tier,
            bench_report: s.cfg.bench_report.clone(),
            workload,
        };
        let tx = Tx::signed(&s.cfg.key, &chain, nonce, 0, body);
        let admitted = {
            let l = lock(&s.ledger);
            lock(&s.mempool).add(tx, &l)
        };
        match admitted {
            Ok(a) => {
                for t in a.relay {
                    s.broadcast(&Msg::Tx(t), None);
                }
            }
            // Said once, not every half second while it lasts.
            Err(e) if last_refusal.as_ref() != Some(&e) => {
                warn!("own confirm refused: {e}");
                last_refusal = Some(e);
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_confirms_only_for_its_configured_owner() {
        let (mine, theirs) = (Address([1; 20]), Address([2; 20]));
        assert_eq!(not_for_owner(Some(&mine), &mine), None);
        let why = not_for_owner(Some(&mine), &theirs).unwrap();
        assert!(
            why.contains(&format!("not by this node's owner {mine}")),
            "{why}"
        );
        let why = not_for_owner(None, &mine).unwrap();
        assert!(why.contains("no owner configured"), "{why}");
    }
}
