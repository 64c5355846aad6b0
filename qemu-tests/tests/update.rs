//! Signed A/B updates with automatic rollback, checked on the image booted through OVMF
//! and systemd-boot (each VM with its own disk copy and writable VARS copy): a good update
//! is booted, committed and kept; an update that fails health is tried three times and the
//! loader falls back; bad bundles are refused without touching the ESP; and a power cut in
//! the middle of staging leaves the old version and every file on the ESP whole.
//!
//! The node is configured through /data/etc/fluxnode.toml (a UKI carries its own command
//! line), and a busybox script on /data runs as a service at every boot: it keeps marker
//! files in /data/results so that it stages once, says what it does on the console, and
//! leaves what it saw in /data/results, which the test reads from the disk afterwards.
//! Test-only kernel keys go into UKIs the test builds itself with `fluxnode-image`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu_tests::update::{self, expect_nth, BASE};
use qemu_tests::{disk, Artifacts, Vm, VmBuilder};
use serde_json::{json, Value};

/// The longest a whole test's VM may run.
const TEST: Duration = Duration::from_secs(600);
/// The longest one step (a boot, a health window, a staging) may take under TCG.
const STEP: Duration = Duration::from_secs(300);
/// The health window of a version on trial (the config's minimum is 10 s).
const HEALTH_SECS: u64 = 15;
const NEW: &str = "0.2.0";

/// The built image, with the release key pair and tool these tests need.
fn artifacts() -> Artifacts {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
    a.require_release_key().unwrap_or_else(|e| panic!("{e}"));
    a
}

fn boot(a: &Artifacts, img: &Path) -> Vm {
    VmBuilder::from_artifacts(a, Some(img.to_owned()))
        .allow_reboot()
        .timeout(TEST)
        .spawn()
        .unwrap()
}

fn powered_off(vm: &mut Vm) {
    let status = vm.wait_exit(STEP).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "qemu {status}\n{}", vm.tail(40));
}

/// What each boot said after `running version `, in order.
fn boots(vm: &Vm) -> Vec<String> {
    update::lines_with(vm, "fluxnode: running version ")
        .iter()
        .filter_map(|l| l.split("running version ").nth(1))
        .map(|s| s.trim().to_owned())
        .collect()
}

/// The `update` object of a `ctl status` the script saved.
fn update_status(img: &Path, name: &str) -> Value {
    let text = update::result(img, name);
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("/data/results/{name}: {e}: {text:?}"));
    v["update"].clone()
}

/// A 0.2.0 UKI with `test_keys` and its bundle signed by the release key.
fn new_release(a: &Artifacts, dir: &Path, name: &str, test_keys: &str) -> (PathBuf, PathBuf) {
    let uki = update::build_uki(a, dir, name, NEW, test_keys);
    let out = dir.join(format!("{name}.bundle"));
    let bundle = update::release(a, &a.release_key, NEW, &uki, &out);
    (uki, bundle)
}

/// Stages /data/u.bundle once the first boot has committed itself; on 0.2.0, saves its
/// status once it is committed and reboots, then saves it again and powers off.
const GOOD: &str = r#"
case $ver in
0.1.0)
  [ -e $R/staged ] && { say "back on 0.1.0"; exit 0; }
  settled status-0.1.0.json || say "0.1.0 did not settle"
  mark staged
  say "staging"
  $F ctl update stage /data/u.bundle
  say "stage exit=$?"
  ;;
0.2.0)
  if [ ! -e $R/rebooted ]; then
    settled status-0.2.0-trial.json || say "0.2.0 did not settle"
    mark rebooted
    say "rebooting"
    $F ctl reboot
  else
    settled status-0.2.0-again.json
    say "done"
    $F ctl shutdown
  fi
  ;;
esac
"#;

