//! What `ctl status` answers, built from the boot's state as the typed
//! `runtime::control::replies::Status`; and the histogram of PID1's loop turns that it
//! carries (how long the work between two waits took: the loop must never be slow).

use std::time::Duration;

use runtime::control::replies::{LoopTurns, NetAddress, PhaseTime, Status, Storage};

use super::{reaper, uptime, Boot, DataState};

/// Upper bounds of the histogram's buckets, in ms (the last is open).
const BOUNDS_MS: [u64; 7] = [1, 5, 10, 50, 100, 500, u64::MAX];

/// A turn this long is named on the console with the part that took most of it.
const SLOW_TURN: Duration = Duration::from_millis(250);

/// Counts loop turns by duration.
#[derive(Debug, Clone, Default)]
pub struct TurnClock {
    counts: [u64; BOUNDS_MS.len()],
    max: Duration,
    /// The slowest part of the turn going on.
    slowest: Option<(&'static str, Duration)>,
}

impl TurnClock {
    /// Notes how long a part of the current turn took.
    pub fn part(&mut self, what: &'static str, took: Duration) {
        if self.slowest.is_none_or(|(_, d)| took > d) {
            self.slowest = Some((what, took));
        }
    }

    /// Counts a whole turn; a slow one is logged with its slowest part.
    pub fn record(&mut self, took: Duration) {
        if let Some((what, part)) = self.slowest.take() {
            if took >= SLOW_TURN {
                tracing::warn!(
                    "loop: a turn took {} ms, {} ms of it in {what}",
                    took.as_millis(),
                    part.as_millis()
                );
            }
        }
        let ms = took.as_millis() as u64;
        let i = BOUNDS_MS
            .iter()
            .position(|b| ms < *b)
            .unwrap_or(BOUNDS_MS.len() - 1);
        self.counts[i] += 1;
        self.max = self.max.max(took);
    }

    pub fn turns(&self) -> LoopTurns {
        LoopTurns {
            turns: self.counts.iter().sum(),
            max_us: self.max.as_micros() as u64,
            buckets: BOUNDS_MS.iter().copied().zip(self.counts).collect(),
        }
    }
}

pub fn status(boot: &Boot, orphans_reaped: u64, turns: &TurnClock) -> Status {
    let storage = match &boot.data {
        DataState::Mounted { device } => Storage::Mounted {
            device: device.clone(),
            mountpoint: "/data".into(),
        },
        DataState::Degraded(reason) => Storage::Degraded {
            reason: reason.clone(),
        },
        DataState::NotYet => Storage::NotYet,
    };
    Status {
        uptime_ms: uptime::ms() as u64,
        phases: boot
            .phases
            .iter()
            .map(|(n, ms)| PhaseTime {
                name: (*n).to_owned(),
                ms: *ms as u64,
            })
            .collect(),
        services: boot.supervisor.status(),
        net: crate::net::ipv4_addresses()
            .into_iter()
            .map(|(link, address)| NetAddress { link, address })
            .collect(),
        net_config: boot.net.clone(),
        storage,
        watchdog: boot.watchdog.as_ref().map(|w| w.timeout().as_secs()),
        orphans_reaped,
        zombies: reaper::count_zombies() as u64,
        hostname: boot.config.hostname.clone(),
        update: boot.updates.status(),
        loop_turns: turns.turns(),
        apps_held: boot.apps.held().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_fall_in_their_buckets_and_the_longest_is_kept() {
        let mut c = TurnClock::default();
        for us in [200, 900, 3_000, 7_000, 60_000, 2_000_000] {
            c.record(Duration::from_micros(us));
        }
        let t = c.turns();
        assert_eq!(t.turns, 6);
        assert_eq!(t.max_us, 2_000_000);
        let counts: Vec<u64> = t.buckets.iter().map(|b| b.1).collect();
        assert_eq!(counts, [2, 1, 1, 0, 1, 0, 1]);
    }
}
