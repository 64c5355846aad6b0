//! `fluxnode-vm`: boots the built image for people (`run`), measures boots (`bench-boot`)
//! the container cycle inside the image against crun (`bench-runtime`) and what app
//! networking costs (`bench-net`).
//! The scripts in scripts/ are thin wrappers around it.

mod bench;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use image::disk::parse_size;
use qemu_tests::{Artifacts, VmBuilder};

#[derive(Parser)]
#[command(name = "fluxnode-vm", about = "Boot the fluxnode image in QEMU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the disk image through OVMF with the console on this terminal.
    Run {
        /// Size of the node's disk (the data partition grows into it).
        #[arg(long, default_value = "8G", value_parser = parse_size)]
        disk_size: u64,
        /// Start again from the built image, dropping the node disk's data.
        #[arg(long)]
        fresh: bool,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 2048)]
        memory: u32,
    },
    /// Boot N times each way (direct, OVMF) and print the medians and artifact sizes.
    BenchBoot {
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// TCP throughput and short-connection rate to a server in a container behind a
    /// published port, against the same server directly on the node, in one VM run.
    BenchNet {
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds per measure.
        #[arg(long, default_value_t = 5)]
        secs: u32,
    },
    /// Time the container cycle inside the image (pure cgroup v2), ours against crun.
    BenchRuntime {
        /// The static `fluxnode-bench-runtime` driver.
        #[arg(long)]
        driver: PathBuf,
        #[arg(long, default_value = "/usr/bin/crun")]
        crun: PathBuf,
        #[arg(default_value_t = 100)]
        cycles: usize,
    },
}

/// The node's own disk: a copy of the built image that keeps its data between runs.
fn node_disk(a: &Artifacts, size: u64, fresh: bool) -> Result<PathBuf> {
    let dir = a.dir.parent().unwrap_or(Path::new(".")).join("run");
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let disk = dir.join("node.img");
    let built = std::fs::metadata(&a.disk)?.modified()?;
    let stale = std::fs::metadata(&disk)
        .and_then(|m| m.modified())
        .map(|t| t < built)
        .unwrap_or(true);
    if fresh || stale {
        eprintln!(
            "node disk: fresh copy of {} at {}",
            a.disk.display(),
            disk.display()
        );
        std::fs::copy(&a.disk, &disk).with_context(|| format!("copy to {}", disk.display()))?;
    }
    let f = std::fs::OpenOptions::new().write(true).open(&disk)?;
    let len = f.metadata()?.len();
    if size < len {
        bail!("--disk-size {size} is smaller than the node disk ({len} bytes); use --fresh");
    }
    f.set_len(size)?;
    Ok(disk)
}

fn run(disk_size: u64, fresh: bool, memory: u32) -> Result<()> {
    let a = Artifacts::locate().map_err(anyhow::Error::msg)?;
    let disk = node_disk(&a, disk_size, fresh)?;
    let mut vm = VmBuilder::from_artifacts(&a, Some(disk))
        .memory_mb(memory)
        .allow_reboot();
    for port in 16124..=16126 {
        vm = vm.forward(port, port);
    }
    let dir = tempfile::tempdir()?;
    eprintln!("fluxnode-vm: booting; ports 16124-16126 forwarded on 127.0.0.1. Ctrl-A X leaves.");
    let status = vm
        .interactive_command(dir.path())?
        .status()
        .context("qemu-system-x86_64")?;
    if !status.success() {
        bail!("qemu exited with {status}");
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            disk_size,
            fresh,
            memory,
        } => run(disk_size, fresh, memory),
        Command::BenchBoot { runs } => bench::run(runs),
        Command::BenchNet { rounds, secs } => {
            print!("{}", qemu_tests::bench_net::run(rounds, secs)?);
            Ok(())
        }
        Command::BenchRuntime {
            driver,
            crun,
            cycles,
        } => {
            print!(
                "{}",
                qemu_tests::bench_runtime::run(&driver, &crun, cycles)?
            );
            Ok(())
        }
    }
}
