//! The checks a configure run makes before it writes anything.

use super::*;

#[test]
fn a_config_with_a_finding_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    fs::write(&cfg, "[node]\nhostname = \"a\"\n[bench]\nquick = \"yes\"\n").unwrap();
    let e = plan(&cfg, None, None).unwrap_err().to_string();
    assert!(
        e.contains("[bench] quick") && e.contains("nothing written"),
        "{e}"
    );
    fs::write(&cfg, "[node]\nhostname = \"a\"\n").unwrap();
    assert_eq!(plan(&cfg, None, None).unwrap().len(), 1);
}

#[test]
fn a_wallet_must_be_a_key_and_a_genesis_must_name_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("node.toml");
    fs::write(&cfg, "").unwrap();
    let junk = dir.path().join("junk");
    fs::write(&junk, "not a key").unwrap();
    let e = plan(&cfg, Some(&junk), None).unwrap_err().to_string();
    assert!(
        e.contains("junk") && e.contains("not an Ed25519 PKCS#8 key"),
        "{e}"
    );
    let e = plan(&cfg, None, Some(&junk)).unwrap_err().to_string();
    assert!(e.contains("not JSON"), "{e}");
    fs::write(&junk, "{\"time\": 1}").unwrap();
    let e = plan(&cfg, None, Some(&junk)).unwrap_err().to_string();
    assert!(e.contains("no \"chain_id\""), "{e}");
}
