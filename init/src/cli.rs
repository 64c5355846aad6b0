//! The command line of the `fluxnode` binary when it is not PID1. Each subcommand parses its
//! arguments, calls a library, and prints.

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    /// Print the version and build details.
    Version,
    /// Print the cgroup v2 controllers the kernel offers under a cgroup2 mount.
    Controllers {
        /// The cgroup2 mount point.
        #[arg(long, default_value = "/sys/fs/cgroup")]
        root: std::path::PathBuf,
    },
}

pub fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Version => {
            println!("fluxnode {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Controllers { root } => {
            let list = runtime::cgroup::available(&root)?;
            println!("{}", list.join(" "));
            Ok(())
        }
    }
}
