//! Boot benchmark: N boots each way, medians of guest ready-time and wall time, plus the
//! size of every artifact compressed and not.

use std::fs::File;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use qemu_tests::{Artifacts, Vm, VmBuilder};
use serde_json::json;

/// One boot's figures.
struct Sample {
    started_ms: u64,
    ready_ms: u64,
    wall: Duration,
}

fn number_after(line: &str, marker: &str) -> Option<u64> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn boot_once(a: &Artifacts, disk: bool, dir: &tempfile::TempDir) -> Result<Sample> {
    let image = if disk {
        let copy = dir.path().join("bench.img");
        std::fs::copy(&a.disk, &copy)?;
        Some(copy)
    } else {
        None
    };
    let mut vm: Vm = VmBuilder::from_artifacts(a, image).spawn()?;
    let ready = vm.wait_for("fluxnode: ready in", Duration::from_secs(120))?;
    let wall = vm.elapsed();
    let started = vm.wait_for("fluxnode: init started at", Duration::from_secs(1))?;
    let _ = vm.qmp().and_then(|q| Ok(q.execute("quit", json!({}))?));
    Ok(Sample {
        started_ms: number_after(&started, "init started at")
            .ok_or_else(|| anyhow!("bad line {started:?}"))?,
        ready_ms: number_after(&ready, "ready in").ok_or_else(|| anyhow!("bad line {ready:?}"))?,
        wall,
    })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

fn sizes(a: &Artifacts) -> Result<()> {
    let kib = |n: u64| format!("{:.1} KiB", n as f64 / 1024.0);
    let vmlinux: u64 = std::fs::read_to_string(a.dir.join("vmlinux.size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let initrd_raw = zstd_len(&a.initrd)?;
    let disk_zst = {
        let f = File::open(&a.disk)?;
        let mut counter = Counter(0);
        zstd_encode(f, &mut counter)?;
        counter.0
    };
    let esp_files = image::disk::DiskSpec::new(&a.uki, image::VERSION).esp_files()?;
    let payload: u64 = esp_files.iter().map(|(_, data)| data.len() as u64).sum();
    println!("sizes:");
    println!(
        "  bzImage     {:>12} compressed   {:>12} vmlinux",
        kib(len(&a.kernel)),
        kib(vmlinux)
    );
    println!(
        "  initramfs   {:>12} zstd         {:>12} cpio",
        kib(len(&a.initrd)),
        kib(initrd_raw)
    );
    println!("  UKI         {:>12}", kib(len(&a.uki)));
    println!(
        "  disk        {:>12} image        {:>12} allocated  {:>12} zstd -10",
        kib(len(&a.disk)),
        kib(allocated(&a.disk)),
        kib(disk_zst)
    );
    println!(
        "  ESP payload {:>12} in {} files (target: under 16 MiB)",
        kib(payload),
        esp_files.len()
    );
    Ok(())
}

struct Counter(u64);
impl std::io::Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn zstd_encode(input: File, out: &mut Counter) -> Result<()> {
    let mut enc = image::rootfs::zstd_writer(out, 10)?;
    std::io::copy(&mut std::io::BufReader::new(input), &mut enc)?;
    enc.finish()?;
    Ok(())
}

fn zstd_len(path: &std::path::Path) -> Result<u64> {
    let mut counter = Counter(0);
    let f = File::open(path).with_context(|| path.display().to_string())?;
    image::rootfs::zstd_decode(f, &mut counter)?;
    Ok(counter.0)
}

pub fn run(runs: usize) -> Result<()> {
    let a = Artifacts::locate().map_err(anyhow::Error::msg)?;
    let runs = runs.max(1);
    let dir = tempfile::tempdir()?;
    for (name, disk) in [("direct", false), ("ovmf", true)] {
        let mut samples = Vec::new();
        for i in 0..runs {
            let s = boot_once(&a, disk, &dir).with_context(|| format!("{name} boot {}", i + 1))?;
            eprintln!(
                "{name} boot {}: init started at {} ms, ready at {} ms, wall {:.2} s",
                i + 1,
                s.started_ms,
                s.ready_ms,
                s.wall.as_secs_f64()
            );
            samples.push(s);
        }
        let ready = median(samples.iter().map(|s| s.ready_ms).collect());
        let init_to_ready = median(samples.iter().map(|s| s.ready_ms - s.started_ms).collect());
        let wall = median(samples.iter().map(|s| s.wall).collect());
        println!(
            "{name:<7} median of {runs}: ready at {ready} ms guest uptime, {init_to_ready} ms after init started, {:.2} s wall",
            wall.as_secs_f64()
        );
    }
    sizes(&a)
}
