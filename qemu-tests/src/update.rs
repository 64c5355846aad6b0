//! Building blocks of the update tests: other versions of the image made with
//! `fluxnode-image` (initramfs, UKI with test-only kernel keys, signed bundle, base disk),
//! the ESP of a disk image read and changed from the host with mtools at its byte offset,
//! a node configured through `/data/etc/fluxnode.toml` with a busybox script as its
//! service, and the console watched across reboots (the n-th time a line appears).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{disk, oci, Artifacts, Vm};

/// The version of the built image.
pub const BASE: &str = image::VERSION;
/// Where a test script keeps its results on the node (`/results` on FLUXDATA).
pub const RESULTS: &str = "/data/results";

// ---- other versions, built with the image tool -------------------------------------

/// Runs `fluxnode-image` with `args`; panics with its output when it fails.
pub fn tool<S: AsRef<OsStr>>(a: &Artifacts, args: &[S]) -> String {
    let out = Command::new(&a.tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", a.tool.display()));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "fluxnode-image {:?}: {}\n{}{}",
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The release public key next to `Artifacts.release_key` (the image trusts it).
pub fn release_pub(a: &Artifacts) -> PathBuf {
    a.release_key.with_extension("pub")
}

/// The image's default kernel command line plus `test_keys`.
pub fn cmdline(test_keys: &str) -> String {
    format!("{} {test_keys}", image::DEFAULT_CMDLINE)
        .trim_end()
        .to_owned()
}

/// A UKI `<dir>/<name>.efi` of `version` (its own initramfs, trusting the dev release
/// key) whose command line is the default plus `test_keys`.
pub fn build_uki(a: &Artifacts, dir: &Path, name: &str, version: &str, test_keys: &str) -> PathBuf {
    let initrd = dir.join(format!("{name}.initrd"));
    let uki = dir.join(format!("{name}.efi"));
    tool(
        a,
        &[
            OsStr::new("initramfs"),
            "--init".as_ref(),
            a.init.as_os_str(),
            "--version".as_ref(),
            version.as_ref(),
            "--release-keys".as_ref(),
            release_pub(a).as_os_str(),
            "--out".as_ref(),
            initrd.as_os_str(),
        ],
    );
    let cmdline = cmdline(test_keys);
    tool(
        a,
        &[
            OsStr::new("uki"),
            "--kernel".as_ref(),
            a.kernel.as_os_str(),
            "--initrd".as_ref(),
            initrd.as_os_str(),
            "--version".as_ref(),
            version.as_ref(),
            "--cmdline".as_ref(),
            cmdline.as_ref(),
            "--out".as_ref(),
            uki.as_os_str(),
        ],
    );
    uki
}

/// Signs `uki` as release `version` with `key` into `out`.
pub fn release(a: &Artifacts, key: &Path, version: &str, uki: &Path, out: &Path) -> PathBuf {
    tool(
        a,
        &[
            OsStr::new("release"),
            "--key".as_ref(),
            key.as_os_str(),
            "--version".as_ref(),
            version.as_ref(),
            "--uki".as_ref(),
            uki.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    out.to_owned()
}

/// A fresh key pair `<prefix>.key` / `<prefix>.pub` that the image does not trust;
/// returns the private key.
pub fn keygen(a: &Artifacts, prefix: &Path) -> PathBuf {
    tool(
        a,
        &[OsStr::new("keygen"), "--out".as_ref(), prefix.as_os_str()],
    );
    let key = prefix.with_extension("key");
    assert!(key.exists(), "keygen wrote no {}", key.display());
    key
}

/// A node disk `out` like the built one, but booting `uki` as version [`BASE`].
pub fn base_disk(a: &Artifacts, uki: &Path, out: &Path) -> PathBuf {
    tool(
        a,
        &[
            OsStr::new("disk"),
            "--uki".as_ref(),
            uki.as_os_str(),
            "--version".as_ref(),
            BASE.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
    );
    out.to_owned()
}

/// Where a bundle's parts are (see `image::update::bundle`).
#[derive(Debug, Clone, Copy)]
pub struct BundleLayout {
    pub signature: u64,
    pub uki: u64,
    pub uki_len: u64,
}

/// Reads a bundle's header to find its signature and UKI.
pub fn bundle_layout(bundle: &Path) -> BundleLayout {
    let mut f = std::io::BufReader::new(fs::File::open(bundle).unwrap());
    let (header, len) = image::update::bundle::BundleHeader::read(&mut f)
        .unwrap_or_else(|e| panic!("{}: {e}", bundle.display()));
    let uki = len as u64;
    BundleLayout {
        signature: uki - header.signature.len() as u64,
        uki,
        uki_len: header.uki_len,
    }
}

/// Copies `src` to `dst` with the byte at `offset` inverted.
pub fn flip_byte(src: &Path, dst: &Path, offset: u64) -> PathBuf {
    let mut bytes = fs::read(src).unwrap();
    bytes[offset as usize] ^= 0xff;
    fs::write(dst, bytes).unwrap();
    dst.to_owned()
}

// ---- the ESP, from the host ----------------------------------------------------------

/// Byte offset and length of the ESP in images built by `fluxnode-image`.
pub fn esp_range() -> (u64, u64) {
    let spec = image::disk::DiskSpec::new("unused.efi", image::VERSION);
    let [esp, _] = spec.layout().expect("the default layout is valid");
    let sector = image::gpt::SECTOR;
    (
        esp.first_lba * sector,
        (esp.last_lba + 1 - esp.first_lba) * sector,
    )
}

/// The ESP's bytes.
pub fn esp_bytes(img: &Path) -> Vec<u8> {
    let (start, len) = esp_range();
    let mut f = fs::File::open(img).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    buf
}

/// The ESP of `img` as a file of its own (for `fsck.fat`).
pub fn extract_esp(img: &Path, out: &Path) -> PathBuf {
    fs::write(out, esp_bytes(img)).unwrap();
    out.to_owned()
}

/// `fsck.fat -n` on a copy of the ESP: whether it found nothing to fix, and its report.
pub fn fsck_esp(img: &Path) -> (bool, String) {
    let copy = extract_esp(img, &img.with_extension("esp"));
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(&copy)
        .output()
        .expect("fsck.fat");
    let _ = fs::remove_file(&copy);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), report)
}

fn mtools(cmd: &str, img: &Path, args: &[&str]) -> Vec<u8> {
    let at = format!("{}@@{}", img.display(), esp_range().0);
    let out = Command::new(cmd)
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&at)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every file on the ESP (hidden ones too), as `/EFI/Linux/...`; directories are left out.
pub fn esp_files(img: &Path) -> Vec<String> {
    let out = mtools("mdir", img, &["-/", "-b", "-a", "::"]);
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .filter_map(|l| l.strip_prefix("::"))
        .map(str::to_owned)
        .collect()
}

/// The entries (file names) in the ESP's `EFI/Linux`.
pub fn esp_entries(img: &Path) -> Vec<String> {
    esp_files(img)
        .iter()
        .filter_map(|p| p.strip_prefix("/EFI/Linux/"))
        .map(str::to_owned)
        .collect()
}

/// The bytes of one file on the ESP (`/EFI/...`).
pub fn esp_read(img: &Path, path: &str) -> Vec<u8> {
    mtools("mcopy", img, &["-n", &format!("::{path}"), "-"])
}

/// Renames a file on the ESP.
pub fn esp_rename(img: &Path, from: &str, to: &str) {
    mtools("mmove", img, &[&format!("::{from}"), &format!("::{to}")]);
}

/// Every file on the ESP with its SHA-256 (hex).
pub fn esp_digests(img: &Path) -> BTreeMap<String, String> {
    esp_files(img)
        .into_iter()
        .map(|p| {
            let sum = sha256(&esp_read(img, &p));
            (p, sum)
        })
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Marks the base version's entry as committed (as a healthy first boot would), so the
/// loader has nothing to rename at boot.
pub fn commit_base_entry(img: &Path) {
    esp_rename(
        img,
        &format!("/EFI/Linux/fluxnode-{BASE}+3.efi"),
        &format!("/EFI/Linux/fluxnode-{BASE}.efi"),
    );
}

// ---- the node: config, script and files on FLUXDATA ----------------------------------

/// `/data/etc/fluxnode.toml` for these tests: no boot benchmark, a short health window,
/// and the test script as a service that runs once per boot.
pub fn node_config(health_secs: u64) -> String {
    format!(
        r#"[bench]
enabled = false

[update]
health_secs = {health_secs}

[[service]]
name = "t"
argv = ["/data/bin/busybox", "sh", "/data/test/t.sh"]
restart = "never"
"#
    )
}

/// Shell functions every script starts with. `$ver` is the running version.
pub const PRELUDE: &str = r#"
B=/data/bin/busybox
F=/init
R=/data/results
ver=$($B sed -n 's/^VERSION_ID=//p' /etc/os-release | $B tr -d '"')
say() { echo "t.sh: $*"; }
# Notes a step in /data/results so that the script does it once, even across a power cut.
mark() { $B touch $R/$1; $B sync; }
# Waits (up to 400 s) until this boot is no longer on trial; keeps ctl status in $R/$1.
settled() {
  for i in $($B seq 1 400); do
    $F ctl status > $R/$1 2>&1
    $B grep -q -e '"health": "committed"' -e '"health": "not on trial"' $R/$1 && { $B sync; return 0; }
    $B sleep 1
  done
  $B sync
  return 1
}
say "boot on $ver"
"#;

/// Puts busybox, the node config, `script` (after [`PRELUDE`]) and `files` (host path,
/// path on FLUXDATA) on the node disk.
pub fn prepare_node(img: &Path, dir: &Path, config: &str, script: &str, files: &[(&Path, &str)]) {
    let toml = dir.join("fluxnode.toml");
    fs::write(&toml, config).unwrap();
    let sh = dir.join("t.sh");
    fs::write(&sh, format!("{PRELUDE}\n{script}")).unwrap();
    let mut all: Vec<(&Path, &str)> = vec![
        (Path::new(oci::BUSYBOX), "/bin/busybox"),
        (&toml, "/etc/fluxnode.toml"),
        (&sh, "/test/t.sh"),
    ];
    all.extend_from_slice(files);
    disk::put_host_files(img, &["/etc", "/test", "/bin", "/results"], &all);
}

/// A result file the script wrote (`name` under /data/results).
pub fn result(img: &Path, name: &str) -> String {
    disk::read_file(img, &format!("/results/{name}"))
}

// ---- the console across reboots -----------------------------------------------------

/// Console lines containing `needle` so far.
pub fn lines_with(vm: &Vm, needle: &str) -> Vec<String> {
    vm.serial_log()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Waits until `needle` has been on `n` console lines; returns the n-th. Fails with the
/// console's tail when QEMU ends or `timeout` passes first.
pub fn wait_nth(vm: &mut Vm, needle: &str, n: usize, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(line) = lines_with(vm, needle).into_iter().nth(n - 1) {
            return Ok(line);
        }
        let ended = vm.wait_exit(Duration::ZERO).ok();
        if ended.is_some() || Instant::now() >= deadline {
            if let Some(line) = lines_with(vm, needle).into_iter().nth(n - 1) {
                return Ok(line);
            }
            let why = match ended {
                Some(status) => format!("qemu exited ({status})"),
                None => format!("{timeout:?} passed"),
            };
            return Err(format!(
                "{why} before {needle:?} appeared {n} times; last lines:\n{}",
                vm.tail(60)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_nth`] that panics on failure.
pub fn expect_nth(vm: &mut Vm, needle: &str, n: usize, timeout: Duration) -> String {
    wait_nth(vm, needle, n, timeout).unwrap_or_else(|e| panic!("{e}"))
}
