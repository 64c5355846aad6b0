//! Phase storage: find FLUXDATA, run e2fsck when it was not cleanly unmounted, turn ext4
//! project quotas on when a disk made before the image had them lacks them, mount it at
//! /data (with `prjquota`, so app disk quotas are enforced), read the config file there, grow
//! partition and ext4 to the end of the disk, and load or create the node key. Any failure
//! leaves the node up in a degraded state that says so plainly and writes nothing to the
//! partition; a failure to turn quotas on leaves it up without them. Nothing here ever
//! formats a partition.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use tracing::{info, warn};

use crate::pid1::helper::{self, Ended};
use crate::pid1::{logfile, phases, Boot, DataState};
use crate::storage::ext4::{ProjectQuotas, Superblock, ENABLE_PROJECT_QUOTAS};
use crate::storage::{find, grow};

pub const DATA: &str = "/data";
const LABEL: &str = "FLUXDATA";

fn degrade(boot: &mut Boot, reason: String) {
    warn!("storage degraded: {reason}; /data is not mounted and nothing is written to it");
    boot.data = DataState::Degraded(reason);
}

/// e2fsck when the superblock says the filesystem was not cleanly unmounted.
fn check(boot: &mut Boot, dev: &str) -> Result<()> {
    let sb = Superblock::read(Path::new(dev), 0).with_context(|| format!("read {dev}"))?;
    let Some(sb) = sb else {
        bail!("{dev} holds no ext4 filesystem (it is never formatted automatically)");
    };
    if sb.clean && !sb.needs_recovery {
        return Ok(());
    }
    info!("e2fsck {dev}: not cleanly unmounted, checking");
    let mut result = helper::run(&["/usr/sbin/e2fsck", "-p", dev], &mut boot.watchdog)?;
    if matches!(result, Ended::Exited(c) if c >= 4) {
        warn!("e2fsck -p {dev} could not repair everything ({result:?}); running e2fsck -y");
        result = helper::run(&["/usr/sbin/e2fsck", "-fy", dev], &mut boot.watchdog)?;
    }
    match result {
        Ended::Exited(c) if c < 4 => {
            info!("e2fsck {dev}: done (exit {c})");
            Ok(())
        }
        other => bail!("e2fsck {dev} failed: {other:?}"),
    }
}

/// Turns ext4 project quotas on in the unmounted filesystem when it lacks them (tune2fs
/// counts what it holds; once per disk). True when it has them, and /data is then mounted
/// with `prjquota`, which the kernel needs to enforce the limits and refuses without the
/// project feature. A failure is said and the node boots on without quotas.
fn project_quotas(boot: &mut Boot, dev: &str) -> bool {
    let state = match Superblock::read(Path::new(dev), 0) {
        Ok(Some(sb)) => sb.project_quotas(),
        Ok(None) => return false,
        Err(e) => {
            warn!("storage: read {dev}: {e}; /data has no disk quotas");
            return false;
        }
    };
    match state {
        ProjectQuotas::On => return true,
        ProjectQuotas::Impossible(why) => {
            warn!("storage: project quotas cannot be turned on for {dev}: {why}; app disk sizes are not enforced");
            return false;
        }
        ProjectQuotas::Off => {}
    }
    // CONFIG_QUOTA makes /proc/sys/fs/quota; without it ext4 would refuse the mount after.
    if !Path::new("/proc/sys/fs/quota").exists() {
        warn!("storage: this kernel has no quota support; {dev} keeps no project quotas");
        return false;
    }
    info!("storage: turning project quotas on for {dev} (tune2fs counts what it holds)");
    let mut argv = ENABLE_PROJECT_QUOTAS.to_vec();
    argv.push(dev);
    let result = helper::run(&argv, &mut boot.watchdog);
    let now = Superblock::read(Path::new(dev), 0)
        .ok()
        .flatten()
        .map(|sb| sb.project_quotas());
    match (result, now) {
        (Ok(Ended::Exited(0)), Some(ProjectQuotas::On)) => {
            info!("storage: project quotas enabled on {dev}");
            true
        }
        (result, now) => {
            let result = match result {
                Ok(ended) => format!("{ended:?}"),
                Err(e) => format!("{e:#}"),
            };
            warn!("storage: turning project quotas on for {dev} failed ({} {result}, superblock: {now:?}); app disk sizes are not enforced", ENABLE_PROJECT_QUOTAS.join(" "));
            false
        }
    }
}

