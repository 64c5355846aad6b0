//! The app manager's transitions, without a kernel: a fake host records what the manager
//! asks of it and answers as told; time is passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;

use super::*;
use crate::spec::RestartPolicy;

#[derive(Default)]
struct Fake {
    calls: Vec<String>,
    next_pid: i32,
    /// Images not in the store yet: `prepare` starts an import.
    missing: Vec<String>,
    /// Apps whose start fails with this message.
    fail_start: HashMap<String, String>,
    /// Apps whose start panics.
    panic_start: Vec<String>,
    ooms: HashMap<String, u64>,
    capacity: Resources,
}

impl Fake {
    fn pid(&mut self) -> i32 {
        self.next_pid += 1;
        100 + self.next_pid
    }
}

impl Host for Fake {
    fn prepare(&mut self, app: &AppSpec) -> Result<Image, String> {
        if let Some(i) = self.missing.iter().position(|m| *m == app.image) {
            self.missing.remove(i);
            let pid = self.pid();
            self.calls.push(format!("import {} {pid}", app.name));
            return Ok(Image::Importing(pid));
        }
        Ok(Image::Ready(ImageInfo {
            stop_signal: if app.name == "quits" {
                Signal::SIGQUIT
            } else {
                Signal::SIGTERM
            },
            exposed_ports: vec!["80/tcp".into()],
        }))
    }
    fn disk_used(&mut self, _: &AppSpec) -> Option<u64> {
        Some(4096)
    }
    fn import_progress(&mut self, _: &AppSpec) -> Option<(u64, u64)> {
        Some((512, 1024))
    }
    fn import_error(&mut self, _: &AppSpec) -> String {
        "blob sha256:ab: digest mismatch".into()
    }
    fn start(&mut self, app: &AppSpec) -> Result<i32, String> {
        if self.panic_start.contains(&app.name) {
            panic!("libcontainer fell over");
        }
        if let Some(e) = self.fail_start.get(&app.name) {
            self.calls.push(format!("start {} failed", app.name));
            return Err(e.clone());
        }
        let pid = self.pid();
        self.calls.push(format!("start {} {pid}", app.name));
        Ok(pid)
    }
    fn signal(&mut self, app: &AppSpec, signal: Signal) -> Result<(), String> {
        self.calls.push(format!("signal {} {signal}", app.name));
        Ok(())
    }
    fn kill_all(&mut self, app: &AppSpec) -> Result<(), String> {
        self.calls.push(format!("kill_all {}", app.name));
        Ok(())
    }
    fn kill_helper(&mut self, pid: i32) {
        self.calls.push(format!("kill_helper {pid}"));
    }
    fn cleanup(&mut self, app: &AppSpec) -> Result<(), String> {
        self.calls.push(format!("cleanup {}", app.name));
        Ok(())
    }
    fn release(&mut self, app: &AppSpec) {
        self.calls.push(format!("release {}", app.name));
    }
    fn purge(&mut self, app: &AppSpec) -> Result<i32, String> {
        let pid = self.pid();
        self.calls.push(format!("purge {} {pid}", app.name));
        Ok(pid)
    }
    fn sample(&mut self, _: &AppSpec) -> Result<Sample, String> {
        Ok(Sample {
            memory_current: 1 << 20,
            ..Sample::default()
        })
    }
    fn oom_kills(&mut self, app: &AppSpec) -> u64 {
        self.ooms.get(&app.name).copied().unwrap_or(0)
    }
    fn output_tail(&mut self, app: &AppSpec, _: u64) -> String {
        format!("output of {}", app.name)
    }
    fn capacity(&mut self) -> (Resources, String) {
        (self.capacity, "test".into())
    }
}

fn spec(name: &str, restart: RestartPolicy) -> AppSpec {
    serde_json::from_value(serde_json::json!({
        "name": name, "image": format!("sha256:{}", "ab".repeat(32)),
        "cpu_millis": 500, "ram_bytes": 64 << 20, "restart": restart,
    }))
    .unwrap()
}

