//! ext4 project quotas through `runtime::quota`, on a real filesystem: a directory put in a
//! project with a 1 MiB limit fails writes past it with EDQUOT, its usage reads back, an
//! overlay over such directories copies files up and stops at the limit, and a filesystem
//! without the feature is named as having quotas off.
//!
//! As root on the host, each test makes an ext4 image file with mke2fs and mounts it
//! through a loop device. A kernel without CONFIG_QFMT_V2 (this CI host's) refuses to mount
//! ext4 with the quota feature read-write; the tests that need it say so and skip, and the
//! QEMU test (qemu-tests/tests/quota.rs) runs this same binary on the node, where
//! `FLUXNODE_QUOTA_DIR` names a directory on the node's /data (mounted with `prjquota`):
//! then the tests work there instead of on an image of their own.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::quota::{self, State};

const EDQUOT: i32 = 122;
const EXDEV: i32 = 18;
const MIB: u64 = 1 << 20;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why this kernel cannot mount ext4 with the quota feature read-write, when its
/// /proc/config.gz says so.
fn kernel_lacks_ext4_quota() -> Option<String> {
    let gz = File::open("/proc/config.gz").ok()?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .ok()?;
    ["CONFIG_QUOTA", "CONFIG_QFMT_V2"]
        .into_iter()
        .find(|k| text.contains(&format!("# {k} is not set")))
        .map(|k| format!("this kernel has no {k}, so it refuses to mount ext4 with the quota feature read-write"))
}

/// An ext4 image file mounted through a loop device, unmounted and detached on drop.
struct Loop {
    dir: tempfile::TempDir,
    dev: String,
    mounted: bool,
}

