//! Misbehaviour scores of peers, by IP address. Each offence adds points; points decay over
//! time; a peer whose points reach the threshold (or that is on another chain) is banned for
//! a while, with the offence that tipped it over kept as the reason for logs. Time is passed
//! in, so tests need no sleeping. The table is bounded: when full, the peer scored longest
//! ago that is not banned makes room.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// A frame that does not decode, or a protocol violation.
    Garbage,
    /// A frame over the size limit.
    Oversized,
    /// Another chain id or genesis hash: banned at once.
    WrongChain,
    /// A block or transaction whose signature does not verify.
    BadSignature,
    /// A block whose time is too far ahead.
    FutureBlock,
    /// A block that breaks the chain's rules.
    InvalidBlock,
    /// Data nobody asked for.
    Unrequested,
    /// A height or blocks advertised and then not delivered when asked for.
    Undelivered,
    /// More messages per second than the limit.
    Flood,
}

impl Misbehaviour {
    pub fn points(self) -> u32 {
        match self {
            Misbehaviour::Garbage => 20,
            Misbehaviour::Oversized => 50,
            Misbehaviour::WrongChain => 100,
            Misbehaviour::BadSignature => 100,
            Misbehaviour::FutureBlock => 10,
            Misbehaviour::InvalidBlock => 50,
            Misbehaviour::Unrequested => 10,
            Misbehaviour::Undelivered => 10,
            Misbehaviour::Flood => 25,
        }
    }

    /// Whether one offence bans whatever the threshold.
    pub fn bans_at_once(self) -> bool {
        self == Misbehaviour::WrongChain
    }
}

#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// Points at which a peer is banned.
    pub threshold: u32,
    pub ban_for: Duration,
    /// One point decays per this much time.
    pub decay_every: Duration,
    /// The most peers the table tracks.
    pub max_entries: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            threshold: 100,
            ban_for: Duration::from_secs(600),
            decay_every: Duration::from_secs(10),
            max_entries: 4096,
        }
    }
}

/// A ban just imposed. Displays as `peer 127.0.0.1:40112 banned for 10 min: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub peer: SocketAddr,
    pub until: Instant,
    pub duration: Duration,
    pub reason: String,
}

impl fmt::Display for Ban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer {} banned for {}: {}",
            self.peer,
            human(self.duration),
            self.reason
        )
    }
}