struct T {
    m: Manager<Fake>,
    now: Instant,
    _dir: tempfile::TempDir,
    desired: PathBuf,
}

impl T {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let desired = dir.path().join("apps/desired.json");
        let fake = Fake {
            capacity: Resources {
                cpu_millis: 4000,
                ram_bytes: 8 << 30,
                disk_bytes: 100 << 30,
            },
            ..Fake::default()
        };
        let now = Instant::now();
        T {
            m: Manager::new(Ok(fake), desired.clone(), Resources::default(), now),
            now,
            _dir: dir,
            desired,
        }
    }

    fn later(&mut self, d: Duration) -> Instant {
        self.now += d;
        self.now
    }

    fn host(&mut self) -> &mut Fake {
        self.m.host.as_mut().unwrap()
    }

    fn calls(&mut self) -> Vec<String> {
        std::mem::take(&mut self.host().calls)
    }

    fn state(&mut self, name: &str) -> AppState {
        let i = self.m.index(name).unwrap();
        self.m.apps[i].summary().state
    }

    fn pid(&mut self, name: &str) -> i32 {
        let i = self.m.index(name).unwrap();
        self.m.apps[i].summary().pid.unwrap()
    }

    fn exit(&mut self, name: &str, code: i32) -> bool {
        let pid = self.pid(name);
        let now = self.now;
        self.m
            .on_exit(pid, &WaitStatus::Exited(Pid::from_raw(pid), code), now)
    }
}

#[test]
fn a_run_is_admitted_saved_and_started() {
    let mut t = T::new();
    let s = t.m.run(spec("web", RestartPolicy::Always), t.now).unwrap();
    assert_eq!(s.state, AppState::Running);
    assert_eq!(t.m.list().apps[0].disk_used, Some(4096));
    assert_eq!(t.calls(), ["start web 101"]);
    assert_eq!(
        desired::load(&t.desired).unwrap(),
        [spec("web", RestartPolicy::Always)]
    );
    // The same spec again is the same app; another spec under the name is refused.
    assert_eq!(
        t.m.run(spec("web", RestartPolicy::Always), t.now)
            .unwrap()
            .pid,
        Some(101)
    );
    let e = t.m.run(spec("web", RestartPolicy::No), t.now).unwrap_err();
    assert!(e.contains("already exists with another spec"), "{e}");
}

#[test]
fn admission_refusals_name_the_resource_and_save_nothing() {
    let mut t = T::new();
    let mut big = spec("big", RestartPolicy::No);
    big.ram_bytes = 64 << 30;
    let e = t.m.run(big, t.now).unwrap_err();
    assert!(e.contains("ram"), "{e}");
    assert!(e.contains("capacity from test"), "{e}");
    assert!(t.m.list().apps.is_empty());
    assert!(!t.desired.exists());
    assert!(t.calls().is_empty());
}

#[test]
fn an_exit_restarts_with_growing_backoff_by_policy() {
    let mut t = T::new();
    t.m.run(spec("web", RestartPolicy::OnFailure), t.now)
        .unwrap();
    let mut delays = Vec::new();
    for _ in 0..3 {
        t.later(Duration::from_secs(2));
        assert!(t.exit("web", 1));
        assert_eq!(t.state("web"), AppState::Waiting);
        let due = t.m.next_deadline().unwrap();
        delays.push((due - t.now).as_secs());
        t.now = due;
        t.m.tick(due);
        assert_eq!(t.state("web"), AppState::Running);
    }
    assert_eq!(delays, [1, 2, 4]);
    let l = t.m.list();
    assert_eq!(l.apps[0].restarts, 3);
    assert_eq!(l.apps[0].last_exit.as_deref(), Some("exit status 1"));
    assert_eq!(l.apps[0].last_run_ms, Some(2000));
    // Success under on-failure: exited for good, cleaned up.
    t.calls();
    assert!(t.exit("web", 0));
    assert_eq!(t.state("web"), AppState::Exited);
    assert_eq!(t.calls(), ["cleanup web"]);
    assert_eq!(t.m.next_deadline(), None);
}

