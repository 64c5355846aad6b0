//! Power cuts (QMP `quit`: the guest's unwritten caches are gone, as when the power
//! fails) at random moments on a node left alone: a devnet node cut in its first seconds
//! and in its first minute, several times each, starts its chain at every boot, keeps
//! every block it served, keeps a token that authorises sends, and goes on producing; an
//! app cut during its first start comes back from the desired state.
//!
//! The instants are pseudo-random from a seed printed at the start, so a failure can be
//! replayed with `FLUXNODE_CUT_SEED=<seed>`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qemu_tests::appnode::AppNode;
use qemu_tests::{disk, ports, rpc, Artifacts, Vm, VmBuilder};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(120);
/// Where the devnet's transfers go (no key: only its balance is read).
const PAYEE: &str = "fx00000000000000000000000000000000000000c7";

/// A small pseudo-random sequence (an LCG) from a printed seed.
struct Lcg(u64);

impl Lcg {
    fn from_env_or_clock(test: &str) -> Self {
        let seed = std::env::var("FLUXNODE_CUT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: FLUXNODE_CUT_SEED={seed}");
        Lcg(seed)
    }

    /// A duration in `[from, to)`.
    fn between(&mut self, from: Duration, to: Duration) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let span = (to - from).as_millis() as u64;
        from + Duration::from_millis((self.0 >> 33) % span.max(1))
    }
}

