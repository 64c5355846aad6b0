//! The node disk image: GPT with the ESP (systemd-boot, loader.conf, the UKI with a boot
//! counter) and FLUXDATA (ext4, the rest of the disk). Written as a sparse file.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::gpt::{self, Partition, ALIGN_SECTORS, SECTOR};
use crate::{ext4, fat};

pub const DEFAULT_BOOT_EFI: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
pub const MIB: u64 = 1024 * 1024;
/// The ESP's FAT volume id (fixed, so images are reproducible).
pub const ESP_VOLUME_ID: u32 = 0xF10D_0001;
/// The smallest FLUXDATA we make: room for the ext4 journal and a little data.
const MIN_DATA: u64 = 32 * MIB;

/// What goes on the disk and how big it is. Built step by step, validated by `layout()`.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub size: u64,
    pub esp_size: u64,
    pub boot_efi: PathBuf,
    pub uki: PathBuf,
    pub version: String,
}

impl DiskSpec {
    pub fn new(uki: impl Into<PathBuf>, version: &str) -> Self {
        DiskSpec {
            size: 256 * MIB,
            esp_size: 128 * MIB,
            boot_efi: PathBuf::from(DEFAULT_BOOT_EFI),
            uki: uki.into(),
            version: version.to_owned(),
        }
    }

    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    /// The UKI's name on the ESP: three boot tries before the loader falls back.
    pub fn uki_name(&self) -> String {
        format!("fluxnode-{}+3.efi", self.version)
    }

    /// Checks the sizes and places the partitions.
    pub fn layout(&self) -> Result<[Partition; 2]> {
        if !self.size.is_multiple_of(MIB) || !self.esp_size.is_multiple_of(MIB) {
            return Err(Error::Layout(format!(
                "disk size {} and ESP size {} must be whole MiB",
                self.size, self.esp_size
            )));
        }
        let esp_first = ALIGN_SECTORS;
        let esp_last = esp_first + self.esp_size / SECTOR - 1;
        let data_first = esp_last + 1;
        let data_last = (gpt::last_usable_lba(self.size) + 1) / ALIGN_SECTORS * ALIGN_SECTORS - 1;
        if data_last <= data_first || (data_last + 1 - data_first) * SECTOR < MIN_DATA {
            return Err(Error::Layout(format!(
                "disk size {} MiB leaves less than {} MiB for FLUXDATA after a {} MiB ESP",
                self.size / MIB,
                MIN_DATA / MIB,
                self.esp_size / MIB
            )));
        }
        Ok([
            Partition {
                name: "ESP",
                type_guid: gpt::ESP_TYPE,
                unique_guid: gpt::ESP_GUID,
                first_lba: esp_first,
                last_lba: esp_last,
            },
            Partition {
                name: ext4::LABEL,
                type_guid: gpt::LINUX_DATA_TYPE,
                unique_guid: gpt::DATA_GUID,
                first_lba: data_first,
                last_lba: data_last,
            },
        ])
    }

    /// The files of the ESP, by path inside it.
    pub fn esp_files(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            (
                "EFI/BOOT/BOOTX64.EFI".into(),
                fs::read(&self.boot_efi).at(&self.boot_efi)?,
            ),
            (
                "loader/loader.conf".into(),
                b"timeout 0\neditor no\n".to_vec(),
            ),
            (
                format!("EFI/Linux/{}", self.uki_name()),
                fs::read(&self.uki).at(&self.uki)?,
            ),
        ])
    }

    /// Writes the disk image to `out`, replacing it.
    pub fn write(&self, out: &Path) -> Result<()> {
        let [esp_part, data_part] = self.layout()?;
        let files = self.esp_files()?;
        let _ = fs::remove_file(out);
        let mut file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(out)
            .at(out)?;
        file.set_len(self.size).at(out)?;
        gpt::write(&mut file, out, &[esp_part.clone(), data_part.clone()])?;
        let range = |p: &Partition| {
            (
                p.first_lba * SECTOR,
                (p.last_lba + 1 - p.first_lba) * SECTOR,
            )
        };
        let (esp_start, esp_len) = range(&esp_part);
        let spec = fat::FatSpec {
            volume_id: ESP_VOLUME_ID,
            label: "ESP",
            files: &files,
        };
        fat::write(&mut file, esp_start, esp_len, &spec)?;
        file.sync_all().at(out)?;
        drop(file);
        let (data_start, data_len) = range(&data_part);
        ext4::format(out, data_start, data_len)
    }
}