impl Loop {
    fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// mke2fs with `features` (64 MiB, 256-byte inodes), then a mount with `options`.
    fn new(features: &[&str], options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        File::create(&img).unwrap().set_len(64 * MIB).unwrap();
        let mut mkfs = Command::new("mke2fs");
        mkfs.args(["-q", "-F", "-t", "ext4", "-b", "4096", "-I", "256"]);
        mkfs.args(features).arg(&img);
        run(&mut mkfs);
        let dev = run(Command::new("losetup").args(["--find", "--show"]).arg(&img))
            .trim()
            .to_owned();
        let mut l = Loop {
            dir,
            dev,
            mounted: false,
        };
        fs::create_dir(l.mnt()).unwrap();
        nix::mount::mount(
            Some(l.dev.as_str()),
            &l.mnt(),
            Some("ext4"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .unwrap_or_else(|e| panic!("mount {} -o {options:?}: {e}", l.dev));
        l.mounted = true;
        l
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        if self.mounted && nix::mount::umount(&self.mnt()).is_err() {
            let _ = nix::mount::umount2(&self.mnt(), nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Where a test works: a fresh directory on a filesystem with project quotas enforced,
/// and that filesystem's block device when the test made it.
struct Place {
    dir: PathBuf,
    dev: Option<PathBuf>,
    _loop: Option<Loop>,
    _tmp: Option<tempfile::TempDir>,
}

/// A place with enforced project quotas: under `FLUXNODE_QUOTA_DIR`, or on a fresh image;
/// None (said why) when this host cannot give one.
fn quota_place(test: &str) -> Option<Place> {
    if let Ok(root) = std::env::var("FLUXNODE_QUOTA_DIR") {
        let tmp = tempfile::Builder::new()
            .prefix(test)
            .tempdir_in(root)
            .unwrap();
        return Some(Place {
            dir: tmp.path().to_path_buf(),
            dev: None,
            _loop: None,
            _tmp: Some(tmp),
        });
    }
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (loop devices and mounts)");
        return None;
    }
    if let Some(why) = kernel_lacks_ext4_quota() {
        eprintln!("SKIPPED {test}: {why}; qemu-tests/tests/quota.rs runs it on the node");
        return None;
    }
    let l = Loop::new(
        &["-O", "quota,project", "-E", "quotatype=prjquota"],
        "prjquota",
    );
    Some(Place {
        dir: l.mnt(),
        dev: Some(PathBuf::from(&l.dev)),
        _loop: Some(l),
        _tmp: None,
    })
}

/// Writes up to `max` bytes to a new file at `path` in 64 KiB writes: how many it wrote
/// and the error that stopped it.
fn fill(path: &Path, max: u64) -> (u64, Option<io::Error>) {
    let mut f = File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 << 10];
    let mut written = 0u64;
    while written < max {
        match f.write(&chunk) {
            Ok(n) => written += n as u64,
            Err(e) => return (written, Some(e)),
        }
    }
    match f.sync_all() {
        Ok(()) => (written, None),
        Err(e) => (written, Some(e)),
    }
}

/// [`fill`] from a thread without CAP_SYS_RESOURCE, which would let root write past any
/// quota (the kernel's ignore_hardlimit); an app in a container has no such capability, and
/// overlayfs drops it for the writes it makes on an app's behalf.
fn fill_unprivileged(path: &Path, max: u64) -> (u64, Option<io::Error>) {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_SYS_RESOURCE: u32 = 24;
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        // pid 0: this thread only; capabilities are per thread.
        let mut h = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut d = [Data::default(); 2];
        // SAFETY: capget and capset read and write one header and two data structures.
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
            d[0].effective &= !(1 << CAP_SYS_RESOURCE);
            assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
        }
        fill(&path, max)
    })
    .join()
    .unwrap()
}

#[test]
fn a_project_with_a_1_mib_limit_gets_edquot_and_its_usage_reads_back() {
    let Some(p) = quota_place("limit") else {
        return;
    };
    assert_eq!(
        quota::state(&p.dir).unwrap(),
        State {
            accounting: true,
            enforced: true
        },
        "project quotas counted and enforced on {}",
        p.dir.display()
    );
    // An instance directory with what an app wrote before quotas existed.
    let inst = p.dir.join("inst");
    let (upper, work) = (inst.join("upper"), inst.join("work"));
    fs::create_dir_all(upper.join("old/deeper")).unwrap();
    fs::create_dir_all(&work).unwrap();
    fs::write(upper.join("old/deeper/a"), vec![1u8; 100 << 10]).unwrap();
    fs::write(upper.join("f"), b"f").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", upper.join("link")).unwrap();
    let id = quota::project_id(&inst).unwrap();
    quota::set_project(&upper, id).unwrap();
    quota::set_project(&work, id).unwrap();
    for (path, dir) in [
        ("upper", true),
        ("upper/old", true),
        ("upper/old/deeper", true),
        ("upper/old/deeper/a", false),
        ("upper/f", false),
        ("work", true),
    ] {
        let (got, inherit) = quota::project(&inst.join(path)).unwrap();
        assert_eq!(got, id, "{path}");
        assert_eq!(inherit, dir, "{path}");
    }
    // Again: a no-op.
    quota::set_project(&upper, id).unwrap();

    let before = quota::usage(&p.dir, id).unwrap();
    assert!(before.bytes >= 100 << 10, "{before:?}");
    assert!(before.files >= 6, "{before:?}");
    assert_eq!(before.limit, 0, "{before:?}");

    quota::set_limit(&p.dir, id, MIB).unwrap();
    assert_eq!(quota::usage(&p.dir, id).unwrap().limit, MIB);

    // A new directory inherits the project; writing past the limit fails with EDQUOT.
    fs::create_dir(upper.join("new")).unwrap();
    assert_eq!(quota::project(&upper.join("new")).unwrap(), (id, true));
    let (written, err) = fill_unprivileged(&upper.join("new/big"), 2 * MIB);
    let err = err.expect("a write past the limit fails");
    assert_eq!(err.raw_os_error(), Some(EDQUOT), "{err}");
    assert!(written <= MIB, "wrote {written} bytes under a 1 MiB limit");
    assert!(written >= MIB - (256 << 10), "wrote only {written} bytes");
    let full = quota::usage(&p.dir, id).unwrap();
    eprintln!("usage at the limit: {full:?} (wrote {written})");
    assert!(full.bytes <= MIB, "{full:?}");
    assert!(full.bytes >= MIB - (128 << 10), "{full:?}");
    if let Some(dev) = &p.dev {
        assert_eq!(quota::usage(dev, id).unwrap(), full, "by block device");
    }

    // Files outside the project do not count.
    fs::write(p.dir.join("outside"), vec![0u8; 512 << 10]).unwrap();
    assert_eq!(quota::usage(&p.dir, id).unwrap().bytes, full.bytes);

    // 0 lifts the limit.
    quota::set_limit(&p.dir, id, 0).unwrap();
    let (_, err) = fill_unprivileged(&upper.join("new/more"), 2 * MIB);
    assert!(err.is_none(), "{err:?}");
    assert!(quota::usage(&p.dir, id).unwrap().bytes >= full.bytes + 2 * MIB);

    // Removing the files gives the space back.
    fs::remove_dir_all(&inst).unwrap();
    let gone = quota::usage(&p.dir, id).unwrap();
    assert_eq!((gone.bytes, gone.files), (0, 0), "{gone:?}");
}

/// The recipe of the app manager: an overlay whose upperdir and workdir are in the
/// instance's project copies a lower file up (created in the workdir, renamed into the
/// upperdir) and stops at the limit; with only the upperdir in it, ext4 refuses the
/// copy-up's rename with EXDEV.
#[test]
fn an_overlay_over_project_dirs_copies_up_and_stops_at_the_limit() {
    let Some(p) = quota_place("overlay") else {
        return;
    };
    let lower = p.dir.join("lower");
    fs::create_dir_all(&lower).unwrap();
    fs::write(lower.join("data"), vec![3u8; 200 << 10]).unwrap();
    let mount = |inst: &Path, tag_work: bool| -> PathBuf {
        for d in ["upper", "work", "rootfs"] {
            fs::create_dir_all(inst.join(d)).unwrap();
        }
        let id = quota::project_id(inst).unwrap();
        quota::set_project(&inst.join("upper"), id).unwrap();
        if tag_work {
            quota::set_project(&inst.join("work"), id).unwrap();
        }
        quota::set_limit(&p.dir, id, MIB).unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            inst.join("upper").display(),
            inst.join("work").display()
        );
        let root = inst.join("rootfs");
        nix::mount::mount(
            Some("overlay"),
            &root,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
        root
    };
    let append = |root: &Path| {
        fs::OpenOptions::new()
            .append(true)
            .open(root.join("data"))
            .and_then(|mut f| f.write_all(b"more"))
    };

    let good = p.dir.join("good");
    let root = mount(&good, true);
    let copied = append(&root);
    let id = quota::project_id(&good).unwrap();
    let (written, err) = fill(&root.join("big"), 2 * MIB);
    let used = quota::usage(&p.dir, id).unwrap();
    let _ = nix::mount::umount(&root);
    copied.expect("copy-up into the project");
    assert_eq!(quota::project(&good.join("upper/data")).unwrap().0, id);
    let err = err.expect("a write past the limit fails");
    assert_eq!(err.raw_os_error(), Some(EDQUOT), "{err}");
    assert!(written <= MIB - (200 << 10), "wrote {written}");
    assert!(
        used.bytes <= MIB && used.bytes >= MIB - (128 << 10),
        "{used:?}"
    );

    let bad = p.dir.join("bad");
    let root = mount(&bad, false);
    let copied = append(&root);
    let _ = nix::mount::umount(&root);
    let err = copied.expect_err("copy-up from an untagged workdir");
    assert_eq!(err.raw_os_error(), Some(EXDEV), "{err}");
}

/// A filesystem without the project feature: every step says quotas are off, naming the
/// path or device.
#[test]
fn without_the_project_feature_quotas_are_named_off() {
    if std::env::var_os("FLUXNODE_QUOTA_DIR").is_some() {
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED: needs root (loop devices and mounts)");
        return;
    }
    let l = Loop::new(&[], "");
    let dir = l.mnt().join("d");
    fs::create_dir(&dir).unwrap();
    let id = quota::project_id(&dir).unwrap();
    assert_eq!(quota::project(&dir).unwrap(), (0, false));
    let err = quota::set_project(&dir, id).unwrap_err();
    assert!(err.is_off(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: FS_IOC_FSSETXATTR: project quotas are off on this filesystem",
            dir.display()
        )),
        "{text}"
    );
    for fs in [l.mnt(), PathBuf::from(&l.dev)] {
        let err = quota::usage(&fs, id).unwrap_err();
        assert!(err.is_off(), "{err}");
        assert!(
            err.to_string().starts_with(&format!(
                "{}: Q_GETQUOTA: project quotas are off",
                fs.display()
            )),
            "{err}"
        );
        let err = quota::set_limit(&fs, id, MIB).unwrap_err();
        assert!(err.is_off(), "{err}");
        let err = quota::state(&fs).unwrap_err();
        assert!(err.is_off(), "{err}");
    }
}

/// Without the `prjquota` mount option the kernel keeps project usage but enforces no
/// limit: why the node mounts /data with it.
#[test]
fn mounted_without_prjquota_usage_is_kept_but_not_enforced() {
    if std::env::var_os("FLUXNODE_QUOTA_DIR").is_some() {
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED: needs root (loop devices and mounts)");
        return;
    }
    if let Some(why) = kernel_lacks_ext4_quota() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let l = Loop::new(&["-O", "quota,project", "-E", "quotatype=prjquota"], "");
    assert_eq!(
        quota::state(&l.mnt()).unwrap(),
        State {
            accounting: true,
            enforced: false
        }
    );
    let dir = l.mnt().join("d");
    fs::create_dir(&dir).unwrap();
    let id = quota::project_id(&dir).unwrap();
    quota::set_project(&dir, id).unwrap();
    quota::set_limit(&l.mnt(), id, MIB).unwrap();
    let (written, err) = fill_unprivileged(&dir.join("big"), 2 * MIB);
    assert!(err.is_none(), "{err:?}");
    assert!(quota::usage(&l.mnt(), id).unwrap().bytes >= written);
}
