//! Container start latency on this host: our in-process libcontainer path against `crun run`
//! and `runc run`, on one bundle, interleaved in one run. The driver of
//! `scripts/bench-runtime.sh`, which prepares what crun needs on a cgroup v1 hybrid host (read
//! the script first); built only with the `host-v1` feature.
//!
//! One cycle is create, start, wait and delete of /bin/true. For us that is
//! `Runtime::create` + `start` + `waitpid` + `delete` in this process; for crun and runc it is
//! one `run` process, which does the same and exits when the container has gone. Each round
//! times one cycle of each, in a rotating order, so that drift and noise hit all three alike.
//! Prints the median, the p90, and the ratio of the median to crun's, then our time per phase.
//!
//! Where our time goes (profiled with `perf record -g` on `--only fluxnode`): nearly all of it
//! is inside libcontainer, in three processes (this one, its intermediate and the container's
//! init). On a cgroup v1 host about half of it is v1 cgroup work that a cgroup2 node does not
//! do: libcgroups builds its v1 manager twice per cycle (in create and in delete), each time
//! reading /proc/self/mountinfo and /proc/self/cgroup once per controller through pathrs'
//! checked procfs handles, and the container's /sys/fs/cgroup is one mount per hierarchy.

use std::fs::{self, File};
use std::io::{IsTerminal, Read, Seek, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use runtime::container::{self, Runtime};
use runtime::spec::{runtime_spec, AppSpec, RestartPolicy};

/// The cgroup of every container of the run, under each hierarchy: an absolute path, valid
/// for cgroup v1 and for all three runtimes.
const CGROUP_PARENT: &str = "fluxbench";

#[derive(Parser)]
#[command(about = "container start latency: in-process libcontainer vs crun run and runc run")]
struct Args {
    /// Timed cycles per runtime.
    #[arg(default_value_t = 200)]
    cycles: usize,
    /// Untimed cycles per runtime first (page cache, first cgroup creation).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Work directory: the bundle and the three state roots (the script puts a tmpfs there).
    #[arg(long, default_value = "/run/fluxbench")]
    dir: PathBuf,
    /// The busybox-static binary the bundle's rootfs is made of.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    #[arg(long, default_value = "crun")]
    crun: String,
    #[arg(long, default_value = "runc")]
    runc: String,
    /// Time only this runtime (fluxnode, crun or runc), to profile it; no ratio then.
    #[arg(long, value_parser = ["fluxnode", "crun", "runc"])]
    only: Option<String>,
    /// The runtimes to time, comma-separated (default all three; the image bench has no
    /// runc).
    #[arg(long, value_delimiter = ',', value_parser = ["fluxnode", "crun", "runc"])]
    runtimes: Vec<String>,
    /// Also write every timed cycle to this file: `round runtime total_ms`, and for ours
    /// `create_ms start_ms wait_ms delete_ms` after it.
    #[arg(long)]
    raw: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Fluxnode,
    Crun,
    Runc,
}

impl Which {
    const ALL: [Which; 3] = [Which::Fluxnode, Which::Crun, Which::Runc];

    fn name(self) -> &'static str {
        match self {
            Which::Fluxnode => "fluxnode",
            Which::Crun => "crun",
            Which::Runc => "runc",
        }
    }
}

/// Our time in each phase of one cycle.
#[derive(Default, Clone, Copy)]
struct Phases {
    create: Duration,
    start: Duration,
    wait: Duration,
    delete: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.create + self.start + self.wait + self.delete
    }
}

/// The benchmark's app: what `runtime_spec` makes of it is the config all three runtimes run.
fn bench_app() -> AppSpec {
    AppSpec {
        name: "bench".into(),
        instance: 0,
        image: format!("sha256:{}", "0".repeat(64)),
        source: None,
        entrypoint: None,
        command: vec!["/bin/true".into()],
        user: None,
        env: vec![],
        ports: vec![],
        cpu_millis: 1000,
        ram_bytes: 64 << 20,
        disk_bytes: 0,
        pids: 64,
        disk_weight: 100,
        restart: RestartPolicy::No,
    }
}