#[test]
fn a_good_update_reboots_into_the_new_version_commits_it_and_stays() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let img = disk::copy_image(&a, dir.path(), None);
    let (uki, bundle) = new_release(&a, dir.path(), "v2", "");
    let config = update::node_config(HEALTH_SECS);
    update::prepare_node(&img, dir.path(), &config, GOOD, &[(&bundle, "/u.bundle")]);

    let mut vm = boot(&a, &img);
    expect_nth(&mut vm, "update 0.1.0 committed", 1, STEP);
    expect_nth(&mut vm, "staging: writing fluxnode-0.2.0+3.efi", 1, STEP);
    let staging = Instant::now();
    // PID1's own line: the client's printout of the reply may lose the race with the reboot.
    expect_nth(&mut vm, "update staged: rebooting", 1, STEP);
    let staged = staging.elapsed();
    expect_nth(&mut vm, "running version 0.2.0", 1, STEP);
    let rebooted = staging.elapsed();
    expect_nth(&mut vm, "update 0.2.0 committed", 1, STEP);
    let committed = staging.elapsed();
    eprintln!(
        "good update: staged in {:.1} s, running 0.2.0 {:.1} s and committed {:.1} s after \
         staging began (health window {HEALTH_SECS} s, TCG)",
        staged.as_secs_f64(),
        rebooted.as_secs_f64(),
        committed.as_secs_f64()
    );
    expect_nth(&mut vm, "t.sh: done", 1, STEP);
    powered_off(&mut vm);

    let log = vm.serial_log();
    eprintln!("boots: {:?}", boots(&vm));
    eprintln!("{:?}", update::lines_with(&vm, "fluxnode: ready in"));
    assert_eq!(
        boots(&vm),
        [
            "0.1.0 from entry fluxnode-0.1.0+2-1.efi",
            "0.2.0 from entry fluxnode-0.2.0+2-1.efi",
            "0.2.0 from entry fluxnode-0.2.0.efi",
        ],
        "{}",
        vm.tail(60)
    );
    for bad in ["failed health", "rolled back", "t.sh: back on 0.1.0"] {
        assert!(!log.contains(bad), "{bad:?} on the console:\n{log}");
    }
    let status = update_status(&img, "status-0.2.0-again.json");
    assert_eq!(status["running"], json!(NEW), "{status}");
    assert_eq!(status["entry"], json!("fluxnode-0.2.0.efi"), "{status}");
    assert_eq!(status["trial"], Value::Null, "{status}");
    assert_eq!(status["last_rollback"], Value::Null, "{status}");
    let committed = status["committed"].as_array().cloned().unwrap_or_default();
    assert!(committed.contains(&json!(NEW)), "{status}");

    let entries = update::esp_entries(&img);
    assert_eq!(
        entries,
        ["fluxnode-0.1.0.efi", "fluxnode-0.2.0.efi"],
        "{entries:?}"
    );
    let on_esp = update::esp_read(&img, "/EFI/Linux/fluxnode-0.2.0.efi");
    assert!(
        on_esp == std::fs::read(&uki).unwrap(),
        "the entry is the bundle's UKI"
    );
}

/// Stages /data/u.bundle once the first boot has committed itself; on 0.2.0 does
/// nothing; back on 0.1.0 saves its status and powers off.
const ROLLBACK: &str = r#"
case $ver in
0.1.0)
  if [ ! -e $R/staged ]; then
    settled status-before.json || say "0.1.0 did not settle"
    mark staged
    say "staging"
    $F ctl update stage /data/u.bundle
    say "stage exit=$?"
  else
    settled status-after.json
    say "done"
    $F ctl shutdown
  fi
  ;;
esac
"#;

#[test]
fn an_update_that_fails_health_rolls_back_after_its_tries() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let img = disk::copy_image(&a, dir.path(), None);
    let (_, bundle) = new_release(&a, dir.path(), "v2-sick", "fluxnode.test.fail_health=1");
    let config = update::node_config(HEALTH_SECS);
    update::prepare_node(
        &img,
        dir.path(),
        &config,
        ROLLBACK,
        &[(&bundle, "/u.bundle")],
    );

    let mut vm = boot(&a, &img);
    expect_nth(&mut vm, "staging: writing fluxnode-0.2.0+3.efi", 1, STEP);
    let staged = Instant::now();
    for n in 1..=3 {
        expect_nth(&mut vm, "update 0.2.0 failed health", n, STEP);
    }
    expect_nth(&mut vm, "rolled back from 0.2.0", 1, STEP);
    eprintln!(
        "failing update: back on 0.1.0 {:.1} s after staging",
        staged.elapsed().as_secs_f64()
    );
    expect_nth(&mut vm, "t.sh: done", 1, STEP);
    powered_off(&mut vm);

    eprintln!("boots: {:?}", boots(&vm));
    assert_eq!(
        boots(&vm),
        [
            "0.1.0 from entry fluxnode-0.1.0+2-1.efi",
            "0.2.0 from entry fluxnode-0.2.0+2-1.efi",
            "0.2.0 from entry fluxnode-0.2.0+1-2.efi",
            "0.2.0 from entry fluxnode-0.2.0+0-3.efi",
            "0.1.0 from entry fluxnode-0.1.0.efi",
        ],
        "{}",
        vm.tail(60)
    );
    let log = vm.serial_log();
    assert_eq!(
        log.matches("update 0.2.0 failed health").count(),
        3,
        "{log}"
    );
    assert_eq!(log.matches("rolled back from 0.2.0").count(), 1, "{log}");
    assert!(!log.contains("update 0.2.0 committed"), "{log}");
    let status = update_status(&img, "status-after.json");
    assert_eq!(status["running"], json!(BASE), "{status}");
    assert_eq!(status["last_rollback"]["from"], json!(NEW), "{status}");
    assert_eq!(status["last_rollback"]["to"], json!(BASE), "{status}");
    let entries = update::esp_entries(&img);
    assert_eq!(
        entries,
        ["fluxnode-0.1.0.efi", "fluxnode-0.2.0+0-3.efi"],
        "{entries:?}"
    );
}

