//! cgroup v2 hierarchy setup: which controllers the kernel offers, and enabling them for
//! child cgroups through `cgroup.subtree_control`.
//!
//! This is a single file write per controller at the root of the hierarchy, which cgroups-rs
//! does not expose on its own (it enables controllers only as a side effect of creating a
//! child group), so the files are read and written here directly.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The controllers a node enables at the root: what the runtime limits and accounts.
pub const NODE_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

/// A cgroup file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cgroup {path}: cannot enable controller {controller}: {source}")]
    Enable {
        path: PathBuf,
        controller: String,
        source: io::Error,
    },
}

/// Splits the content of `cgroup.controllers` or `cgroup.subtree_control` into names.
pub fn parse_controllers(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    names.sort();
    names
}

fn read_list(path: &Path) -> Result<Vec<String>, CgroupError> {
    fs::read_to_string(path)
        .map(|t| parse_controllers(&t))
        .map_err(|source| CgroupError::Read {
            path: path.to_owned(),
            source,
        })
}

/// The controllers the kernel offers at `root` (its `cgroup.controllers`).
pub fn available(root: &Path) -> Result<Vec<String>, CgroupError> {
    read_list(&root.join("cgroup.controllers"))
}

/// The outcome of enabling controllers: what is now on, and what could not be turned on.
#[derive(Debug, Default)]
pub struct Enabled {
    /// Read back from `cgroup.subtree_control` after the writes, sorted.
    pub enabled: Vec<String>,
    /// Controllers that were wanted but failed, each with why.
    pub failed: Vec<CgroupError>,
}

/// Enables each wanted controller at `root` for its children, one write per controller so
/// that one the kernel lacks does not keep the others off. Controllers the kernel does not
/// offer are reported as failed with `NotFound`.
pub fn enable_controllers(root: &Path, wanted: &[&str]) -> Result<Enabled, CgroupError> {
    let offered = available(root)?;
    let control = root.join("cgroup.subtree_control");
    let mut failed = Vec::new();
    for name in wanted {
        let result = if offered.iter().any(|o| o == name) {
            fs::write(&control, format!("+{name}"))
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not offered by the kernel",
            ))
        };
        if let Err(source) = result {
            failed.push(CgroupError::Enable {
                path: control.clone(),
                controller: (*name).to_owned(),
                source,
            });
        }
    }
    let enabled = read_list(&control)?;
    Ok(Enabled { enabled, failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_lists_are_split_and_sorted() {
        assert_eq!(
            parse_controllers("pids memory io cpu cpuset\n"),
            vec!["cpu", "cpuset", "io", "memory", "pids"]
        );
        assert!(parse_controllers("\n").is_empty());
    }

    #[test]
    fn a_missing_hierarchy_is_named_in_the_error() {
        let dir = std::env::temp_dir().join("fluxnode-no-such-cgroup");
        let err = enable_controllers(&dir, &NODE_CONTROLLERS).unwrap_err();
        assert!(err
            .to_string()
            .contains("fluxnode-no-such-cgroup/cgroup.controllers"));
    }
}
