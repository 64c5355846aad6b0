//! The chain node: a proof-of-useful-work ledger with a tiered node registry.
//!
//! Today: addresses, the first piece every other part (wallet, registry, rewards) builds on.
//! The ledger, storage, p2p and JSON-RPC come with the chain issue.

pub mod address;