/// Writes `dir/bundle`: a rootfs of busybox with /bin/true, and the config.json of our secure
/// defaults (`runtime_spec`), with two changes that the host needs and that all three runtimes
/// get alike: the cgroup is `/fluxbench/bench`, and there is no io weight (cgroup v1 offers
/// `blkio.weight` only under the CFQ/BFQ schedulers, which this host does not use).
fn make_bundle(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let bundle = dir.join("bundle");
    let bin = bundle.join("rootfs/bin");
    fs::create_dir_all(&bin).with_context(|| format!("mkdir {}", bin.display()))?;
    fs::copy(busybox, bin.join("busybox"))
        .with_context(|| format!("copy {} into the rootfs", busybox.display()))?;
    symlink("busybox", bin.join("true")).context("symlink rootfs/bin/true")?;
    let mut spec = runtime_spec(
        &bench_app(),
        &Default::default(),
        &Default::default(),
        Path::new("rootfs"),
        None,
    )?;
    let mut linux = spec
        .linux()
        .clone()
        .context("runtime_spec gave no linux section")?;
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{CGROUP_PARENT}/bench"))));
    if let Some(mut r) = linux.resources().clone() {
        r.set_block_io(None);
        linux.set_resources(Some(r));
    }
    spec.set_linux(Some(linux));
    runtime::image::instance::write_bundle(&bundle, &spec)?;
    Ok(bundle)
}

/// crun refuses a hybrid host while cgroup2 holds a controller ("cgroups in hybrid mode not
/// supported, drop all controllers from cgroupv2"); the script frees them first.
fn check_hybrid_controllers() -> Result<()> {
    let path = "/sys/fs/cgroup/unified/cgroup.controllers";
    if let Ok(held) = fs::read_to_string(path) {
        if !held.trim().is_empty() {
            bail!(
                "{path} still holds {:?}, so crun refuses to run: start this through \
                 scripts/bench-runtime.sh, which frees them in a private mount namespace",
                held.trim()
            );
        }
    }
    Ok(())
}

/// Stdio for a container or a reference runtime: no input, output to /dev/null, errors to a
/// log that is shown when a cycle fails.
struct Io {
    null: File,
    log: File,
    log_path: PathBuf,
}

impl Io {
    fn new(dir: &Path) -> Result<Self> {
        let log_path = dir.join("stderr.log");
        Ok(Io {
            null: File::options().read(true).write(true).open("/dev/null")?,
            log: File::options()
                .read(true)
                .append(true)
                .create(true)
                .open(&log_path)?,
            log_path,
        })
    }

    fn container(&self) -> Result<container::Stdio> {
        Ok(container::Stdio {
            stdin: Some(self.null.try_clone()?.into()),
            stdout: Some(self.null.try_clone()?.into()),
            stderr: Some(self.log.try_clone()?.into()),
        })
    }

    fn tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(2000)));
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

struct Bench {
    bundle: PathBuf,
    ours: Runtime,
    crun_root: PathBuf,
    runc_root: PathBuf,
    args: Args,
    io: Io,
}

impl Bench {
    /// One cycle of our in-process path, timed per phase.
    fn ours(&self, id: &str) -> Result<Phases> {
        let stdio = self.io.container()?;
        let t0 = Instant::now();
        let pid = self.ours.create(id, &self.bundle, stdio, None)?;
        let t1 = Instant::now();
        self.ours.start(id)?;
        let t2 = Instant::now();
        match waitpid(Pid::from_raw(pid), None).with_context(|| format!("waitpid {pid}"))? {
            WaitStatus::Exited(_, 0) => {}
            other => bail!("container {id}: /bin/true ended with {other:?}"),
        }
        let t3 = Instant::now();
        self.ours.delete(id, false)?;
        let t4 = Instant::now();
        Ok(Phases {
            create: t1 - t0,
            start: t2 - t1,
            wait: t3 - t2,
            delete: t4 - t3,
        })
    }

