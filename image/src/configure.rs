//! `fluxnode-image configure`: prepares a node image before its first boot. The node's config
//! file is checked with the node's own parser (the `fluxnode-config` crate, as `fluxnode
//! config check` does) and refused on any finding; a wallet key must be an Ed25519 PKCS#8
//! key and a genesis a JSON object with a `chain_id`. Then the files go into the image's
//! FLUXDATA with e2fsprogs' debugfs at the partition's byte offset (`image?offset=N`), owned
//! by root with the node's modes, so an owner prepares one disk per server as a normal user:
//! no root, loop device or mount. debugfs exits 0 even when a command failed, so every file
//! is read back and compared before the command says it is done.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{run_tool, Error, IoContext, Result};
use crate::ext4;

/// One file to put into FLUXDATA.
#[derive(Debug, Clone)]
pub struct Put {
    pub source: PathBuf,
    /// Its path inside FLUXDATA (the node mounts it at /data).
    pub dest: &'static str,
    pub mode: u32,
}

/// Where the node reads each file, relative to FLUXDATA.
pub const CONFIG_DEST: &str = "etc/fluxnode.toml";
pub const WALLET_DEST: &str = "keys/wallet.key";
pub const GENESIS_DEST: &str = "chain/genesis.json";

fn input(path: &Path, detail: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// The byte offset of the FLUXDATA partition in `image`, from its GPT.
pub fn fluxdata_offset(image: &Path) -> Result<u64> {
    let mut f = fs::File::open(image).at(image)?;
    let gpt = gptman::GPT::find_from(&mut f)
        .map_err(|e| input(image, format!("no GPT partition table: {e}")))?;
    let found = gpt
        .iter()
        .find(|(_, p)| p.is_used() && p.partition_name.as_str() == ext4::LABEL)
        .map(|(_, p)| p.starting_lba * gpt.sector_size);
    found.ok_or_else(|| input(image, format!("no {} partition", ext4::LABEL)))
}

/// Checks the config with the node's parser: every finding is an error naming its field.
pub fn check_config(path: &Path) -> Result<()> {
    let (_, diags) = fluxnode_config::Config::check_file(path).at(path)?;
    if diags.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    Err(input(
        path,
        format!("refused, nothing written: {}", all.join("; ")),
    ))
}

fn check_wallet(path: &Path) -> Result<()> {
    let bytes = fs::read(path).at(path)?;
    ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes)
        .map(|_| ())
        .map_err(|e| input(path, format!("not an Ed25519 PKCS#8 key: {e}")))
}

fn check_genesis(path: &Path) -> Result<()> {
    let text = fs::read_to_string(path).at(path)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input(path, format!("not JSON: {e}")))?;
    match v.get("chain_id") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(input(path, "not a genesis: no \"chain_id\"")),
    }
}

/// The files of a configure run, each checked first.
pub fn plan(config: &Path, wallet: Option<&Path>, genesis: Option<&Path>) -> Result<Vec<Put>> {
    check_config(config)?;
    let mut puts = vec![Put {
        source: config.to_owned(),
        dest: CONFIG_DEST,
        mode: 0o644,
    }];
    if let Some(w) = wallet {
        check_wallet(w)?;
        puts.push(Put {
            source: w.to_owned(),
            dest: WALLET_DEST,
            mode: 0o600,
        });
    }
    if let Some(g) = genesis {
        check_genesis(g)?;
        puts.push(Put {
            source: g.to_owned(),
            dest: GENESIS_DEST,
            mode: 0o644,
        });
    }
    Ok(puts)
}

/// `debugfs -R "cat PATH"`: a file's bytes, or None when it is not there.
pub fn read(image: &Path, offset: u64, inner: &str) -> Result<Option<Vec<u8>>> {
    let fs_arg = format!("{}?offset={offset}", image.display());
    let out = run_tool(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat /{inner}"))
            .arg(&fs_arg),
    )?;
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("File not found") {
        return Ok(None);
    }
    Ok(Some(out.stdout))
}

