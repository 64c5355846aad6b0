//! Signed A/B updates, the parts shared by the host tool (`fluxnode-image`) and the node
//! (`fluxnode`), in a crate of their own so the node's binary links none of the image
//! builder (kernel, cpio, FAT, disk writers): release versions,
//! boot entry names with systemd-boot's try counters, release keys, and the bundle
//! format (a UKI with its version, SHA-256 and an Ed25519 signature over all three).

pub mod bundle;
pub mod entry;
pub mod keys;
pub mod version;