/// Parses a size such as `256M`, `2G`, `1048576` (bytes) or `512K`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => {
                    return Err(format!(
                        "size {text:?}: unknown unit {c:?} (use K, M, G or T)"
                    ))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("size {text:?}: expected a number with an optional K/M/G/T"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_size("256M"), Ok(256 * MIB));
        assert_eq!(parse_size("2g"), Ok(2048 * MIB));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12Q").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn default_layout_is_aligned_and_fills_the_disk() {
        let [esp, data] = DiskSpec::new("x.efi", "1").layout().unwrap();
        assert_eq!(esp.first_lba, 2048);
        assert_eq!((esp.last_lba + 1 - esp.first_lba) * SECTOR, 128 * MIB);
        assert_eq!(data.first_lba, esp.last_lba + 1);
        assert_eq!((data.last_lba + 1) % ALIGN_SECTORS, 0);
        assert!(data.last_lba <= gpt::last_usable_lba(256 * MIB));
    }

    #[test]
    fn too_small_a_disk_is_refused() {
        let err = DiskSpec::new("x.efi", "1")
            .size(130 * MIB)
            .layout()
            .unwrap_err();
        assert!(
            err.to_string().contains("less than 32 MiB for FLUXDATA"),
            "{err}"
        );
    }

    fn fake_inputs(dir: &Path) -> DiskSpec {
        let uki = dir.join("fluxnode.efi");
        fs::write(&uki, vec![0x5a; 300_000]).unwrap();
        DiskSpec::new(uki, "7.7")
    }

    #[test]
    fn disk_has_gpt_esp_files_and_an_ext4_fluxdata() {
        let dir = tempfile::tempdir().unwrap();
        let spec = fake_inputs(dir.path());
        let img = dir.path().join("disk.img");
        spec.write(&img).unwrap();
        let sgdisk = std::process::Command::new("sgdisk")
            .arg("-p")
            .arg(&img)
            .output()
            .unwrap();
        let table = String::from_utf8_lossy(&sgdisk.stdout);
        assert!(
            table.contains("ESP") && table.contains("FLUXDATA"),
            "{table}"
        );
        let [esp_part, data_part] = spec.layout().unwrap();
        let esp = format!("{}@@{}", img.display(), esp_part.first_lba * SECTOR);
        let listing = std::process::Command::new("mdir")
            .args(["-/", "-b", "-i", &esp, "::"])
            .output()
            .unwrap();
        let mut names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "::/EFI/",
                "::/EFI/BOOT/",
                "::/EFI/BOOT/BOOTX64.EFI",
                "::/EFI/Linux/",
                "::/EFI/Linux/fluxnode-7.7+3.efi",
                "::/loader/",
                "::/loader/loader.conf"
            ]
        );
        let uki = std::process::Command::new("mtype")
            .args(["-i", &esp, "::/EFI/Linux/fluxnode-7.7+3.efi"])
            .output()
            .unwrap();
        assert_eq!(uki.stdout, vec![0x5a; 300_000]);
        let fsck = std::process::Command::new("e2fsck")
            .arg("-fn")
            .arg(format!(
                "{}?offset={}",
                img.display(),
                data_part.first_lba * SECTOR
            ))
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }

    #[test]
    fn same_inputs_give_the_same_disk_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let spec = fake_inputs(dir.path());
        let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
        spec.write(&a).unwrap();
        spec.write(&b).unwrap();
        assert_eq!(
            crate::artifact::sha256_file(&a).unwrap(),
            crate::artifact::sha256_file(&b).unwrap()
        );
    }
}
