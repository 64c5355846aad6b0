//! Boot entries in the ESP's `\EFI\Linux\`: `fluxnode-<ver>.efi` is committed (good);
//! `fluxnode-<ver>+<left>.efi` and `fluxnode-<ver>+<left>-<done>.efi` are on trial under
//! systemd-boot's automatic boot assessment (the loader counts `left` down and `done` up
//! on each boot, and prefers any other entry once `left` is 0). Also what to remove when a
//! new version is staged: at most two versions stay besides the one on trial.

use std::cmp::Ordering;

use super::version::Version;

const PREFIX: &str = "fluxnode-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: Version,
    pub tries_left: Option<u32>,
    pub tries_done: Option<u32>,
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Entry {
    /// The entry a file name stands for; None for any other file (FAT is case-blind, so
    /// `.EFI` counts too).
    pub fn parse(file_name: &str) -> Option<Entry> {
        // By bytes: a name may end in any UTF-8, and a str slice off a char boundary panics.
        let split = file_name.len().checked_sub(4)?;
        if !file_name.as_bytes()[split..].eq_ignore_ascii_case(b".efi") {
            return None;
        }
        let stem = file_name.get(..split)?.strip_prefix(PREFIX)?;
        let (ver, counter) = match stem.split_once('+') {
            Some((v, c)) => (v, Some(c)),
            None => (stem, None),
        };
        let version = Version::parse(ver).ok()?;
        let (tries_left, tries_done) = match counter {
            None => (None, None),
            Some(c) => match c.split_once('-') {
                Some((l, d)) => (Some(number(l)?), Some(number(d)?)),
                None => (Some(number(c)?), None),
            },
        };
        Some(Entry {
            version,
            tries_left,
            tries_done,
        })
    }

    pub fn file_name(&self) -> String {
        let mut s = format!("{PREFIX}{}", self.version);
        if let Some(l) = self.tries_left {
            s.push_str(&format!("+{l}"));
            if let Some(d) = self.tries_done {
                s.push_str(&format!("-{d}"));
            }
        }
        s.push_str(".efi");
        s
    }

    /// A new version on trial with `tries` boots to prove itself.
    pub fn new_trial(version: Version, tries: u32) -> Entry {
        Entry {
            version,
            tries_left: Some(tries),
            tries_done: None,
        }
    }

    pub fn is_committed(&self) -> bool {
        self.tries_left.is_none()
    }

    /// No tries left: the loader boots it only when nothing else is there.
    pub fn is_bad(&self) -> bool {
        self.tries_left == Some(0)
    }

    /// The same version with its counter dropped (marked good).
    pub fn committed(&self) -> Entry {
        Entry {
            version: self.version.clone(),
            tries_left: None,
            tries_done: None,
        }
    }
}

/// Sorts entries in the loader's order of preference: bad ones last, then newest
/// version first; within one version, when both carry counters, more tries left first,
/// then fewer tries done (systemd-boot leaves a committed and a counted entry of the
/// same version unordered; the sort is stable, so they keep their order).
pub fn sort_like_loader(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        a.is_bad()
            .cmp(&b.is_bad())
            .then_with(|| b.version.cmp(&a.version))
            .then_with(|| match (a.tries_left, b.tries_left) {
                (Some(x), Some(y)) => y
                    .cmp(&x)
                    .then_with(|| a.tries_done.unwrap_or(0).cmp(&b.tries_done.unwrap_or(0))),
                _ => Ordering::Equal,
            })
    });
}

