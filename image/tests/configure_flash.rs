//! `fluxnode-image configure` and `flash` through the real binary, the way an owner runs
//! them: configure as an unprivileged user (nobody, when the test runs as root) on a built
//! disk image, checked by reading FLUXDATA back with debugfs; flash to scratch files and to
//! a loop device, refused when the target is mounted (directly or through the loop device
//! over a file), holds the running system, or is too small.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::configure::{self, fluxdata_offset};
use image::disk::{DiskSpec, MIB};

const TOOL: &str = env!("CARGO_BIN_EXE_fluxnode-image");

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A built disk image with a fake UKI (what configure and flash see is the GPT and FLUXDATA).
fn disk(dir: &Path) -> PathBuf {
    let uki = dir.join("fluxnode.efi");
    fs::write(&uki, vec![0x5a; 300_000]).unwrap();
    let img = dir.join("fluxnode.img");
    DiskSpec::new(uki, "1.0.0").write(&img).unwrap();
    img
}

fn sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(fs::read(path).unwrap()))
}

fn run(args: &[&str], as_nobody: bool) -> Output {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", TOOL]);
        c
    } else {
        Command::new(TOOL)
    };
    cmd.args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn configure_writes_checked_files_into_fluxdata_as_an_unprivileged_user() {
    let dir = tempfile::tempdir().unwrap();
    let img = disk(dir.path());
    let nobody = is_root();
    if nobody {
        // nobody may enter the directory and write the image, nothing more.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&img, Some(65534), Some(65534)).unwrap();
    }
    let cfg = dir.path().join("node.toml");
    let toml = "[node]\nhostname = \"rack7-node3\"\n\n[network]\nmode = \"static\"\naddress = \"192.0.2.10/24\"\ngateway = \"192.0.2.1\"\n";
    fs::write(&cfg, toml).unwrap();
    let wallet = dir.path().join("wallet.key");
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    fs::write(&wallet, pkcs8.as_ref()).unwrap();
    let genesis = dir.path().join("genesis.json");
    fs::write(&genesis, "{\"chain_id\": \"fluxnode-test\", \"time\": 1}").unwrap();
    for f in [&cfg, &wallet, &genesis] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = run(
        &[
            "configure",
            &s(&img),
            "--config",
            &s(&cfg),
            "--wallet",
            &s(&wallet),
            "--genesis",
            &s(&genesis),
        ],
        nobody,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("-> /data/keys/wallet.key"),
        "{}",
        text(&out)
    );
    let off = fluxdata_offset(&img).unwrap();
    let read = |inner: &str| configure::read(&img, off, inner).unwrap();
    assert_eq!(read("etc/fluxnode.toml").as_deref(), Some(toml.as_bytes()));
    assert_eq!(read("keys/wallet.key").as_deref(), Some(pkcs8.as_ref()));
    assert!(read("chain/genesis.json").is_some());
    let stat = Command::new("debugfs")
        .args(["-R", "stat /keys/wallet.key"])
        .arg(format!("{}?offset={off}", img.display()))
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(
        stat.contains("Mode:  0600") && stat.contains("User:     0"),
        "{stat}"
    );
    // A bad config changes nothing at all; a good one replaces the file.
    let before = sha(&img);
    fs::write(
        &cfg,
        "[node]\nhostname = \"x\"\n[watchdog]\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = run(&["configure", &s(&img), "--config", &s(&cfg)], nobody);
    assert!(!out.status.success());
    assert!(text(&out).contains("[watchdog] colour"), "{}", text(&out));
    assert_eq!(sha(&img), before, "a refused configure wrote nothing");
    fs::write(&cfg, "[node]\nhostname = \"second\"\n").unwrap();
    let out = run(&["configure", &s(&img), "--config", &s(&cfg)], nobody);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        read("etc/fluxnode.toml").as_deref(),
        Some(&b"[node]\nhostname = \"second\"\n"[..])
    );
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(format!("{}?offset={off}", img.display()))
        .output()
        .unwrap();
    assert!(fsck.status.success(), "{}", text(&fsck));
}

/// A loop device over `file`, detached on drop.
struct Loop(String);

impl Loop {
    fn new(file: &Path) -> Option<Loop> {
        let out = Command::new("losetup")
            .args(["-fP", "--show"])
            .arg(file)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| Loop(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

/// The whole disk that holds this system's root filesystem.
fn root_disk() -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mm = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))?
        .split(' ')
        .nth(2)?
        .to_owned();
    let sys = fs::canonicalize(format!("/sys/dev/block/{mm}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys
    };
    Some(format!("/dev/{}", disk.file_name()?.to_string_lossy()))
}

#[test]
fn flash_writes_and_verifies_and_refuses_mounted_and_small_targets() {
    let dir = tempfile::tempdir().unwrap();
    let img = disk(dir.path());
    // A scratch file as large as the image.
    let same = dir.path().join("same.img");
    fs::File::create(&same).unwrap().set_len(256 * MIB).unwrap();
    let out = run(&["flash", &s(&img), &s(&same), "--yes"], false);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("read back: the same sha256"),
        "{}",
        text(&out)
    );
    assert_eq!(sha(&same), sha(&img));
    // Too small; and with no terminal, only with --yes.
    let small = dir.path().join("small.img");
    fs::File::create(&small)
        .unwrap()
        .set_len(200 * MIB)
        .unwrap();
    let out = run(&["flash", &s(&img), &s(&small), "--yes"], false);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("less than the image's"),
        "{}",
        text(&out)
    );
    let out = Command::new(TOOL)
        .args(["flash", &s(&img), &s(&same)])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("add --yes"),
        "{}",
        text(&out)
    );
    if !is_root() {
        eprintln!("not root: the loop-device half of this test needs losetup and mount");
        return;
    }
    if let Some(dev) = root_disk().filter(|d| Path::new(d).exists()) {
        let out = run(&["flash", &s(&img), &dev, "--yes"], false);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("holds the running system"),
            "{}",
            text(&out)
        );
    }
    let big = dir.path().join("big.img");
    fs::File::create(&big).unwrap().set_len(300 * MIB).unwrap();
    let lo = Loop::new(&big).expect("a loop device (losetup -fP)");
    let out = run(&["flash", &s(&img), &lo.0, "--yes"], false);
    assert!(out.status.success(), "{}", text(&out));
    // The flashed loop device shows its partitions; mount one and try again. (It is made
    // ext2 first: a build host's kernel may lack FAT and the quotas FLUXDATA's ext4 has.)
    let _ = Command::new("partx").args(["-u", &lo.0]).status();
    let part = format!("{}p2", lo.0);
    let made = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", &part])
        .status()
        .unwrap();
    assert!(made.success(), "mke2fs {part}");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount").arg(&part).arg(&mnt).status().unwrap();
    assert!(mounted.success(), "mount {part}");
    let direct = run(&["flash", &s(&img), &lo.0, "--yes"], false);
    let through_file = run(&["flash", &s(&img), &s(&big), "--yes"], false);
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(!direct.status.success());
    assert!(text(&direct).contains("is mounted at"), "{}", text(&direct));
    assert!(!through_file.status.success());
    assert!(
        text(&through_file).contains("backs /dev/loop"),
        "{}",
        text(&through_file)
    );
}
