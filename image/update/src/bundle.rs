//! The update bundle: one file, a header and then the UKI.
//!
//! ```text
//! magic "FLUXUPD\0" | u16 format (1) | u16 n + n bytes version | SHA-256 of the UKI (32)
//! | u64 UKI length | signer's Ed25519 public key (32) | signature (64) | the UKI
//! ```
//! Integers are little-endian. The signature covers
//! `"fluxnode-update-v1\0" | u16 n | version | SHA-256 | u64 length`, so it binds the
//! version and, through the digest, every byte of the UKI. Checks run in the order format,
//! known key, signature, digest, so each bad bundle is refused with its own reason.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

use super::keys::ReleaseKeys;
use super::version::{Version, VersionError};

pub const MAGIC: &[u8; 8] = b"FLUXUPD\0";
pub const FORMAT: u16 = 1;
const DOMAIN: &[u8] = b"fluxnode-update-v1\0";
/// The longest version string a bundle may carry: that of any valid version, so every
/// version `sign` takes gives a bundle the node reads.
pub const MAX_VERSION: usize = super::version::MAX_TEXT_LEN;
/// The largest UKI a bundle may carry (the ESP is 128 MiB).
pub const MAX_UKI: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not an update bundle: {0}")]
    Format(String),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error("signed by unknown key {key}: not among the {trusted} release keys in {origin}")]
    UnknownKey {
        key: String,
        trusted: usize,
        origin: String,
    },
    #[error("bad signature: the header was changed after signing or not signed by its key")]
    BadSignature,
    #[error("digest mismatch: the header says {expected}, the UKI's bytes hash to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("truncated: the UKI should be {expected} bytes, the file has {got}")]
    Truncated { expected: u64, got: u64 },
    #[error("trailing bytes after the {expected}-byte UKI")]
    TrailingBytes { expected: u64 },
}

/// A bundle refused, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("bundle {path}: {problem}")]
pub struct BundleError {
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleHeader {
    pub version: Version,
    pub sha256: [u8; 32],
    pub uki_len: u64,
    pub signer: [u8; 32],
    pub signature: [u8; 64],
}

/// A bundle whose signature and digest have been checked.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    pub header: BundleHeader,
    /// Where the UKI starts in the file.
    pub uki_offset: u64,
    pub path: PathBuf,
}

fn message(version: &str, sha256: &[u8; 32], uki_len: u64) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(&(version.len() as u16).to_le_bytes());
    m.extend_from_slice(version.as_bytes());
    m.extend_from_slice(sha256);
    m.extend_from_slice(&uki_len.to_le_bytes());
    m
}

/// The whole bundle of `uki` as `version`, signed by `key`.
pub fn sign(uki: &[u8], version: &Version, key: &Ed25519KeyPair) -> Vec<u8> {
    let v = version.to_string();
    let sha: [u8; 32] = Sha256::digest(uki).into();
    let len = uki.len() as u64;
    let sig = key.sign(&message(&v, &sha, len));
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(&sha);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key.public_key().as_ref());
    out.extend_from_slice(sig.as_ref());
    out.extend_from_slice(uki);
    out
}

fn take<const N: usize>(r: &mut impl Read, what: &str) -> Result<[u8; N], Problem> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            Problem::Format(format!("the file ends in the {what}"))
        }
        _ => Problem::Io(e),
    })?;
    Ok(b)
}

