//! A FAT32 writer for the EFI system partition: boot sector, FSInfo, two FATs and a tree of
//! directories and files, written in one pass into a region of a file. Every timestamp is
//! 1980-01-01 00:00 (a valid FAT date), entries are sorted, and short names are generated
//! the same way each time, so the same files give the same bytes.
//!
//! Written here because fatfs 0.3.6 (the crates.io release) puts long-name entries in front
//! of `.` and `..` and stamps the invalid date 0, which UEFI firmware rejects when
//! systemd-boot renames a UKI for boot counting.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};

use crate::error::{Error, Result};

const SECTOR: u64 = 512;
const RESERVED: u64 = 32;
const FATS: u64 = 2;
const ENTRY: usize = 32;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;
/// 1980-01-01: year 0 (1980), month 1, day 1.
const DATE: u16 = (1 << 5) | 1;
const END_OF_CHAIN: u32 = 0x0FFF_FFFF;

enum Node {
    Dir(BTreeMap<String, Node>),
    File(Vec<u8>),
}

/// Volume settings and the files to put on it (paths with `/`, no leading slash).
pub struct FatSpec<'a> {
    pub volume_id: u32,
    pub label: &'a str,
    pub files: &'a [(String, Vec<u8>)],
}

fn bad(msg: String) -> Error {
    Error::Layout(format!("FAT: {msg}"))
}

fn tree(files: &[(String, Vec<u8>)]) -> Result<BTreeMap<String, Node>> {
    let mut root = BTreeMap::new();
    for (path, data) in files {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let (name, dirs) = parts
            .split_last()
            .ok_or_else(|| bad(format!("empty path {path:?}")))?;
        let mut dir = &mut root;
        for d in dirs {
            let node = dir
                .entry(d.to_string())
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            dir = match node {
                Node::Dir(children) => children,
                Node::File(_) => return Err(bad(format!("{path}: {d} is a file"))),
            };
        }
        dir.insert(name.to_string(), Node::File(data.clone()));
    }
    Ok(root)
}

const SHORT_OK: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~";

fn short_part(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| SHORT_OK.contains(*c))
        .take(max)
        .collect()
}

/// The 8.3 name for `name`, and whether a long name must go with it.
fn short_name(name: &str, taken: &[[u8; 11]]) -> ([u8; 11], bool) {
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let fits = base.len() <= 8
        && ext.len() <= 3
        && short_part(base, 8) == base
        && short_part(ext, 3) == ext
        && !base.is_empty();
    let pack = |b: &str, e: &str| {
        let mut raw = [b' '; 11];
        raw[..b.len()].copy_from_slice(b.as_bytes());
        raw[8..8 + e.len()].copy_from_slice(e.as_bytes());
        raw
    };
    if fits {
        return (pack(base, ext), false);
    }
    let (b, e) = (short_part(base, 8), short_part(ext, 3));
    for n in 1..1_000_000u32 {
        let tail = format!("~{n}");
        let stem: String = b.chars().take(8 - tail.len()).collect();
        let raw = pack(&format!("{stem}{tail}"), &e);
        if !taken.contains(&raw) {
            return (raw, true);
        }
    }
    (pack("NONAME~1", &e), true)
}

fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, b| (sum >> 1 | (sum & 1) << 7).wrapping_add(*b))
}

fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; ENTRY]> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    if !units.len().is_multiple_of(13) {
        units.push(0);
    }
    while !units.len().is_multiple_of(13) {
        units.push(0xFFFF);
    }
    let count = units.len() / 13;
    let sum = lfn_checksum(short);
    (0..count)
        .rev()
        .map(|i| {
            let mut e = [0u8; ENTRY];
            e[0] = (i as u8 + 1) | if i == count - 1 { 0x40 } else { 0 };
            e[11] = ATTR_LFN;
            e[13] = sum;
            let chunk = &units[i * 13..i * 13 + 13];
            let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            for (u, at) in chunk.iter().zip(offsets) {
                e[at..at + 2].copy_from_slice(&u.to_le_bytes());
            }
            e
        })
        .collect()
}

fn short_entry(name: &[u8; 11], attr: u8, cluster: u32, size: u32) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    for at in [16, 18, 24] {
        e[at..at + 2].copy_from_slice(&DATE.to_le_bytes());
    }
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

/// Clusters laid out so far: data per first cluster, and the FAT.
struct Layout {
    cluster_bytes: u64,
    next: u32,
    fat: Vec<u32>,
    data: Vec<(u32, Vec<u8>)>,
}

impl Layout {
    fn clusters_for(&self, len: usize) -> u32 {
        (len as u64).div_ceil(self.cluster_bytes) as u32
    }

    fn alloc(&mut self, bytes: Vec<u8>, min_clusters: u32) -> Result<u32> {
        let n = self.clusters_for(bytes.len()).max(min_clusters);
        if n == 0 {
            return Ok(0);
        }
        let first = self.next;
        if (first + n) as usize > self.fat.len() {
            return Err(bad("the files do not fit".into()));
        }
        for c in first..first + n {
            self.fat[c as usize] = if c + 1 == first + n {
                END_OF_CHAIN
            } else {
                c + 1
            };
        }
        self.next += n;
        self.data.push((first, bytes));
        Ok(first)
    }

