//! What the node offers to workloads.
//!
//! Today: the cgroup v2 hierarchy setup PID1 needs at boot, and the PID1 control protocol. Later issues add the hardware
//! benchmark, OCI images and bundles, and the container lifecycle on libcontainer.

pub mod bench;
pub mod cgroup;
pub mod control;
pub mod image;
pub mod spec;
