//! RAM: total from /proc/meminfo, and bandwidth the STREAM way: copy (a = b) and triad
//! (a = b + s*c) over arrays far larger than the caches, split across all threads, best of
//! several passes. Copy moves 16 bytes per element, triad 24.

use std::time::Instant;

/// MemTotal from /proc/meminfo text, in bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// This machine's RAM in bytes.
pub fn total_bytes() -> Option<u64> {
    parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// STREAM figures in GB/s (10^9 bytes per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bandwidth {
    pub copy_gbs: f64,
    pub triad_gbs: f64,
}

const PASSES: usize = 5;

fn best_pass(threads: usize, len: usize, triad: bool) -> f64 {
    let chunk = len.div_ceil(threads);
    let mut a = vec![0.0f64; len];
    let b = vec![1.5f64; len];
    let c = vec![2.5f64; len];
    let mut best = f64::MAX;
    for _ in 0..PASSES {
        let started = Instant::now();
        std::thread::scope(|s| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                s.spawn(move || {
                    if triad {
                        for i in 0..a.len() {
                            a[i] = b[i] + 3.0 * c[i];
                        }
                    } else {
                        a.copy_from_slice(b);
                    }
                });
            }
        });
        best = best.min(started.elapsed().as_secs_f64());
        std::hint::black_box(&a);
    }
    let bytes = if triad { 24 } else { 16 } * len;
    bytes as f64 / best / 1e9
}

/// Measures copy and triad with arrays of `bytes` each, on `threads` threads.
pub fn bandwidth(bytes: usize, threads: usize) -> Bandwidth {
    let len = (bytes / 8).max(1024);
    let threads = threads.max(1);
    Bandwidth {
        copy_gbs: best_pass(threads, len, false),
        triad_gbs: best_pass(threads, len, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24567000 kB\nMemFree:        20000000 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24_567_000 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn bandwidth_is_measured_and_positive() {
        let b = bandwidth(8 << 20, 2);
        assert!(b.copy_gbs > 0.1 && b.triad_gbs > 0.1, "{b:?}");
    }
}
