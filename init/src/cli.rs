//! The command line of the `fluxnode` binary when it is not PID1. Each subcommand parses its
//! arguments, calls a library, and prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use runtime::control::{self, Client};

use crate::config::Config;
use crate::selftest::{self, Selftest};

#[derive(Parser)]
#[command(
    name = "fluxnode",
    version,
    about = "fluxnode: node OS for a decentralized cloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the version.
    Version,
    /// Print the cgroup v2 controllers the kernel offers under a cgroup2 mount.
    Controllers {
        #[arg(long, default_value = "/sys/fs/cgroup")]
        root: PathBuf,
    },
    /// Node configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Talk to PID1 over its control socket.
    Ctl {
        #[arg(long, default_value = control::SOCKET)]
        socket: PathBuf,
        #[command(subcommand)]
        command: CtlCommand,
    },
    /// Benchmark CPU, RAM and disk against the node tiers; `bench verify FILE` checks a report.
    Bench(crate::bench_cli::BenchArgs),
    /// Run the DHCPv4 client on a link (PID1 starts one per link as a service).
    Dhcp { iface: String },
    /// Import an OCI image layout or oci-archive into the image store (PID1 runs this as a
    /// helper, so unpacking never blocks its loop); prints the manifest digest.
    Unpack {
        #[arg(long, default_value = "/data/images")]
        store: PathBuf,
        /// Fail unless the source holds this manifest digest.
        #[arg(long)]
        expect: Option<String>,
        source: PathBuf,
    },
    /// Pull an image from an OCI registry into the image store (PID1 runs this as a helper,
    /// so a pull never blocks its loop); prints the manifest digest.
    Pull(crate::pull_cli::PullArgs),
    /// Remove what an app instance wrote (PID1 runs this as a helper when an app is
    /// stopped with --purge, so gigabytes never block its loop).
    #[command(hide = true)]
    Purge { dir: PathBuf },
    /// Run the chain node.
    Chain(crate::chain_cli::ChainArgs),
    /// A wallet key: new, address, balance.
    #[command(subcommand)]
    Wallet(crate::wallet_cli::WalletCommand),
    /// Sign a transaction with the wallet and send it to a node.
    #[command(subcommand)]
    Tx(crate::wallet_cli::TxCommand),
    /// A runc-compatible OCI runtime over the same libcontainer path as PID1.
    Oci(crate::oci_cli::OciArgs),
    /// Updates: stage a bundle on the ESP, commit the running version (PID1's helpers).
    #[command(subcommand)]
    Update(crate::update_cli::UpdateCommand),
    /// Test services run by the qemu-tests (the image has no shell).
    #[command(subcommand)]
    Selftest(Selftest),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a fluxnode.toml: every problem is printed with its field; exit 1 if any.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Phases, services with restarts, network and storage, as JSON.
    Status,
    /// The latest signed benchmark report.
    Bench,
    /// Restart a service now.
    Restart { name: String },
    /// Orderly poweroff.
    Shutdown,
    /// Orderly reboot.
    Reboot,
    /// Apps: run, stop, list, stats.
    #[command(subcommand)]
    App(crate::app_cli::AppCommand),
    /// Updates: stage a signed bundle.
    #[command(subcommand)]
    Update(crate::update_cli::CtlUpdate),
}

/// Each request through the typed client; the typed reply printed as JSON.
fn ctl(socket: &std::path::Path, command: CtlCommand) -> Result<()> {
    let c = Client::new(socket, Duration::from_secs(10));
    let shown = match command {
        CtlCommand::Status => Some(serde_json::to_value(c.status()?)?),
        CtlCommand::Bench => Some(serde_json::to_value(c.bench_latest()?)?),
        CtlCommand::Restart { name } => c.service_restart(&name).map(|()| None)?,
        CtlCommand::Shutdown => c.shutdown().map(|()| None)?,
        CtlCommand::Reboot => c.reboot().map(|()| None)?,
        CtlCommand::App(cmd) => Some(crate::app_cli::ctl(&c, cmd)?).filter(|v| !v.is_null()),
        CtlCommand::Update(cmd) => crate::update_cli::ctl(&c, cmd)?,
    };
    match shown {
        Some(data) => println!("{}", serde_json::to_string_pretty(&data)?),
        None => println!("ok"),
    }
    Ok(())
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Version => println!("fluxnode {}", env!("CARGO_PKG_VERSION")),
        Command::Controllers { root } => {
            println!("{}", runtime::cgroup::available(&root)?.join(" "))
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let (_, diags) = Config::check_file(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for d in &diags {
                println!("{d}");
            }
            if !diags.is_empty() {
                bail!(
                    "{}: {} problem(s); a node skips those fields and applies the rest",
                    file.display(),
                    diags.len()
                );
            }
            println!("{}: ok", file.display());
        }
        Command::Ctl { socket, command } => ctl(&socket, command)?,
        Command::Bench(args) => crate::bench_cli::run(args)?,
        Command::Dhcp { iface } => crate::net::client::run(&iface)?,
        Command::Unpack {
            store,
            expect,
            source,
        } => crate::app_cli::unpack(&store, &source, expect.as_deref())?,
        Command::Purge { dir } => crate::app_cli::purge(&dir)?,
        Command::Pull(args) => crate::pull_cli::run(args)?,
        Command::Oci(args) => crate::oci_cli::run(args)?,
        Command::Wallet(cmd) => crate::wallet_cli::wallet(cmd)?,
        Command::Chain(args) => crate::chain_cli::run(args)?,
        Command::Tx(cmd) => crate::wallet_cli::tx(cmd)?,
        Command::Update(cmd) => crate::update_cli::run(cmd)?,
        Command::Selftest(test) => selftest::run(test)?,
    }
    Ok(())
}
