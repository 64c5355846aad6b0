//! `fluxnode-vm bench-runtime`: the container cycle measured inside the image, on pure
//! cgroup v2, ours against crun. A copy of the node disk gets the static benchmark driver
//! (`fluxnode-bench-runtime`), busybox for the bundle's rootfs, and Debian's crun with the
//! libraries `ldd` names (test disk only; a guest script copies them into the running
//! root, so crun runs as it would from /usr/bin, with no wrapper in its timing). The guest
//! runs the driver's interleaved create/start/wait/delete cycles and powers off; the
//! driver's report is read back from the disk and printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{disk, oci, Artifacts, VmBuilder};

/// crun and the shared objects it loads (the dynamic loader first), from `ldd`.
fn crun_files(crun: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(crun).output().context("ldd")?;
    if !out.status.success() {
        bail!(
            "ldd {}: {}",
            crun.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut files = vec![crun.to_owned()];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    Ok(files)
}

const SCRIPT: &str = r#"B=/data/bin/busybox
$B mkdir -p /lib64 /lib/x86_64-linux-gnu /usr/bin /run/fluxbench
for f in /data/crun/*; do
  case "$f" in
    */ld-linux-x86-64.so.2) $B cp "$f" /lib64/ ;;
    */crun) $B cp "$f" /usr/bin/crun ;;
    *) $B cp "$f" /lib/x86_64-linux-gnu/ ;;
  esac
done
/data/bench/driver --dir /run/fluxbench --busybox /data/bin/busybox --crun /usr/bin/crun \
  --runtimes fluxnode,crun CYCLES > /data/bench/report.txt 2>&1
echo "exit=$?" >> /data/bench/report.txt
/init ctl shutdown
"#;

/// Boots the image with the driver and crun, runs `cycles` cycles each, returns the report.
pub fn run(driver: &Path, crun: &Path, cycles: usize) -> Result<String> {
    let a = Artifacts::locate().map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir()?;
    let img = disk::copy_image(&a, dir.path(), Some(2 << 30));
    let script = dir.path().join("bench.sh");
    fs::write(&script, SCRIPT.replace("CYCLES", &cycles.to_string()))?;
    let crun_files = crun_files(crun)?;
    let mut files: Vec<(&Path, String)> = vec![
        (Path::new(oci::BUSYBOX), "/bin/busybox".into()),
        (driver, "/bench/driver".into()),
        (&script, "/bench/bench.sh".into()),
    ];
    for f in &crun_files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((f, format!("/crun/{name}")));
    }
    let pairs: Vec<(&Path, &str)> = files.iter().map(|(p, i)| (*p, i.as_str())).collect();
    disk::put_host_files(&img, &["/bin", "/bench", "/crun"], &pairs);
    eprintln!(
        "bench-runtime: booting the image with crun ({} files) for {cycles} cycles each",
        crun_files.len()
    );
    let mut vm = VmBuilder::from_artifacts(&a, None)
        .data_disk(&img)
        .memory_mb(1024)
        .smp(2)
        .cmdline_extra(
            "fluxnode.bench.enabled=false fluxnode.service.bench=\"/data/bin/busybox sh /data/bench/bench.sh\"",
        )
        .timeout(Duration::from_secs(3600))
        .spawn()?;
    let status = vm.wait_exit(Duration::from_secs(3600))?;
    if !status.success() {
        bail!("qemu: {status}\n{}", vm.tail(40));
    }
    let report = disk::read_file(&img, "/bench/report.txt");
    if !report.contains("exit=0") {
        bail!("the driver failed in the guest:\n{report}\n{}", vm.tail(40));
    }
    Ok(report)
}