#[test]
fn an_oom_kill_is_reported_as_oom_and_restart_no_stays_down() {
    let mut t = T::new();
    t.m.run(spec("hog", RestartPolicy::No), t.now).unwrap();
    t.host().ooms.insert("hog".into(), 1);
    let pid = t.pid("hog");
    let now = t.later(Duration::from_secs(1));
    assert!(t.m.on_exit(
        pid,
        &WaitStatus::Signaled(Pid::from_raw(pid), Signal::SIGKILL, false),
        now
    ));
    let s = t.m.stats("hog", 5).unwrap();
    assert_eq!(s.app.state, AppState::Exited);
    assert_eq!(s.app.last_exit.as_deref(), Some("oom"));
    assert_eq!(s.output, "output of hog");
    // The sample taken at the exit is kept.
    assert_eq!(s.samples.len(), 1);
}

#[test]
fn a_stop_signals_then_kills_the_cgroup_after_the_grace_time_then_forgets() {
    let mut t = T::new();
    t.m.run(spec("stubborn", RestartPolicy::Always), t.now)
        .unwrap();
    t.calls();
    t.m.stop("stubborn", false, t.now).unwrap();
    assert_eq!(t.calls(), ["signal stubborn SIGTERM"]);
    assert_eq!(t.state("stubborn"), AppState::Stopping);
    assert!(desired::load(&t.desired).unwrap().is_empty());
    assert_eq!(t.m.next_deadline(), Some(t.now + STOP_GRACE));
    // Nothing before the grace time...
    let now = t.later(STOP_GRACE - Duration::from_millis(1));
    t.m.tick(now);
    assert!(t.calls().is_empty());
    // ...then the whole cgroup, once; never a restart.
    let now = t.later(Duration::from_millis(1));
    t.m.tick(now);
    assert_eq!(t.calls(), ["kill_all stubborn"]);
    assert!(t.exit("stubborn", 137));
    assert_eq!(t.calls(), ["cleanup stubborn", "release stubborn"]);
    assert!(t.m.list().apps.is_empty());
}

#[test]
fn a_purge_runs_in_a_helper_and_the_app_is_forgotten_when_it_ends() {
    let mut t = T::new();
    t.m.run(spec("web", RestartPolicy::Always), t.now).unwrap();
    t.calls();
    t.m.stop("web", true, t.now).unwrap();
    assert!(t.exit("web", 0));
    assert_eq!(
        t.calls(),
        ["signal web SIGTERM", "cleanup web", "purge web 102"]
    );
    assert_eq!(t.state("web"), AppState::Purging);
    assert!(t.m.stop("web", true, t.now).is_err(), "a second stop");
    let now = t.now;
    assert!(t
        .m
        .on_exit(102, &WaitStatus::Exited(Pid::from_raw(102), 0), now));
    assert!(t.m.list().apps.is_empty());
}

#[test]
fn stopping_an_app_that_is_not_running_purges_or_forgets_it_at_once() {
    let mut t = T::new();
    t.m.run(spec("once", RestartPolicy::No), t.now).unwrap();
    t.exit("once", 0);
    t.calls();
    t.m.stop("once", false, t.now).unwrap();
    assert_eq!(t.calls(), ["cleanup once", "release once"]);
    assert!(t.m.list().apps.is_empty());
    assert!(t
        .m
        .stop("once", false, t.now)
        .unwrap_err()
        .contains("no app"));
}

