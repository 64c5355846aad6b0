//! The chain node: a proof-of-useful-work ledger with a tiered node registry.
//!
//! Today: addresses, the canonical encoding, transactions, blocks (signed headers, merkle
//! root), the parameters and the state machine's transaction and lifecycle rules.
//! Production, rewards, storage (sled), p2p (tokio) and JSON-RPC build on them next.

pub mod address;
pub mod assign;
pub mod attest;
pub mod block;
pub mod consensus;
pub mod consent;
pub mod encode;
pub mod entry;
pub mod genesis;
pub mod http;
pub mod keys;
pub mod ledger;
pub mod mempool;
pub mod node;
pub mod p2p;
pub mod params;
pub mod rpc;
pub mod state;
pub mod store;
#[cfg(test)]
mod testnet;
pub mod tx;
