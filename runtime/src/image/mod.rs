//! OCI images: layers unpacked once, into directories that overlayfs can stack as lowerdirs.
//! The store imports OCI image layouts by digest. (oci-archive tarballs and instance
//! overlays come next.)

pub mod store;
pub mod unpack;
