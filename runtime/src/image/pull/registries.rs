//! `/data/etc/registries.toml`: how to reach each registry. A registry not listed is pulled
//! from anonymously over HTTPS.
//!
//! ```toml
//! [[registry]]
//! host = "registry.example:5000"   # as written in image references (host[:port])
//! insecure = true                  # plain HTTP; only for hosts listed so
//! username = "team"                # basic auth (or a token server that takes it)
//! password = "secret"
//!
//! [[registry]]
//! host = "ghcr.io"
//! token = "..."                    # a bearer token, sent as it is
//!
//! [[registry]]
//! host = "registry.internal"
//! ca = "/data/etc/registry-ca.pem" # a CA (PEM) that signs its certificate, trusted
//!                                  # besides the system's and Mozilla's roots
//! ```

use std::fs;
use std::io;
use std::path::Path;

use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// What `registries.toml` says about one registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// `host` or `host:port`, as image references name it.
    pub host: String,
    /// Plain HTTP instead of HTTPS.
    #[serde(default)]
    pub insecure: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A bearer token, sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// A PEM file of the CA (or the self-signed certificate) of the registry's HTTPS.
    pub ca: Option<std::path::PathBuf>,
}

/// Every registry the node knows how to reach; the others are anonymous and HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub registry: Vec<Registry>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct RegistriesError {
    pub path: String,
    pub detail: String,
}

impl Registry {
    /// The credentials this entry gives.
    pub fn auth(&self) -> RegistryAuth {
        match (&self.token, &self.username, &self.password) {
            (Some(t), _, _) => RegistryAuth::Bearer(t.clone()),
            (None, Some(u), Some(p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            _ => RegistryAuth::Anonymous,
        }
    }

    fn check(&self) -> Result<(), String> {
        let host = &self.host;
        if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
            return Err(format!(
                "registry host {host:?}: expected host or host:port"
            ));
        }
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(format!(
                "registry {host}: give a token or a username and password, not both"
            ));
        }
        if self.ca.as_ref().is_some_and(|c| !c.is_absolute()) {
            return Err(format!("registry {host}: ca must be an absolute path"));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(format!(
                "registry {host}: a username needs a password and a password a username"
            ));
        }
        Ok(())
    }
}

impl Registries {
    /// Parses and checks the text of a `registries.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let r: Registries = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, e) in r.registry.iter().enumerate() {
            e.check()?;
            if r.registry[..i].iter().any(|o| o.host == e.host) {
                return Err(format!("registry {} is listed twice", e.host));
            }
        }
        Ok(r)
    }

    /// The entry for `host` (`host[:port]` as a reference names it, or as oci-client
    /// resolves it: `docker.io` is `index.docker.io`).
    pub fn find(&self, host: &str, resolved: &str) -> Option<&Registry> {
        self.registry
            .iter()
            .find(|r| r.host == host)
            .or_else(|| self.registry.iter().find(|r| r.host == resolved))
    }
}

/// Reads `path`; a file that does not exist is no registries (anonymous HTTPS everywhere).
pub fn load_registries(path: &Path) -> Result<Registries, RegistriesError> {
    let err = |detail: String| RegistriesError {
        path: path.display().to_string(),
        detail,
    };
    match fs::read_to_string(path) {
        Ok(text) => Registries::parse(&text).map_err(err),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Registries::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds_of_auth_and_insecure_hosts_are_read() {
        let r = Registries::parse(
            r#"
            [[registry]]
            host = "r.example:5000"
            insecure = true
            username = "u"
            password = "p"

            [[registry]]
            host = "ghcr.io"
            token = "t"

            [[registry]]
            host = "docker.io"
            "#,
        )
        .unwrap();
        let a = r.find("r.example:5000", "r.example:5000").unwrap();
        assert!(a.insecure);
        assert!(matches!(a.auth(), RegistryAuth::Basic(u, p) if u == "u" && p == "p"));
        let g = r.find("ghcr.io", "ghcr.io").unwrap();
        assert!(!g.insecure);
        assert!(matches!(g.auth(), RegistryAuth::Bearer(t) if t == "t"));
        let d = r.find("docker.io", "index.docker.io").unwrap();
        assert!(matches!(d.auth(), RegistryAuth::Anonymous));
        assert!(r.find("other:1", "other:1").is_none());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, want) in [
            (
                "[[registry]]\nhost = \"a\"\ntoken = \"t\"\nusername = \"u\"",
                "not both",
            ),
            (
                "[[registry]]\nhost = \"a\"\nusername = \"u\"",
                "needs a password",
            ),
            ("[[registry]]\nhost = \"a/b\"", "expected host or host:port"),
            (
                "[[registry]]\nhost = \"a\"\n[[registry]]\nhost = \"a\"",
                "listed twice",
            ),
            (
                "[[registry]]\nhost = \"a\"\ninsecur = true",
                "unknown field",
            ),
            (
                "[[registry]]\nhost = \"a\"\nca = \"ca.pem\"",
                "absolute path",
            ),
        ] {
            let e = Registries::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn a_missing_file_is_no_registries_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.toml");
        assert_eq!(load_registries(&path).unwrap(), Registries::default());
        fs::write(&path, "[[registry]]\nhost = 5").unwrap();
        let e = load_registries(&path).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
    }
}
