//! The whole image from a kernel and a `fluxnode` binary: initramfs, UKI, disk.

use std::fs;
use std::path::{Path, PathBuf};

use crate::artifact::Artifact;
use crate::disk::DiskSpec;
use crate::error::{IoContext, Result};
use crate::rootfs;
use crate::uki::{self, UkiInputs};

/// Inputs of a full image build.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    pub kernel: PathBuf,
    pub init: PathBuf,
    pub cmdline: String,
    pub version: String,
    pub disk_size: u64,
    /// The disk image's file name (`DISK`, or `METAL_DISK` for the metal kernel's).
    pub disk_name: String,
    /// The release keys file the node trusts for updates (none: it refuses them all).
    pub release_keys: Option<String>,
}

/// File names inside the output directory.
pub const INITRAMFS: &str = "initramfs.cpio.zst";
pub const UKI: &str = "fluxnode.efi";
/// The image for QEMU (virtio drivers only), which CI boots.
pub const DISK: &str = "fluxnode-qemu.img";
/// The image a server owner flashes (the metal kernel: server NICs, HBAs, watchdogs).
pub const METAL_DISK: &str = "fluxnode-metal.img";

/// Writes the initramfs; returns the uncompressed cpio size.
pub fn initramfs(
    init: &Path,
    version: &str,
    release_keys: Option<&str>,
    out: &Path,
) -> Result<u64> {
    let archive = rootfs::build(init, &rootfs::HOST_TOOLS, version, release_keys)?;
    let cpio = archive.to_bytes();
    fs::write(out, rootfs::compress(&cpio)?).at(out)?;
    Ok(cpio.len() as u64)
}

/// Builds initramfs, UKI and disk into `out_dir`, and describes each.
pub fn build_all(inputs: &ImageInputs, out_dir: &Path) -> Result<Vec<Artifact>> {
    fs::create_dir_all(out_dir).at(out_dir)?;
    let initrd = out_dir.join(INITRAMFS);
    initramfs(
        &inputs.init,
        &inputs.version,
        inputs.release_keys.as_deref(),
        &initrd,
    )?;
    let uki_path = out_dir.join(UKI);
    let uki_inputs = UkiInputs {
        stub: uki::DEFAULT_STUB.into(),
        kernel: inputs.kernel.clone(),
        initrd: initrd.clone(),
        cmdline: inputs.cmdline.clone(),
        os_release: rootfs::os_release(&inputs.version),
    };
    uki::build(&uki_inputs, &out_dir.join("uki-sections"), &uki_path)?;
    let disk = out_dir.join(&inputs.disk_name);
    DiskSpec::new(&uki_path, &inputs.version)
        .size(inputs.disk_size)
        .write(&disk)?;
    Ok(vec![
        Artifact::describe("bzImage", &inputs.kernel)?,
        Artifact::describe("initramfs", &initrd)?,
        Artifact::describe("uki", &uki_path)?,
        Artifact::describe("disk", &disk)?,
    ])
}
