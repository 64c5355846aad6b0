//! The chain's peer-to-peer wire protocol (tokio, TCP :16125): length-prefixed frames of at
//! most 4 MiB, versioned messages (hello, headers-first sync, blocks, gossip, ping), per-peer
//! connections with a checked handshake and bounded receiving, and misbehaviour scores that
//! ban peers for a while.

pub mod bucket;
pub mod conn;
pub mod frame;
pub mod msg;
pub mod score;
#[cfg(test)]
mod tests;

pub use bucket::Bucket;
pub use conn::{Conn, ConnError, ConnErrorKind, ConnReader, ConnWriter, Limits, Solicited};
pub use frame::{read_frame, write_frame, FrameError, FrameReader, MAX_FRAME};
pub use msg::{is_reply, BlockIds, Hello, Msg, PROTOCOL_VERSION};
pub use score::{Ban, Misbehaviour, ScoreConfig, Scores};

/// The port peers listen on.
pub const DEFAULT_PORT: u16 = 16125;
