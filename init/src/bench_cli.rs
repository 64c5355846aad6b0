//! `fluxnode bench`: runs the hardware benchmark on any Linux host (or as PID1's helper on a
//! node), prints the verdict as a table or the signed JSON report, and verifies reports.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ring::signature::Ed25519KeyPair;
use runtime::bench::{self, report, Plan};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// Short run for CI (under 10 s).
    #[arg(long)]
    quick: bool,
    /// The CPU workload: count primes below this, per event (sysbench's --cpu-max-prime).
    /// The tier EPS thresholds assume the default, 60000.
    #[arg(long, default_value_t = bench::cpu::DEFAULT_MAX_PRIME, value_parser = clap::value_parser!(u64).range(3..=10_000_000))]
    cpu_max_prime: u64,
    /// Print the signed JSON report instead of the table.
    #[arg(long)]
    json: bool,
    /// Directory for the disk test file (default: /data when it exists, else .).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Ed25519 PKCS#8 key to sign with (default: /data/keys/node.key when it exists).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also write the signed report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress and no table (for PID1's helper).
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Check a signed report: exit 0 and print its verdict when it verifies.
    Verify { file: PathBuf },
}

const NODE_KEY: &str = "/data/keys/node.key";

fn load_key(path: &Path) -> Result<Ed25519KeyPair> {
    let bytes = std::fs::read(path).with_context(|| format!("key {}", path.display()))?;
    Ed25519KeyPair::from_pkcs8(&bytes)
        .map_err(|_| anyhow::anyhow!("key {}: not an Ed25519 PKCS#8 key", path.display()))
}

fn key(args: &BenchArgs) -> Result<(Ed25519KeyPair, String)> {
    if let Some(p) = &args.key {
        return Ok((load_key(p)?, p.display().to_string()));
    }
    if Path::new(NODE_KEY).exists() {
        return Ok((load_key(Path::new(NODE_KEY))?, NODE_KEY.into()));
    }
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("random generator failed"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("generated key rejected"))?;
    Ok((
        pair,
        "a one-off key (no --key and no /data/keys/node.key)".into(),
    ))
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.0} {unit}"))
}

fn print_table(s: &report::Signed, signer: &str) {
    let r = &s.report;
    let virt = r
        .shape
        .virtualization
        .as_deref()
        .map_or(String::new(), |v| format!(", virtualized ({v})"));
    println!(
        "fluxnode bench{}: {}, {} cores / {} threads, {}{virt}",
        if r.quick { " (quick)" } else { "" },
        r.shape.cpu_model,
        r.shape.cores,
        r.shape.threads,
        r.shape.arch
    );
    println!(
        "  cpu   {:.1} EPS on 1 thread, {:.1} EPS on {} threads (max prime {})",
        r.cpu.eps_single, r.cpu.eps_all, r.cpu.threads, r.cpu.max_prime
    );
    println!(
        "  ram   {:.1} GB, copy {:.1} GB/s, triad {:.1} GB/s",
        r.ram.total_bytes as f64 / 1e9,
        r.ram.copy_gbs,
        r.ram.triad_gbs
    );
    println!(
        "  disk  {} ({:.1} GB): write {} (O_DIRECT, 1 MiB, QD32), dd {:.0} MB/s, 4k read {}, 4k write {}",
        r.disk.dir,
        r.disk.fs_bytes as f64 / 1e9,
        opt(r.disk.seq_write_mbs, "MB/s"),
        r.disk.dd_mbs,
        opt(r.disk.rand_read_iops, "IOPS"),
        opt(r.disk.rand_write_iops, "IOPS")
    );
    if let Some(e) = &r.disk.direct_error {
        println!("  note  {e}");
    }
    println!("  tier  {}", r.verdict.tier.map_or("none", |t| t.name()));
    println!(
        "  {:<8} {:<8} {:>12} {:>12} {:>6} {:>12}",
        "tier", "line", "measured", "threshold", "", "margin"
    );
    for l in &r.verdict.lines {
        println!(
            "  {:<8} {:<8} {:>12.1} {:>12.1} {:>6} {:>+12.1} {}",
            l.tier.name(),
            l.name,
            l.measured,
            l.threshold,
            if l.pass { "pass" } else { "FAIL" },
            l.margin,
            l.unit
        );
    }
    println!("  signed by {} with {signer}", &s.public_key[..16]);
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(BenchCommand::Verify { file }) = &args.command {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        let signed =
            report::verify(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        println!(
            "{}: signature ok, public key {}",
            file.display(),
            signed.public_key
        );
        print_table(&signed, "the key above");
        return Ok(());
    }
    let dir = args.dir.clone().unwrap_or_else(|| {
        if Path::new("/data").is_dir() {
            "/data".into()
        } else {
            ".".into()
        }
    });
    let mut plan = if args.quick {
        Plan::quick(dir)
    } else {
        Plan::full(dir)
    };
    plan.cpu_max_prime = args.cpu_max_prime;
    let (key, signer) = key(&args)?;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(100)
    };
    bar.set_style(
        ProgressStyle::with_template("bench {bar:30} {percent:>3}% {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = |step: &str, done: f64| {
        bar.set_position((done * 100.0) as u64);
        bar.set_message(step.to_owned());
    };
    let result = bench::run(&plan, args.quick, 6, &key, &mut progress);
    bar.finish_and_clear();
    let signed = match result {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    let text = signed.to_file_text();
    if let Some(out) = &args.out {
        // Durably: a power cut leaves the old report or the new one.
        runtime::durable::write(out, text.as_bytes(), 0o644)?;
    }
    if args.json {
        print!("{text}");
    } else if !args.quiet {
        print_table(&signed, &signer);
    }
    Ok(())
}
