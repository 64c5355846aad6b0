//! The chain's peer-to-peer wire protocol (tokio, TCP :16125): length-prefixed frames of at
//! most 4 MiB and versioned messages (hello, headers-first sync, blocks, gossip, ping).

pub mod frame;
pub mod msg;

pub use frame::{read_frame, write_frame, FrameError, FrameReader, MAX_FRAME};
pub use msg::{BlockIds, Hello, Msg, PROTOCOL_VERSION};

/// The port peers listen on.
pub const DEFAULT_PORT: u16 = 16125;
