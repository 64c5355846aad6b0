//! OCI images: layers unpacked once, into directories that overlayfs can stack as lowerdirs.
//! (Import into the content-addressed store and instance overlays come next.)

pub mod unpack;
