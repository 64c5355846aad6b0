//! The parts of the `fluxnode` binary that read untrusted input, as a library so the fuzz
//! targets in init/fuzz can reach them: node configuration (the config file and the kernel
//! command line) and networking (the DHCP client and its frames). The binary uses them
//! from here.

pub use fluxnode_config as config;
pub mod net;