/// Tries to stage each bad bundle (without a reboot, should one pass), keeps each
/// outcome, and powers off.
const REFUSALS: &str = r#"
[ -e $R/done ] && exit 0
for n in digest signature unknown older; do
  $F ctl update stage /data/$n.bundle --no-reboot > $R/$n.out 2>&1
  echo "exit=$?" >> $R/$n.out
done
$F ctl status > $R/status.json 2>&1
mark done
say "done"
$F ctl shutdown
"#;

#[test]
fn bad_bundles_are_refused_and_the_esp_is_untouched() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = disk::copy_image(&a, d, None);
    update::commit_base_entry(&img);
    let (uki, good) = new_release(&a, d, "v2", "");
    let at = update::bundle_layout(&good);
    let mid_uki = at.uki + at.uki_len / 2;
    let digest = update::flip_byte(&good, &d.join("digest.bundle"), mid_uki);
    let signature = update::flip_byte(&good, &d.join("signature.bundle"), at.signature + 10);
    let stranger = update::keygen(&a, &d.join("stranger"));
    let unknown = update::release(&a, &stranger, NEW, &uki, &d.join("unknown.bundle"));
    let older = update::release(&a, &a.release_key, "0.0.9", &uki, &d.join("older.bundle"));
    let files = [
        (digest.as_path(), "/digest.bundle"),
        (signature.as_path(), "/signature.bundle"),
        (unknown.as_path(), "/unknown.bundle"),
        (older.as_path(), "/older.bundle"),
    ];
    let config = update::node_config(HEALTH_SECS);
    update::prepare_node(&img, d, &config, REFUSALS, &files);
    let esp_before = update::esp_bytes(&img);
    let files_before = update::esp_digests(&img);

    let mut vm = boot(&a, &img);
    expect_nth(&mut vm, "t.sh: done", 1, STEP);
    powered_off(&mut vm);

    let log = vm.serial_log();
    assert_eq!(boots(&vm), ["0.1.0 from entry fluxnode-0.1.0.efi"], "{log}");
    assert!(!log.contains("staging: writing"), "{log}");
    for (name, reason) in [
        ("digest", "digest mismatch"),
        ("signature", "bad signature"),
        ("unknown", "unknown key"),
        ("older", "not newer than the running version"),
    ] {
        let out = update::result(&img, &format!("{name}.out"));
        eprintln!("{name}.bundle: {}", out.trim());
        assert!(out.contains("exit=1"), "{name}: {out:?}");
        assert!(out.contains(reason), "{name}: {out:?}");
    }
    let esp_after = update::esp_bytes(&img);
    if esp_after != esp_before {
        let first = esp_before.iter().zip(&esp_after).position(|(x, y)| x != y);
        panic!(
            "the ESP changed (first at byte {first:?} of the partition); files before {:?}, \
             after {:?}",
            files_before,
            update::esp_digests(&img)
        );
    }
}

/// Stages /data/u.bundle (the power is cut meanwhile); at the next boot stages it again,
/// without a reboot, and powers off.
const CUT: &str = r#"
if [ ! -e $R/cut ]; then
  mark cut
  say "staging"
  $F ctl update stage /data/u.bundle
  say "stage exit=$?"
elif [ ! -e $R/restaged ]; then
  mark restaged
  $F ctl update stage /data/u.bundle --no-reboot > $R/restage.out 2>&1
  echo "exit=$?" >> $R/restage.out
  $B sync
  say "done"
  $F ctl shutdown
