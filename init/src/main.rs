//! The `fluxnode` binary. Run as PID1 it is the node's init; run any other way it is the
//! command line for every role (multi-call, like Talos's machined).

mod cli;
mod config;
mod net;
mod pid1;
mod selftest;
mod storage;
mod uptime;

fn main() {
    if std::process::id() == 1 {
        pid1::main();
    }
    if let Err(err) = cli::run() {
        eprintln!("fluxnode: {err:#}");
        std::process::exit(1);
    }
}
