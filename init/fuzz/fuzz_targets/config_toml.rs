//! The node config on any text: `Config::apply_toml` (fluxnode.toml) and
//! `Config::apply_cmdline` (`fluxnode.*` words of the kernel command line) never panic;
//! applying the same text twice gives what applying it once gave (every field is set, not
//! added to; a service replaces the one of its name), with the same diagnostics; and
//! whatever they leave is a config the checks allow (a valid hostname, a known log level,
//! timeouts in range, a prefix of at most 32, services with a valid name, an absolute
//! program and KEY=VALUE environment, no two of one name). Every diagnostic names its
//! source.
//!
//! The input is the file's text, then optionally a NUL and the command line as one
//! `key=value` word a line (a line without `=` is a bare word, with the value ""). Without
//! a NUL, the whole text is both.
#![no_main]

use fluxnode_init::config::{Config, Diagnostic};
use libfuzzer_sys::fuzz_target;

fn check(c: &Config, what: &str) {
    let h = &c.hostname;
    assert!(
        !h.is_empty()
            && h.len() <= 63
            && !h.starts_with('-')
            && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{what} left the hostname {h:?}"
    );
    assert!(
        ["error", "warn", "info", "debug", "trace"].contains(&c.log_level.as_str()),
        "{what} left the log level {:?}",
        c.log_level
    );
    if let Some(t) = c.watchdog.timeout_s {
        assert!(
            (1..=3600).contains(&t),
            "{what} left a watchdog timeout of {t}"
        );
    }
    assert!(
        (10..=3600).contains(&c.update.health_secs),
        "{what} left health_secs {}",
        c.update.health_secs
    );
    if let Some((_, prefix)) = c.network.address {
        assert!(prefix <= 32, "{what} left a /{prefix}");
    }
    for (i, s) in c.services.iter().enumerate() {
        assert!(
            !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{what} left a service named {:?}",
            s.name
        );
        assert!(
            s.argv.first().is_some_and(|a| a.starts_with('/')),
            "{what} left service {} with argv {:?}",
            s.name,
            s.argv
        );
        assert!(
            s.env.iter().all(|e| e.contains('=')),
            "{what} left service {} with env {:?}",
            s.name,
            s.env
        );
        assert!(
            c.services[..i].iter().all(|o| o.name != s.name),
            "{what} left two services named {}",
            s.name
        );
    }
}

fn named(diags: &[Diagnostic], source: &str) {
    for d in diags {
        assert!(d.source.starts_with(source), "{d:?}");
        assert!(d.to_string().starts_with(&d.source), "{d}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, cmdline) = text.split_once('\0').unwrap_or((&*text, &*text));

    let mut once = Config::default();
    let diags = once.apply_toml("fuzz.toml", file);
    named(&diags, "config fuzz.toml");
    check(&once, "the file");
    let mut twice = once.clone();
    assert_eq!(twice.apply_toml("fuzz.toml", file), diags);
    assert_eq!(twice, once, "applying the file again changed the config");

    let words: Vec<(&str, &str)> = cmdline
        .lines()
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .collect();
    for base in [Config::default(), once] {
        let mut once = base;
        let diags = once.apply_cmdline(words.iter().copied());
        named(&diags, "kernel command line");
        check(&once, "the command line");
        let mut twice = once.clone();
        assert_eq!(twice.apply_cmdline(words.iter().copied()), diags);
        assert_eq!(
            twice, once,
            "applying the command line again changed the config"
        );
    }
});
