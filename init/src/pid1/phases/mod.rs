//! PID1's boot phases, one module each, in the order they run (see `pid1::run`).

pub mod bench;
pub mod config;
pub mod early;
pub mod network;
pub mod services;
pub mod storage;
pub mod update;
