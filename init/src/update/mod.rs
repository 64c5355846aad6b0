//! Signed A/B updates on the node. A release bundle (see `fluxnode_update`) is verified
//! against the release keys baked into the image, then its UKI is staged on the ESP as
//! `fluxnode-<ver>+3.efi`; systemd-boot counts the tries down, PID1 renames the entry to
//! `fluxnode-<ver>.efi` once the new version has proved healthy, and the loader falls back
//! to the previous version when the tries run out. This module holds the parts that run
//! outside PID1's loop (in `fluxnode update ...` children): the ESP, staging, committing,
//! and the record of rollbacks on /data.

pub mod esp;
pub mod stage;
pub mod state;

use std::fs;
use std::path::Path;

pub use fluxnode_update::entry::Entry;
pub use fluxnode_update::version::Version;

/// Where the image says which version it is (`VERSION_ID`, also in the UKI's `.osrel`).
pub const OS_RELEASE: &str = "/etc/os-release";

/// `VERSION_ID` of an os-release text.
pub fn version_id(os_release: &str) -> Option<&str> {
    os_release.lines().find_map(|l| {
        l.strip_prefix("VERSION_ID=")
            .map(|v| v.trim().trim_matches('"'))
    })
}

/// The version this system runs, from `os_release` (normally [`OS_RELEASE`]).
pub fn running_version(os_release: &Path) -> Result<Version, String> {
    let text =
        fs::read_to_string(os_release).map_err(|e| format!("{}: {e}", os_release.display()))?;
    let id = version_id(&text).ok_or_else(|| format!("{}: no VERSION_ID", os_release.display()))?;
    Version::parse(id).map_err(|e| format!("{}: VERSION_ID: {e}", os_release.display()))
}

/// The entries (UKIs named by version) in an ESP's `EFI/Linux` directory, with their
/// file names as they are on disk; other files are left out.
pub fn entries(dir: &Path) -> Result<Vec<(String, Entry)>, String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for item in rd {
        let item = item.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some(e) = Entry::parse(&name) {
            out.push((name, e));
        }
    }
    out.sort_by(|a, b| b.1.version.cmp(&a.1.version).then(a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_version_id() {
        let text = "NAME=\"fluxnode\"\nID=fluxnode\nVERSION_ID=0.2.0\nPRETTY_NAME=\"x\"\n";
        assert_eq!(version_id(text), Some("0.2.0"));
        assert_eq!(version_id("VERSION_ID=\"1.2\"\n"), Some("1.2"));
        assert_eq!(version_id("NAME=x\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("os-release");
        fs::write(&p, "VERSION_ID=1.x\n").unwrap();
        let e = running_version(&p).unwrap_err();
        assert!(e.contains("os-release: VERSION_ID"), "{e}");
    }

    #[test]
    fn entries_lists_uki_names_newest_first_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "fluxnode-0.1.0.efi",
            "fluxnode-0.3.0+0-3.efi",
            "fluxnode-0.2.0+2-1.efi",
            ".fluxnode-0.4.0.part",
            "other.efi",
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        let names: Vec<String> = entries(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(
            names,
            [
                "fluxnode-0.3.0+0-3.efi",
                "fluxnode-0.2.0+2-1.efi",
                "fluxnode-0.1.0.efi"
            ]
        );
    }
}
