//! Release keys. The image trusts the Ed25519 public keys in `/etc/fluxnode/release-keys`
//! (baked into its initramfs): one per line, `ed25519 <64 hex digits> [comment]`, with
//! `#` comments and blank lines. More than one key may be trusted at once, for rotation.
//! A key pair is a PKCS#8 file (`<name>.key`, mode 0600) and its line (`<name>.pub`).
//! A development key (made by `keygen --development`, trusted by development and test
//! builds only) says so as the first word of its comment, so a release build can refuse
//! it and a node that trusts one can say so.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Where the image keeps the keys it trusts.
pub const RELEASE_KEYS_PATH: &str = "/etc/fluxnode/release-keys";
/// The first word of a development key's comment.
pub const DEVELOPMENT: &str = "development";

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin} line {line}: {why}")]
    Line {
        origin: String,
        line: usize,
        why: String,
    },
    #[error("{origin}: no keys in it")]
    Empty { origin: String },
    #[error("{path}: not an Ed25519 PKCS#8 key pair")]
    BadKeyPair { path: String },
    #[error("{path} exists already: a release key is never overwritten")]
    Exists { path: String },
    #[error("key generation failed")]
    Random,
}

/// The trusted release keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseKeys {
    keys: Vec<[u8; 32]>,
    /// The development keys among them.
    development: Vec<[u8; 32]>,
    origin: String,
}

impl ReleaseKeys {
    /// Parses the keys file format; `origin` names the text in errors.
    pub fn parse(text: &str, origin: &str) -> Result<ReleaseKeys, KeysError> {
        let mut keys = Vec::new();
        let mut development = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| KeysError::Line {
                origin: origin.to_owned(),
                line: i + 1,
                why,
            };
            let mut words = line.split_whitespace();
            match words.next() {
                Some("ed25519") => {}
                Some(other) => return Err(bad(format!("unknown key type {other:?}"))),
                None => continue,
            }
            let hex_key = words
                .next()
                .ok_or_else(|| bad("no key after ed25519".into()))?;
            let bytes = hex::decode(hex_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad("the key is not 64 hex digits".into()))?;
            if !keys.contains(&bytes) {
                keys.push(bytes);
            }
            if words.next() == Some(DEVELOPMENT) && !development.contains(&bytes) {
                development.push(bytes);
            }
        }
        if keys.is_empty() {
            return Err(KeysError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(ReleaseKeys {
            keys,
            development,
            origin: origin.to_owned(),
        })
    }

    pub fn load(path: &Path) -> Result<ReleaseKeys, KeysError> {
        let text = fs::read_to_string(path).map_err(|source| KeysError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The development keys trusted (short hex prefixes, for messages).
    pub fn development(&self) -> Vec<String> {
        self.development
            .iter()
            .map(|k| hex::encode(&k[..8]))
            .collect()
    }

    /// Where the keys came from (for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The keys-file line of a public key.
pub fn public_line(key: &[u8], comment: &str) -> String {
    format!("ed25519 {} {comment}\n", hex::encode(key))
}

/// Makes a key pair: `<prefix>.key` (PKCS#8, 0600, never overwritten) and `<prefix>.pub`;
/// a `development` key says so in its comment.
pub fn generate(prefix: &Path, development: bool) -> Result<(PathBuf, PathBuf), KeysError> {
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| KeysError::Io { path, source }
    };
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeysError::Random)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeysError::Random)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeysError::Exists {
                    path: key_path.display().to_string(),
                }
            } else {
                io(&key_path)(e)
            }
        })?;
    f.write_all(pkcs8.as_ref())
        .and_then(|()| f.sync_all())
        .map_err(io(&key_path))?;
    let name = prefix
        .file_name()
        .map_or_else(|| "release".into(), |n| n.to_string_lossy().into_owned());
    let comment = if development {
        format!("{DEVELOPMENT} {name} (never for servers)")
    } else {
        name
    };
    fs::write(&pub_path, public_line(pair.public_key().as_ref(), &comment))
        .map_err(io(&pub_path))?;
    Ok((key_path, pub_path))
}

pub fn load_key_pair(path: &Path) -> Result<Ed25519KeyPair, KeysError> {
    let bytes = fs::read(path).map_err(|source| KeysError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ed25519KeyPair::from_pkcs8(&bytes).map_err(|_| KeysError::BadKeyPair {
        path: path.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_loads_and_its_line_parses() {
        let dir = tempfile::tempdir().unwrap();
        let (k, p) = generate(&dir.path().join("rel"), false).unwrap();
        let pair = load_key_pair(&k).unwrap();
        let keys = ReleaseKeys::load(&p).unwrap();
        let public: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        assert!(keys.contains(&public));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = generate(&dir.path().join("rel"), false).unwrap_err();
        assert!(e.to_string().contains("never overwritten"), "{e}");
        let e = load_key_pair(&p).err().unwrap();
        assert!(e.to_string().contains("not an Ed25519 PKCS#8"), "{e}");
        assert!(keys.development().is_empty());
    }

    #[test]
    fn a_development_key_says_so_in_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let (_, dev) = generate(&dir.path().join("release-dev"), true).unwrap();
        let (_, rel) = generate(&dir.path().join("rel"), false).unwrap();
        let line = fs::read_to_string(&dev).unwrap();
        assert!(line.contains(" development release-dev "), "{line}");
        let both = format!("{line}{}", fs::read_to_string(&rel).unwrap());
        let keys = ReleaseKeys::parse(&both, "both").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.development(), [line[8..24].to_owned()]);
    }

    #[test]
    fn the_keys_file_takes_several_keys_and_names_bad_lines() {
        let a = "ab".repeat(32);
        let b = "cd".repeat(32);
        let text = format!("# release keys\n\ned25519 {a} 2026\ned25519 {b}\n");
        let keys = ReleaseKeys::parse(&text, "k").unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&[0xcd; 32]));
        let e = ReleaseKeys::parse(&format!("ed25519 {a}\nrsa {b}\n"), "k").unwrap_err();
        assert_eq!(e.to_string(), "k line 2: unknown key type \"rsa\"");
        let e = ReleaseKeys::parse("ed25519 abcd\n", "k").unwrap_err();
        assert_eq!(e.to_string(), "k line 1: the key is not 64 hex digits");
        let e = ReleaseKeys::parse("# nothing\n", "k").unwrap_err();
        assert_eq!(e.to_string(), "k: no keys in it");
    }
}