fi
"#;

/// The pause after each 256 KiB chunk staged in the power-cut test (set in the base UKI):
/// a 9 MiB UKI then takes about 50 s to write.
const CHUNK_DELAY_MS: u64 = 1500;
/// When the power is cut, after staging starts writing. The guest kernel writes a dirty
/// page back once it is 30 s old, so a cut after a second finds nothing of the new file on
/// the disk; at 40 s its first megabytes and its directory entry are there.
const CUT_AFTER: Duration = Duration::from_secs(40);

#[test]
fn a_power_cut_mid_staging_leaves_the_old_version_and_a_whole_esp() {
    let a = artifacts();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = format!("fluxnode.test.stage_delay_ms={CHUNK_DELAY_MS}");
    let base_uki = update::build_uki(&a, d, "v1-slow", BASE, &slow);
    let img = update::base_disk(&a, &base_uki, &d.join("node.img"));
    update::commit_base_entry(&img);
    let (uki, bundle) = new_release(&a, d, "v2", "");
    let config = update::node_config(HEALTH_SECS);
    update::prepare_node(&img, d, &config, CUT, &[(&bundle, "/u.bundle")]);
    let before = update::esp_digests(&img);

    let mut vm = boot(&a, &img);
    expect_nth(&mut vm, "staging: writing fluxnode-0.2.0+3.efi", 1, STEP);
    std::thread::sleep(CUT_AFTER);
    // QEMU ends at once: the reply may never come.
    let _ = vm.qmp().map(|q| q.execute("quit", json!({})));
    vm.wait_exit(STEP).unwrap_or_else(|e| panic!("{e}"));
    let log = vm.serial_log();
    assert!(
        !log.contains(r#""staged""#),
        "staging ended before the cut:\n{log}"
    );

    let after = update::esp_digests(&img);
    let (clean, report) = update::fsck_esp(&img);
    eprintln!("after the cut: ESP files {after:?}\nfsck.fat -n (clean: {clean}): {report}");
    let uki_bytes = std::fs::read(&uki).unwrap();
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        let len = update::esp_read(&img, p).len();
        eprintln!(
            "after the cut: {p} holds {len} of the UKI's {} bytes",
            uki_bytes.len()
        );
    }
    let whole = update::sha256(&uki_bytes);
    assert_whole(&before, &after, &whole);

    let mut vm = boot(&a, &img);
    expect_nth(&mut vm, "t.sh: done", 1, STEP);
    powered_off(&mut vm);
    assert_eq!(
        boots(&vm),
        ["0.1.0 from entry fluxnode-0.1.0.efi"],
        "{}",
        vm.tail(60)
    );
    let restage = update::result(&img, "restage.out");
    assert!(
        restage.contains("exit=0") && restage.contains("fluxnode-0.2.0+3.efi"),
        "staging again after the cut: {restage:?}\n{}",
        vm.tail(40)
    );
    let again = update::esp_digests(&img);
    assert_whole(&before, &again, &whole);
    assert_eq!(
        again.get("/EFI/Linux/fluxnode-0.2.0+3.efi"),
        Some(&whole),
        "{again:?}"
    );
    assert_eq!(
        again.len(),
        before.len() + 1,
        "no temporary file is left: {again:?}"
    );
    let (clean, report) = update::fsck_esp(&img);
    assert!(clean, "fsck.fat -n after a clean staging: {report}");
}

/// Every file that was on the ESP still has its bytes, a 0.2.0 entry is only there when
/// it is the whole UKI, and anything else new is a temporary (hidden, not `.efi`) name.
fn assert_whole(
    before: &std::collections::BTreeMap<String, String>,
    after: &std::collections::BTreeMap<String, String>,
    whole: &str,
) {
    for (path, sum) in before {
        assert_eq!(
            after.get(path),
            Some(sum),
            "{path} lost or changed: {after:?}"
        );
    }
    for (path, sum) in after.iter().filter(|(p, _)| !before.contains_key(*p)) {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.ends_with(".efi") {
            assert!(
                name.starts_with("fluxnode-0.2.0") && sum == whole,
                "{path} is a half-written entry: {after:?}"
            );
        } else {
            assert!(
                path.starts_with("/EFI/Linux/.") && !name.contains(".efi"),
                "{path} is not a temporary name: {after:?}"
            );
        }
    }
}
