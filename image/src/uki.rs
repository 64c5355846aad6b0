//! The unified kernel image: systemd's `linuxx64.efi.stub` with `.osrel`, `.cmdline`,
//! `.linux` and `.initrd` added by objcopy, each at the page-aligned address after the
//! previous one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{run_tool, IoContext, Result};
use crate::pe;

const PAGE: u64 = 4096;

pub const DEFAULT_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// Everything a UKI is made of.
#[derive(Debug, Clone)]
pub struct UkiInputs {
    pub stub: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub os_release: String,
}

/// Builds the UKI at `out`. `work` holds the small section files objcopy reads.
pub fn build(inputs: &UkiInputs, work: &Path, out: &Path) -> Result<()> {
    let stub = fs::read(&inputs.stub).at(&inputs.stub)?;
    let layout = pe::layout(&stub, &inputs.stub)?;
    fs::create_dir_all(work).at(work)?;
    let osrel = work.join("osrel");
    let cmdline = work.join("cmdline");
    fs::write(&osrel, &inputs.os_release).at(&osrel)?;
    fs::write(&cmdline, &inputs.cmdline).at(&cmdline)?;
    let sections: [(&str, &Path); 4] = [
        (".osrel", &osrel),
        (".cmdline", &cmdline),
        (".linux", &inputs.kernel),
        (".initrd", &inputs.initrd),
    ];
    let mut cmd = Command::new("objcopy");
    // Page alignment, or the stub's own section alignment when that is coarser.
    let align = layout.section_alignment.max(PAGE);
    let mut next = pe::align_up(layout.end_rva, align);
    for (name, file) in sections {
        let size = fs::metadata(file).at(file)?.len();
        cmd.arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={:#x}", layout.image_base + next));
        next = pe::align_up(next + size, align);
    }
    cmd.arg(&inputs.stub).arg(out);
    run_tool(&mut cmd)?;
    let mut image = fs::read(out).at(out)?;
    pe::clear_timestamp(&mut image, out)?;
    fs::write(out, image).at(out)
}
