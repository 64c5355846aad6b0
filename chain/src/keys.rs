//! Ed25519 key files (ring, PKCS#8): the node identity key at /data/keys/node.key and
//! wallet keys. A key is created once, mode 0600, durably (runtime::durable), and never
//! overwritten.

use std::fs;
use std::io;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "key {0}: not an Ed25519 PKCS#8 key; it is kept as it is: restore it from a backup, \
         or move it away to make a new key (a new node key must be registered again)"
    )]
    Invalid(String),
    #[error("key {0}")]
    Durable(runtime::durable::DurableError),
    #[error("key: the random generator failed")]
    Random,
}

/// Loads the key at `path`, or creates it when there is none. Returns the key and whether
/// it was created now.
pub fn load_or_create(path: &Path) -> Result<(Ed25519KeyPair, bool), KeyError> {
    let name = path.display().to_string();
    let io_err = |source| KeyError::Io {
        path: name.clone(),
        source,
    };
    // An empty file holds no key (nothing is lost by making one over it); any other
    // content that is not a key is kept for a person to look at.
    let empty = match fs::read(path) {
        Ok(bytes) if bytes.is_empty() => true,
        Ok(bytes) => {
            let pair =
                Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeyError::Invalid(name.clone()))?;
            return Ok((pair, false));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(e)),
    };
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Random)?;
    let written = if empty {
        tracing::warn!("key {name}: the file is empty; a new key replaces it");
        runtime::durable::write(path, pkcs8.as_ref(), 0o600)
    } else {
        // Durably, and never over a key that appeared meanwhile (a link, not a rename).
        runtime::durable::create_new(path, pkcs8.as_ref(), 0o600)
    };
    match written {
        Ok(()) => {}
        Err(e) if e.already_exists() => return load(path).map(|pair| (pair, false)),
        Err(e) => return Err(KeyError::Durable(e)),
    }
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Invalid(name))?;
    Ok((pair, true))
}

/// Loads an existing key; a missing one is an error that names the file.
pub fn load(path: &Path) -> Result<Ed25519KeyPair, KeyError> {
    let name = path.display().to_string();
    let bytes = fs::read(path).map_err(|source| KeyError::Io {
        path: name.clone(),
        source,
    })?;
    Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeyError::Invalid(name))
}

/// The 32-byte public key.
pub fn public(pair: &Ed25519KeyPair) -> [u8; 32] {
    pair.public_key()
        .as_ref()
        .try_into()
        .expect("Ed25519 public keys are 32 bytes")
}

/// The key's account address.
pub fn address(pair: &Ed25519KeyPair) -> String {
    crate::address::Address::from_public_key(pair.public_key().as_ref()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/node.key");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.public_key().as_ref(), second.public_key().as_ref());
        assert!(address(&first).starts_with("fx"));
    }

    #[test]
    fn a_corrupt_key_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        fs::write(&path, b"garbage").unwrap();
        let err = load_or_create(&path).err().unwrap();
        assert!(
            err.to_string().contains("not an Ed25519 PKCS#8 key"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"garbage");
    }

    #[test]
    fn an_empty_key_file_is_replaced_by_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        fs::write(&path, b"").unwrap();
        let (pair, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = load(&path).unwrap();
        assert_eq!(pair.public_key().as_ref(), again.public_key().as_ref());
    }
}
