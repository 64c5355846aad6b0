//! Phase services: the control socket is bound, and the supervisor takes the service table
//! (built-in services, then the operator's from config) and starts them; the apps in the
//! desired state on /data start too.

use std::path::Path;

use anyhow::Result;
use runtime::control::SOCKET;
use tracing::{info, warn};

use crate::pid1::apps::{Apps, Paths};
use crate::pid1::control::ControlServer;
use crate::pid1::supervisor::Supervisor;
use crate::pid1::{Boot, DataState};

pub fn run(boot: &mut Boot) -> Result<()> {
    match ControlServer::bind(Path::new(SOCKET)) {
        Ok(c) => {
            info!("control socket {SOCKET}");
            boot.control = Some(c);
        }
        Err(e) => warn!("control socket {SOCKET}: {e:#}; running without it"),
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