#[test]
fn an_image_is_imported_by_a_helper_first_and_a_failed_import_is_named() {
    let mut t = T::new();
    let s = spec("web", RestartPolicy::Always);
    t.host().missing.push(s.image.clone());
    assert_eq!(
        t.m.run(s.clone(), t.now).unwrap().state,
        AppState::Unpacking
    );
    // A second app of the same image waits for that import.
    let mut other = s.clone();
    other.name = "web2".into();
    t.m.run(other, t.now).unwrap();
    assert_eq!(t.calls(), ["import web 101"]);
    assert_eq!(t.state("web2"), AppState::Waiting);
    let l = t.m.list();
    assert_eq!(
        l.apps[0].pulled,
        Some((512, 1024)),
        "progress while it imports"
    );
    assert_eq!(l.apps[1].pulled, None);
    let now = t.now;
    assert!(t
        .m
        .on_exit(101, &WaitStatus::Exited(Pid::from_raw(101), 0), now));
    assert_eq!(t.state("web"), AppState::Running);

    let mut t = T::new();
    t.host().missing.push(s.image.clone());
    t.m.run(s, t.now).unwrap();
    let now = t.now;
    assert!(t
        .m
        .on_exit(101, &WaitStatus::Exited(Pid::from_raw(101), 1), now));
    let l = t.m.list();
    assert_eq!(l.apps[0].state, AppState::Failed);
    let e = l.apps[0].error.clone().unwrap();
    assert!(
        e.contains("digest mismatch") && e.contains("exit status 1"),
        "{e}"
    );
}

#[test]
fn a_start_that_fails_is_retried_with_backoff_and_a_panic_fails_only_that_app() {
    let mut t = T::new();
    t.host()
        .fail_start
        .insert("bad".into(), "create: timed out after 30 s".into());
    t.m.run(spec("bad", RestartPolicy::Always), t.now).unwrap();
    assert_eq!(t.state("bad"), AppState::Waiting);
    let due = t.m.next_deadline().unwrap();
    assert_eq!(due - t.now, Duration::from_secs(1));
    t.m.tick(due);
    assert_eq!(t.m.next_deadline().unwrap() - due, Duration::from_secs(2));
    assert_eq!(
        t.m.list().apps[0].last_exit.as_deref(),
        Some("start failed: create: timed out after 30 s")
    );

    let mut t = T::new();
    t.host().panic_start.push("boom".into());
    let s = t.m.run(spec("boom", RestartPolicy::No), t.now).unwrap();
    assert_eq!(s.state, AppState::Failed);
    assert!(s.error.unwrap().contains("panicked"));
    // The manager goes on with other apps.
    assert_eq!(
        t.m.run(spec("fine", RestartPolicy::No), t.now)
            .unwrap()
            .state,
        AppState::Running
    );
}

#[test]
fn restored_apps_start_one_per_tick_after_a_reboot() {
    let mut t = T::new();
    for n in ["a", "b", "c"] {
        t.m.run(spec(n, RestartPolicy::Always), t.now).unwrap();
    }
    // A new boot: a fresh manager over the same desired state.
    let fake = Fake {
        capacity: t.host().capacity,
        ..Fake::default()
    };
    let mut m = Manager::new(Ok(fake), t.desired.clone(), Resources::default(), t.now);
    m.restore(t.now);
    assert_eq!(m.list().apps.len(), 3);
    for started in 1..=3 {
        // Due now: the loop comes back at once, petting its watchdog between starts.
        assert_eq!(m.next_deadline(), Some(t.now));
        m.tick(t.now);
        let running = m
            .list()
            .apps
            .iter()
            .filter(|a| a.state == AppState::Running)
            .count();
        assert_eq!(running, started);
    }
}

#[test]
fn held_apps_are_listed_not_started_until_resumed() {
    let mut t = T::new();
    t.m.run(spec("web", RestartPolicy::Always), t.now).unwrap();
    let fake = Fake {
        capacity: t.host().capacity,
        ..Fake::default()
    };
    let mut m = Manager::new(Ok(fake), t.desired.clone(), Resources::default(), t.now);
    m.hold("the last 3 boots never reached a healthy loop".into());
    m.restore(t.now);
    m.tick(t.now);
    let l = m.list();
    assert_eq!(l.apps[0].state, AppState::Held);
    assert!(l.held.unwrap().contains("3 boots"));
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.resume(t.now).unwrap().resumed, ["web"]);
    m.tick(t.now);
    assert_eq!(m.list().apps[0].state, AppState::Running);
    assert!(m.resume(t.now).is_err());
}

