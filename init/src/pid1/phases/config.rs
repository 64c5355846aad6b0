//! Phase config: built-in defaults and `fluxnode.*` kernel command-line keys. The file on
//! /data cannot be read yet (FLUXDATA is mounted in the next phase), so the storage phase
//! layers it in with `apply_file` and the command line applied again on top. Every bad field
//! is named on the console and skipped.

use std::path::Path;

use anyhow::Result;
use tracing::{info, warn};

use crate::config::{Config, Diagnostic, NODE_CONFIG};
use crate::pid1::watchdog::Watchdog;
use crate::pid1::Boot;

fn report(diags: &[Diagnostic]) {
    for d in diags {
        warn!("{d} (skipped)");
    }
}

/// The settings that take effect at once: log level and hostname.
fn apply_settings(config: &Config) {
    crate::pid1::console::set_level(&config.log_level);
    match nix::unistd::sethostname(&config.hostname) {
        Ok(()) => info!("hostname {}", config.hostname),
        Err(e) => warn!("hostname {}: {e}", config.hostname),
    }
}

pub fn run(boot: &mut Boot) -> Result<()> {
    let mut config = Config::default();
    report(&config.apply_cmdline(boot.cmdline.iter()));
    apply_settings(&config);
    if config.watchdog.enabled {
        boot.watchdog = Watchdog::open(&config.watchdog.device, config.watchdog.timeout_s);
    }
    boot.config = config;
    Ok(())
}

/// Layers /data/etc/fluxnode.toml between the defaults and the command line.
pub fn apply_file(boot: &mut Boot) {
    let path = Path::new(NODE_CONFIG);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            info!("config: no {NODE_CONFIG}; defaults and kernel command line");
            return;
        }
        Err(e) => {
            warn!("config {NODE_CONFIG}: {e}; defaults and kernel command line");
            return;
        }
    };
    let mut config = Config::default();
    let mut diags = config.apply_toml(NODE_CONFIG, &text);
    diags.extend(config.apply_cmdline(boot.cmdline.iter()));
    report(&diags);
    info!(
        "config: {NODE_CONFIG} applied ({} field(s) skipped)",
        diags.len()
    );
    apply_settings(&config);
    if !config.watchdog.enabled {
        if let Some(w) = boot.watchdog.take() {
            info!("watchdog: disabled by config");
            w.magic_close();
        }
    }
    boot.config = config;
}
