//! The bundle format: round trip, and each kind of damage refused with its own reason.

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;

fn pair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn trusting(pairs: &[&Ed25519KeyPair]) -> ReleaseKeys {
    let text: String = pairs
        .iter()
        .map(|p| super::super::keys::public_line(p.public_key().as_ref(), "t"))
        .collect();
    ReleaseKeys::parse(&text, "test-keys").unwrap()
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

const UKI: &[u8] = b"MZ pretend this is a unified kernel image";

fn header_len(version: &str) -> usize {
    8 + 2 + 2 + version.len() + 32 + 8 + 32 + 64
}

fn problem(bytes: &[u8], keys: &ReleaseKeys) -> String {
    verify_bytes(bytes, "b", keys).unwrap_err().to_string()
}

#[test]
fn a_signed_bundle_verifies_and_says_what_it_holds() {
    let k = pair();
    let b = sign(UKI, &v("0.2.0"), &k);
    assert_eq!(b.len(), header_len("0.2.0") + UKI.len());
    let h = verify_bytes(&b, "b", &trusting(&[&k])).unwrap();
    assert_eq!(h.version, v("0.2.0"));
    assert_eq!(h.uki_len, UKI.len() as u64);
    assert_eq!(h.sha256, <[u8; 32]>::from(Sha256::digest(UKI)));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("u.bundle");
    std::fs::write(&p, &b).unwrap();
    let vb = verify_file(&p, &trusting(&[&k])).unwrap();
    assert_eq!(vb.uki_offset as usize, header_len("0.2.0"));
    assert_eq!(&std::fs::read(&p).unwrap()[vb.uki_offset as usize..], UKI);
}

#[test]
fn every_kind_of_damage_has_its_own_reason() {
    let k = pair();
    let keys = trusting(&[&k]);
    let good = sign(UKI, &v("0.2.0"), &k);
    let h = header_len("0.2.0");
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 1;
        b
    };
    assert!(problem(&flip(h + 3), &keys).contains("digest mismatch"));
    assert!(problem(&flip(h - 1), &keys).contains("bad signature"));
    // The version and the digest in the header are signed too.
    assert!(problem(&flip(12 + 4), &keys).contains("bad signature"));
    assert!(problem(&flip(12 + 5 + 3), &keys).contains("bad signature"));
    assert!(problem(&flip(0), &keys).contains("wrong magic"));
    assert!(problem(&flip(h - 64 - 1), &keys).contains("unknown key"));
    let e = problem(&good[..good.len() - 1], &keys);
    assert!(e.contains("truncated"), "{e}");
    let mut longer = good.clone();
    longer.push(0);
    assert!(problem(&longer, &keys).contains("trailing bytes"));
    assert!(problem(&good[..20], &keys).contains("not an update bundle"));
    let e = problem(&good, &trusting(&[&pair()]));
    assert!(e.starts_with("bundle b: signed by unknown key"), "{e}");
    assert!(e.contains("1 release keys in test-keys"), "{e}");
}

#[test]
fn two_trusted_keys_both_verify_for_rotation() {
    let (old, new) = (pair(), pair());
    let keys = trusting(&[&old, &new]);
    for k in [&old, &new] {
        assert!(verify_bytes(&sign(UKI, &v("1.0"), k), "b", &keys).is_ok());
    }
}

#[test]
fn a_bad_version_in_the_header_is_refused_by_name() {
    let k = pair();
    let mut b = sign(UKI, &v("0.2.0"), &k);
    b[12 + 1] = b'x';
    let e = problem(&b, &trusting(&[&k]));
    assert!(e.contains("version \"0x2.0\""), "{e}");
}

#[test]
fn the_longest_valid_version_fits_in_a_bundle() {
    let k = pair();
    let longest = v("4294967295.4294967295.4294967295.4294967295");
    let h = verify_bytes(&sign(UKI, &longest, &k), "b", &trusting(&[&k])).unwrap();
    assert_eq!(h.version, longest);
}
