//! What the node offers to workloads: the cgroup v2 hierarchy PID1 sets up at boot, the
//! hardware benchmark, OCI images and bundles, the container lifecycle on libcontainer
//! under a seccomp allowlist, cgroup accounting and admission, the PID1 control protocol,
//! and durable writes for every file the node keeps on /data.

pub mod accounting;
pub mod admission;
pub mod apps;
pub mod bench;
pub mod cgroup;
pub mod container;
pub mod control;
pub mod durable;
pub mod image;
pub mod net;
pub mod quota;
pub mod seccomp;
pub mod spec;
pub mod user;
