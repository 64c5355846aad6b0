//! Phase services: the control socket is bound, and the supervisor takes the service table
//! (built-in services, then the operator's from config) and starts them; the apps in the
//! desired state on /data are restored (and start from the loop, one per turn), unless the
//! boots before this one never reached a healthy loop three times in a row: then they are
//! held until `fluxnode ctl app resume`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use runtime::control::SOCKET;
use tracing::{info, warn};

use crate::config::{Restart, ServiceSpec};
use crate::pid1::control::ControlServer;
use crate::pid1::supervisor::Supervisor;
use crate::pid1::Apps;
use crate::pid1::{Boot, DataState};
use runtime::apps::boots::BootGuard;
use runtime::apps::live::{LiveHost, Paths};
use runtime::net::NetConfig;

/// The apps this node should run.
const DESIRED: &str = "/data/apps/desired.json";
/// Boots in a row that never reached a healthy loop.
const UNHEALTHY_BOOTS: &str = "/data/apps/unhealthy-boots";

/// The chain node as a service, when /data is mounted and there is a genesis (or a chain
/// store, which keeps its genesis, or a devnet is asked for): its data in /data/chain, its
/// key /data/keys/node.key, its owner `[chain] owner` (it confirms for no one else). A
/// devnet always gets `--devnet`, so a damaged genesis file is restored from the store, or
/// made again while there is none.
fn chain_service(boot: &Boot) -> Option<ServiceSpec> {
    let c = &boot.config.chain;
    if !c.enabled || !matches!(boot.data, DataState::Mounted { .. }) {
        return None;
    }
    let mut argv: Vec<String> = ["/init", "chain", "--data", "/data/chain"]
        .map(String::from)
        .to_vec();
    argv.extend(["--rpc".to_owned(), c.rpc_listen.to_string()]);
    if let Some(owner) = c.owner {
        argv.extend(["--owner".to_owned(), owner.to_string()]);
    }
    if c.devnet {
        argv.push("--devnet".into());
    } else if !Path::new("/data/chain/genesis.json").exists()
        && !Path::new("/data/chain/db").exists()
    {
        info!("chain: no /data/chain/genesis.json and no devnet asked for; not started");
        return None;
    }
    Some(ServiceSpec {
        name: "chain".into(),
        argv,
        env: Vec::new(),
        restart: Restart::Always,
    })
}

pub fn run(boot: &mut Boot) -> Result<()> {
    match ControlServer::bind(Path::new(SOCKET)) {
        Ok(c) => {
            info!("control socket {SOCKET}");
            boot.control = Some(c);
        }
        Err(e) => warn!("control socket {SOCKET}: {e:#}; running without it"),
    }
    if let Some(spec) = chain_service(boot) {
        boot.config.services.insert(0, spec);
    }
    boot.supervisor = Supervisor::new(&boot.config.services);
    boot.supervisor.tick();
    let host = match &boot.data {
        DataState::Mounted { .. } => LiveHost::open(
            Paths::default(),
            Some(NetConfig {
                allow_private: boot.config.allow_private.clone(),
                ..NetConfig::default()
            }),
        ),
        other => Err(format!("/data is not mounted ({other:?})")),
    };
    let now = Instant::now();
    boot.apps = Apps::new(host, PathBuf::from(DESIRED), boot.config.reserve, now);
    if matches!(boot.data, DataState::Mounted { .. }) {
        let guard = BootGuard::new(Path::new(UNHEALTHY_BOOTS));
        match guard.begin() {
            Ok(Some(why)) => boot.apps.hold(why),
            Ok(None) => {}
            Err(e) => warn!("apps: boot count {e}"),
        }
        boot.boot_guard = Some(guard);
    }
    // The restored apps start from the loop, one per turn.
    boot.apps.restore(now);
    Ok(())
}
