//! Artifact reports: each built file with its size and SHA-256.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

/// SHA-256 of a file's bytes, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).at(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A built file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl Artifact {
    pub fn describe(name: &str, path: &Path) -> Result<Self> {
        Ok(Artifact {
            name: name.to_owned(),
            path: path.to_owned(),
            size: std::fs::metadata(path).at(path)?.len(),
            sha256: sha256_file(path)?,
        })
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {:>12} bytes  sha256:{}  {}",
            self.name,
            self.size,
            self.sha256,
            self.path.display()
        )
    }
}
