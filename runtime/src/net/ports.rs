//! Published ports, `HOST:CONTAINER[/tcp|/udp]` as `docker run -p` writes them (a bare
//! `PORT` publishes it on the same port, tcp), and the admission rule for them: a host
//! port is taken by at most one app, and never one of the node's own ports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortMap {
    pub host: u16,
    pub container: u16,
    pub proto: Proto,
}

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.container, self.proto.name())
    }
}

impl FromStr for PortMap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("port {s:?}: expected HOST:CONTAINER[/tcp|/udp]");
        let (ports, proto) = match s.rsplit_once('/') {
            Some((p, "tcp")) => (p, Proto::Tcp),
            Some((p, "udp")) => (p, Proto::Udp),
            Some(_) => return Err(bad()),
            None => (s, Proto::Tcp),
        };
        let port = |p: &str| p.parse::<u16>().ok().filter(|n| *n != 0).ok_or_else(bad);
        let (host, container) = match ports.split_once(':') {
            Some((h, c)) => (port(h)?, port(c)?),
            None => (port(ports)?, port(ports)?),
        };
        Ok(PortMap {
            host,
            container,
            proto,
        })
    }
}

impl Serialize for PortMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PortMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A bare number is the older wire form (a port served, not published).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Port(u16),
            Map(String),
        }
        match Wire::deserialize(d)? {
            Wire::Port(p) => PortMap::from_str(&p.to_string()),
            Wire::Map(s) => PortMap::from_str(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Refuses `wanted` when one of its host ports is a node port or is held by another app
/// (`others`: app name and its ports), naming both.
pub fn check(
    name: &str,
    wanted: &[PortMap],
    others: &[(&str, &[PortMap])],
    node_ports: &[u16],
) -> Result<(), String> {
    for (i, p) in wanted.iter().enumerate() {
        if node_ports.contains(&p.host) {
            return Err(format!(
                "app {name}: port {p}: host port {} is the node's own",
                p.host
            ));
        }
        if wanted[..i]
            .iter()
            .any(|q| q.host == p.host && q.proto == p.proto)
        {
            return Err(format!("app {name}: port {p} is published twice"));
        }
        for (other, theirs) in others {
            if let Some(q) = theirs
                .iter()
                .find(|q| q.host == p.host && q.proto == p.proto)
            {
                return Err(format!(
                    "app {name}: port {p}: host port {}/{} is published by app {other} ({q})",
                    p.host,
                    p.proto.name()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortMap {
        s.parse().unwrap()
    }

    #[test]
    fn ports_parse_as_docker_writes_them() {
        assert_eq!(
            p("8080:80"),
            PortMap {
                host: 8080,
                container: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(p("5353:53/udp").proto, Proto::Udp);
        assert_eq!(p("443"), p("443:443/tcp"));
        for bad in ["", "0:80", "80:", "x:80", "80:80/sctp", "70000:80"] {
            assert!(bad.parse::<PortMap>().is_err(), "{bad}");
        }
        assert_eq!(p("8080:80/udp").to_string(), "8080:80/udp");
    }

    #[test]
    fn the_wire_form_takes_strings_and_the_older_numbers() {
        let ports: Vec<PortMap> = serde_json::from_str(r#"["8080:80", 9000]"#).unwrap();
        assert_eq!(ports, [p("8080:80"), p("9000:9000")]);
        assert_eq!(
            serde_json::to_string(&ports).unwrap(),
            r#"["8080:80/tcp","9000:9000/tcp"]"#
        );
        assert!(serde_json::from_str::<PortMap>(r#""80:80/sctp""#).is_err());
    }

    #[test]
    fn a_taken_or_node_port_is_refused_naming_both() {
        let web = [p("8080:80")];
        let e = check("api", &[p("8080:8000")], &[("web", &web)], &[16124]).unwrap_err();
        assert_eq!(
            e,
            "app api: port 8080:8000/tcp: host port 8080/tcp is published by app web (8080:80/tcp)"
        );
        // Same number, other protocol: no clash.
        check("dns", &[p("8080:53/udp")], &[("web", &web)], &[16124]).unwrap();
        let e = check("x", &[p("16124:80")], &[], &[16124, 16125, 16126]).unwrap_err();
        assert!(e.contains("host port 16124 is the node's own"), "{e}");
        assert!(check("x", &[p("1:1"), p("1:2")], &[], &[]).is_err());
    }
}
