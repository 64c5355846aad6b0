//! Finding a partition by its GPT label through sysfs (`PARTNAME=` in each block device's
//! uevent), as no udev runs on a node.

use std::fs;
use std::path::{Path, PathBuf};

/// A partition and the disk it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// e.g. /dev/vda2
    pub device: PathBuf,
    /// e.g. /dev/vda
    pub disk: PathBuf,
    /// 1-based partition number.
    pub number: u32,
}

/// The value of `key` in a uevent file's text.
pub fn uevent_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// Looks through `sys_block` (normally /sys/class/block) for a partition labelled `label`.
pub fn by_label(sys_block: &Path, label: &str) -> Option<Partition> {
    let mut entries: Vec<_> = fs::read_dir(sys_block).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let dir = entry.path();
        let Ok(uevent) = fs::read_to_string(dir.join("uevent")) else {
            continue;
        };
        if uevent_value(&uevent, "DEVTYPE") != Some("partition")
            || uevent_value(&uevent, "PARTNAME") != Some(label)
        {
            continue;
        }
        let name = uevent_value(&uevent, "DEVNAME")?;
        let number = fs::read_to_string(dir.join("partition"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // The partition's sysfs directory sits inside its disk's.
        let disk_dir = fs::canonicalize(&dir).ok()?.parent()?.to_path_buf();
        let disk = disk_dir.file_name()?.to_string_lossy().into_owned();
        return Some(Partition {
            device: Path::new("/dev").join(name),
            disk: Path::new("/dev").join(disk),
            number,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uevent_lines_are_read_by_key() {
        let text =
            "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=FLUXDATA\n";
        assert_eq!(uevent_value(text, "PARTNAME"), Some("FLUXDATA"));
        assert_eq!(uevent_value(text, "DEVNAME"), Some("vda2"));
        assert_eq!(uevent_value(text, "PART"), None);
    }

    #[test]
    fn the_labelled_partition_is_found_in_a_sysfs_tree() {
        let root = tempfile::tempdir().unwrap();
        let disk = root.path().join("devices/vda");
        for (name, label) in [("vda1", "ESP"), ("vda2", "FLUXDATA")] {
            let p = disk.join(name);
            fs::create_dir_all(&p).unwrap();
            let n = &name[3..];
            fs::write(
                p.join("uevent"),
                format!("DEVNAME={name}\nDEVTYPE=partition\nPARTNAME={label}\n"),
            )
            .unwrap();
            fs::write(p.join("partition"), format!("{n}\n")).unwrap();
        }
        let class = root.path().join("class");
        fs::create_dir_all(&class).unwrap();
        for name in ["vda1", "vda2"] {
            std::os::unix::fs::symlink(disk.join(name), class.join(name)).unwrap();
        }
        let found = by_label(&class, "FLUXDATA").unwrap();
        assert_eq!(
            found,
            Partition {
                device: "/dev/vda2".into(),
                disk: "/dev/vda".into(),
                number: 2
            }
        );
        assert_eq!(by_label(&class, "NOPE"), None);
    }
}