/// A duration as people write it: `10 min`, `2 h`, `30 s`, `250 ms`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return format!("{} ms", d.as_millis());
    }
    match (s % 3600, s % 60) {
        (0, _) => format!("{} h", s / 3600),
        (_, 0) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

#[derive(Debug)]
struct Entry {
    points: u32,
    /// When points last decayed.
    decayed: Instant,
    /// When the peer last offended.
    touched: Instant,
    ban: Option<(Instant, String)>,
}

impl Entry {
    fn banned(&self, now: Instant) -> bool {
        self.ban.as_ref().is_some_and(|(until, _)| *until > now)
    }

    fn decay(&mut self, now: Instant, every: Duration) {
        let every = every.max(Duration::from_millis(1));
        let steps = now.saturating_duration_since(self.decayed).as_nanos() / every.as_nanos();
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        self.points = self.points.saturating_sub(steps);
        if self.points == 0 {
            self.decayed = now;
        } else {
            self.decayed += every * steps;
        }
    }
}

#[derive(Debug, Default)]
pub struct Scores {
    cfg: ScoreConfig,
    entries: HashMap<IpAddr, Entry>,
}

impl Scores {
    pub fn new(cfg: ScoreConfig) -> Self {
        Scores {
            cfg,
            entries: HashMap::new(),
        }
    }

    /// Scores an offence of `peer`, described by `reason` (kept as the ban's reason).
    /// Returns the ban when this offence imposes one.
    pub fn record(
        &mut self,
        peer: SocketAddr,
        kind: Misbehaviour,
        reason: impl Into<String>,
        now: Instant,
    ) -> Option<Ban> {
        let ip = peer.ip();
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.cfg.max_entries {
            self.evict(now);
        }
        let e = self.entries.entry(ip).or_insert(Entry {
            points: 0,
            decayed: now,
            touched: now,
            ban: None,
        });
        if e.banned(now) {
            return None;
        }
        if e.ban.take().is_some() {
            e.points = 0;
            e.decayed = now;
        }
        e.decay(now, self.cfg.decay_every);
        e.points = e.points.saturating_add(kind.points());
        e.touched = now;
        if e.points < self.cfg.threshold && !kind.bans_at_once() {
            return None;
        }
        let reason = reason.into();
        let until = now + self.cfg.ban_for;
        e.points = 0;
        e.ban = Some((until, reason.clone()));
        Some(Ban {
            peer,
            until,
            duration: self.cfg.ban_for,
            reason,
        })
    }

    pub fn is_banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.entries.get(&ip).is_some_and(|e| e.banned(now))
    }

    /// Why `ip` is banned, while it is.
    pub fn ban_reason(&self, ip: IpAddr, now: Instant) -> Option<&str> {
        let e = self.entries.get(&ip).filter(|e| e.banned(now))?;
        e.ban.as_ref().map(|(_, r)| r.as_str())
    }

    /// The points `ip` has now (0 while banned).
    pub fn points(&self, ip: IpAddr, now: Instant) -> u32 {
        let Some(e) = self.entries.get(&ip) else {
            return 0;
        };
        let mut e = Entry { ban: None, ..*e };
        e.decay(now, self.cfg.decay_every);
        e.points
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets peers that are neither banned nor have points left.
    pub fn prune(&mut self, now: Instant) {
        let every = self.cfg.decay_every;
        self.entries.retain(|_, e| {
            e.decay(now, every);
            e.banned(now) || e.points > 0
        });
    }

    /// Makes room for one entry: the peer offending longest ago that is not banned, or if
    /// all are, the one whose ban ends first.
    fn evict(&mut self, now: Instant) {
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| !e.banned(now))
            .min_by_key(|(_, e)| e.touched)
            .or_else(|| {
                self.entries
                    .iter()
                    .min_by_key(|(_, e)| e.ban.as_ref().map(|(u, _)| *u))
            })
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            self.entries.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], port))
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn points_add_up_to_a_ban_that_expires() {
        let mut s = Scores::default();
        let t0 = Instant::now();
        let p = peer(1, 40112);
        assert!(s
            .record(
                p,
                Misbehaviour::InvalidBlock,
                "invalid block at height 811",
                t0
            )
            .is_none());
        assert_eq!(s.points(p.ip(), t0), 50);
        assert!(!s.is_banned(p.ip(), t0));
        let ban = s
            .record(
                p,
                Misbehaviour::InvalidBlock,
                "invalid block signature at height 812",
                t0,
            )
            .expect("100 points ban");
        assert_eq!(
            ban.to_string(),
            "peer 127.0.0.1:40112 banned for 10 min: invalid block signature at height 812"
        );
        // The ban is by IP: another port of the same host is banned too.
        assert!(s.is_banned(peer(1, 5000).ip(), t0));
        assert!(!s.is_banned(peer(2, 40112).ip(), t0));
        assert_eq!(
            s.ban_reason(p.ip(), t0 + 9 * MIN),
            Some("invalid block signature at height 812")
        );
        assert!(s.is_banned(p.ip(), t0 + 10 * MIN - Duration::from_secs(1)));
        assert!(s
            .record(p, Misbehaviour::Garbage, "more while banned", t0 + MIN)
            .is_none());
        assert!(!s.is_banned(p.ip(), t0 + 10 * MIN));
        assert_eq!(s.ban_reason(p.ip(), t0 + 10 * MIN), None);
        // After the ban the peer starts again from nothing.
        let t1 = t0 + 11 * MIN;
        assert!(s.record(p, Misbehaviour::Garbage, "garbage", t1).is_none());
        assert_eq!(s.points(p.ip(), t1), 20);
    }

    #[test]
    fn another_chain_bans_at_once_whatever_the_threshold() {
        let mut s = Scores::new(ScoreConfig {
            threshold: 1000,
            ban_for: Duration::from_secs(90),
            ..ScoreConfig::default()
        });
        let t0 = Instant::now();
        let ban = s
            .record(peer(3, 1), Misbehaviour::WrongChain, "genesis differs", t0)
            .unwrap();
        assert_eq!(
            ban.to_string(),
            "peer 127.0.0.3:1 banned for 90 s: genesis differs"
        );
        assert_eq!(ban.until, t0 + Duration::from_secs(90));
    }

    #[test]
    fn points_decay_over_time() {
        let mut s = Scores::default();
        let t0 = Instant::now();
        let p = peer(1, 1);
        s.record(p, Misbehaviour::Oversized, "big", t0);
        s.record(p, Misbehaviour::Garbage, "junk", t0);
        assert_eq!(s.points(p.ip(), t0), 70);
        assert_eq!(s.points(p.ip(), t0 + Duration::from_secs(95)), 61);
        // 61 points left, 25 more stay under 100; without decay it would have banned.
        assert!(s
            .record(
                p,
                Misbehaviour::Flood,
                "flood",
                t0 + Duration::from_secs(95)
            )
            .is_none());
        assert_eq!(s.points(p.ip(), t0 + Duration::from_secs(100)), 85);
        assert_eq!(s.points(p.ip(), t0 + 30 * MIN), 0);
        s.prune(t0 + 30 * MIN);
        assert!(s.is_empty());
    }

    #[test]
    fn the_table_is_bounded_and_keeps_bans() {
        let mut s = Scores::new(ScoreConfig {
            max_entries: 3,
            ..ScoreConfig::default()
        });
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_secs(n);
        s.record(peer(1, 1), Misbehaviour::WrongChain, "other chain", at(0));
        s.record(peer(2, 1), Misbehaviour::Garbage, "junk", at(1));
        s.record(peer(3, 1), Misbehaviour::Garbage, "junk", at(2));
        s.record(peer(4, 1), Misbehaviour::Garbage, "junk", at(3));
        assert_eq!(s.len(), 3);
        assert!(s.is_banned(peer(1, 1).ip(), at(3)), "the ban stays");
        assert_eq!(s.points(peer(2, 1).ip(), at(3)), 0, "the oldest went");
        assert_eq!(s.points(peer(3, 1).ip(), at(3)), 20);
        // All banned: the ban that ends first makes room.
        for i in 5..=7 {
            s.record(peer(i, 1), Misbehaviour::WrongChain, "x", at(i as u64));
        }
        assert_eq!(s.len(), 3);
        assert!(!s.is_banned(peer(1, 1).ip(), at(8)));
        assert!((5..=7).all(|i| s.is_banned(peer(i, 1).ip(), at(8))));
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(600)), "10 min");
        assert_eq!(human(Duration::from_secs(7200)), "2 h");
        assert_eq!(human(Duration::from_secs(45)), "45 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }
}
