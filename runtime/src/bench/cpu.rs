//! CPU: sysbench's `cpu` workload. One event counts the primes below `max_prime` by trial
//! division, exactly as sysbench does (c from 3, divisors from 2 up to sqrt(c)). Threads run
//! events until the time is up; an event started before the deadline completes and counts,
//! and events per second is events over the measured time, as sysbench reports it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEFAULT_MAX_PRIME: u64 = 60_000;

/// `c % l` with the 64-bit `div` instruction, as GCC compiles sysbench's
/// `unsigned long long` remainder. LLVM would otherwise test at run time whether both
/// operands fit in 32 bits and use the faster 32-bit divide (they always fit here), which
/// measured 8.5% more events per second than sysbench on the same machine.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rem64(c: u64, l: u64) -> u64 {
    let rem: u64;
    // SAFETY: `div` with rdx = 0 and l >= 2 cannot fault; it only writes rax and rdx.
    unsafe {
        std::arch::asm!(
            "div {l}",
            l = in(reg) l,
            inout("rax") c => _,
            inout("rdx") 0u64 => rem,
            options(pure, nomem, nostack)
        );
    }
    rem
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rem64(c: u64, l: u64) -> u64 {
    c % l
}

/// One sysbench cpu event: the number of primes in [3, max_prime), by sysbench's trial
/// division. The machine code follows what GCC makes of sysbench's loop (checked with
/// objdump on Debian's sysbench): the divisor 2 is a bit test, every other divisor a 64-bit
/// `div`, and the integer-to-double conversions are single `cvtsi2sd`s (exact here, as every
/// value is far below 2^63). So the two give comparable events per second.
pub fn prime_event(max_prime: u64) -> u64 {
    let mut n = 0;
    let mut c = 3u64;
    while c < max_prime {
        let t = (c as i64 as f64).sqrt();
        let mut l = 2u64;
        if 2.0 <= t && c & 1 != 0 {
            l = 3;
            while (l as i64 as f64) <= t {
                if rem64(c, l) == 0 {
                    break;
                }
                l += 1;
            }
        }
        if (l as i64 as f64) > t {
            n += 1;
        }
        c += 1;
    }
    n
}

/// Events per second on `threads` threads for about `time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuResult {
    pub threads: usize,
    pub events: u64,
    pub seconds: f64,
    pub eps: f64,
}

/// Runs the workload on `threads` threads until `time` has passed.
pub fn run(max_prime: u64, threads: usize, time: Duration) -> CpuResult {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (stop, events) = (stop.clone(), events.clone());
            std::thread::spawn(move || {
                let mut mine = 0u64;
                let mut sink = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    sink = sink.wrapping_add(std::hint::black_box(prime_event(
                        std::hint::black_box(max_prime),
                    )));
                    mine += 1;
                }
                events.fetch_add(mine, Ordering::Relaxed);
                sink
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    let events = events.load(Ordering::Relaxed);
    CpuResult {
        threads: threads.max(1),
        events,
        seconds,
        eps: events as f64 / seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_events_count_primes_from_three() {
        // 3, 5, 7: primes below 10 without 2.
        assert_eq!(prime_event(10), 3);
        assert_eq!(prime_event(100), 24);
        // pi(60000) = 6057, less the prime 2.
        assert_eq!(prime_event(DEFAULT_MAX_PRIME), 6056);
        assert_eq!(prime_event(3), 0);
    }

    #[test]
    fn events_are_counted_over_the_measured_time() {
        let r = run(10_000, 2, Duration::from_millis(300));
        assert_eq!(r.threads, 2);
        assert!(r.events > 0 && r.seconds >= 0.3, "{r:?}");
        assert!((r.eps - r.events as f64 / r.seconds).abs() < 1e-9);
    }
}
