//! The GUID partition table of the node disk, written with gptman. Every GUID is fixed so
//! the same inputs give the same bytes.

use std::fs::File;
use std::path::Path;

use gptman::{GPTPartitionEntry, GPT};

use crate::error::{Error, Result};

pub const SECTOR: u64 = 512;
/// Partitions start on 1 MiB boundaries.
pub const ALIGN_SECTORS: u64 = 2048;

pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const LINUX_DATA_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
pub const DISK_GUID: &str = "8F1D3C2A-6B5E-4A7D-9C0B-F1F1F1F1F100";
pub const ESP_GUID: &str = "8F1D3C2A-6B5E-4A7D-9C0B-F1F1F1F1F101";
pub const DATA_GUID: &str = "8F1D3C2A-6B5E-4A7D-9C0B-F1F1F1F1F102";

/// Encodes a GUID's text form the way GPT stores it (first three fields little-endian).
pub fn guid(text: &str) -> Result<[u8; 16]> {
    let bad = || Error::Layout(format!("{text:?} is not a GUID"));
    let hexits: String = text.chars().filter(|c| *c != '-').collect();
    if hexits.len() != 32 || text.len() != 36 {
        return Err(bad());
    }
    let mut raw = [0u8; 16];
    hex::decode_to_slice(&hexits, &mut raw).map_err(|_| bad())?;
    raw[0..4].reverse();
    raw[4..6].reverse();
    raw[6..8].reverse();
    Ok(raw)
}

/// One partition to write: name, type, unique GUID and inclusive LBA range.
#[derive(Debug, Clone)]
pub struct Partition {
    pub name: &'static str,
    pub type_guid: &'static str,
    pub unique_guid: &'static str,
    pub first_lba: u64,
    pub last_lba: u64,
}

/// The last LBA a partition may use on a disk of `size` bytes (before the backup GPT).
pub fn last_usable_lba(size: u64) -> u64 {
    size / SECTOR - 34
}

/// Writes a protective MBR and the primary and backup GPT for `parts` into `file`.
pub fn write(file: &mut File, path: &Path, parts: &[Partition]) -> Result<()> {
    let gpt_err = |e: gptman::Error| Error::Layout(format!("{}: {e}", path.display()));
    let mut gpt = GPT::new_from(file, SECTOR, guid(DISK_GUID)?).map_err(gpt_err)?;
    gpt.align = ALIGN_SECTORS;
    for (i, p) in parts.iter().enumerate() {
        gpt[i as u32 + 1] = GPTPartitionEntry {
            partition_type_guid: guid(p.type_guid)?,
            unique_partition_guid: guid(p.unique_guid)?,
            starting_lba: p.first_lba,
            ending_lba: p.last_lba,
            attribute_bits: 0,
            partition_name: p.name.into(),
        };
    }
    gpt.write_into(file).map_err(gpt_err)?;
    GPT::write_protective_mbr_into(file, SECTOR).map_err(gpt_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stored_mixed_endian() {
        let g = guid(ESP_TYPE).unwrap();
        assert_eq!(hex::encode(g), "28732ac11ff8d211ba4b00a0c93ec93b");
        assert!(guid("not-a-guid").is_err());
    }
}