fn grow_to_disk_end(boot: &mut Boot, part: &find::Partition) -> Result<()> {
    let dev = part.device.display().to_string();
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&part.disk)
        .with_context(|| format!("open {}", part.disk.display()))?;
    if let Some(g) = grow::grow_partition(&mut disk, part.number)
        .with_context(|| format!("{}", part.disk.display()))?
    {
        disk.sync_all()?;
        grow::tell_kernel(&disk, part.number, &g)
            .context("tell the kernel the new partition size")?;
        info!(
            "storage: grew {LABEL} from {} MiB to {} MiB",
            ((g.old_end_lba + 1 - g.start_lba) * g.sector_size) >> 20,
            g.new_size_bytes() >> 20
        );
    }
    let part_bytes = std::fs::read_to_string(format!(
        "/sys/class/block/{}/size",
        part.device
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    ))
    .ok()
    .and_then(|s| s.trim().parse::<u64>().ok())
    .map(|sectors| sectors * 512);
    let fs_bytes = Superblock::read(&part.device, 0)?.map(|sb| sb.size_bytes());
    if let (Some(p), Some(f)) = (part_bytes, fs_bytes) {
        if p >= f + (1 << 20) {
            info!("resize2fs {dev}: {} MiB -> {} MiB", f >> 20, p >> 20);
            match helper::run(&["/usr/sbin/resize2fs", &dev], &mut boot.watchdog)? {
                Ended::Exited(0) => {}
                other => bail!("resize2fs {dev} failed: {other:?}"),
            }
        }
    }
    Ok(())
}

fn describe_mount() -> String {
    match nix::sys::statvfs::statvfs(DATA) {
        Ok(s) => {
            let total = s.blocks() * s.fragment_size();
            let free = s.blocks_available() * s.fragment_size();
            format!("{} MiB, {} MiB free", total >> 20, free >> 20)
        }
        Err(e) => format!("size unknown: {e}"),
    }
}

pub fn run(boot: &mut Boot) -> Result<()> {
    for line in crate::pid1::hardware::disks(Path::new("/sys")) {
        info!("{line}");
    }
    let Some(part) = find::by_label(Path::new("/sys/class/block"), LABEL) else {
        degrade(boot, format!("no partition labelled {LABEL}"));
        return Ok(());
    };
    let dev = part.device.display().to_string();
    if let Err(e) = check(boot, &dev) {
        degrade(boot, format!("{e:#}"));
        return Ok(());
    }
    let quotas = project_quotas(boot, &dev);
    std::fs::create_dir_all(DATA)?;
    let mount_data = |options: Option<&str>| {
        mount(
            Some(dev.as_str()),
            DATA,
            Some("ext4"),
            MsFlags::MS_NOATIME | MsFlags::MS_NODEV,
            options,
        )
    };
    let mut mounted = mount_data(quotas.then_some("prjquota"));
    if let (true, Err(e)) = (quotas, &mounted) {
        warn!("storage: mount {dev} with prjquota: {e}; mounting it without, so app disk sizes are not enforced");
        mounted = mount_data(None);
    }
    if let Err(e) = mounted {
        degrade(boot, format!("mount {dev} on {DATA}: {e}"));
        return Ok(());
    }
    if quotas {
        match runtime::quota::state(Path::new(DATA)) {
            Ok(s) if s.enforced => info!("storage: project quotas enforced on {DATA}"),
            Ok(s) => {
                warn!("storage: project quotas on {DATA}: {s:?}; app disk sizes are not enforced")
            }
            Err(e) => warn!("storage: {e}"),
        }
    }
    boot.data = DataState::Mounted {
        device: dev.clone(),
    };
    if let Err(e) = logfile::start(Path::new("/data/log/fluxnode.log")) {
        warn!("log file /data/log/fluxnode.log: {e}");
    }
    phases::config::apply_file(boot);
    if boot.config.storage.grow {
        if let Err(e) = grow_to_disk_end(boot, &part) {
            warn!("storage: growing {LABEL} failed: {e:#}; /data keeps its size");
        }
    }
    match chain::keys::load_or_create(Path::new("/data/keys/node.key")) {
        Ok((pair, created)) => info!(
            "node key: {} ({})",
            chain::keys::address(&pair),
            if created { "created" } else { "loaded" }
        ),
        Err(e) => warn!("{e}"),
    }
    info!("storage: {DATA} on {dev}, {}", describe_mount());
    Ok(())
}
