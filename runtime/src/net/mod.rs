//! App networking, in netavark's model: a node bridge (`fluxbr0`, the subnet's first
//! address) with one isolated port per app instance; each instance in a network namespace
//! of its own, made before its container, with a veth pair, a stable address from the
//! allocator (persisted on /data), a default route through the bridge, and its own
//! /etc/resolv.conf and /etc/hosts; outbound traffic masqueraded; published ports DNATed
//! in the kernel. One nftables table owns every rule and is rebuilt whole on every change
//! (see [`firewall`]). PID1 owns the [`Network`]; the app manager's live host calls it.

pub mod alloc;
pub mod firewall;
pub mod link;
pub mod netns;
pub mod ports;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use ports::{PortMap, Proto};

/// The node's own ports (JSON-RPC, p2p, API), never published for an app.
pub const NODE_PORTS: [u16; 3] = [16124, 16125, 16126];

/// How the node's app network is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub bridge: String,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    /// Private ranges containers may reach (`[apps] allow_private`).
    pub allow_private: Vec<(Ipv4Addr, u8)>,
    /// The `nft` program.
    pub nft: PathBuf,
    /// Where the namespaces and their resolv.conf and hosts files live.
    pub run_dir: PathBuf,
    /// The address map.
    pub addresses: PathBuf,
    /// The node's resolv.conf, copied into every container.
    pub resolv_conf: PathBuf,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: "fluxbr0".into(),
            subnet: Ipv4Addr::new(10, 89, 0, 0),
            prefix: 24,
            allow_private: Vec::new(),
            nft: "/usr/sbin/nft".into(),
            run_dir: "/run/fluxnode/netns".into(),
            addresses: "/data/apps/addresses.json".into(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

/// What a container needs from its network: the namespace to join and two files to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub address: Ipv4Addr,
    pub netns: PathBuf,
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

/// The node's app network.
pub struct Network {
    cfg: NetConfig,
    alloc: alloc::Allocator,
    /// The attached instances: address and published ports.
    apps: BTreeMap<String, (Ipv4Addr, Vec<PortMap>)>,
}

/// The host side of an instance's veth pair: `vfx` and 8 hex digits of its id's hash
/// (interface names have at most 15 bytes).
pub fn host_veth(id: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    format!("vfx{}", hex::encode(&d.as_ref()[..4]))
}

fn sysctl(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("{path}: {e}"))
}

/// The nameservers of a resolv.conf.
fn nameservers(text: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

impl Network {
    /// Brings up the bridge with its address, turns on forwarding, and applies the
    /// firewall for no apps (idempotent: at every boot).
    pub fn open(cfg: NetConfig) -> Result<Self, String> {
        let (alloc, problem) = alloc::Allocator::load(&cfg.addresses, cfg.subnet, cfg.prefix);
        if let Some(p) = problem {
            tracing::warn!("apps network: {p}; addresses are given afresh");
        }
        let mut r = link::Rtnl::open().map_err(|e| e.to_string())?;
        r.bridge(&cfg.bridge).map_err(|e| e.to_string())?;
        r.address(&cfg.bridge, alloc.gateway(), cfg.prefix)
            .map_err(|e| e.to_string())?;
        r.up(&cfg.bridge).map_err(|e| e.to_string())?;
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        // The node's own 127.0.0.1 may reach a published port: its packets then leave
        // through the bridge (and are masqueraded there).
        sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", cfg.bridge),
            "1",
        )?;
        std::fs::create_dir_all(&cfg.run_dir)
            .map_err(|e| format!("{}: {e}", cfg.run_dir.display()))?;
        let mut n = Network {
            cfg,
            alloc,
            apps: BTreeMap::new(),
        };
        n.rebuild()?;
        Ok(n)
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The firewall for the attached apps.
    pub fn plan(&self) -> firewall::Plan {
        let resolv = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        firewall::Plan {
            bridge: self.cfg.bridge.clone(),
            subnet: (self.cfg.subnet, self.cfg.prefix),
            allow_private: self.cfg.allow_private.clone(),
            // Containers use the node's resolvers, which are often on a private network.
            dns: nameservers(&resolv),
            apps: self.apps.values().cloned().collect(),
        }
    }

    fn rebuild(&mut self) -> Result<(), String> {
        firewall::apply(
            &firewall::ruleset(&self.plan()),
            &self.cfg.nft.display().to_string(),
            &[],
        )
        .map_err(|e| e.to_string())
    }

    fn files(&self, id: &str) -> (PathBuf, PathBuf, PathBuf) {
        let d = &self.cfg.run_dir;
        (
            d.join(id),
            d.join(format!("{id}.resolv.conf")),
            d.join(format!("{id}.hosts")),
        )
    }

    /// Gives instance `id` its namespace, address, files and published `ports`.
    pub fn attach(
        &mut self,
        id: &str,
        hostname: &str,
        ports: &[PortMap],
    ) -> Result<Attached, String> {
        let address = self.alloc.assign(id)?;
        let (netns_path, resolv, hosts) = self.files(id);
        let veth = host_veth(id);
        // What an earlier run of this instance left.
        self.detach(id, false);
        netns::create(&netns::Plan {
            path: &netns_path,
            host_veth: &veth,
            address,
            prefix: self.cfg.prefix,
            gateway: self.alloc.gateway(),
        })?;
        let host_side = (|| {
            let mut r = link::Rtnl::open().map_err(|e| e.to_string())?;
            r.enslave_isolated(&veth, &self.cfg.bridge)
                .map_err(|e| e.to_string())?;
            r.up(&veth).map_err(|e| e.to_string())
        })();
        if let Err(e) = host_side {
            self.detach(id, false);
            return Err(e);
        }
        let node = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        let write = |p: &Path, text: &str| {
            std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
        };
        write(&resolv, &node)?;
        write(
            &hosts,
            &format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{address}\t{hostname}\n"),
        )?;
        self.apps.insert(id.to_owned(), (address, ports.to_vec()));
        if let Err(e) = self.rebuild() {
            self.detach(id, false);
            return Err(e);
        }
        Ok(Attached {
            address,
            netns: netns_path,
            resolv_conf: resolv,
            hosts,
        })
    }

    /// Takes instance `id` off the network: its rules, veth pair, namespace and files;
    /// `release` also gives its address back (the app is stopped for good).
    pub fn detach(&mut self, id: &str, release: bool) {
        let (netns_path, resolv, hosts) = self.files(id);
        if self.apps.remove(id).is_some() {
            if let Err(e) = self.rebuild() {
                tracing::warn!("apps network: {e}");
            }
        }
        if let Ok(mut r) = link::Rtnl::open() {
            if let Err(e) = r.delete(&host_veth(id)) {
                tracing::warn!("apps network: {e}");
            }
        }
        netns::remove(&netns_path);
        let _ = std::fs::remove_file(resolv);
        let _ = std::fs::remove_file(hosts);
        if release {
            if let Err(e) = self.alloc.release(id) {
                tracing::warn!("apps network: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_the_kernel_and_differ_by_instance() {
        let a = host_veth("web-0");
        assert_eq!(a.len(), 11);
        assert!(a.len() <= 15);
        assert_ne!(a, host_veth("web-1"));
        assert_eq!(a, host_veth("web-0"));
    }

    #[test]
    fn resolvers_are_read_from_resolv_conf() {
        let text = "# from dhcp\nnameserver 10.0.2.3\nnameserver 1.1.1.1\nsearch lan\n";
        assert_eq!(
            nameservers(text),
            [Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)]
        );
    }
}
