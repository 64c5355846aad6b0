//! Per-instance accounting straight from cgroupfs, with no daemon in between: cpu.stat,
//! memory.current and memory.peak, io.stat and pids.current through cgroups-rs, and
//! memory.events read here (cgroups-rs has no reader for it). A ring keeps the recent
//! samples of each instance for the control API.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use cgroups_rs::fs::blkio::BlkIoController;
use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::hierarchies::V2;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::Cgroup;
use serde::{Deserialize, Serialize};

/// Where the unified hierarchy is mounted on the node.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// One sample every 5 s for an hour.
pub const RING_LEN: usize = 720;

#[derive(Debug, thiserror::Error)]
pub enum AcctError {
    #[error("cgroup {0} does not exist")]
    Gone(String),
}

/// One reading of an instance's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub at_unix_ms: u64,
    pub cpu_usage_usec: u64,
    pub cpu_user_usec: u64,
    pub cpu_system_usec: u64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_usec: u64,
    pub memory_current: u64,
    pub memory_peak: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub pids_current: u64,
}

/// The value of `key` in a flat-keyed cgroup file (`cpu.stat`, `memory.events`).
pub fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The directory of a cgroup given by its absolute cgroup path (`/apps/web-0`).
pub fn dir_of(cgroup: &Path) -> PathBuf {
    Path::new(CGROUP_ROOT).join(cgroup.strip_prefix("/").unwrap_or(cgroup))
}

/// Reads one sample of the cgroup at `cgroup` (absolute within the hierarchy).
pub fn sample(cgroup: &Path) -> Result<Sample, AcctError> {
    let dir = dir_of(cgroup);
    // cgroups-rs reads a missing file as 0: make sure the group is there at all.
    if !dir.join("cgroup.procs").exists() {
        return Err(AcctError::Gone(cgroup.display().to_string()));
    }
    let rel = cgroup.strip_prefix("/").unwrap_or(cgroup);
    let cg = Cgroup::load(Box::new(V2::new()), rel);
    let mut s = Sample {
        at_unix_ms: now_ms(),
        ..Sample::default()
    };
    if let Some(cpu) = cg.controller_of::<CpuController>() {
        let stat = cpu.cpu().stat;
        let get = |k| flat_key(&stat, k).unwrap_or(0);
        s.cpu_usage_usec = get("usage_usec");
        s.cpu_user_usec = get("user_usec");
        s.cpu_system_usec = get("system_usec");
        s.nr_periods = get("nr_periods");
        s.nr_throttled = get("nr_throttled");
        s.throttled_usec = get("throttled_usec");
    }
    if let Some(mem) = cg.controller_of::<MemController>() {
        let m = mem.memory_stat();
        s.memory_current = m.usage_in_bytes;
        s.memory_peak = m.max_usage_in_bytes;
    }
    if let Some(io) = cg.controller_of::<BlkIoController>() {
        for dev in io.blkio().io_stat {
            s.io_read_bytes += dev.rbytes;
            s.io_write_bytes += dev.wbytes;
        }
    }
    if let Some(pids) = cg.controller_of::<PidController>() {
        s.pids_current = pids.get_pid_current().unwrap_or(0);
    }
    Ok(s)
}

/// How many times the OOM killer killed a process of the cgroup (`memory.events`
/// `oom_kill`), read directly: cgroups-rs 0.5 does not parse memory.events on v2.
pub fn oom_kills(cgroup: &Path) -> u64 {
    std::fs::read_to_string(dir_of(cgroup).join("memory.events"))
        .ok()
        .and_then(|t| flat_key(&t, "oom_kill"))
        .unwrap_or(0)
}

/// The last `RING_LEN` samples of one instance, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    samples: VecDeque<Sample>,
}

impl Ring {
    pub fn push(&mut self, s: Sample) {
        if self.samples.len() == RING_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples from the last `n`, oldest first.
    pub fn last(&self, n: usize) -> Vec<Sample> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples.iter().skip(skip).copied().collect()
    }
}

/// The node's totals: every instance's latest sample added up.
pub fn totals<'a>(latest: impl IntoIterator<Item = &'a Sample>) -> Sample {
    latest.into_iter().fold(
        Sample {
            at_unix_ms: now_ms(),
            ..Sample::default()
        },
        |mut t, s| {
            t.cpu_usage_usec += s.cpu_usage_usec;
            t.cpu_user_usec += s.cpu_user_usec;
            t.cpu_system_usec += s.cpu_system_usec;
            t.nr_periods += s.nr_periods;
            t.nr_throttled += s.nr_throttled;
            t.throttled_usec += s.throttled_usec;
            t.memory_current += s.memory_current;
            t.memory_peak += s.memory_peak;
            t.io_read_bytes += s.io_read_bytes;
            t.io_write_bytes += s.io_write_bytes;
            t.pids_current += s.pids_current;
            t
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_files_parse_by_key() {
        let cpu = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 4200\n";
        assert_eq!(flat_key(cpu, "nr_throttled"), Some(3));
        assert_eq!(flat_key(cpu, "usage_usec"), Some(1500));
        assert_eq!(flat_key(cpu, "usage"), None);
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_key(events, "oom_kill"), Some(1));
    }

    #[test]
    fn the_ring_keeps_the_last_hour_and_totals_add_up() {
        let mut r = Ring::default();
        for i in 0..(RING_LEN as u64 + 5) {
            r.push(Sample {
                cpu_usage_usec: i,
                ..Sample::default()
            });
        }
        assert_eq!(r.len(), RING_LEN);
        assert_eq!(r.last(2)[0].cpu_usage_usec, RING_LEN as u64 + 3);
        assert_eq!(r.latest().unwrap().cpu_usage_usec, RING_LEN as u64 + 4);
        let a = Sample {
            memory_current: 10,
            pids_current: 2,
            ..Sample::default()
        };
        let t = totals([&a, &a]);
        assert_eq!((t.memory_current, t.pids_current), (20, 4));
    }

    #[test]
    fn a_missing_cgroup_is_an_error_not_zeros() {
        let e = sample(Path::new("/apps/no-such-app-0")).unwrap_err();
        assert!(e.to_string().contains("/apps/no-such-app-0"), "{e}");
    }
}
