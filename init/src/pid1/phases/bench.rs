//! Phase benchmark: when /data holds no benchmark for this hardware fingerprint, PID1 starts
//! `fluxnode bench` as a helper child and goes on; the loop hands its exit to `finished`,
//! which keeps the signed report as /data/bench/latest.json (history beside it) and prints
//! `fluxnode: bench tier=<tier|none> eps=<n> dws=<n> ram=<GB>`. PID1 never waits on it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use runtime::bench::report::{self, Signed};
use tracing::{info, warn};

use crate::pid1::supervisor::exit_reason;
use crate::pid1::{Boot, DataState};

pub const BENCH_DIR: &str = "/data/bench";
pub const LATEST: &str = "/data/bench/latest.json";

/// A benchmark running as PID1's helper.
pub struct BenchJob {
    pub pid: Pid,
    pub out: PathBuf,
}

fn announce(s: &Signed) {
    let r = &s.report;
    let dws = r
        .disk
        .seq_write_mbs
        .map_or_else(|| "none".to_owned(), |d| format!("{d:.0}"));
    let tier = r.verdict.tier.map_or("none", |t| t.name());
    info!(
        "bench tier={tier} eps={:.0} dws={dws} ram={:.1}",
        r.cpu.eps_all,
        r.ram.total_bytes as f64 / 1e9
    );
}

/// The latest report, when it verifies.
pub fn latest() -> Option<Signed> {
    report::verify(&std::fs::read_to_string(LATEST).ok()?).ok()
}

pub fn run(boot: &mut Boot) -> Result<()> {
    if !matches!(boot.data, DataState::Mounted { .. }) {
        info!("benchmark: skipped, /data is not mounted");
        return Ok(());
    }
    if !boot.config.bench.enabled {
        info!("benchmark: disabled by config");
        return Ok(());
    }
    let fingerprint =
        runtime::bench::current_fingerprint(Path::new("/data")).context("hardware fingerprint")?;
    match std::fs::read_to_string(LATEST).map(|t| report::verify(&t)) {
        Ok(Ok(s)) if s.report.fingerprint == fingerprint => {
            info!("benchmark: {LATEST} is for this hardware ({fingerprint})");
            announce(&s);
            return Ok(());
        }
        Ok(Err(e)) => warn!("benchmark: {LATEST}: {e}; measuring again"),
        _ => {}
    }
    std::fs::create_dir_all(BENCH_DIR).with_context(|| BENCH_DIR.to_owned())?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = Path::new(BENCH_DIR).join(format!("{stamp}-{fingerprint}.json"));
    let mut cmd = Command::new("/init");
    cmd.args(["bench", "--quiet", "--dir", "/data", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .process_group(0);
    if boot.config.bench.quick {
        cmd.arg("--quick");
    }
    let child = cmd.spawn().context("start fluxnode bench")?;
    let pid = Pid::from_raw(child.id() as i32);
    // The reaper collects this pid and hands it to `finished`.
    drop(child);
    info!("benchmark: no result for this hardware ({fingerprint}); running as pid {pid}");
    boot.bench_job = Some(BenchJob { pid, out });
    Ok(())
}

/// Called by the loop when the benchmark helper exits.
pub fn finished(job: &BenchJob, status: &WaitStatus) {
    if !matches!(status, WaitStatus::Exited(_, 0)) {
        warn!(
            "benchmark failed ({}); the node runs on without a verdict",
            exit_reason(status)
        );
        return;
    }
    let checked = std::fs::read_to_string(&job.out)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            report::verify(&text)
                .map(|s| (s, text))
                .map_err(|e| e.to_string())
        });
    match checked {
        Ok((signed, text)) => {
            if let Err(e) = runtime::durable::write(Path::new(LATEST), text.as_bytes(), 0o644) {
                warn!("benchmark: keep {e}");
            }
            announce(&signed);
        }
        Err(e) => warn!("benchmark: {}: {e}", job.out.display()),
    }
}
