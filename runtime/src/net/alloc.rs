//! Stable app addresses on the node bridge's subnet: an app instance gets the first free
//! host address and keeps it across restarts and reboots (the map lives in
//! `/data/apps/addresses.json`, written durably); it is released when the app is stopped
//! for good. The subnet's first address is the bridge's (the apps' gateway).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub struct Allocator {
    path: PathBuf,
    net: u32,
    prefix: u8,
    map: BTreeMap<String, Ipv4Addr>,
}

impl Allocator {
    /// The map in `path` for `subnet/prefix`; a file that cannot be read is named (the
    /// error is returned beside an empty map, and the file is replaced at the next save).
    pub fn load(path: &Path, subnet: Ipv4Addr, prefix: u8) -> (Self, Option<String>) {
        let mut a = Allocator {
            path: path.to_owned(),
            net: u32::from(subnet) & mask(prefix),
            prefix,
            map: BTreeMap::new(),
        };
        let problem = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<BTreeMap<String, Ipv4Addr>>(&bytes) {
                Ok(m) => {
                    a.map = m.into_iter().filter(|(_, ip)| a.contains(*ip)).collect();
                    None
                }
                Err(e) => Some(format!("{}: {e}", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("{}: {e}", path.display())),
        };
        (a, problem)
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.net
    }

    /// The bridge's address (the first host address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.net + 1)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The address of `id`, assigned (and saved) now if it has none.
    pub fn assign(&mut self, id: &str) -> Result<Ipv4Addr, String> {
        if let Some(ip) = self.map.get(id) {
            return Ok(*ip);
        }
        let size = 1u32 << (32 - self.prefix);
        let used: std::collections::HashSet<Ipv4Addr> = self.map.values().copied().collect();
        let ip = (2..size - 1)
            .map(|h| Ipv4Addr::from(self.net + h))
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| {
                format!(
                    "no free address left in {}/{}",
                    Ipv4Addr::from(self.net),
                    self.prefix
                )
            })?;
        self.map.insert(id.to_owned(), ip);
        self.save()?;
        Ok(ip)
    }

    /// Forgets `id`'s address (an app stopped for good).
    pub fn release(&mut self, id: &str) -> Result<(), String> {
        if self.map.remove(id).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(&self.map).map_err(|e| e.to_string())?;
        crate::durable::write(&self.path, &bytes, 0o644).map_err(|e| e.to_string())
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_stable_across_a_reload_and_reused_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addresses.json");
        let net = Ipv4Addr::new(10, 89, 0, 0);
        let (mut a, problem) = Allocator::load(&path, net, 24);
        assert_eq!(problem, None);
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 89, 0, 1));
        let web = a.assign("web-0").unwrap();
        let api = a.assign("api-0").unwrap();
        assert_eq!(
            (web, api),
            (Ipv4Addr::new(10, 89, 0, 2), Ipv4Addr::new(10, 89, 0, 3))
        );
        assert_eq!(a.assign("web-0").unwrap(), web);
        let (mut b, _) = Allocator::load(&path, net, 24);
        assert_eq!(b.assign("api-0").unwrap(), api, "kept across a reboot");
        b.release("web-0").unwrap();
        assert_eq!(
            b.assign("db-0").unwrap(),
            web,
            "a released address is given again"
        );
    }

    #[test]
    fn a_full_subnet_and_a_damaged_map_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addresses.json");
        let (mut a, _) = Allocator::load(&path, Ipv4Addr::new(10, 89, 0, 0), 30);
        a.assign("one-0").unwrap();
        let e = a.assign("two-0").unwrap_err();
        assert_eq!(e, "no free address left in 10.89.0.0/30");
        std::fs::write(&path, b"{half").unwrap();
        let (_, problem) = Allocator::load(&path, Ipv4Addr::new(10, 89, 0, 0), 24);
        assert!(problem.unwrap().contains("addresses.json"));
    }
}
