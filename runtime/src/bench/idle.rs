//! The idle check: a busy machine gives low figures, so before measuring we sample the load
//! average and the CPU use over half a second, and say so (and wait) when it is busy.

use std::time::Duration;

/// CPU times from the `cpu` line of /proc/stat: (busy, total) jiffies.
pub fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The one-minute load average from /proc/loadavg text.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// What the sample saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub load1: f64,
    pub cpu_busy: f64,
}

impl Sample {
    /// Busy when more than 15% of the CPU is in use now, or the one-minute load average is
    /// above the thread count (the average lags, so it only counts when it is that high).
    pub fn busy(&self, threads: usize) -> bool {
        self.cpu_busy > 0.15 || self.load1 > threads as f64
    }
}

/// Samples load and CPU use over `window`.
pub fn sample(window: Duration) -> Option<Sample> {
    let read = || parse_stat(&std::fs::read_to_string("/proc/stat").ok()?);
    let (b0, t0) = read()?;
    std::thread::sleep(window);
    let (b1, t1) = read()?;
    let load1 = parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)?;
    let cpu_busy = if t1 > t0 {
        (b1 - b0) as f64 / (t1 - t0) as f64
    } else {
        0.0
    };
    Some(Sample { load1, cpu_busy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_loadavg_parse() {
        let stat = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\n";
        assert_eq!(parse_stat(stat), Some((200, 1000)));
        assert_eq!(parse_loadavg("0.52 0.40 0.30 1/123 4567\n"), Some(0.52));
    }

    #[test]
    fn busy_means_cpu_in_use_or_a_high_load() {
        assert!(!Sample {
            load1: 0.1,
            cpu_busy: 0.02
        }
        .busy(2));
        assert!(Sample {
            load1: 0.1,
            cpu_busy: 0.5
        }
        .busy(2));
        let lagging = Sample {
            load1: 1.5,
            cpu_busy: 0.0,
        };
        assert!(!lagging.busy(2), "a lagging average alone is not busy");
        assert!(Sample {
            load1: 2.5,
            cpu_busy: 0.0
        }
        .busy(2));
    }
}
