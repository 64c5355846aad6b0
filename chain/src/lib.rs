//! The chain node: a proof-of-useful-work ledger with a tiered node registry: addresses,
//! the canonical encoding, transactions, blocks, the state and its digest, the ledger's
//! rules, storage on sled with undo records, p2p over tokio and JSON-RPC over HTTP.

pub mod address;
pub mod assign;
pub mod attest;
pub mod block;
pub mod consensus;
pub mod consent;
pub mod digest;
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
