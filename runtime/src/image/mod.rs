//! OCI images: layers unpacked once, into directories that overlayfs can stack as lowerdirs.
//! The store imports OCI image layouts and oci-archive tarballs by digest; an instance is an
//! overlay of its image's layers with an upperdir of its own.

pub mod config;
pub mod instance;
pub mod pull;
pub mod store;
pub mod unpack;