#[test]
fn a_damaged_desired_list_is_set_aside_not_overwritten() {
    let mut t = T::new();
    std::fs::create_dir_all(t.desired.parent().unwrap()).unwrap();
    std::fs::write(&t.desired, b"[{\"name\": \"half").unwrap();
    t.m.restore(t.now);
    assert!(t.m.list().apps.is_empty());
    t.m.run(spec("new", RestartPolicy::No), t.now).unwrap();
    let kept: Vec<_> = std::fs::read_dir(t.desired.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("desired.json.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1);
}

#[test]
fn strangers_are_not_claimed_and_a_manager_without_runtime_refuses_with_why() {
    let mut t = T::new();
    let now = t.now;
    assert!(!t
        .m
        .on_exit(4242, &WaitStatus::Exited(Pid::from_raw(4242), 0), now));
    let mut off: Manager<Fake> = Manager::new(
        Err("/data is not mounted".into()),
        t.desired.clone(),
        Resources::default(),
        now,
    );
    let e = off.run(spec("web", RestartPolicy::No), now).unwrap_err();
    assert_eq!(e, "apps cannot run: /data is not mounted");
    assert_eq!(off.list().runtime, "/data is not mounted");
}

#[test]
fn running_apps_are_sampled_every_five_seconds() {
    let mut t = T::new();
    t.m.run(spec("web", RestartPolicy::Always), t.now).unwrap();
    assert_eq!(t.m.next_deadline(), Some(t.now + SAMPLE_EVERY));
    for _ in 0..3 {
        let now = t.later(SAMPLE_EVERY);
        t.m.tick(now);
    }
    let s = t.m.stats("web", 10).unwrap();
    // Three on schedule and one taken for the stats request itself.
    assert_eq!(s.samples.len(), 4);
    assert_eq!(t.m.list().totals.memory_current, 1 << 20);
}

#[test]
fn a_stop_uses_the_image_stop_signal_and_the_image_ports_are_shown() {
    let mut t = T::new();
    let s =
        t.m.run(spec("quits", RestartPolicy::Always), t.now)
            .unwrap();
    assert_eq!(s.exposed_ports, ["80/tcp"]);
    t.calls();
    t.m.stop("quits", false, t.now).unwrap();
    assert_eq!(t.calls(), ["signal quits SIGQUIT"]);
}

#[test]
fn a_host_port_held_by_another_app_or_the_node_is_refused_at_admission() {
    let mut t = T::new();
    let mut web = spec("web", RestartPolicy::Always);
    web.ports = vec!["8080:80".parse().unwrap()];
    t.m.run(web, t.now).unwrap();
    let mut api = spec("api", RestartPolicy::Always);
    api.ports = vec!["8080:9000".parse().unwrap()];
    let e = t.m.run(api.clone(), t.now).unwrap_err();
    assert!(e.contains("published by app web"), "{e}");
    api.ports = vec!["16124:9000".parse().unwrap()];
    let e = t.m.run(api, t.now).unwrap_err();
    assert!(e.contains("the node's own"), "{e}");
    assert_eq!(t.m.list().apps.len(), 1);
    // Once web is gone for good its port is free again.
    t.m.stop("web", false, t.now).unwrap();
    let pid_exit = t.m.apps[0].summary().pid.unwrap();
    let now = t.now;
    t.m.on_exit(
        pid_exit,
        &WaitStatus::Exited(Pid::from_raw(pid_exit), 0),
        now,
    );
    let mut again = spec("again", RestartPolicy::Always);
    again.ports = vec!["8080:80".parse().unwrap()];
    t.m.run(again, t.now).unwrap();
}