    /// One `crun run` or `runc run`: create, start, wait and delete in one process.
    fn reference(&self, which: Which, id: &str) -> Result<Duration> {
        let (bin, root) = match which {
            Which::Crun => (&self.args.crun, &self.crun_root),
            Which::Runc => (&self.args.runc, &self.runc_root),
            Which::Fluxnode => unreachable!("not a reference runtime"),
        };
        let mut run = Command::new(bin);
        run.arg("--root")
            .arg(root)
            .arg("run")
            .arg("--bundle")
            .arg(&self.bundle)
            .arg(id)
            .stdin(Stdio::from(self.io.null.try_clone()?))
            .stdout(Stdio::from(self.io.null.try_clone()?))
            .stderr(Stdio::from(self.io.log.try_clone()?));
        let t0 = Instant::now();
        let status = run.status().with_context(|| format!("run {bin}"))?;
        let took = t0.elapsed();
        if !status.success() {
            bail!("{bin} run {id}: {status}");
        }
        Ok(took)
    }

    /// One cycle of `which`; its total time, and our phases when it is ours.
    fn cycle(&self, which: Which, n: usize) -> Result<(Duration, Option<Phases>)> {
        let id = format!("{}-{n}", which.name());
        let r = match which {
            Which::Fluxnode => self.ours(&id).map(|p| (p.total(), Some(p))),
            other => self.reference(other, &id).map(|d| (d, None)),
        };
        r.with_context(|| {
            format!(
                "{} cycle {n}; its stderr ends with:\n{}",
                which.name(),
                self.io.tail()
            )
        })
    }
}

/// Removes what a run puts in the work directory (left in place after a failed run, for its
/// stderr log).
fn clear_work_dir(dir: &Path) {
    for leftover in ["bundle", "fluxnode", "crun", "runc", "stderr.log"] {
        let p = dir.join(leftover);
        let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
    }
    let _ = fs::remove_dir(dir);
}