/// The entries to remove before `incoming` is staged while `running` runs: any entry of
/// `incoming` itself (it is replaced), then, beyond two versions kept besides the
/// incoming one, bad entries first and then the oldest. The running version is never
/// removed.
pub fn prune_plan(entries: &[Entry], running: &Version, incoming: &Version) -> Vec<Entry> {
    let mut doomed: Vec<Entry> = entries
        .iter()
        .filter(|e| &e.version == incoming && &e.version != running)
        .cloned()
        .collect();
    let mut rest: Vec<&Entry> = entries.iter().filter(|e| &e.version != incoming).collect();
    // Keep order: the running version first, then good entries newest first, then bad.
    rest.sort_by(|a, b| {
        let key = |e: &Entry| (&e.version != running, e.is_bad());
        key(a).cmp(&key(b)).then(b.version.cmp(&a.version))
    });
    let mut versions: Vec<&Version> = Vec::new();
    for e in rest {
        if versions.contains(&&e.version) {
            continue;
        }
        if versions.len() < 2 || &e.version == running {
            versions.push(&e.version);
        } else {
            doomed.push(e.clone());
        }
    }
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str) -> Entry {
        Entry::parse(name).unwrap_or_else(|| panic!("{name}"))
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn names_with_and_without_counters_parse_and_round_trip() {
        let good = e("fluxnode-0.1.0.efi");
        assert!(good.is_committed() && !good.is_bad());
        let fresh = e("fluxnode-0.2.0+3.efi");
        assert_eq!((fresh.tries_left, fresh.tries_done), (Some(3), None));
        let tried = e("fluxnode-1.0+3-1.efi");
        assert_eq!((tried.tries_left, tried.tries_done), (Some(3), Some(1)));
        let bad = e("fluxnode-1.0+0-3.efi");
        assert!(bad.is_bad() && !bad.is_committed());
        assert_eq!(bad.committed().file_name(), "fluxnode-1.0.efi");
        assert_eq!(e("FLUXNODE-0.1.0.EFI".to_lowercase().as_str()), good);
        assert_eq!(e("fluxnode-0.1.0.EFI"), good);
        for n in [
            "fluxnode-0.1.0.efi",
            "fluxnode-0.2.0+3.efi",
            "fluxnode-1.0+3-1.efi",
            "fluxnode-1.0+0-3.efi",
        ] {
            assert_eq!(e(n).file_name(), n);
        }
        assert_eq!(
            Entry::new_trial(v("0.3.0"), 3).file_name(),
            "fluxnode-0.3.0+3.efi"
        );
    }

    #[test]
    fn other_files_are_not_entries() {
        for n in [
            "fluxnode-.efi",
            "fluxnode-1.0+x.efi",
            "fluxnode-1.0+3-.efi",
            "fluxnode-1.0+.efi",
            "fluxnode-1.0-3.efi",
            "BOOTX64.EFI",
            ".fluxnode-0.2.0.part",
            "fluxnode-0.2.0.efi.tmp",
            "efi",
            "é€",
            "fluxnode-1.0é€",
            "€.efi",
        ] {
            assert_eq!(Entry::parse(n), None, "{n}");
        }
    }

    #[test]
    fn the_loader_order_puts_bad_entries_last_and_newest_first() {
        let mut all = vec![
            e("fluxnode-0.1.0.efi"),
            e("fluxnode-0.3.0+0-3.efi"),
            e("fluxnode-0.2.0+1-2.efi"),
            e("fluxnode-0.2.0+2-1.efi"),
            e("fluxnode-0.2.0+2.efi"),
        ];
        sort_like_loader(&mut all);
        let names: Vec<String> = all.iter().map(Entry::file_name).collect();
        assert_eq!(
            names,
            [
                "fluxnode-0.2.0+2.efi",
                "fluxnode-0.2.0+2-1.efi",
                "fluxnode-0.2.0+1-2.efi",
                "fluxnode-0.1.0.efi",
                "fluxnode-0.3.0+0-3.efi"
            ]
        );
    }

    fn plan(names: &[&str], running: &str, incoming: &str) -> Vec<String> {
        let all: Vec<Entry> = names.iter().map(|n| e(n)).collect();
        prune_plan(&all, &v(running), &v(incoming))
            .iter()
            .map(Entry::file_name)
            .collect()
    }

    #[test]
    fn pruning_keeps_two_versions_besides_the_new_one_and_never_the_running_one() {
        assert!(plan(&["fluxnode-0.1.0.efi"], "0.1.0", "0.2.0").is_empty());
        assert!(plan(
            &["fluxnode-0.1.0.efi", "fluxnode-0.0.9.efi"],
            "0.1.0",
            "0.2.0"
        )
        .is_empty());
        assert_eq!(
            plan(
                &[
                    "fluxnode-0.0.8.efi",
                    "fluxnode-0.1.0.efi",
                    "fluxnode-0.0.9.efi"
                ],
                "0.1.0",
                "0.2.0"
            ),
            ["fluxnode-0.0.8.efi"]
        );
        assert_eq!(
            plan(
                &[
                    "fluxnode-0.1.0.efi",
                    "fluxnode-0.3.0+0-3.efi",
                    "fluxnode-0.0.9.efi"
                ],
                "0.1.0",
                "0.4.0"
            ),
            ["fluxnode-0.3.0+0-3.efi"],
            "a bad entry goes before an older good one"
        );
        assert_eq!(
            plan(
                &[
                    "fluxnode-0.0.1.efi",
                    "fluxnode-0.0.2.efi",
                    "fluxnode-0.0.3.efi"
                ],
                "0.0.1",
                "0.2.0"
            ),
            ["fluxnode-0.0.2.efi"],
            "the running version stays even when it is the oldest"
        );
        assert_eq!(
            plan(
                &["fluxnode-0.1.0.efi", "fluxnode-0.2.0+0-3.efi"],
                "0.1.0",
                "0.2.0"
            ),
            ["fluxnode-0.2.0+0-3.efi"],
            "staging a version again replaces its entry"
        );
    }
}
