//! Host tool library that builds the fluxnode kernel, initramfs, UKI and GPT disk image.
//!
//! Every artifact is reproducible: the same inputs give the same bytes (sorted cpio entries
//! with mtime 0, fixed GUIDs and volume ids, a fixed filesystem clock).

pub mod artifact;
pub mod configure;
pub mod cpio;
pub mod disk;
pub mod error;
pub mod ext4;
pub mod fat;
pub mod flash;
pub mod gpt;
pub mod kernel;
pub mod oci;
pub mod pe;
pub mod pipeline;
pub mod rootfs;
pub mod uki;
/// The update code shared with the node, from its own crate (`image/update`).
pub use fluxnode_update as update;

pub use error::{Error, Result};

/// The kernel command line of the node, shared by the UKI and QEMU's direct kernel boot.
/// The last `console=` becomes /dev/console, which is where PID1 writes.
pub const DEFAULT_CMDLINE: &str = "console=tty0 console=ttyS0,115200 panic=10 loglevel=4";

/// The metal image's command line. Not yet ttyS1 for IPMI serial-over-LAN: with
/// `console=ttyS1` as well, the metal kernel booted through OVMF printed nothing more after
/// the EFI stub in QEMU (with one serial port and with two); that is still to be found.
pub const METAL_CMDLINE: &str = "console=tty0 console=ttyS0,115200 panic=10 loglevel=4";

/// The version stamped into UKI file names and os-release.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