/// Cuts the power: QEMU quits at once, whatever the guest had not written is lost.
fn cut(vm: &mut Vm) {
    let _ = vm.qmp().map(|q| q.execute("quit", json!({})));
    vm.wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn expect(vm: &mut Vm, needle: &str) -> String {
    vm.wait_for(needle, BOOT).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the host's `fluxnode` (the binary the image was built around); Ok(stdout) or
/// Err(stderr).
fn fluxnode(a: &Artifacts, args: &[&str]) -> Result<String, String> {
    let out = Command::new(&a.init).args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The devnet node: its disk, the wallet its genesis funds (made here and put on the disk
/// before the first boot, so the test can sign with it), and the RPC port.
struct Devnet {
    a: Artifacts,
    dir: tempfile::TempDir,
    img: PathBuf,
    wallet: PathBuf,
    port: u16,
}

impl Devnet {
    fn new() -> Self {
        let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let img = disk::copy_image(&a, dir.path(), None);
        let wallet = dir.path().join("wallet.key");
        let w = wallet.display().to_string();
        fluxnode(&a, &["wallet", "new", "--wallet", &w]).unwrap_or_else(|e| panic!("{e}"));
        disk::put_host_files(&img, &["/keys"], &[(&wallet, "/keys/wallet.key")]);
        let port = ports::free_ports(1).unwrap()[0];
        Devnet {
            a,
            dir,
            img,
            wallet,
            port,
        }
    }

    fn boot(&self) -> Vm {
        VmBuilder::from_artifacts(&self.a, None)
            .data_disk(&self.img)
            .cmdline_extra("fluxnode.bench.enabled=false fluxnode.chain.devnet=true fluxnode.chain.rpc_listen=0.0.0.0:16124")
            .forward(self.port, 16124)
            .spawn()
            .unwrap()
    }

    /// The API token the next boot will find, read from a journal-replayed copy.
    fn token_on_disk(&self) -> String {
        let copy = self.dir.path().join("replayed.img");
        disk::replayed_copy(&self.img, &copy);
        let t = disk::read_fs_file(&copy, "/chain/api.token");
        let _ = std::fs::remove_file(&copy);
        t.trim().to_owned()
    }

    /// A transfer of 1 coin to [`PAYEE`] sent with `token`.
    fn send(&self, token: &str) -> Result<String, String> {
        let rpc = format!("127.0.0.1:{}", self.port);
        let w = self.wallet.display().to_string();
        let args = [
            "tx", "transfer", PAYEE, "1", "--wallet", &w, "--rpc", &rpc, "--token", token,
        ];
        fluxnode(&self.a, &args)
    }

    fn payee_coins(&self) -> Option<String> {
        rpc::result(self.port, "getbalance", json!([PAYEE]))?["coins"]
            .as_str()
            .map(str::to_owned)
    }
}

/// What the test saw over RPC: every block hash by height.
#[derive(Default)]
struct Seen {
    blocks: BTreeMap<u64, String>,
}

impl Seen {
    fn top(&self) -> u64 {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }

    /// Reads the node's blocks above what was seen; with `recheck`, first checks that
    /// every block seen before (in an earlier boot) is still there with the same hash.
    /// False when the node does not answer.
    fn update(&mut self, port: u16, vm: &Vm, recheck: bool) -> bool {
        let Some(count) = rpc::block_count(port) else {
            return false;
        };
        if recheck {
            if let Some((h, hash)) = self.blocks.range(count + 1..).next() {
                panic!(
                    "block {h} ({hash}) was seen before a power cut and is gone: the node is at {count}\n{}",
                    vm.tail(30)
                );
            }
            for (h, hash) in &self.blocks {
                let now = rpc::block_hash(port, *h);
                assert_eq!(
                    now.as_ref(),
                    Some(hash),
                    "block {h} after a power cut\n{}",
                    vm.tail(40)
                );
            }
        }
        for h in self.top() + 1..=count {
            if let Some(hash) = rpc::block_hash(port, h) {
                self.blocks.insert(h, hash);
            }
        }
        true
    }
}

/// The checks of one boot: the chain started and never failed, and when `token` is
/// known (from the disk after the last cut) it authorises a send and a wrong one does not.
fn watch_until(
    n: &Devnet,
    vm: &mut Vm,
    seen: &mut Seen,
    token: Option<&str>,
    cut_at: Instant,
) -> bool {
    let mut answered = false;
    let mut sent = false;
    while Instant::now() < cut_at {
        if seen.update(n.port, vm, !answered) {
            answered = true;
            if let (Some(t), false) = (token, sent) {
                n.send(t)
                    .unwrap_or_else(|e| panic!("the token on disk was refused: {e}"));
                let wrong = n.send("0000000000000000wrong").unwrap_err();
                assert!(wrong.contains("code -32001"), "{wrong}");
                sent = true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = vm.serial_log();
    assert!(
        !log.contains("service chain exited"),
        "the chain failed after a power cut:\n{}",
        vm.tail(40)
    );
    answered
}

#[test]
fn a_devnet_node_cut_at_random_moments_keeps_its_blocks_and_token_and_goes_on() {
    let mut rng = Lcg::from_env_or_clock("devnet cuts");
    let n = Devnet::new();
    let mut seen = Seen::default();
    let mut token: Option<String> = None;
    let windows = [
        (Duration::ZERO, Duration::from_secs(6)),
        (Duration::ZERO, Duration::from_secs(6)),
        (Duration::ZERO, Duration::from_secs(6)),
        (Duration::from_secs(10), Duration::from_secs(60)),
        (Duration::from_secs(10), Duration::from_secs(60)),
        (Duration::from_secs(10), Duration::from_secs(60)),
    ];
    for (i, (from, to)) in windows.into_iter().enumerate() {
        let mut vm = n.boot();
        expect(&mut vm, "service chain started");
        let after = rng.between(from, to);
        let before = seen.top();
        let answered = watch_until(
            &n,
            &mut vm,
            &mut seen,
            token.as_deref(),
            Instant::now() + after,
        );
        cut(&mut vm);
        eprintln!(
            "boot {}: cut {} ms after the chain started; blocks seen up to {}",
            i + 1,
            after.as_millis(),
            seen.top()
        );
        if from >= Duration::from_secs(10) {
            assert!(
                seen.top() > before,
                "boot {}: no new block in {} ms (still at {before})\n{}",
                i + 1,
                after.as_millis(),
                vm.tail(30)
            );
        }
        let t = n.token_on_disk();
        if answered {
            // The token is made before the node serves: once it answered, it is on disk.
            assert!(
                t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()),
                "boot {}: the API token on disk is {t:?}",
                i + 1
            );
        }
        if !t.is_empty() {
            token = Some(t);
        }
    }

    // After the last cut: everything seen is there, the token sends, a block takes it.
    let mut vm = n.boot();
    expect(&mut vm, "service chain started");
    let token = token.expect("a token on disk after six boots");
    let start = Instant::now();
    while !seen.update(n.port, &vm, true) {
        assert!(start.elapsed() < BOOT, "no RPC answer\n{}", vm.tail(30));
        std::thread::sleep(Duration::from_millis(300));
    }
    let before = n.payee_coins();
    n.send(&token)
        .unwrap_or_else(|e| panic!("the token on disk was refused: {e}"));
    let top = seen.top();
    let start = Instant::now();
    while n.payee_coins() == before || seen.top() <= top {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the transfer was not taken into a block (blocks seen up to {})\n{}",
            seen.top(),
            vm.tail(30)
        );
        seen.update(n.port, &vm, false);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!vm.serial_log().contains("service chain exited"));
}

/// The script of the app rounds: starts one app from the test image, once.
const APP_SCRIPT: &str = r#"
run web --cpu 0.25 --ram 64M --restart always -- /bin/sh -c 'echo web-started; while true; do sleep 1; done'
"#;

#[test]
fn an_app_cut_during_its_first_start_comes_back_from_the_desired_state() {
    let mut rng = Lcg::from_env_or_clock("app cuts");
    let mut rounds_saved = 0;
    for round in 1..=3 {
        let n = AppNode::new(APP_SCRIPT);
        let mut vm = n.boot_with(true, "").spawn().unwrap();
        expect(&mut vm, "apps: admitted web");
        let after = rng.between(Duration::ZERO, Duration::from_secs(5));
        std::thread::sleep(after);
        cut(&mut vm);
        let first = vm.serial_log();
        // PID1 prints this only after the desired state is on disk.
        let saved = first.contains("apps: web: importing image");
        rounds_saved += usize::from(saved);
        eprintln!(
            "round {round}: cut {} ms after admission; desired state saved: {saved}; running: {}",
            after.as_millis(),
            first.contains("apps: web-0 running")
        );

        // The next boot has no script: the app can only come from the desired state.
        let mut vm = n.boot_with(false, "").spawn().unwrap();
        expect(&mut vm, "fluxnode: ready");
        let log = vm.serial_log();
        assert!(
            !log.contains("apps: desired state"),
            "round {round}: the desired state was damaged:\n{}",
            vm.tail(30)
        );
        if saved || log.contains("apps: restoring 1 app(s)") {
            expect(&mut vm, "apps: restoring 1 app(s)");
            expect(&mut vm, "apps: web-0 running");
        }
        drop(vm);
    }
    // The cuts come 0-5 s after admission and the save takes milliseconds: a run in which
    // no cut came after it would have shown nothing.
    assert!(
        rounds_saved > 0,
        "every cut came before the desired state was saved"
    );
}
