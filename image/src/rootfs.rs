//! The initramfs, which is the node's whole root filesystem: `/init` (the fluxnode binary),
//! the e2fsprogs tools PID1 calls with their shared libraries, device nodes the kernel needs
//! before devtmpfs, and /etc basics.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio::{Archive, Kind};
use crate::error::{run_tool, IoContext, Result};

/// Host tools PID1 runs on the data partition, copied with their libraries.
pub const HOST_TOOLS: [&str; 6] = [
    "/usr/sbin/mke2fs",
    "/usr/sbin/e2fsck",
    "/usr/sbin/resize2fs",
    // Turns project quotas on in a FLUXDATA made before the image had them.
    "/usr/sbin/tune2fs",
    // PID1 checks the ESP before it writes an update to it.
    "/usr/sbin/fsck.fat",
    // The app firewall's rules go through nftables' JSON API (runtime::net::firewall).
    "/usr/sbin/nft",
];

/// The os-release text of this build, also the UKI's `.osrel` section.
pub fn os_release(version: &str) -> String {
    format!(
        "NAME=\"fluxnode\"\nID=fluxnode\nVERSION_ID={version}\nPRETTY_NAME=\"fluxnode {version}\"\n"
    )
}

/// The absolute library paths `ldd` reports for a dynamic executable.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn add_host_file(archive: &mut Archive, path: &Path, perm: u32) -> Result<()> {
    let data = fs::read(path).at(path)?;
    archive.file(&path.to_string_lossy(), data, perm);
    Ok(())
}

/// Adds a host executable and every shared library it loads, at the same paths.
pub fn add_host_tool(archive: &mut Archive, tool: &Path) -> Result<()> {
    add_host_file(archive, tool, 0o755)?;
    let out = run_tool(Command::new("ldd").arg(tool))?;
    for lib in parse_ldd(&String::from_utf8_lossy(&out.stdout)) {
        if !archive.contains(&lib.to_string_lossy()) {
            add_host_file(archive, &lib, 0o755)?;
        }
    }
    Ok(())
}

/// Builds the root filesystem tree around the given `fluxnode` binary, trusting
/// `release_keys` (the keys file text) for updates when given.
pub fn build(
    init: &Path,
    tools: &[&str],
    version: &str,
    release_keys: Option<&str>,
) -> Result<Archive> {
    let mut a = Archive::new();
    let init_data = fs::read(init).at(init)?;
    a.file("init", init_data, 0o755);
    a.add("usr/bin/fluxnode", Kind::Symlink("/init".into()), 0o777);
    for d in ["proc", "sys", "dev", "run", "tmp", "data", "var"] {
        a.dir(d, 0o755);
    }
    a.dir("root", 0o700);
    a.add("dev/console", Kind::CharDev { major: 5, minor: 1 }, 0o600);
    a.add("dev/null", Kind::CharDev { major: 1, minor: 3 }, 0o666);
    a.file("etc/os-release", os_release(version).into_bytes(), 0o644);
    a.file("etc/hostname", b"fluxnode\n".to_vec(), 0o644);
    if let Some(keys) = release_keys {
        let path = crate::update::keys::RELEASE_KEYS_PATH.trim_start_matches('/');
        a.file(path, keys.as_bytes().to_vec(), 0o644);
    }
    a.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/init\n".to_vec(),
        0o644,
    );
    a.file("etc/group", b"root:x:0:\n".to_vec(), 0o644);
    for tool in tools {
        add_host_tool(&mut a, Path::new(tool))?;
    }
    if Path::new("/etc/mke2fs.conf").exists() {
        add_host_file(&mut a, Path::new("/etc/mke2fs.conf"), 0o644)?;
    }
    Ok(a)
}

/// Compresses a cpio archive with zstd, which the kernel unpacks (CONFIG_RD_ZSTD).
pub fn compress(cpio: &[u8]) -> Result<Vec<u8>> {
    zstd::stream::encode_all(cpio, 19).at("<zstd>")
}

/// A zstd encoder at `level`, for size reports.
pub fn zstd_writer<W: std::io::Write>(
    out: W,
    level: i32,
) -> Result<zstd::stream::write::Encoder<'static, W>> {
    zstd::stream::write::Encoder::new(out, level).at("<zstd>")
}

/// Decompresses a zstd stream into `out`.
pub fn zstd_decode<R: std::io::Read, W: std::io::Write>(input: R, out: &mut W) -> Result<()> {
    zstd::stream::copy_decode(input, out).at("<zstd>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_paths() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibext2fs.so.2 => /lib/x86_64-linux-gnu/libext2fs.so.2 (0x00007f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            [
                "/lib/x86_64-linux-gnu/libext2fs.so.2",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn rootfs_has_init_tools_libraries_and_console() {
        let a = build(
            Path::new("/bin/true"),
            &["/usr/sbin/mke2fs"],
            "9.9",
            Some("ed25519 00 k\n"),
        )
        .unwrap();
        for path in [
            "etc/fluxnode/release-keys",
            "init",
            "dev/console",
            "usr/sbin/mke2fs",
            "lib64/ld-linux-x86-64.so.2",
            "etc/os-release",
        ] {
            assert!(a.contains(path), "{path} missing");
        }
    }

    #[test]
    fn the_tools_pid1_runs_on_fluxdata_are_carried_with_their_libraries() {
        let a = build(Path::new("/bin/true"), &HOST_TOOLS, "9.9", None).unwrap();
        for path in [
            "usr/sbin/e2fsck",
            "usr/sbin/resize2fs",
            "usr/sbin/tune2fs",
            "lib/x86_64-linux-gnu/libe2p.so.2",
        ] {
            assert!(a.contains(path), "{path} missing");
        }
    }

    #[test]
    fn a_missing_init_is_named() {
        let err = build(Path::new("/no/such/fluxnode"), &[], "1", None).unwrap_err();
        assert!(err.to_string().contains("/no/such/fluxnode"), "{err}");
    }
}
