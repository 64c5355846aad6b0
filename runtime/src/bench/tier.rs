//! The node tiers (Cumulus, Nimbus, Stratus) and the verdict: a node gets the highest tier
//! whose every line passes; each line shows the measured value, the threshold, pass or fail
//! and the margin. RAM and SSD are in GB of 10^9 bytes; EPS is all-thread EPS; DWS is the
//! O_DIRECT sequential write in MB/s.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Cumulus,
    Nimbus,
    Stratus,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Cumulus => "cumulus",
            Tier::Nimbus => "nimbus",
            Tier::Stratus => "stratus",
        }
    }
}

/// One tier's minimums and its collateral in coins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requirements {
    pub tier: Tier,
    pub collateral: u64,
    pub threads: f64,
    pub ram_gb: f64,
    pub ssd_gb: f64,
    pub eps: f64,
    pub dws_mbs: f64,
}

pub const TIERS: [Requirements; 3] = [
    Requirements {
        tier: Tier::Cumulus,
        collateral: 1_000,
        threads: 4.0,
        ram_gb: 8.0,
        ssd_gb: 220.0,
        eps: 240.0,
        dws_mbs: 180.0,
    },
    Requirements {
        tier: Tier::Nimbus,
        collateral: 12_500,
        threads: 8.0,
        ram_gb: 32.0,
        ssd_gb: 440.0,
        eps: 640.0,
        dws_mbs: 180.0,
    },
    Requirements {
        tier: Tier::Stratus,
        collateral: 40_000,
        threads: 16.0,
        ram_gb: 64.0,
        ssd_gb: 880.0,
        eps: 1520.0,
        dws_mbs: 400.0,
    },
];

/// What the verdict is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub threads: usize,
    pub ram_bytes: u64,
    pub ssd_bytes: u64,
    pub eps_all: f64,
    /// None when the filesystem refused O_DIRECT: the DWS line then fails.
    pub dws_mbs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub tier: Tier,
    pub name: String,
    pub unit: String,
    pub measured: f64,
    pub threshold: f64,
    pub pass: bool,
    /// measured - threshold (negative when failing).
    pub margin: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub tier: Option<Tier>,
    pub lines: Vec<Line>,
}

fn line(tier: Tier, name: &str, unit: &str, measured: f64, threshold: f64) -> Line {
    Line {
        tier,
        name: name.into(),
        unit: unit.into(),
        measured,
        threshold,
        pass: measured >= threshold,
        margin: measured - threshold,
    }
}

/// Every line of every tier, and the highest tier that passes whole.
pub fn verdict(m: &Measured) -> Verdict {
    let mut lines = Vec::new();
    let mut tier = None;
    for r in TIERS {
        let mine = [
            line(r.tier, "threads", "", m.threads as f64, r.threads),
            line(r.tier, "ram", "GB", m.ram_bytes as f64 / 1e9, r.ram_gb),
            line(r.tier, "ssd", "GB", m.ssd_bytes as f64 / 1e9, r.ssd_gb),
            line(r.tier, "eps", "", m.eps_all, r.eps),
            line(r.tier, "dws", "MB/s", m.dws_mbs.unwrap_or(0.0), r.dws_mbs),
        ];
        if mine.iter().all(|l| l.pass) {
            tier = Some(r.tier);
        }
        lines.extend(mine);
    }
    Verdict { tier, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exactly(r: &Requirements) -> Measured {
        Measured {
            threads: r.threads as usize,
            ram_bytes: (r.ram_gb * 1e9) as u64,
            ssd_bytes: (r.ssd_gb * 1e9) as u64,
            eps_all: r.eps,
            dws_mbs: Some(r.dws_mbs),
        }
    }

    #[test]
    fn exactly_at_each_threshold_gives_that_tier() {
        for r in &TIERS {
            assert_eq!(verdict(&exactly(r)).tier, Some(r.tier), "{r:?}");
        }
    }

    #[test]
    fn one_below_any_single_line_drops_the_tier() {
        for (i, r) in TIERS.iter().enumerate() {
            let below = if i == 0 {
                None
            } else {
                Some(TIERS[i - 1].tier)
            };
            let base = exactly(r);
            let cases = [
                Measured {
                    threads: base.threads - 1,
                    ..base
                },
                Measured {
                    ram_bytes: base.ram_bytes - 1,
                    ..base
                },
                Measured {
                    ssd_bytes: base.ssd_bytes - 1,
                    ..base
                },
                Measured {
                    eps_all: base.eps_all - 0.01,
                    ..base
                },
                Measured {
                    dws_mbs: Some(r.dws_mbs - 0.01),
                    ..base
                },
                Measured {
                    dws_mbs: None,
                    ..base
                },
            ];
            for (n, m) in cases.iter().enumerate() {
                let v = verdict(m);
                // No DWS figure fails DWS in every tier; Nimbus shares its DWS threshold with
                // Cumulus (180), so a DWS miss there also fails Cumulus.
                let expected = match n {
                    5 => None,
                    4 if r.tier == Tier::Nimbus => None,
                    _ => below,
                };
                assert_eq!(v.tier, expected, "{:?} case {n}", r.tier);
                let failing: Vec<&Line> = v
                    .lines
                    .iter()
                    .filter(|l| l.tier == r.tier && !l.pass)
                    .collect();
                assert_eq!(
                    failing.len(),
                    1,
                    "{:?} case {n}: exactly one failing line",
                    r.tier
                );
                assert!(failing[0].margin < 0.0);
            }
        }
    }

    #[test]
    fn a_small_vm_is_no_tier_with_every_line_shown() {
        let v = verdict(&Measured {
            threads: 2,
            ram_bytes: 1 << 30,
            ssd_bytes: 1 << 30,
            eps_all: 800.0,
            dws_mbs: Some(900.0),
        });
        assert_eq!(v.tier, None);
        assert_eq!(v.lines.len(), 15);
        let eps = v
            .lines
            .iter()
            .find(|l| l.tier == Tier::Cumulus && l.name == "eps")
            .unwrap();
        assert!(eps.pass && (eps.margin - 560.0).abs() < 1e-9);
    }
}
