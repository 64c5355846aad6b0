//! Release versions: dotted non-negative integers (`2`, `0.1.0`, `1.10.3`), compared
//! numerically. Nothing else is allowed, so a version never holds the `+` or `-` that
//! systemd-boot's boot counter suffix (`+LEFT-DONE`) puts after it in a file name.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The most dotted components a version may have.
pub const MAX_COMPONENTS: usize = 4;

/// The longest text a valid version can have: four ten-digit components and three dots.
pub const MAX_TEXT_LEN: usize = MAX_COMPONENTS * 10 + MAX_COMPONENTS - 1;

/// A text that is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {text:?}: {reason} (expected 1 to 4 dot-separated numbers like 0.2.0)")]
pub struct VersionError {
    pub text: String,
    pub reason: String,
}

/// A release version.
///
/// Ordering is numeric, component by component, with missing components counting as 0;
/// when that is a tie the version with fewer components comes first, so
/// `1.2 < 1.10 < 1.10.0 < 1.10.1 < 2`. This makes the order total and consistent with
/// equality (`1.0` and `1.0.0` are different versions, `1.0` the older), and it agrees with
/// the version comparison systemd-boot sorts its entries by.
///
/// Components have no leading zeros (`01` is refused), so the text round-trips exactly:
/// `Version::parse(s)?.to_string() == s`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    parts: Vec<u32>,
}

impl Version {
    /// Parses a version, naming the text and what is wrong with it.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let fail = |reason: String| VersionError {
            text: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail("empty".into()));
        }
        let mut parts = Vec::new();
        for (i, part) in text.split('.').enumerate() {
            if i == MAX_COMPONENTS {
                return Err(fail(format!("more than {MAX_COMPONENTS} components")));
            }
            let n = i + 1;
            if part.is_empty() {
                return Err(fail(format!("component {n} is empty")));
            }
            if let Some(c) = part.chars().find(|c| !c.is_ascii_digit()) {
                return Err(fail(format!("component {n} has {c:?}, not a digit")));
            }
            if part.len() > 1 && part.starts_with('0') {
                return Err(fail(format!("component {n} ({part}) has a leading zero")));
            }
            let value = part.parse::<u32>().map_err(|_| {
                fail(format!(
                    "component {n} ({part}) is larger than {}",
                    u32::MAX
                ))
            })?;
            parts.push(value);
        }
        Ok(Version { parts })
    }

    /// The numeric components, most significant first.
    pub fn parts(&self) -> &[u32] {
        &self.parts
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let len = self.parts.len().max(other.parts.len());
        let at = |v: &Version, i: usize| v.parts.get(i).copied().unwrap_or(0);
        (0..len)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| self.parts.len().cmp(&other.parts.len()))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn good_versions_round_trip() {
        for s in ["0", "2", "0.1.0", "1.10.3", "4294967295.0.0.4294967295"] {
            assert_eq!(v(s).to_string(), s);
            assert_eq!(s.parse::<Version>().unwrap(), v(s));
        }
        assert_eq!(v("1.10.3").parts(), [1, 10, 3]);
        assert!(
            v("4294967295.4294967295.4294967295.4294967295")
                .to_string()
                .len()
                <= MAX_TEXT_LEN
        );
    }

    #[test]
    fn bad_versions_are_refused_with_the_text_named() {
        for s in [
            "",
            ".",
            "1.",
            ".1",
            "1..2",
            "1.0+3",
            "1.0-1",
            "+1",
            "-1",
            "v1",
            "1.0a",
            " 1",
            "1 ",
            "1.2.3.4.5",
            "01",
            "1.02",
            "4294967296",
            "1.٣",
        ] {
            let err = Version::parse(s).unwrap_err();
            assert_eq!(err.text, s);
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
        }
    }

    #[test]
    fn versions_compare_numerically() {
        let sorted = [
            "0", "0.1", "0.1.0", "0.2", "0.10", "1", "1.0", "1.0.0", "1.0.1", "2", "10",
        ];
        for pair in sorted.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]));
        }
        assert_eq!(v("1.2").cmp(&v("1.2")), Ordering::Equal);
        assert_ne!(v("1.0"), v("1.0.0"));
    }
}
