//! The chain node: a proof-of-useful-work ledger with a tiered node registry.
//!
//! Today: addresses, the canonical encoding, the transactions, the parameters and the state
//! machine's transaction and lifecycle rules. Blocks, production, rewards, storage (sled),
//! p2p (tokio) and JSON-RPC build on them next.

pub mod address;
pub mod encode;
pub mod params;
pub mod state;
pub mod tx;
