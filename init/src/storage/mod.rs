//! The data partition: find FLUXDATA by GPT label, check it, mount it at /data, grow it to
//! the end of the disk on first boot (the node key kept there is `chain::keys`). These are plain functions
//! over devices and files, so host tests can run them on disk image files; PID1's storage
//! phase strings them together.

pub mod ext4;
pub mod find;
pub mod grow;
