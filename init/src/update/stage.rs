//! Staging a verified bundle on the ESP. Nothing is written until every check has passed
//! (signature, known key, digest, newer version, room); then old entries beyond "two
//! versions plus the one on trial" go, and the UKI is copied to a temporary name that is
//! not an entry, hashed again as it is written, fsync'd, and renamed to
//! `fluxnode-<ver>+3.efi`, so a power cut leaves either no new entry or a whole one.
//! Committing renames the running version's trial entry to `fluxnode-<ver>.efi`.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fluxnode_update::bundle::{self, VerifiedBundle};
use fluxnode_update::entry::{prune_plan, Entry};
use fluxnode_update::keys::ReleaseKeys;
use tracing::info;

use super::Version;

/// Tries a new version gets before the loader falls back.
pub const TRIES: u32 = 3;
/// Kept free on the ESP beyond the new UKI (FAT directory growth, the loader's renames).
pub const SLACK: u64 = 1 << 20;
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stage even when the version is not newer than the running one.
    pub force: bool,
    /// A pause after each chunk written (a test hook, to cut the power mid-write).
    pub chunk_delay: Option<Duration>,
}

/// What a successful staging did (the control reply's type).
pub use runtime::control::replies::Staged;

/// Checks a bundle against the release keys and the running version; writes nothing.
pub fn verify(
    path: &Path,
    keys: &ReleaseKeys,
    running: &Version,
    opts: &Options,
) -> Result<VerifiedBundle, String> {
    let vb = bundle::verify_file(path, keys).map_err(|e| e.to_string())?;
    let v = &vb.header.version;
    if v <= running && !opts.force {
        return Err(format!(
            "bundle {}: version {v} is not newer than the running version {running} \
             (--force stages it anyway)",
            path.display()
        ));
    }
    Ok(vb)
}

fn size_of(dir: &Path, name: &str) -> u64 {
    fs::metadata(dir.join(name)).map(|m| m.len()).unwrap_or(0)
}

/// Stages a verified bundle into `dir` (the ESP's `EFI/Linux`), which has `free` bytes.
pub fn stage_into(
    dir: &Path,
    free: u64,
    vb: &VerifiedBundle,
    running: &Version,
    opts: &Options,
) -> Result<Staged, String> {
    let version = vb.header.version.clone();
    let listed = super::entries(dir)?;
    let all: Vec<Entry> = listed.iter().map(|(_, e)| e.clone()).collect();
    let doomed: Vec<String> = prune_plan(&all, running, &version)
        .iter()
        .filter_map(|d| listed.iter().find(|(_, e)| e == d).map(|(n, _)| n.clone()))
        .collect();
    let stale = stale_temps(dir);
    let freed: u64 = doomed.iter().chain(&stale).map(|n| size_of(dir, n)).sum();
    let need = vb.header.uki_len + SLACK;
    if free + freed < need {
        return Err(format!(
            "no room on the ESP for {}: it needs {} KiB, {} KiB are free ({} KiB more once \
             old versions are removed)",
            version,
            need / 1024,
            free / 1024,
            freed / 1024
        ));
    }
    for name in doomed.iter().chain(&stale) {
        fs::remove_file(dir.join(name)).map_err(|e| format!("remove {name}: {e}"))?;
        info!("staging: removed {name}");
    }
    let entry = Entry::new_trial(version.clone(), TRIES);
    let name = entry.file_name();
    info!("staging: writing {name} ({} bytes)", vb.header.uki_len);
    let tmp = dir.join(temp_name(&version));
    if let Err(e) = copy_uki(vb, &tmp, opts) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, dir.join(&name)).map_err(|e| format!("rename to {name}: {e}"))?;
    sync_dir(dir)?;
    Ok(Staged {
        staged: name,
        version: version.to_string(),
        removed: doomed,
        bytes: vb.header.uki_len,
    })
}

/// The name a UKI is written under before it becomes an entry (not `*.efi`).
pub fn temp_name(v: &Version) -> String {
    format!(".fluxnode-{v}.part")
}

/// Temporary files a cut staging left behind.
fn stale_temps(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".fluxnode-") && n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

/// Copies the UKI out of the bundle into `to`, hashing it again (the bundle may have
/// changed since it was verified), then fsyncs it.
fn copy_uki(vb: &VerifiedBundle, to: &Path, opts: &Options) -> Result<(), String> {
    let src_err = |e: std::io::Error| format!("bundle {}: {e}", vb.path.display());
    let dst_err = |e: std::io::Error| format!("{}: {e}", to.display());
    let mut src = File::open(&vb.path).map_err(src_err)?;
    src.seek(SeekFrom::Start(vb.uki_offset)).map_err(src_err)?;
    let mut dst = File::create(to).map_err(dst_err)?;
    let mut left = vb.header.uki_len;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let n = (left as usize).min(CHUNK);
        src.read_exact(&mut buf[..n]).map_err(src_err)?;
        hash.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(dst_err)?;
        left -= n as u64;
        if let Some(d) = opts.chunk_delay {
            std::thread::sleep(d);
        }
    }
    if hash.finish().as_ref() != vb.header.sha256 {
        return Err(format!(
            "bundle {}: changed while it was being staged",
            vb.path.display()
        ));
    }
    dst.sync_all().map_err(dst_err)
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    let d = File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // vfat may not fsync a directory; syncfs then writes the whole filesystem.
    if d.sync_all().is_err() {
        nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d))
            .map_err(|e| format!("syncfs {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Renames the running version's trial entry in `dir` to its committed name; returns it.
/// Other entries of the same version (none, normally) are left alone.
pub fn commit_in(dir: &Path, running: &Version) -> Result<String, String> {
    let listed = super::entries(dir)?;
    if let Some((name, _)) = listed
        .iter()
        .find(|(_, e)| &e.version == running && e.is_committed())
    {
        return Ok(name.clone());
    }
    let (name, entry) = listed
        .iter()
        .find(|(_, e)| &e.version == running)
        .ok_or_else(|| format!("no entry for version {running} in {}", dir.display()))?;
    let good = entry.committed().file_name();
    fs::rename(dir.join(name), dir.join(&good))
        .map_err(|e| format!("rename {name} to {good}: {e}"))?;
    sync_dir(dir)?;
    Ok(good)
}

/// Where a staging child writes its result for PID1.
pub fn result_path() -> PathBuf {
    PathBuf::from("/run/fluxnode/update-stage.json")
}

#[cfg(test)]
mod tests;