impl BundleHeader {
    /// Reads and bounds-checks a header; returns it and its length in bytes.
    pub fn read(r: &mut impl Read) -> Result<(BundleHeader, usize), Problem> {
        if &take::<8>(r, "magic")? != MAGIC {
            return Err(Problem::Format("wrong magic".into()));
        }
        let format = u16::from_le_bytes(take(r, "format")?);
        if format != FORMAT {
            return Err(Problem::Format(format!(
                "format {format}, this node reads format {FORMAT}"
            )));
        }
        let n = u16::from_le_bytes(take(r, "version length")?) as usize;
        if n == 0 || n > MAX_VERSION {
            return Err(Problem::Format(format!(
                "a version of {n} bytes (1 to {MAX_VERSION})"
            )));
        }
        let mut v = vec![0u8; n];
        r.read_exact(&mut v)
            .map_err(|_| Problem::Format("the file ends in the version".into()))?;
        let text =
            String::from_utf8(v).map_err(|_| Problem::Format("the version is not UTF-8".into()))?;
        let version = Version::parse(&text)?;
        let sha256 = take(r, "digest")?;
        let uki_len = u64::from_le_bytes(take(r, "UKI length")?);
        if uki_len == 0 || uki_len > MAX_UKI {
            return Err(Problem::Format(format!(
                "a UKI of {uki_len} bytes (1 to {MAX_UKI})"
            )));
        }
        let signer = take(r, "signer")?;
        let signature = take(r, "signature")?;
        let len = 8 + 2 + 2 + n + 32 + 8 + 32 + 64;
        Ok((
            BundleHeader {
                version,
                sha256,
                uki_len,
                signer,
                signature,
            },
            len,
        ))
    }

    /// Checks the signer is trusted and the signature is its.
    fn check_signature(&self, keys: &ReleaseKeys) -> Result<(), Problem> {
        if !keys.contains(&self.signer) {
            return Err(Problem::UnknownKey {
                key: hex::encode(&self.signer[..8]),
                trusted: keys.len(),
                origin: keys.origin().to_owned(),
            });
        }
        let m = message(&self.version.to_string(), &self.sha256, self.uki_len);
        UnparsedPublicKey::new(&ED25519, &self.signer)
            .verify(&m, &self.signature)
            .map_err(|_| Problem::BadSignature)
    }
}

/// Hashes exactly `len` bytes of `r` and checks nothing follows.
fn digest_of(r: &mut impl Read, len: u64) -> Result<[u8; 32], Problem> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(Problem::Io)?;
        if n == 0 {
            break;
        }
        let use_n = (n as u64).min(len.saturating_sub(got)) as usize;
        hash.update(&buf[..use_n]);
        got += n as u64;
        if got > len {
            return Err(Problem::TrailingBytes { expected: len });
        }
    }
    if got < len {
        return Err(Problem::Truncated { expected: len, got });
    }
    Ok(hash.finalize().into())
}

fn verify_reader(r: &mut impl Read, keys: &ReleaseKeys) -> Result<(BundleHeader, usize), Problem> {
    let (header, len) = BundleHeader::read(r)?;
    header.check_signature(keys)?;
    let actual = digest_of(r, header.uki_len)?;
    if actual != header.sha256 {
        return Err(Problem::DigestMismatch {
            expected: hex::encode(header.sha256),
            actual: hex::encode(actual),
        });
    }
    Ok((header, len))
}

/// Verifies the bundle in `path` against `keys`, streaming the UKI through SHA-256.
pub fn verify_file(path: &Path, keys: &ReleaseKeys) -> Result<VerifiedBundle, BundleError> {
    let err = |problem| BundleError {
        path: path.display().to_string(),
        problem,
    };
    let f = File::open(path).map_err(|e| err(Problem::Io(e)))?;
    let (header, len) = verify_reader(&mut BufReader::new(f), keys).map_err(err)?;
    Ok(VerifiedBundle {
        header,
        uki_offset: len as u64,
        path: path.to_path_buf(),
    })
}

/// Verifies bundle bytes (`name` stands for the file in errors).
pub fn verify_bytes(
    bytes: &[u8],
    name: &str,
    keys: &ReleaseKeys,
) -> Result<BundleHeader, BundleError> {
    verify_reader(&mut &bytes[..], keys)
        .map(|(h, _)| h)
        .map_err(|problem| BundleError {
            path: name.to_owned(),
            problem,
        })
}

#[cfg(test)]
mod tests;
