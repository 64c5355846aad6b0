//! Phase services: the control socket is bound, and the supervisor takes the service table
//! (built-in services, then the operator's from config) and starts them; the apps in the
//! desired state on /data start too.

use std::path::Path;

use anyhow::Result;
use runtime::control::SOCKET;
use tracing::{info, warn};

use crate::config::{Restart, ServiceSpec};
use crate::pid1::apps::{Apps, Paths};
use crate::pid1::control::ControlServer;
use crate::pid1::supervisor::Supervisor;
use crate::pid1::{Boot, DataState};

/// The chain node as a service, when /data is mounted and there is a genesis (or a chain
/// store, which keeps its genesis, or a devnet is asked for): its data in /data/chain, its
/// key /data/keys/node.key. A devnet always gets `--devnet`, so a damaged genesis file is
/// restored from the store, or made again while there is none.
fn chain_service(boot: &Boot) -> Option<ServiceSpec> {
    let c = &boot.config.chain;
    if !c.enabled || !matches!(boot.data, DataState::Mounted { .. }) {
        return None;
    }
    let mut argv: Vec<String> = ["/init", "chain", "--data", "/data/chain"]
        .map(String::from)
        .to_vec();
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
    let data = match &boot.data {
        DataState::Mounted { .. } => Ok(()),
        other => Err(format!("/data is not mounted ({other:?})")),
    };
    boot.apps = Apps::new(Paths::default(), boot.config.reserve, data);
    boot.apps.restore();
    boot.apps.tick();
    Ok(())
}
