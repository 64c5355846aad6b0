//! The kernel command line (`/proc/cmdline`), where tests and operators pass `fluxnode.*` keys.

use std::collections::BTreeMap;

/// Parsed `key=value` words of the kernel command line; a bare word maps to "".
#[derive(Debug, Default, Clone)]
pub struct Cmdline {
    words: BTreeMap<String, String>,
}

impl Cmdline {
    /// Parses a command line. Double quotes group a value with spaces (`k="a b"`); a later
    /// word wins over an earlier one with the same key, as in the kernel.
    pub fn parse(text: &str) -> Self {
        let mut words = BTreeMap::new();
        let mut current = String::new();
        let mut quoted = false;
        let mut push = |word: &mut String| {
            if !word.is_empty() {
                let (k, v) = word.split_once('=').unwrap_or((word.as_str(), ""));
                words.insert(k.to_owned(), v.to_owned());
                word.clear();
            }
        };
        for c in text.chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => push(&mut current),
                c => current.push(c),
            }
        }
        push(&mut current);
        Cmdline { words }
    }

    /// Reads `/proc/cmdline`; an unreadable one is treated as empty.
    pub fn read() -> Self {
        Self::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }

    /// Every word as (key, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.words.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.words.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_values_quotes_and_bare_words() {
        let c =
            Cmdline::parse("console=ttyS0 quiet fluxnode.selftest=poweroff x=\"a b\" x=\"c d\"\n");
        assert_eq!(c.get("console"), Some("ttyS0"));
        assert_eq!(c.get("quiet"), Some(""));
        assert_eq!(c.get("fluxnode.selftest"), Some("poweroff"));
        assert_eq!(c.get("x"), Some("c d"));
        assert_eq!(c.get("missing"), None);
    }
}
