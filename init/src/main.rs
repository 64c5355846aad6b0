//! The `fluxnode` binary. Run as PID1 it is the node's init; run any other way it is the
//! command line for every role (multi-call, like Talos's machined).

mod app_cli;
mod bench_cli;
mod chain_cli;
mod cli;
mod consent_cli;
mod oci_cli;
mod pid1;
mod pull_cli;
mod selftest;
mod storage;
mod update;
mod update_cli;
mod uptime;
mod wallet_cli;

use fluxnode_init::{config, net};

fn main() {
    if std::process::id() == 1 {
        pid1::main();
    }
    // As a command line tool, die quietly on a closed pipe (`fluxnode ... | head`) like the
    // C tools do, instead of Rust's panic on a failed print. Not as an OCI runtime: there
    // it writes the state to each hook's stdin, and a hook that exits without reading it
    // must give an EPIPE to handle, not a silent death that leaves a half-made container.
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new("oci")) {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    if let Err(err) = cli::run() {
        eprintln!("fluxnode: {err:#}");
        std::process::exit(1);
    }
}