    /// Lays out a directory whose first cluster is `me` (already reserved when `me` is set).
    fn dir(
        &mut self,
        children: &BTreeMap<String, Node>,
        me: u32,
        parent: u32,
        label: Option<&str>,
    ) -> Result<()> {
        let mut shorts: Vec<[u8; 11]> = Vec::new();
        let mut names = Vec::new();
        for name in children.keys() {
            let (short, long) = short_name(name, &shorts);
            shorts.push(short);
            names.push((name, short, long));
        }
        let lfn_count: usize = names
            .iter()
            .filter(|n| n.2)
            .map(|n| n.0.encode_utf16().count() / 13 + 1)
            .sum();
        let count = children.len() + lfn_count + 2 + usize::from(label.is_some());
        let clusters = self.clusters_for(count * ENTRY).max(1);
        if me == 0 {
            return Err(bad("directory without a cluster".into()));
        }
        // The directory's own clusters come first, then its children.
        let mut bytes = vec![0u8; (clusters as u64 * self.cluster_bytes) as usize];
        for c in me + 1..me + clusters {
            self.fat[c as usize - 1] = c;
        }
        self.fat[(me + clusters - 1) as usize] = END_OF_CHAIN;
        self.next = self.next.max(me + clusters);
        let mut entries: Vec<[u8; ENTRY]> = Vec::new();
        if let Some(label) = label {
            let mut raw = [b' '; 11];
            raw[..label.len().min(11)].copy_from_slice(&label.as_bytes()[..label.len().min(11)]);
            entries.push(short_entry(&raw, ATTR_VOLUME, 0, 0));
        } else {
            entries.push(short_entry(b".          ", ATTR_DIR, me, 0));
            entries.push(short_entry(b"..         ", ATTR_DIR, parent, 0));
        }
        for (name, short, long) in names {
            if long {
                entries.extend(lfn_entries(name, &short));
            }
            match &children[name] {
                Node::File(data) => {
                    let first = self.alloc(data.clone(), 0)?;
                    entries.push(short_entry(&short, 0x20, first, data.len() as u32));
                }
                Node::Dir(sub) => {
                    let first = self.next;
                    entries.push(short_entry(&short, ATTR_DIR, first, 0));
                    self.dir(sub, first, if label.is_some() { 0 } else { me }, None)?;
                }
            }
        }
        for (i, e) in entries.iter().enumerate() {
            bytes[i * ENTRY..(i + 1) * ENTRY].copy_from_slice(e);
        }
        self.data.push((me, bytes));
        Ok(())
    }
}

