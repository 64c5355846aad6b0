//! Watching for equivocation: every header whose signature this node has checked is noted
//! by (producer, slot); a second, different header of one producer for one slot is
//! evidence. The node signs an `Evidence` transaction with its key (free, like a confirm),
//! puts it in its mempool and gossips it; the block that carries it stops the producer and
//! puts its key on the DoS list. The notes cover the last `KEEP_SLOTS` slots only.

use std::collections::{BTreeMap, HashSet};

use tracing::warn;

use super::{keys_account, lock, Shared};
use crate::block::Header;
use crate::p2p::Msg;
use crate::tx::{PublicKey, Tx, TxBody};

/// How many slots back headers are remembered.
pub const KEEP_SLOTS: u64 = 1_000;
/// The most headers remembered (a bound whatever the slots).
const MAX_NOTES: usize = 20_000;

#[derive(Default)]
pub struct Seen {
    notes: BTreeMap<(u64, PublicKey), Header>,
    reported: HashSet<PublicKey>,
}

impl Seen {
    /// Notes a header whose signature has been checked; returns the evidence when the same
    /// producer signed another header for the slot, the first time for that producer.
    pub fn note(&mut self, h: &Header) -> Option<(Header, Header)> {
        let key = (h.slot, h.producer);
        let found = match self.notes.get(&key) {
            Some(first) if first.hash() != h.hash() => Some((first.clone(), h.clone())),
            Some(_) => return None,
            None => {
                self.notes.insert(key, h.clone());
                None
            }
        };
        let floor = h.slot.saturating_sub(KEEP_SLOTS);
        while self
            .notes
            .first_key_value()
            .is_some_and(|((slot, _), _)| *slot < floor)
            || self.notes.len() > MAX_NOTES
        {
            self.notes.pop_first();
        }
        found.filter(|_| self.reported.insert(h.producer))
    }
}

/// Notes a checked header; on an equivocation, sends the evidence.
pub fn note(s: &Shared, h: &Header) {
    let Some((a, b)) = lock(&s.seen).note(h) else {
        return;
    };
    warn!(
        "producer {} signed two headers for slot {} (heights {} and {}): sending the evidence",
        hex::encode(&a.producer[..8]),
        a.slot,
        a.height,
        b.height
    );
    let body = TxBody::Evidence {
        a: Box::new(a),
        b: Box::new(b),
    };
    let admitted = {
        let l = lock(&s.ledger);
        let mut m = lock(&s.mempool);
        let account = keys_account(&s.cfg.key);
        let nonce = l.state.account(&account).nonce + m.pending_from(&account) as u64;
        let tx = Tx::signed(&s.cfg.key, &l.params.chain, nonce, 0, body);
        m.add(tx, &l)
    };
    match admitted {
        Ok(a) => {
            for t in a.relay {
                s.broadcast(&Msg::Tx(t), None);
            }
        }
        Err(e) => warn!("the evidence was refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer: u8, slot: u64, height: u64) -> Header {
        Header {
            height,
            prev: [0; 32],
            slot,
            time: slot,
            producer: [producer; 32],
            tx_root: [0; 32],
            state_digest: [0; 32],
            signature: [0; 64],
        }
    }

    #[test]
    fn a_second_header_for_a_slot_is_evidence_once_and_old_slots_are_forgotten() {
        let mut s = Seen::default();
        assert!(s.note(&header(1, 10, 5)).is_none());
        assert!(s.note(&header(1, 10, 5)).is_none(), "the same header again");
        assert!(s.note(&header(2, 10, 5)).is_none(), "another producer");
        assert!(s.note(&header(1, 11, 6)).is_none(), "another slot");
        let (a, b) = s.note(&header(1, 10, 6)).expect("evidence");
        assert_eq!((a.height, b.height), (5, 6));
        assert!(s.note(&header(1, 10, 7)).is_none(), "reported once");
        s.note(&header(3, 10 + KEEP_SLOTS + 1, 9));
        assert_eq!(s.notes.len(), 2, "slot 10 is forgotten");
        assert!(
            s.note(&header(2, 10, 8)).is_none(),
            "so nothing to compare with"
        );
    }
}
