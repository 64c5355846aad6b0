//! Node configuration: built-in defaults, then `/data/etc/fluxnode.toml`, then `fluxnode.*`
//! kernel command-line keys; the later source wins. Every field is applied on its own, so a
//! bad value or an unknown key is reported with its source and skipped while the rest
//! applies. Config never keeps a node from booting.

mod fields;
mod service;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use service::{Restart, ServiceSpec};

/// Where config files live on a node.
pub const NODE_CONFIG: &str = "/data/etc/fluxnode.toml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    Dhcp,
    Static,
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub mode: NetMode,
    /// Static address with prefix, e.g. 192.0.2.10/24.
    pub address: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    pub enabled: bool,
    pub device: PathBuf,
    /// Timeout to program into the device, seconds; None keeps the driver's.
    pub timeout_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// Grow FLUXDATA and its ext4 to the end of the disk when there is room.
    pub grow: bool,
}

/// The chain service PID1 supervises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub enabled: bool,
    /// Run a one-node devnet when /data/chain has no genesis.
    pub devnet: bool,
    /// Where JSON-RPC listens: this node only by default; `0.0.0.0:16124` opens it.
    pub rpc_listen: std::net::SocketAddr,
    /// The owner address this node confirms for (`[chain] owner = "fx..."`): a registration
    /// by anyone else gets no confirms. None: it confirms for nobody (a devnet's own wallet
    /// is its owner).
    pub owner: Option<chain::address::Address>,
}

/// Updates: how a new version proves itself before it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// How long a version on trial must stay healthy (no crash loop) before it is committed.
    pub health_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    /// Benchmark at boot when /data has no result for this hardware.
    pub enabled: bool,
    pub quick: bool,
}

/// The whole node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub hostname: String,
    pub log_level: String,
    pub storage: Storage,
    pub network: Network,
    pub watchdog: Watchdog,
    pub bench: Bench,
    /// What the node keeps for itself; apps are admitted into the rest of its capacity.
    pub reserve: runtime::admission::Resources,
    /// Private ranges app containers may reach (`[apps] allow_private`).
    pub allow_private: Vec<(Ipv4Addr, u8)>,
    pub chain: Chain,
    pub update: Update,
    pub services: Vec<ServiceSpec>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "fluxnode".into(),
            log_level: "info".into(),
            storage: Storage { grow: true },
            network: Network {
                mode: NetMode::Dhcp,
                address: None,
                gateway: None,
                dns: Vec::new(),
            },
            watchdog: Watchdog {
                enabled: true,
                device: "/dev/watchdog".into(),
                timeout_s: None,
            },
            bench: Bench {
                enabled: true,
                quick: false,
            },
            reserve: runtime::admission::FLUX_RESERVE,
            allow_private: Vec::new(),
            chain: Chain {
                enabled: true,
                devnet: false,
                rpc_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 16124)),
                owner: None,
            },
            update: Update { health_secs: 120 },
            services: Vec::new(),
        }
    }
}

/// One problem with one field, named with its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub source: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: {}: {}", self.source, self.field, self.message)
        }
    }
}

impl Config {
    /// Applies a TOML file's text over this config. `name` is how diagnostics name it.
    pub fn apply_toml(&mut self, name: &str, text: &str) -> Vec<Diagnostic> {
        let source = format!("config {name}");
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let message = format!("not valid TOML, file skipped: {}", e.message());
                return vec![Diagnostic {
                    source,
                    field: String::new(),
                    message,
                }];
            }
        };
        let mut out = Vec::new();
        for (section, value) in table {
            if section == "service" {
                out.extend(service::apply_toml(self, &source, value));
                continue;
            }
            let Some(keys) = value.as_table() else {
                out.push(Diagnostic {
                    source: source.clone(),
                    field: section.clone(),
                    message: "expected a [section] table".into(),
                });
                continue;
            };
            for (key, v) in keys {
                if let Err(message) = fields::set(self, &section, key, v.clone()) {
                    let field = format!("[{section}] {key}");
                    out.push(Diagnostic {
                        source: source.clone(),
                        field,
                        message,
                    });
                }
            }
        }
        out
    }

    /// Applies `fluxnode.<section>.<key>=<value>` and `fluxnode.service.<name>=<argv>` words
    /// of the kernel command line. Other words, `fluxnode.selftest` and the test hooks
    /// `fluxnode.test.*` are not config.
    pub fn apply_cmdline<'a>(
        &mut self,
        words: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (key, raw) in words {
            let Some(path) = key.strip_prefix("fluxnode.") else {
                continue;
            };
            if path == "selftest" || path.starts_with("test.") {
                continue;
            }
            let source = "kernel command line".to_owned();
            let result = match path.split_once('.') {
                Some(("service", name)) => service::apply_cmdline(self, name, raw),
                Some((section, field)) => {
                    fields::set(self, section, field, fields::cmdline_value(raw))
                }
                None => Err("expected fluxnode.<section>.<key>=<value>".into()),
            };
            if let Err(message) = result {
                out.push(Diagnostic {
                    source,
                    field: key.to_owned(),
                    message,
                });
            }
        }
        out
    }

    /// Defaults plus one file; for `fluxnode config check`.
    pub fn check_file(path: &Path) -> Result<(Config, Vec<Diagnostic>), std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        let mut config = Config::default();
        let diags = config.apply_toml(&path.display().to_string(), &text);
        Ok((config, diags))
    }
}

#[cfg(test)]
mod tests;