/// Formats `size` bytes at `start` of `out` as FAT32 holding `spec.files`.
pub fn write<W: Write + Seek>(out: &mut W, start: u64, size: u64, spec: &FatSpec) -> Result<()> {
    let io = |e: std::io::Error| bad(e.to_string());
    let total = size / SECTOR;
    let spc: u64 = if total <= 532_480 { 1 } else { 8 };
    // FAT size: each data cluster needs 4 bytes of FAT, in both copies.
    let mut fat_sectors = 1u64;
    loop {
        let clusters = (total - RESERVED - FATS * fat_sectors) / spc;
        let need = ((clusters + 2) * 4).div_ceil(SECTOR);
        if need <= fat_sectors {
            break;
        }
        fat_sectors = need;
    }
    let clusters = (total - RESERVED - FATS * fat_sectors) / spc;
    if clusters < 65_525 {
        return Err(bad(format!(
            "{} MiB is too small for FAT32 ({clusters} clusters)",
            size >> 20
        )));
    }
    let mut layout = Layout {
        cluster_bytes: spc * SECTOR,
        next: 2,
        fat: vec![0; clusters as usize + 2],
        data: Vec::new(),
    };
    layout.fat[0] = 0x0FFF_FFF8;
    layout.fat[1] = END_OF_CHAIN;
    layout.dir(&tree(spec.files)?, 2, 0, Some(spec.label))?;
    let used = layout.next as u64 - 2;

    let mut boot = [0u8; SECTOR as usize];
    boot[..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    boot[3..11].copy_from_slice(b"FLUXNODE");
    boot[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    boot[13] = spc as u8;
    boot[14..16].copy_from_slice(&(RESERVED as u16).to_le_bytes());
    boot[16] = FATS as u8;
    boot[21] = 0xF8;
    boot[24..26].copy_from_slice(&32u16.to_le_bytes());
    boot[26..28].copy_from_slice(&64u16.to_le_bytes());
    boot[28..32].copy_from_slice(&((start / SECTOR) as u32).to_le_bytes());
    boot[32..36].copy_from_slice(&(total as u32).to_le_bytes());
    boot[36..40].copy_from_slice(&(fat_sectors as u32).to_le_bytes());
    boot[44..48].copy_from_slice(&2u32.to_le_bytes());
    boot[48..50].copy_from_slice(&1u16.to_le_bytes());
    boot[50..52].copy_from_slice(&6u16.to_le_bytes());
    boot[64] = 0x80;
    boot[66] = 0x29;
    boot[67..71].copy_from_slice(&spec.volume_id.to_le_bytes());
    let mut label = [b' '; 11];
    label[..spec.label.len().min(11)]
        .copy_from_slice(&spec.label.as_bytes()[..spec.label.len().min(11)]);
    boot[71..82].copy_from_slice(&label);
    boot[82..90].copy_from_slice(b"FAT32   ");
    boot[510] = 0x55;
    boot[511] = 0xAA;
    let mut info = [0u8; SECTOR as usize];
    info[..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    info[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    info[488..492].copy_from_slice(&((clusters - used) as u32).to_le_bytes());
    info[492..496].copy_from_slice(&layout.next.to_le_bytes());
    info[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());

    let at = |sector: u64| SeekFrom::Start(start + sector * SECTOR);
    for base in [0, 6] {
        out.seek(at(base)).map_err(io)?;
        out.write_all(&boot).map_err(io)?;
        out.write_all(&info).map_err(io)?;
    }
    let fat_bytes: Vec<u8> = layout.fat.iter().flat_map(|e| e.to_le_bytes()).collect();
    for copy in 0..FATS {
        out.seek(at(RESERVED + copy * fat_sectors)).map_err(io)?;
        out.write_all(&fat_bytes).map_err(io)?;
    }
    let data_start = RESERVED + FATS * fat_sectors;
    for (cluster, bytes) in &layout.data {
        out.seek(at(data_start + (*cluster as u64 - 2) * spc))
            .map_err(io)?;
        out.write_all(bytes).map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("EFI/BOOT/BOOTX64.EFI".into(), vec![0xAB; 70_000]),
            ("loader/loader.conf".into(), b"timeout 0\n".to_vec()),
            (
                "EFI/Linux/fluxnode-1.2.3+3.efi".into(),
                vec![0xCD; 1_234_567],
            ),
            ("EFI/Linux/fluxnode-1.2.2.efi".into(), vec![0xEF; 1000]),
            ("empty".into(), Vec::new()),
        ]
    }

    fn image(files: &[(String, Vec<u8>)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut file = f.reopen().unwrap();
        file.set_len(64 << 20).unwrap();
        write(
            &mut file,
            0,
            64 << 20,
            &FatSpec {
                volume_id: 0xF10D0001,
                label: "ESP",
                files,
            },
        )
        .unwrap();
        f
    }

    #[test]
    fn short_names_and_long_names() {
        assert_eq!(short_name("BOOTX64.EFI", &[]), (*b"BOOTX64 EFI", false));
        assert_eq!(short_name("EFI", &[]), (*b"EFI        ", false));
        assert_eq!(short_name("loader", &[]), (*b"LOADER~1   ", true));
        let (first, _) = short_name("fluxnode-1.0+3.efi", &[]);
        assert_eq!(&first, b"FLUXNO~1EFI");
        assert_eq!(&short_name("fluxnode-1.1.efi", &[first]).0, b"FLUXNO~2EFI");
    }

    #[test]
    fn fsck_vfat_finds_nothing_wrong() {
        let f = image(&files());
        let out = Command::new("fsck.vfat")
            .args(["-n", "-v"])
            .arg(f.path())
            .output()
            .expect("dosfstools installed by scripts/test.sh");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !report.contains("Expected")
                && !report.contains("Bad")
                && !report.contains("Free cluster summary wrong"),
            "{report}"
        );
    }

    #[test]
    fn mtools_reads_back_every_file() {
        let f = image(&files());
        for (path, data) in files() {
            let out = Command::new("mtype")
                .arg("-i")
                .arg(f.path())
                .arg(format!("::/{path}"))
                .output()
                .expect("mtools installed by scripts/test.sh");
            assert!(
                out.status.success(),
                "{path}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.stdout, data, "{path}");
        }
        let dir = Command::new("mdir")
            .args(["-i"])
            .arg(f.path())
            .arg("::/EFI/Linux")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&dir.stdout);
        assert!(
            listing.contains("fluxnode-1.2.3+3.efi") && listing.contains("1980-01-01"),
            "{listing}"
        );
    }

    #[test]
    fn same_files_give_the_same_bytes_in_any_order() {
        let mut reversed = files();
        reversed.reverse();
        let (a, b) = (image(&files()), image(&reversed));
        assert_eq!(
            std::fs::read(a.path()).unwrap(),
            std::fs::read(b.path()).unwrap()
        );
    }

    #[test]
    fn too_small_a_volume_is_refused() {
        let mut c = std::io::Cursor::new(Vec::new());
        let err = write(
            &mut c,
            0,
            16 << 20,
            &FatSpec {
                volume_id: 1,
                label: "X",
                files: &[],
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("too small for FAT32"), "{err}");
    }
}
