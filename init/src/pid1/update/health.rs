//! Whether a version on trial has proved itself: every boot phase done, no service in a
//! crash loop, the chain service running where the node has one, the control socket
//! answering, all for the configured window (2 minutes by default). A pure judgement over
//! what PID1 knows, so each rule is unit-tested.

use std::time::Duration;

/// Restarts of one service within the window that count as a crash loop.
pub const CRASH_LOOP: u32 = 3;
/// How long past the window a node may take to get its chain and socket up.
pub const GRACE: Duration = Duration::from_secs(300);

/// One supervised service as health sees it.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub running: bool,
    pub restarts: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub elapsed: Duration,
    pub window: Duration,
    pub failed_phases: Vec<String>,
    pub services: Vec<Service>,
    /// The node runs a chain service, so it must be up.
    pub chain_expected: bool,
    pub control_answers: bool,
    /// The test hook `fluxnode.test.fail_health`.
    pub fail_on_purpose: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Wait,
    Healthy,
    Unhealthy(String),
}

pub fn judge(i: &Inputs) -> Verdict {
    if i.fail_on_purpose {
        return Verdict::Unhealthy("fluxnode.test.fail_health is set".into());
    }
    if let Some(p) = i.failed_phases.first() {
        return Verdict::Unhealthy(format!("boot phase {p} failed"));
    }
    if let Some(s) = i.services.iter().find(|s| s.restarts >= CRASH_LOOP) {
        return Verdict::Unhealthy(format!(
            "service {} is crash-looping ({} restarts)",
            s.name, s.restarts
        ));
    }
    if i.elapsed < i.window {
        return Verdict::Wait;
    }
    let chain_up = i.services.iter().any(|s| s.name == "chain" && s.running);
    let missing = if i.chain_expected && !chain_up {
        Some("the chain service is not running")
    } else if !i.control_answers {
        Some("the control socket does not answer")
    } else {
        None
    };
    match missing {
        None => Verdict::Healthy,
        Some(why) if i.elapsed >= i.window + GRACE => Verdict::Unhealthy(why.into()),
        Some(_) => Verdict::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy_at(secs: u64) -> Inputs {
        Inputs {
            elapsed: Duration::from_secs(secs),
            window: Duration::from_secs(120),
            services: vec![Service {
                name: "chain".into(),
                running: true,
                restarts: 1,
            }],
            chain_expected: true,
            control_answers: true,
            ..Inputs::default()
        }
    }

    #[test]
    fn a_clean_node_is_healthy_only_after_the_window() {
        assert_eq!(judge(&healthy_at(119)), Verdict::Wait);
        assert_eq!(judge(&healthy_at(120)), Verdict::Healthy);
    }

    #[test]
    fn failures_are_judged_at_once_with_their_reason() {
        let mut i = healthy_at(5);
        i.services[0].restarts = CRASH_LOOP;
        assert_eq!(
            judge(&i),
            Verdict::Unhealthy("service chain is crash-looping (3 restarts)".into())
        );
        let mut i = healthy_at(5);
        i.failed_phases = vec!["storage".into()];
        assert_eq!(
            judge(&i),
            Verdict::Unhealthy("boot phase storage failed".into())
        );
        let mut i = healthy_at(500);
        i.fail_on_purpose = true;
        assert!(matches!(judge(&i), Verdict::Unhealthy(w) if w.contains("fail_health")));
    }

    #[test]
    fn a_missing_chain_or_socket_gets_a_grace_period_then_fails() {
        let mut i = healthy_at(200);
        i.services[0].running = false;
        assert_eq!(judge(&i), Verdict::Wait);
        i.elapsed = Duration::from_secs(120) + GRACE;
        assert_eq!(
            judge(&i),
            Verdict::Unhealthy("the chain service is not running".into())
        );
        let mut i = healthy_at(120 + GRACE.as_secs());
        i.control_answers = false;
        assert!(matches!(judge(&i), Verdict::Unhealthy(w) if w.contains("control socket")));
        let mut i = healthy_at(121);
        i.chain_expected = false;
        i.services.clear();
        assert_eq!(judge(&i), Verdict::Healthy, "no chain on this node");
    }
}
