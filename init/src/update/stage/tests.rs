//! Staging and committing in a directory standing in for the ESP's EFI/Linux, with
//! bundles signed here by a fresh release key.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use fluxnode_update::bundle;
use fluxnode_update::keys::ReleaseKeys;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;

fn release_key() -> (Ed25519KeyPair, ReleaseKeys) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let text = format!("ed25519 {} test\n", hex::encode(kp.public_key().as_ref()));
    let keys = ReleaseKeys::parse(&text, "test").unwrap();
    (kp, keys)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// A bundle of `uki` as version `ver` in `dir`.
fn bundle_file(dir: &Path, ver: &str, uki: &[u8], kp: &Ed25519KeyPair) -> std::path::PathBuf {
    let p = dir.join(format!("{ver}.bundle"));
    fs::write(&p, bundle::sign(uki, &v(ver), kp)).unwrap();
    p
}

/// Every file in `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn esp_with(names: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for n in names {
        fs::write(d.path().join(n), n.as_bytes()).unwrap();
    }
    d
}

#[test]
fn a_good_bundle_becomes_a_whole_trial_entry_and_old_versions_go() {
    let (kp, keys) = release_key();
    let work = tempfile::tempdir().unwrap();
    let esp = esp_with(&[
        "fluxnode-0.0.8.efi",
        "fluxnode-0.0.9.efi",
        "fluxnode-0.1.0.efi",
    ]);
    let uki: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let b = bundle_file(work.path(), "0.2.0", &uki, &kp);
    let running = v("0.1.0");
    let opts = Options::default();
    let vb = verify(&b, &keys, &running, &opts).unwrap();
    let s = stage_into(esp.path(), u64::MAX / 2, &vb, &running, &opts).unwrap();
    assert_eq!(s.staged, "fluxnode-0.2.0+3.efi");
    assert_eq!(s.removed, ["fluxnode-0.0.8.efi"]);
    let after = files(esp.path());
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        [
            "fluxnode-0.0.9.efi",
            "fluxnode-0.1.0.efi",
            "fluxnode-0.2.0+3.efi"
        ]
    );
    assert_eq!(after["fluxnode-0.2.0+3.efi"], uki);
    assert_eq!(after["fluxnode-0.1.0.efi"], b"fluxnode-0.1.0.efi");
}

#[test]
fn refused_bundles_write_nothing_and_say_why() {
    let (kp, keys) = release_key();
    let (stranger, _) = release_key();
    let work = tempfile::tempdir().unwrap();
    let esp = esp_with(&["fluxnode-0.1.0.efi"]);
    let before = files(esp.path());
    let running = v("0.1.0");
    let opts = Options::default();
    let uki = vec![7u8; 4096];
    let older = bundle_file(work.path(), "0.0.9", &uki, &kp);
    let e = verify(&older, &keys, &running, &opts).unwrap_err();
    assert!(
        e.contains("not newer than the running version 0.1.0"),
        "{e}"
    );
    let unknown = bundle_file(work.path(), "0.2.0", &uki, &stranger);
    let e = verify(&unknown, &keys, &running, &opts).unwrap_err();
    assert!(e.contains("unknown key"), "{e}");
    let flipped = bundle_file(work.path(), "0.3.0", &uki, &kp);
    let mut bytes = fs::read(&flipped).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&flipped, bytes).unwrap();
    let e = verify(&flipped, &keys, &running, &opts).unwrap_err();
    assert!(e.contains("digest mismatch"), "{e}");
    let good = bundle_file(work.path(), "0.2.0", &uki, &kp);
    let vb = verify(&good, &keys, &running, &opts).unwrap();
    let e = stage_into(esp.path(), 1000, &vb, &running, &opts).unwrap_err();
    assert!(e.contains("no room on the ESP"), "{e}");
    assert_eq!(files(esp.path()), before, "nothing written");
    // An older version goes in with --force.
    let force = Options {
        force: true,
        ..Options::default()
    };
    let vb = verify(&older, &keys, &running, &force).unwrap();
    let s = stage_into(esp.path(), u64::MAX / 2, &vb, &running, &force).unwrap();
    assert_eq!(s.staged, "fluxnode-0.0.9+3.efi");
}

#[test]
fn a_bundle_changed_after_verifying_is_not_staged_and_leaves_no_temp() {
    let (kp, keys) = release_key();
    let work = tempfile::tempdir().unwrap();
    let esp = esp_with(&["fluxnode-0.1.0.efi", ".fluxnode-0.1.5.part"]);
    let running = v("0.1.0");
    let b = bundle_file(work.path(), "0.2.0", &[1u8; 10_000], &kp);
    let vb = verify(&b, &keys, &running, &Options::default()).unwrap();
    let mut bytes = fs::read(&b).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&b, bytes).unwrap();
    let e = stage_into(esp.path(), u64::MAX / 2, &vb, &running, &Options::default()).unwrap_err();
    assert!(e.contains("changed while it was being staged"), "{e}");
    assert_eq!(
        files(esp.path()).keys().collect::<Vec<_>>(),
        ["fluxnode-0.1.0.efi"],
        "the new entry never appeared; the temp of an earlier cut staging is gone too"
    );
}

#[test]
fn commit_drops_the_try_counter_of_the_running_version_only() {
    let esp = esp_with(&["fluxnode-0.1.0.efi", "fluxnode-0.2.0+2-1.efi"]);
    assert_eq!(
        commit_in(esp.path(), &v("0.2.0")).unwrap(),
        "fluxnode-0.2.0.efi"
    );
    let after = files(esp.path());
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["fluxnode-0.1.0.efi", "fluxnode-0.2.0.efi"]
    );
    assert_eq!(after["fluxnode-0.2.0.efi"], b"fluxnode-0.2.0+2-1.efi");
    assert_eq!(
        commit_in(esp.path(), &v("0.2.0")).unwrap(),
        "fluxnode-0.2.0.efi",
        "committing twice is harmless"
    );
    let e = commit_in(esp.path(), &v("0.3.0")).unwrap_err();
    assert!(e.contains("no entry for version 0.3.0"), "{e}");
}
