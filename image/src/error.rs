//! Errors of the image tool; each names the file, tool or field it is about.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{tool}: {detail}")]
    Tool { tool: String, detail: String },
    #[error("{path}: not a PE image: {detail}")]
    Pe { path: PathBuf, detail: String },
    #[error("kernel config: {0}")]
    KernelConfig(String),
    #[error("disk layout: {0}")]
    Layout(String),
    #[error("{path}: {detail}")]
    Input { path: PathBuf, detail: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds the path to an io::Error.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

/// Runs a command to completion; a failure carries its stderr.
pub fn run_tool(cmd: &mut std::process::Command) -> Result<std::process::Output> {
    let tool = format!("{:?}", cmd.get_program());
    let out = cmd.output().map_err(|e| Error::Tool {
        tool: tool.clone(),
        detail: format!("cannot run: {e}"),
    })?;
    if !out.status.success() {
        return Err(Error::Tool {
            tool,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out)
}
