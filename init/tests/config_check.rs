//! `fluxnode config check FILE` as an operator runs it on any host.

use std::process::Command;

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fluxnode.toml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fluxnode"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_good_file_passes() {
    let (ok, out) = check("[node]\nhostname = \"n1\"\n[watchdog]\ntimeout = 20\n");
    assert!(ok, "{out}");
    assert!(out.contains(": ok"), "{out}");
}

#[test]
fn a_bad_file_names_each_field_and_fails() {
    let (ok, out) = check("[bench]\nquick = \"yes\"\n[network]\nmode = \"carrier-pigeon\"\n");
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"[bench] quick: expected a boolean, found "yes""#),
        "{out}"
    );
    assert!(
        out.contains("[network] mode: expected one of dhcp, static, off"),
        "{out}"
    );
    assert!(out.contains("2 problem(s)"), "{out}");
}

#[test]
fn a_missing_file_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_fluxnode"))
        .args(["config", "check", "/no/such/fluxnode.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/fluxnode.toml"));
}
