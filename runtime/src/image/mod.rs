//! OCI images: layers unpacked once, into directories that overlayfs can stack as lowerdirs.
//! The store imports OCI image layouts and oci-archive tarballs by digest. (Instance
//! overlays come next.)

pub mod store;
pub mod unpack;