/// Whether `inner` exists in FLUXDATA.
fn exists(fs_arg: &str, inner: &str) -> Result<bool> {
    let out = run_tool(
        Command::new("debugfs")
            .arg("-R")
            .arg(format!("stat /{inner}"))
            .arg(fs_arg),
    )?;
    Ok(!String::from_utf8_lossy(&out.stderr).contains("File not found"))
}

/// `e2fsck -fn` (or `-fy` with `repair`, where 1, "errors corrected", is fine too); Err
/// with its report otherwise.
fn fsck(fs_arg: &str, repair: bool) -> std::result::Result<(), String> {
    let out = Command::new("e2fsck")
        .arg(if repair { "-fy" } else { "-fn" })
        .arg(fs_arg)
        .output()
        .map_err(|e| format!("cannot run e2fsck: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) if repair => Ok(()),
        _ => Err(format!(
            "e2fsck {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Runs debugfs read-write on `fs_arg` with `script` on its standard input.
fn debugfs_script(fs_arg: &str, script: &str) -> Result<()> {
    use std::io::Write;
    use std::process::Stdio;
    let tool = |detail: String| Error::Tool {
        tool: "debugfs".into(),
        detail,
    };
    let mut child = Command::new("debugfs")
        .args(["-w", fs_arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool(format!("cannot run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| tool(format!("writing its commands: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| tool(format!("waiting for it: {e}")))?;
    if !out.status.success() {
        return Err(tool(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Writes `puts` into FLUXDATA of `image` (replacing files there), owned by root, then reads
/// each back. Returns one line per file for the owner.
pub fn apply(image: &Path, puts: &[Put]) -> Result<Vec<String>> {
    let offset = fluxdata_offset(image)?;
    let fs_arg = format!("{}?offset={offset}", image.display());
    fsck(&fs_arg, false).map_err(|detail| {
        input(
            image,
            format!(
                "its FLUXDATA is not clean ({detail}): configure prepares an image before \
                 its first boot"
            ),
        )
    })?;
    let mut script = String::new();
    let mut made = Vec::new();
    for p in puts {
        let dir = Path::new(p.dest)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        // debugfs's mkdir of a directory that exists leaks an unconnected inode: only
        // missing ones are made. Its rm of a missing file is harmless.
        if !made.contains(&dir) && !exists(&fs_arg, &dir)? {
            script.push_str(&format!("mkdir /{dir}\n"));
            made.push(dir);
        }
        script.push_str(&format!("rm /{}\n", p.dest));
        let src = p.source.display().to_string();
        if src.contains(char::is_whitespace) || src.contains('"') {
            return Err(input(
                &p.source,
                "a path with spaces or quotes (debugfs cannot take it)",
            ));
        }
        script.push_str(&format!(
            "write {src} /{d}\nsif /{d} uid 0\nsif /{d} gid 0\nsif /{d} mode 0{:o}\n",
            0o100000 | p.mode,
            d = p.dest
        ));
    }
    debugfs_script(&fs_arg, &script)?;
    // debugfs does not account the new files in the quota file: e2fsck brings it up to
    // date (and must then find nothing else).
    fsck(&fs_arg, true).map_err(|detail| Error::Tool {
        tool: "e2fsck".into(),
        detail: format!("after writing into {}: {detail}", image.display()),
    })?;
    let mut lines = Vec::new();
    for p in puts {
        let want = fs::read(&p.source).at(&p.source)?;
        let got = read(image, offset, p.dest)?;
        if got.as_deref() != Some(&want[..]) {
            return Err(Error::Tool {
                tool: "debugfs".into(),
                detail: format!(
                    "{} did not arrive whole in {}:/data/{}",
                    p.source.display(),
                    image.display(),
                    p.dest
                ),
            });
        }
        lines.push(format!(
            "{} -> /data/{} ({} bytes, mode {:o}, root)",
            p.source.display(),
            p.dest,
            want.len(),
            p.mode
        ));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests;
