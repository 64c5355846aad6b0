//! Test services for the qemu-tests: the image has no shell, so each behaviour a test needs
//! from a service is a subcommand of the fluxnode binary.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use nix::unistd::{fork, ForkResult};
use runtime::control::Client;

#[derive(Subcommand)]
pub enum Selftest {
    /// Run one second, then fail.
    Flap,
    /// Double-fork N children that exit at once, leaving N orphans for PID1 to reap.
    Orphans { count: u32 },
    /// Append numbered lines to a file with fsync, forever.
    Write { path: PathBuf },
    /// Write a marker file (synced), then ask PID1 to reboot; after the reboot, print it.
    RebootAfterWrite { path: PathBuf, text: String },
    /// Connect to ADDR (retrying while the network comes up), send TEXT, then idle.
    Dial { addr: String, text: String },
    /// Listen on 0.0.0.0:PORT and send TEXT to every client (for hostfwd tests).
    Listen { port: u16, text: String },
    /// Ask PID1 for the latest benchmark report and print its schema and tier.
    BenchLatest,
    /// Print PID1's status on the console every N seconds.
    StatusEvery { seconds: u64 },
    /// Ask PID1's status every MS milliseconds (each with 30 s to answer) until the file
    /// UNTIL exists; then print how many were answered, the slowest answer and PID1's loop
    /// histogram, and exit.
    StatusWatch { every_ms: u64, until: PathBuf },
}

fn orphans(count: u32) -> Result<()> {
    for _ in 0..count {
        // SAFETY: this process is single-threaded; the children only fork again and exit.
        match unsafe { fork() }.context("fork")? {
            ForkResult::Child => {
                // SAFETY: as above.
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    std::thread::sleep(Duration::from_millis(200));
                }
                // SAFETY: _exit is async-signal-safe and skips Rust's atexit work.
                unsafe { libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).context("wait for child")?;
            }
        }
    }
    println!("selftest orphans: {count} orphans left for PID1");
    Ok(())
}

pub fn run(test: Selftest) -> Result<()> {
    match test {
        Selftest::Flap => {
            std::thread::sleep(Duration::from_secs(1));
            std::process::exit(1);
        }
        Selftest::Orphans { count } => orphans(count),
        Selftest::Write { path } => {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| path.display().to_string())?;
            for i in 0u64.. {
                writeln!(f, "line {i}")?;
                f.sync_data()?;
                if i % 100 == 0 {
                    println!("selftest write: {i} lines");
                }
            }
            Ok(())
        }
        Selftest::RebootAfterWrite { path, text } => {
            if let Ok(found) = std::fs::read_to_string(&path) {
                println!("selftest: marker found: {found}");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            std::fs::write(&path, &text).with_context(|| path.display().to_string())?;
            OpenOptions::new().read(true).open(&path)?.sync_all()?;
            println!("selftest: wrote {}, asking PID1 to reboot", path.display());
            Client::default().reboot()?;
            std::thread::sleep(Duration::from_secs(60));
            Ok(())
        }
        Selftest::Dial { addr, text } => {
            let mut last_err = None;
            for _ in 0..120 {
                match std::net::TcpStream::connect(&addr) {
                    Ok(mut s) => {
                        s.write_all(text.as_bytes())?;
                        println!("selftest dial: sent {} bytes to {addr}", text.len());
                        loop {
                            std::thread::sleep(Duration::from_secs(3600));
                        }
                    }
                    Err(e) => last_err = Some(e),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            anyhow::bail!(
                "connect {addr}: {}",
                last_err.map(|e| e.to_string()).unwrap_or_default()
            )
        }
        Selftest::Listen { port, text } => {
            let listener = std::net::TcpListener::bind(("0.0.0.0", port))
                .with_context(|| format!("listen on {port}"))?;
            println!("selftest listen: on port {port}");
            for mut c in listener.incoming().flatten() {
                let _ = c.write_all(text.as_bytes());
            }
            Ok(())
        }
        Selftest::BenchLatest => {
            let client = Client::default().with_timeout(Duration::from_secs(5));
            match client.bench_latest() {
                Ok(s) => println!(
                    "selftest bench.latest: ok=true schema={} tier={}",
                    s.report.schema,
                    s.report.verdict.tier.map_or("none", |t| t.name())
                ),
                Err(e) => println!("selftest bench.latest: ok=false {e}"),
            }
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Selftest::StatusWatch { every_ms, until } => {
            let client = Client::default().with_timeout(Duration::from_secs(30));
            let (mut count, mut answered, mut slowest) = (0u32, 0u32, Duration::ZERO);
            let mut last = None;
            while !until.exists() {
                count += 1;
                let asked = std::time::Instant::now();
                match client.status() {
                    Ok(s) => {
                        answered += 1;
                        slowest = slowest.max(asked.elapsed());
                        last = Some(s);
                    }
                    Err(e) => println!("selftest status-watch: no answer: {e}"),
                }
                std::thread::sleep(Duration::from_millis(every_ms));
            }
            println!(
                "selftest status-watch: asked {count} answered {answered} slowest_ms {}",
                slowest.as_millis()
            );
            if let Some(s) = last {
                println!(
                    "selftest status-watch: loop {}",
                    serde_json::to_string(&s.loop_turns)?
                );
            }
            Ok(())
        }
        Selftest::StatusEvery { seconds } => loop {
            let client = Client::default().with_timeout(Duration::from_secs(5));
            println!(
                "selftest status: {}",
                serde_json::to_string(&client.status()?)?
            );
            std::thread::sleep(Duration::from_secs(seconds));
        },
    }
}
