//! A token bucket: `rate` tokens a second, at most `burst` saved up. It limits how many
//! messages a peer may send (`conn`) and how much store work its requests may cost us
//! (`node::peer`, serving headers and blocks).

use std::time::Instant;

#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Bucket {
            rate: rate.into(),
            burst: burst.max(1).into(),
            tokens: burst.max(1).into(),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_up_to(1, now) == 1
    }

    /// Takes up to `n` tokens; returns how many it took.
    pub fn take_up_to(&mut self, n: u32, now: Instant) -> u32 {
        self.refill(now);
        let got = (self.tokens.floor() as u32).min(n);
        self.tokens -= f64::from(got);
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate_and_partial_grants() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100, 50, t0);
        assert_eq!(b.take_up_to(80, t0), 50, "the burst only");
        assert!(!b.take(t0));
        assert_eq!(b.take_up_to(80, t0 + Duration::from_millis(100)), 10);
        assert_eq!(
            b.take_up_to(1000, t0 + Duration::from_secs(10)),
            50,
            "capped"
        );
    }
}
