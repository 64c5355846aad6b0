//! Just enough of the PE/COFF format to place new sections after a UEFI stub's last one.

use std::path::Path;

use crate::error::{Error, Result};

/// The facts about a PE image that section placement needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub image_base: u64,
    pub section_alignment: u64,
    /// The first address (relative to `image_base`) after every existing section.
    pub end_rva: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the layout of a PE32+ image.
pub fn layout(bytes: &[u8], path: &Path) -> Result<Layout> {
    let bad = |detail: &str| Error::Pe {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    if bytes.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ header"));
    }
    let pe = u32_at(bytes, 0x3c).ok_or_else(|| bad("truncated DOS header"))? as usize;
    if bytes.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let coff = pe + 4;
    let sections = u16_at(bytes, coff + 2).ok_or_else(|| bad("truncated COFF header"))?;
    let opt_size = u16_at(bytes, coff + 16).ok_or_else(|| bad("truncated COFF header"))?;
    let opt = coff + 20;
    if u16_at(bytes, opt) != Some(0x20b) {
        return Err(bad("not PE32+ (64-bit)"));
    }
    let image_base = u64_at(bytes, opt + 24).ok_or_else(|| bad("truncated optional header"))?;
    let section_alignment =
        u32_at(bytes, opt + 32).ok_or_else(|| bad("truncated optional header"))? as u64;
    if section_alignment == 0 || !section_alignment.is_power_of_two() {
        return Err(bad("section alignment is not a power of two"));
    }
    let table = opt + opt_size as usize;
    let mut end_rva = 0u64;
    for i in 0..sections as usize {
        let s = table + i * 40;
        let vsize = u32_at(bytes, s + 8).ok_or_else(|| bad("truncated section table"))?;
        let vaddr = u32_at(bytes, s + 12).ok_or_else(|| bad("truncated section table"))?;
        end_rva = end_rva.max(vaddr as u64 + vsize as u64);
    }
    Ok(Layout {
        image_base,
        section_alignment,
        end_rva,
    })
}

/// Offsets of the COFF TimeDateStamp and optional-header CheckSum fields.
fn stamp_offsets(bytes: &[u8], path: &Path) -> Result<(usize, usize)> {
    layout(bytes, path)?;
    let pe = u32_at(bytes, 0x3c).unwrap_or(0) as usize;
    let coff = pe + 4;
    Ok((coff + 4, coff + 20 + 64))
}

/// The PE checksum: 16-bit one's-complement-style sum of the file with the CheckSum field
/// taken as zero, plus the file length.
pub fn checksum(bytes: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, pair) in bytes.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_at && at < checksum_at + 4 {
            continue;
        }
        let word = u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]) as u64;
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(bytes.len() as u32)
}

/// Sets the COFF timestamp to 0 (objcopy stamps the current time into PE output, which
/// would make every build differ) and recomputes the checksum.
pub fn clear_timestamp(bytes: &mut [u8], path: &Path) -> Result<()> {
    let (stamp_at, sum_at) = stamp_offsets(bytes, path)?;
    bytes[stamp_at..stamp_at + 4].copy_from_slice(&0u32.to_le_bytes());
    let sum = checksum(bytes, sum_at);
    bytes[sum_at..sum_at + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// Rounds `value` up to a multiple of `align` (a power of two).
pub fn align_up(value: u64, align: u64) -> u64 {
    (value + align - 1) & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_stub_layout_is_read() {
        let path = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        let bytes = std::fs::read(path).expect("systemd-boot-efi is installed by scripts/test.sh");
        let l = layout(&bytes, path).unwrap();
        // Debian 12's stub (systemd 252): its last section, .sdmagic, ends at 0x19134.
        assert!(l.section_alignment.is_power_of_two());
        assert!(l.end_rva > 0x10000 && l.end_rva < 0x100000, "{l:?}");
    }

    #[test]
    fn checksum_matches_what_the_stub_carries() {
        let path = Path::new("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
        let bytes = std::fs::read(path).unwrap();
        let (_, sum_at) = stamp_offsets(&bytes, path).unwrap();
        let stored = u32_at(&bytes, sum_at).unwrap();
        assert_eq!(checksum(&bytes, sum_at), stored);
        let mut copy = bytes.clone();
        clear_timestamp(&mut copy, path).unwrap();
        assert_eq!(
            copy, bytes,
            "the stub is already stamped 0, so nothing changes"
        );
    }

    #[test]
    fn non_pe_input_is_refused_by_name() {
        let err = layout(b"\x7fELF....", Path::new("kernel.elf")).unwrap_err();
        assert_eq!(err.to_string(), "kernel.elf: not a PE image: no MZ header");
    }

    #[test]
    fn alignment_rounds_up_only_when_needed() {
        assert_eq!(align_up(0x1000, 0x1000), 0x1000);
        assert_eq!(align_up(0x1001, 0x1000), 0x2000);
    }
}
