//! The hardware benchmark: CPU events per second (sysbench's prime workload), RAM size and
//! bandwidth (STREAM copy and triad), disk sequential write with O_DIRECT through io_uring
//! (plus Flux's dd figure and random 4 KiB IOPS), the machine's shape, and the tier verdict.
//! The result is a signed report anyone can verify.

pub mod cpu;
pub mod disk;
pub mod idle;
pub mod mem;
pub mod report;
pub mod shape;
pub mod tier;

use std::path::PathBuf;
use std::time::Duration;

/// How long and how hard to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cpu_max_prime: u64,
    pub cpu_time: Duration,
    pub mem_bytes: usize,
    pub disk_bytes: u64,
    pub disk_rand_time: Duration,
    pub dir: PathBuf,
}

impl Plan {
    /// The full run: about 45 s in all.
    pub fn full(dir: PathBuf) -> Self {
        Plan {
            cpu_max_prime: cpu::DEFAULT_MAX_PRIME,
            cpu_time: Duration::from_secs(10),
            mem_bytes: 256 << 20,
            disk_bytes: 1 << 30,
            disk_rand_time: Duration::from_secs(4),
            dir,
        }
    }

    /// The CI run: under 10 s.
    pub fn quick(dir: PathBuf) -> Self {
        Plan {
            cpu_max_prime: cpu::DEFAULT_MAX_PRIME,
            cpu_time: Duration::from_secs(2),
            mem_bytes: 64 << 20,
            disk_bytes: 128 << 20,
            disk_rand_time: Duration::from_millis(700),
            dir,
        }
    }
}

use std::path::Path;

use ring::signature::Ed25519KeyPair;

use report::{Cpu, Disk, Idle, Ram, Report, Signed};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("the machine stayed busy ({0}); figures from a busy machine would be wrong, so none are reported")]
    Busy(String),
    #[error(transparent)]
    Disk(#[from] disk::DiskError),
    #[error("cannot read {0}")]
    Proc(&'static str),
}

/// Steps report their progress through this: (step name, fraction done of the whole run).
pub type Progress<'a> = &'a mut dyn FnMut(&str, f64);

/// Waits (bounded) for the machine to be idle; returns the last sample and seconds waited.
fn wait_idle(
    threads: usize,
    tries: u32,
    progress: Progress,
) -> Result<(idle::Sample, u64), BenchError> {
    let mut waited = 0;
    for attempt in 0..=tries {
        progress("idle check", 0.0);
        let s = idle::sample(Duration::from_millis(500)).ok_or(BenchError::Proc("/proc/stat"))?;
        if !s.busy(threads) {
            return Ok((s, waited));
        }
        if attempt == tries {
            return Err(BenchError::Busy(format!(
                "load {:.2}, cpu {:.0}% busy",
                s.load1,
                s.cpu_busy * 100.0
            )));
        }
        progress(
            &format!(
                "machine busy (load {:.2}, cpu {:.0}%), waiting 5 s",
                s.load1,
                s.cpu_busy * 100.0
            ),
            0.0,
        );
        std::thread::sleep(Duration::from_secs(5));
        waited += 5;
    }
    unreachable!("the loop returns on its last attempt")
}

/// Runs the whole benchmark and signs the report.
pub fn run(
    plan: &Plan,
    quick: bool,
    idle_tries: u32,
    key: &Ed25519KeyPair,
    progress: Progress,
) -> Result<Signed, BenchError> {
    disk::preflight(&plan.dir, plan.disk_bytes)?;
    let shape = shape::detect();
    let (sample, waited_s) = wait_idle(shape.threads, idle_tries, progress)?;
    // Disk first: after the RAM test has allocated and freed its arrays, buffered writes
    // (the dd figure) measured 40% slower here while the kernel took those pages back.
    progress("disk", 0.05);
    let d = disk::run(&plan.dir, plan.disk_bytes, plan.disk_rand_time)?;
    progress("cpu, 1 thread", 0.45);
    let single = cpu::run(plan.cpu_max_prime, 1, plan.cpu_time / 2);
    progress(&format!("cpu, {} threads", shape.threads), 0.65);
    let all = cpu::run(plan.cpu_max_prime, shape.threads, plan.cpu_time / 2);
    progress("ram bandwidth", 0.85);
    let ram_bytes = mem::total_bytes().ok_or(BenchError::Proc("/proc/meminfo"))?;
    // Three arrays of at most 1/16 of RAM each, so a small machine is never pushed to OOM.
    let array_bytes = plan.mem_bytes.min((ram_bytes / 16) as usize);
    let bw = mem::bandwidth(array_bytes, shape.threads);
    progress("verdict", 0.98);
    let measured = tier::Measured {
        threads: shape.threads,
        ram_bytes,
        ssd_bytes: d.fs_bytes,
        eps_all: all.eps,
        dws_mbs: d.seq_write_mbs,
    };
    let report = Report {
        schema: report::SCHEMA.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        quick,
        fingerprint: shape::fingerprint(&shape, ram_bytes, d.fs_bytes),
        cpu: Cpu {
            max_prime: plan.cpu_max_prime,
            threads: shape.threads,
            eps_single: single.eps,
            eps_all: all.eps,
        },
        ram: Ram {
            total_bytes: ram_bytes,
            copy_gbs: bw.copy_gbs,
            triad_gbs: bw.triad_gbs,
        },
        disk: Disk {
            dir: plan.dir.display().to_string(),
            fs_bytes: d.fs_bytes,
            seq_write_mbs: d.seq_write_mbs,
            dd_mbs: d.dd_mbs,
            rand_read_iops: d.rand_read_iops,
            rand_write_iops: d.rand_write_iops,
            direct_error: d.direct_error,
        },
        idle: Idle {
            load1: sample.load1,
            cpu_busy: sample.cpu_busy,
            waited_s,
        },
        verdict: tier::verdict(&measured),
        shape,
    };
    progress("done", 1.0);
    Ok(report::sign(report, key))
}

/// The fingerprint of this machine as the benchmark would compute it for `dir`.
pub fn current_fingerprint(dir: &Path) -> Option<String> {
    let (fs_bytes, _) = disk::fs_space(dir).ok()?;
    Some(shape::fingerprint(
        &shape::detect(),
        mem::total_bytes()?,
        fs_bytes,
    ))
}
