//! What a node keeps per connected peer: its best height, a queue of encoded messages for
//! it bounded in bytes as well as in count (a slow or stalled peer costs us at most
//! `MAX_QUEUED_BYTES`; what does not fit is dropped, and sync asks again), and the credit
//! of replies we asked it for, which the connection lets past its rate limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::debug;

use crate::p2p::{ConnWriter, Msg, Solicited};

/// The most bytes of messages waiting to go to one peer.
pub const MAX_QUEUED_BYTES: usize = 32 << 20;
/// The most messages waiting to go to one peer.
pub const MAX_QUEUED_MSGS: usize = 256;

/// An encoded message, shared between the peers it is broadcast to.
pub type Body = Arc<Vec<u8>>;

/// Checks and encodes a message once; `None` (logged) when a peer would refuse it.
pub fn encode(msg: &Msg) -> Option<Body> {
    match msg.check() {
        Ok(()) => Some(Arc::new(msg.encode())),
        Err(why) => {
            debug!("not sending a {}: {why}", msg.name());
            None
        }
    }
}

/// Store work a peer's requests may cost us, in reads a second (a header is one read, a
/// block `BLOCK_READS`), and as a burst. An honest sync round (500 headers, then 64
/// blocks) costs about 1,000; what is over the budget is not served, and is asked again.
pub const SERVE_READS_PER_SEC: u32 = 20_000;
pub const BLOCK_READS: u32 = 8;

pub struct PeerHandle {
    pub best_height: u64,
    /// Whether the peer dialed us.
    pub inbound: bool,
    /// What its requests may still cost (see `SERVE_READS_PER_SEC`).
    pub serve: crate::p2p::Bucket,
    tx: mpsc::Sender<Body>,
    queued: Arc<AtomicUsize>,
    solicited: Solicited,
}

/// The sending side of a peer's queue, drained by its writer task.
pub struct Outbox {
    rx: mpsc::Receiver<Body>,
    queued: Arc<AtomicUsize>,
}

impl PeerHandle {
    pub fn new(best_height: u64, solicited: Solicited) -> (PeerHandle, Outbox) {
        let (tx, rx) = mpsc::channel(MAX_QUEUED_MSGS);
        let queued = Arc::new(AtomicUsize::new(0));
        let handle = PeerHandle {
            best_height,
            inbound: false,
            serve: crate::p2p::Bucket::new(
                SERVE_READS_PER_SEC,
                SERVE_READS_PER_SEC,
                std::time::Instant::now(),
            ),
            tx,
            queued: queued.clone(),
            solicited,
        };
        (handle, Outbox { rx, queued })
    }

    /// Queues an encoded message that asks for `solicits` replies (see `Msg::solicits`);
    /// false (and nothing queued) when the peer's queue is full.
    pub fn push(&self, body: &Body, solicits: u32) -> bool {
        let len = body.len();
        let fits = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                (q + len <= MAX_QUEUED_BYTES).then_some(q + len)
            })
            .is_ok();
        if !fits {
            return false;
        }
        if self.tx.try_send(body.clone()).is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        self.solicited.asked(solicits);
        true
    }

    /// Queues a message; a request also opens credit for the replies it asks for.
    pub fn send(&self, msg: &Msg) -> bool {
        let Some(body) = encode(msg) else {
            return false;
        };
        self.push(&body, msg.solicits())
    }

    /// Bytes waiting to be sent.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl Outbox {
    /// Sends queued messages until the connection fails or the handle is dropped.
    pub async fn run(mut self, mut writer: ConnWriter) {
        while let Some(body) = self.rx.recv().await {
            let sent = writer.send_body(&body).await;
            self.queued.fetch_sub(body.len(), Ordering::Relaxed);
            if sent.is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_in_bytes_and_requests_open_credit() {
        let credit = Solicited::default();
        let (h, mut out) = PeerHandle::new(0, credit.clone());
        let big: Body = Arc::new(vec![0; MAX_QUEUED_BYTES / 2]);
        assert!(h.push(&big, 0));
        assert!(h.push(&big, 0));
        assert!(
            !h.push(&Arc::new(vec![0; 1]), 0),
            "the byte budget is spent"
        );
        assert_eq!(h.queued_bytes(), MAX_QUEUED_BYTES);
        assert!(out.rx.try_recv().is_ok());
        assert_eq!(credit.owed(), 0);
        let ask = Msg::GetBlocks(crate::p2p::BlockIds::Heights(vec![1, 2, 3]));
        // Still full in bytes until the writer has sent: nothing queued, no credit.
        assert!(!h.send(&ask));
        assert_eq!(credit.owed(), 0);
        out.queued.fetch_sub(big.len(), Ordering::Relaxed);
        assert!(h.send(&ask));
        assert_eq!(credit.owed(), 3);
    }

    #[test]
    fn the_queue_is_bounded_in_count() {
        let (h, _out) = PeerHandle::new(0, Solicited::default());
        let small: Body = Arc::new(vec![0; 8]);
        let queued = (0..MAX_QUEUED_MSGS + 10)
            .filter(|_| h.push(&small, 0))
            .count();
        assert_eq!(queued, MAX_QUEUED_MSGS);
        assert_eq!(h.queued_bytes(), MAX_QUEUED_MSGS * 8);
    }
}
