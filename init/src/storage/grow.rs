//! Growing the data partition to the end of a disk that is larger than the image written to
//! it: move the backup GPT to the disk's end, extend the partition's last LBA (1 MiB
//! aligned), rewrite both tables and the protective MBR, and tell the kernel with BLKPG,
//! which works while the partition is mounted. The ext4 inside is grown by resize2fs.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;

use gptman::GPT;

const ALIGN_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GrowError {
    #[error("partition table: {0}")]
    Gpt(#[from] gptman::Error),
    #[error("partition {0} is not in the partition table")]
    NoSuchPartition(u32),
    #[error("partition {0} is not the last one on the disk; it cannot grow")]
    NotLast(u32),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// What a growth changed, in sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    pub sector_size: u64,
    pub start_lba: u64,
    pub old_end_lba: u64,
    pub new_end_lba: u64,
}

impl Growth {
    pub fn new_size_bytes(&self) -> u64 {
        (self.new_end_lba + 1 - self.start_lba) * self.sector_size
    }
}

/// Extends partition `number` to the end of `disk` when there is at least 1 MiB to gain.
/// Returns None when it already fills the disk.
pub fn grow_partition<D: Read + Write + Seek>(
    disk: &mut D,
    number: u32,
) -> Result<Option<Growth>, GrowError> {
    let mut gpt = GPT::find_from(disk)?;
    let ss = gpt.sector_size;
    gpt.header.update_from(disk, ss)?;
    let part = gpt
        .iter()
        .find(|(i, p)| *i == number && p.is_used())
        .map(|(_, p)| p.clone());
    let part = part.ok_or(GrowError::NoSuchPartition(number))?;
    if gpt
        .iter()
        .any(|(i, p)| i != number && p.is_used() && p.starting_lba > part.ending_lba)
    {
        return Err(GrowError::NotLast(number));
    }
    let align = (ALIGN_BYTES / ss).max(1);
    let new_end = (gpt.header.last_usable_lba + 1) / align * align - 1;
    if new_end < part.ending_lba + align {
        return Ok(None);
    }
    gpt[number].ending_lba = new_end;
    gpt.write_into(disk)?;
    GPT::write_protective_mbr_into(disk, ss)?;
    disk.flush()?;
    Ok(Some(Growth {
        sector_size: ss,
        start_lba: part.starting_lba,
        old_end_lba: part.ending_lba,
        new_end_lba: new_end,
    }))
}

#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: libc::c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
nix::ioctl_write_ptr_bad!(blkpg, nix::request_code_none!(0x12, 105), BlkpgIoctlArg);

/// Tells the kernel the partition's new size (BLKPG_RESIZE_PARTITION on the whole disk).
pub fn tell_kernel(disk: &File, number: u32, growth: &Growth) -> io::Result<()> {
    let mut part = BlkpgPartition {
        start: (growth.start_lba * growth.sector_size) as i64,
        length: growth.new_size_bytes() as i64,
        pno: number as libc::c_int,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&mut part as *mut BlkpgPartition).cast(),
    };
    // SAFETY: `arg` points at a live, correctly laid out blkpg_partition for the call.
    unsafe { blkpg(disk.as_raw_fd(), &arg) }
        .map(|_| ())
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gptman::GPTPartitionEntry;

    const MIB: u64 = 1 << 20;

    fn disk_with_two_partitions(size: u64) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut file = f.reopen().unwrap();
        file.set_len(size).unwrap();
        let mut gpt = GPT::new_from(&mut file, 512, [7; 16]).unwrap();
        let entry = |first: u64, last: u64, guid: u8, name: &str| GPTPartitionEntry {
            partition_type_guid: [1; 16],
            unique_partition_guid: [guid; 16],
            starting_lba: first,
            ending_lba: last,
            attribute_bits: 0,
            partition_name: name.into(),
        };
        gpt[1] = entry(2048, 2048 + 16 * 2048 - 1, 2, "ESP");
        let data_end = (gpt.header.last_usable_lba + 1) / 2048 * 2048 - 1;
        gpt[2] = entry(2048 + 16 * 2048, data_end, 3, "FLUXDATA");
        gpt.write_into(&mut file).unwrap();
        GPT::write_protective_mbr_into(&mut file, 512).unwrap();
        f
    }

    #[test]
    fn grown_disk_gets_a_bigger_last_partition_and_a_backup_gpt_at_its_end() {
        let f = disk_with_two_partitions(64 * MIB);
        let mut file = f.reopen().unwrap();
        file.set_len(128 * MIB).unwrap();
        let g = grow_partition(&mut file, 2)
            .unwrap()
            .expect("there is room to grow");
        assert_eq!(g.old_end_lba, 64 * 2048 - 2048 - 1);
        assert_eq!(
            g.new_end_lba,
            128 * 2048 - 2048 - 1,
            "aligned down to 1 MiB before the backup GPT"
        );
        let gpt = GPT::read_from(&mut file, 512).unwrap();
        assert_eq!(gpt.header.backup_lba, 128 * 2048 - 1);
        assert_eq!(gpt[2].ending_lba, g.new_end_lba);
        assert_eq!(
            gpt[1].ending_lba,
            2048 + 16 * 2048 - 1,
            "the ESP is untouched"
        );
        let check = std::process::Command::new("sgdisk")
            .arg("-v")
            .arg(f.path())
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(report.contains("No problems found"), "{report}");
    }

    #[test]
    fn a_second_growth_finds_nothing_to_do() {
        let f = disk_with_two_partitions(64 * MIB);
        let mut file = f.reopen().unwrap();
        assert_eq!(grow_partition(&mut file, 2).unwrap(), None);
        file.set_len(96 * MIB).unwrap();
        assert!(grow_partition(&mut file, 2).unwrap().is_some());
        assert_eq!(grow_partition(&mut file, 2).unwrap(), None);
    }

    #[test]
    fn only_the_last_partition_may_grow() {
        let f = disk_with_two_partitions(64 * MIB);
        let mut file = f.reopen().unwrap();
        file.set_len(128 * MIB).unwrap();
        assert!(matches!(
            grow_partition(&mut file, 1),
            Err(GrowError::NotLast(1))
        ));
        assert!(matches!(
            grow_partition(&mut file, 5),
            Err(GrowError::NoSuchPartition(5))
        ));
    }
}
