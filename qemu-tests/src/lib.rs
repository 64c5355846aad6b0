//! A harness that boots the fluxnode image in QEMU and checks it from outside: over the
//! serial console log, a QMP socket (powerdown, reset, quit), hostfwd ports and the
//! node's JSON-RPC.
//!
//! Tests, `scripts/run-qemu.sh` and `scripts/bench-boot.sh` all start QEMU through
//! [`VmBuilder`], so there is one QEMU command line in the project.

pub mod accel;
pub mod appnode;
pub mod artifacts;
pub mod bench_net;
pub mod bench_runtime;
pub mod disk;
pub mod oci;
pub mod ports;
pub mod qmp;
pub mod registry;
pub mod rpc;
pub mod update;
pub mod vm;

pub use artifacts::Artifacts;
pub use vm::{Boot, Vm, VmBuilder};