/// The 1-minute load average, to tell a busy machine's figures from an idle one's.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The value at quantile `q` (nearest rank) of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Removes what a run leaves in the cgroup hierarchies: the `/fluxbench` parent that each
/// runtime makes and does not remove, and, after a failed cycle, the container's own cgroup
/// (its processes killed first).
fn remove_cgroups() {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 3 || !(f[2] == "cgroup" || f[2] == "cgroup2") {
            continue;
        }
        let parent = Path::new(f[1]).join(CGROUP_PARENT);
        let leaf = parent.join("bench");
        if let Ok(procs) = fs::read_to_string(leaf.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
            for _ in 0..50 {
                if fs::remove_dir(&leaf).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_dir(&parent);
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.cycles == 0 {
        bail!("cycles must be at least 1");
    }
    let runtimes: Vec<Which> = Which::ALL
        .into_iter()
        .filter(|w| args.only.is_none() || args.only.as_deref() == Some(w.name()))
        .filter(|w| args.runtimes.is_empty() || args.runtimes.iter().any(|r| r == w.name()))
        .collect();
    if runtimes.contains(&Which::Crun) {
        check_hybrid_controllers()?;
    }
    for which in &runtimes {
        let bin = match which {
            Which::Crun => &args.crun,
            Which::Runc => &args.runc,
            Which::Fluxnode => continue,
        };
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("{bin} --version (is it installed?)"))?;
    }
    fs::create_dir_all(&args.dir).with_context(|| format!("mkdir {}", args.dir.display()))?;
    clear_work_dir(&args.dir);
    let bundle = make_bundle(&args.dir, &args.busybox)?;
    let bench = Bench {
        bundle,
        ours: Runtime::open(&args.dir.join("fluxnode"))?,
        crun_root: args.dir.join("crun"),
        runc_root: args.dir.join("runc"),
        io: Io::new(&args.dir)?,
        args,
    };
    let cycles = bench.args.cycles;
    let warmup = bench.args.warmup;
    let n = runtimes.len();

    // No steady tick: libcontainer clones with a raw clone3, which runs no fork handlers, so
    // a second thread holding the allocator's lock at that moment would hang the child.
    let bar = ProgressBar::with_draw_target(
        Some(((warmup + cycles) * n) as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    )
    .with_style(
        ProgressStyle::with_template("{msg:>6} [{bar:40}] {pos}/{len} cycles, {eta} left")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(cycles); n];
    let mut phases = Vec::with_capacity(cycles);
    let mut raw = match &bench.args.raw {
        Some(p) => Some(std::io::BufWriter::new(
            File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => None,
    };
    let load_before = loadavg();
    let run = (|| -> Result<()> {
        for round in 0..warmup + cycles {
            bar.set_message(if round < warmup { "warmup" } else { "timed" });
            for k in 0..n {
                let slot = (round + k) % n;
                let (took, p) = bench.cycle(runtimes[slot], round)?;
                if round >= warmup {
                    times[slot].push(ms(took));
                    if let Some(w) = raw.as_mut() {
                        write!(w, "{round} {} {:.3}", runtimes[slot].name(), ms(took))?;
                        if let Some(p) = &p {
                            let each = [p.create, p.start, p.wait, p.delete].map(ms);
                            write!(
                                w,
                                " {:.3} {:.3} {:.3} {:.3}",
                                each[0], each[1], each[2], each[3]
                            )?;
                        }
                        writeln!(w)?;
                    }
                    phases.extend(p);
                }
                bar.inc(1);
            }
        }
        Ok(())
    })();
    bar.finish_and_clear();
    remove_cgroups();
    run?;
    if let Some(mut w) = raw {
        w.flush()?;
    }
    clear_work_dir(&bench.args.dir);

    for t in times.iter_mut() {
        t.sort_by(f64::total_cmp);
    }
    let crun_median = runtimes
        .iter()
        .position(|w| *w == Which::Crun)
        .map(|i| quantile(&times[i], 0.5));
    let ratio = |median: f64| crun_median.map_or(f64::NAN, |c| median / c);
    println!(
        "{cycles} cycles each of create, start, wait and delete of /bin/true, interleaved \
         (load average {load_before} before, {} after)",
        loadavg()
    );
    println!(
        "{:<10} {:>10} {:>10} {:>14}",
        "runtime", "median ms", "p90 ms", "ratio to crun"
    );
    for (which, t) in runtimes.iter().zip(&times) {
        let (median, p90) = (quantile(t, 0.5), quantile(t, 0.9));
        println!(
            "{:<10} {median:>10.2} {p90:>10.2} {:>14.2}",
            which.name(),
            ratio(median)
        );
    }
    if !phases.is_empty() {
        let phase = |f: fn(&Phases) -> Duration| {
            let mut v: Vec<f64> = phases.iter().map(|p| ms(f(p))).collect();
            v.sort_by(f64::total_cmp);
            (quantile(&v, 0.5), quantile(&v, 0.9))
        };
        let rows: [(&str, (f64, f64)); 4] = [
            ("create", phase(|p| p.create)),
            ("start", phase(|p| p.start)),
            ("wait", phase(|p| p.wait)),
            ("delete", phase(|p| p.delete)),
        ];
        println!("fluxnode by phase (median ms, p90 ms):");
        for (name, (median, p90)) in rows {
            println!("  {name:<8} {median:>8.2} {p90:>8.2}");
        }
        let fields: Vec<String> = rows
            .iter()
            .map(|(name, (median, _))| format!("{name}_ms={median:.3}"))
            .collect();
        println!("phases fluxnode {}", fields.join(" "));
    }
    for (which, t) in runtimes.iter().zip(&times) {
        let median = quantile(t, 0.5);
        println!(
            "result {} median_ms={median:.3} p90_ms={:.3} ratio_to_crun={:.3}",
            which.name(),
            quantile(t, 0.9),
            ratio(median)
        );
    }
    Ok(())
}
