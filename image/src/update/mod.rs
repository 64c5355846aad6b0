//! Signed A/B updates, the parts shared by the host tool and the node: release versions,
//! boot entry names with systemd-boot's try counters, release keys, and the bundle
//! format (a UKI with its version, SHA-256 and an Ed25519 signature over all three).

pub mod bundle;
pub mod entry;
pub mod keys;
pub mod version;
