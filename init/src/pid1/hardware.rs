//! What the console says about the machine at boot, so that an operator at a server's
//! IPMI console sees what the kernel found and what it did not: one line per disk (the
//! driver of its controller, its model, its size) and per network card (driver, MAC, link),
//! and, when no card has a driver, which PCI network controllers went without one. Read from
//! sysfs only: a few dozen small files, well inside PID1's 50 ms.

use std::fs;
use std::path::{Path, PathBuf};

fn read(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn link_name(p: impl AsRef<Path>) -> Option<String> {
    fs::read_link(p)
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// The driver of the PCI (or platform) device that `dev` hangs under: the controller, not
/// the `sd` class driver.
fn controller_driver(dev: &Path) -> Option<String> {
    let mut at: PathBuf = fs::canonicalize(dev).ok()?;
    loop {
        if link_name(at.join("subsystem")).as_deref() == Some("pci") {
            return link_name(at.join("driver"));
        }
        if !at.pop() || at == Path::new("/sys/devices") || at.as_os_str().is_empty() {
            return link_name(dev.join("driver"));
        }
    }
}

/// The entries of a sysfs directory, sorted (none when it is not there).
fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A size in bytes for people: GiB or TiB with one decimal.
pub fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    let g = bytes as f64 / GIB;
    if g >= 1024.0 {
        format!("{:.1} TiB", g / 1024.0)
    } else if g >= 1.0 {
        format!("{g:.1} GiB")
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// One line per disk under `sys` (normally /sys): loop, RAM and device-mapper devices and
/// empty drives are left out.
pub fn disks(sys: &Path) -> Vec<String> {
    let names = sorted_names(&sys.join("block"));
    let mut out = Vec::new();
    for name in names {
        if ["loop", "ram", "zram", "dm-", "sr"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let dir = sys.join("block").join(&name);
        let sectors: u64 = read(dir.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if sectors == 0 {
            continue;
        }
        let dev = dir.join("device");
        let model = read(dev.join("model"))
            .or_else(|| read(dev.join("device/model")))
            .unwrap_or_else(|| "no model".into());
        let driver = controller_driver(&dev).unwrap_or_else(|| "no driver".into());
        out.push(format!(
            "disk {name}: {driver}, {model}, {}",
            human(sectors * 512)
        ));
    }
    out
}

/// One line per network card (a link with a device behind it) under `sys`.
pub fn nics(sys: &Path) -> Vec<String> {
    let names = sorted_names(&sys.join("class/net"));
    let mut out = Vec::new();
    for name in names {
        let dir = sys.join("class/net").join(&name);
        if !dir.join("device").exists() {
            continue;
        }
        let driver = link_name(dir.join("device/driver")).unwrap_or_else(|| "no driver".into());
        let mac = read(dir.join("address")).unwrap_or_default();
        // `speed` reads only while the link is up (EINVAL otherwise).
        let link = match (
            read(dir.join("carrier")).as_deref(),
            read(dir.join("speed")),
        ) {
            (Some("1"), Some(s)) if !s.starts_with('-') => format!("link up, {s} Mb/s"),
            (Some("1"), _) => "link up".into(),
            _ => "link not up yet".into(),
        };
        out.push(format!("nic {name}: {driver}, {mac}, {link}"));
    }
    out
}

/// PCI network controllers (class 0x02) that no driver took, as `vendor:device at slot`.
pub fn driverless_nics(sys: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(devs) = fs::read_dir(sys.join("bus/pci/devices")) else {
        return out;
    };
    for e in devs.flatten() {
        let p = e.path();
        let class = read(p.join("class")).unwrap_or_default();
        if !class.starts_with("0x02") || p.join("driver").exists() {
            continue;
        }
        let id = |f: &str| read(p.join(f)).map(|v| v.trim_start_matches("0x").to_owned());
        out.push(format!(
            "{}:{} at {}",
            id("vendor").unwrap_or_default(),
            id("device").unwrap_or_default(),
            e.file_name().to_string_lossy()
        ));
    }
    out.sort();
    out
}

/// What to say when no network card is there to bring up.
pub fn no_nic_line(sys: &Path) -> String {
    let orphans = driverless_nics(sys);
    if orphans.is_empty() {
        "net: no network card found: none on the PCI bus has a driver in this kernel, and \
         none without one either; the node stays off the network"
            .into()
    } else {
        format!(
            "net: no network card came up: this kernel has no driver for the network \
             controller(s) {}; the node stays off the network",
            orphans.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_fake_sysfs_gives_one_line_per_disk_and_nic_and_names_driverless_cards(
    ) -> std::io::Result<()> {
        let t = tempfile::tempdir()?;
        let sys = t.path();
        let pci = sys.join("devices/pci0000:00/0000:00:04.0");
        fs::create_dir_all(pci.join("nvme/nvme0"))?;
        fs::create_dir_all(sys.join("bus/pci/drivers/nvme"))?;
        fs::create_dir_all(sys.join("bus/pci"))?;
        symlink(sys.join("bus/pci"), pci.join("subsystem"))?;
        symlink(sys.join("bus/pci/drivers/nvme"), pci.join("driver"))?;
        fs::write(pci.join("nvme/nvme0/model"), "QEMU NVMe Ctrl  \n")?;
        fs::create_dir_all(sys.join("block/nvme0n1"))?;
        fs::write(sys.join("block/nvme0n1/size"), "4194304\n")?;
        symlink(pci.join("nvme/nvme0"), sys.join("block/nvme0n1/device"))?;
        fs::create_dir_all(sys.join("block/loop0"))?;
        fs::write(sys.join("block/loop0/size"), "8\n")?;
        assert_eq!(
            disks(sys),
            vec!["disk nvme0n1: nvme, QEMU NVMe Ctrl, 2.0 GiB"]
        );
        // A card with a driver, one without (only on the PCI bus), and loopback.
        let nic = sys.join("devices/pci0000:00/0000:00:02.0");
        fs::create_dir_all(&nic)?;
        fs::create_dir_all(sys.join("bus/pci/drivers/e1000e"))?;
        symlink(sys.join("bus/pci/drivers/e1000e"), nic.join("driver"))?;
        fs::create_dir_all(sys.join("class/net/eth0"))?;
        fs::create_dir_all(sys.join("class/net/lo"))?;
        symlink(&nic, sys.join("class/net/eth0/device"))?;
        fs::write(sys.join("class/net/eth0/address"), "52:54:00:12:34:56\n")?;
        fs::write(sys.join("class/net/eth0/carrier"), "1\n")?;
        fs::write(sys.join("class/net/eth0/speed"), "1000\n")?;
        assert_eq!(
            nics(sys),
            vec!["nic eth0: e1000e, 52:54:00:12:34:56, link up, 1000 Mb/s"]
        );
        let orphan = sys.join("bus/pci/devices/0000:03:00.0");
        fs::create_dir_all(&orphan)?;
        fs::write(orphan.join("class"), "0x020000\n")?;
        fs::write(orphan.join("vendor"), "0x8086\n")?;
        fs::write(orphan.join("device"), "0x1572\n")?;
        let line = no_nic_line(sys);
        assert!(line.contains("8086:1572 at 0000:03:00.0"), "{line}");
        Ok(())
    }
}
