//! What the node offers to workloads.
//!
//! Today: the cgroup v2 hierarchy setup PID1 needs at boot. Later issues add the hardware
//! benchmark, OCI images and bundles, and the container lifecycle on libcontainer.

pub mod cgroup;
