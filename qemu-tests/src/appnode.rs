//! A node disk prepared for app tests: busybox and the test image (an oci-archive) on its
//! FLUXDATA with a shell script that a service runs on the node itself (not in a
//! container). The script drives `fluxnode ctl app ...`, writes what it saw under
//! /data/results, and the test reads the results from the disk once the VM is off.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::{disk, oci, Artifacts, Vm, VmBuilder};

/// Shell functions every script starts with.
pub const PRELUDE: &str = r#"
F=/init
B=/data/bin/busybox
R=/data/results
S=/data/test/img.tar
run() { n=$1; shift; $F ctl app run "$n" --source $S "$@" > $R/$n.run 2>&1; echo "exit=$?" >> $R/$n.run; }
# Waits (up to 90 s) until app $1 has ended for good, keeping its stats in $R/$1.json.
settle() {
  for i in $($B seq 1 90); do
    $F ctl app stats "$1" --samples 1 > $R/$1.json 2>&1
    if $B grep -q -e '"state": "exited"' -e '"state": "failed"' $R/$1.json; then return 0; fi
    $B sleep 1
  done
}
# Waits (up to 30 s) until app $1 is no longer listed.
gone() {
  for i in $($B seq 1 30); do
    $F ctl app list | $B grep -q "\"$1-0\"" || return 0
    $B sleep 1
  done
}
"#;

/// Reserves small enough for a 1 GiB VM with a 256 MiB disk.
pub const SMALL_RESERVE: &str =
    "fluxnode.apps.reserve_cpu=0.25 fluxnode.apps.reserve_ram=128M fluxnode.apps.reserve_disk=8M";

/// A node disk with the test image, busybox and a script (run at boot by
/// [`oci::SCRIPT_SERVICE`]).
pub struct AppNode {
    pub a: Artifacts,
    pub img: PathBuf,
    pub dir: tempfile::TempDir,
}

impl AppNode {
    pub fn new(script: &str) -> Self {
        Self::with(script, None, &[])
    }

    /// A disk of `size` bytes (grown at first boot), with `extra` host files added to the
    /// test image's root filesystem (`(host path, path in the image)`).
    pub fn with(script: &str, size: Option<u64>, extra: &[(&Path, &str)]) -> Self {
        let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let img = disk::copy_image(&a, dir.path(), size);
        oci::prepare_with(&img, dir.path(), &format!("{PRELUDE}\n{script}"), extra);
        AppNode { a, img, dir }
    }

    /// A direct boot with the script's service (unless `script` is false).
    pub fn boot_with(&self, script: bool, extra: &str) -> VmBuilder {
        let service = if script { oci::SCRIPT_SERVICE } else { "" };
        VmBuilder::from_artifacts(&self.a, None)
            .data_disk(&self.img)
            .memory_mb(1024)
            .cmdline_extra(&format!(
                "fluxnode.bench.enabled=false {SMALL_RESERVE} {service} {extra}"
            ))
    }

    pub fn boot(&self, extra: &str) -> VmBuilder {
        self.boot_with(true, extra)
    }

    pub fn result(&self, name: &str) -> String {
        disk::read_file(&self.img, &format!("/results/{name}"))
    }

    pub fn json(&self, name: &str) -> Value {
        let text = self.result(name);
        serde_json::from_str(&text).unwrap_or_else(|e| {
            let run = self.result(&name.replace(".json", ".run"));
            panic!("{name}: {e}: {text:?}; its app.run said {run:?}")
        })
    }
}

/// Waits (up to 5 min) for the VM to power off cleanly.
pub fn powered_off(vm: &mut Vm) {
    let status = vm
        .wait_exit(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "qemu {status}\n{}", vm.tail(40));
}

/// The value after `key=` on a line of `text`.
pub fn field(text: &str, key: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
}

/// A test program from `qemu-tests/probe/<name>.c`, built static with the host's gcc into
/// `dir` (for the test image: it has no libc).
pub fn build_probe(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("probe")
        .join(format!("{name}.c"));
    let out = dir.join(name);
    let st = std::process::Command::new("gcc")
        .args(["-static", "-pthread", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc {}", src.display());
    out
}
