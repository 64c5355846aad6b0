//! What the node remembers about updates across boots, in /data/update/state.json: the
//! last rollback (shown by `status`) and the failed versions already reported, so a
//! rollback is logged once, not on every later boot. Written durably (runtime::durable).

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const PATH: &str = "/data/update/state.json";

pub use runtime::control::replies::Rollback;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateState {
    #[serde(default)]
    pub last_rollback: Option<Rollback>,
    /// Versions whose failure has been reported.
    #[serde(default)]
    pub failed: Vec<String>,
}

impl UpdateState {
    /// The state in `path`; empty when there is none or it cannot be read (named in the
    /// error so the caller can log it).
    pub fn load(path: &Path) -> (UpdateState, Option<String>) {
        match fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => (s, None),
                Err(e) => (
                    UpdateState::default(),
                    Some(format!("{}: {e}", path.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (UpdateState::default(), None),
            Err(e) => (
                UpdateState::default(),
                Some(format!("{}: {e}", path.display())),
            ),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let body =
            serde_json::to_vec_pretty(self).map_err(|e| format!("{}: {e}", path.display()))?;
        runtime::durable::write(path, &body, 0o644).map_err(|e| e.to_string())
    }

    /// Records that the loader fell back from `from` to `to`; false when that failure
    /// was already reported.
    pub fn note_rollback(&mut self, from: &str, to: &str, now: u64) -> bool {
        if self.failed.iter().any(|f| f == from) {
            return false;
        }
        self.failed.push(from.to_owned());
        self.last_rollback = Some(Rollback {
            from: from.into(),
            to: to.into(),
            at: now,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollback_is_noted_once_and_survives_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("update/state.json");
        let (mut s, err) = UpdateState::load(&p);
        assert!(err.is_none());
        assert!(s.note_rollback("0.2.0", "0.1.0", 7));
        assert!(!s.note_rollback("0.2.0", "0.1.0", 8));
        s.save(&p).unwrap();
        let (back, err) = UpdateState::load(&p);
        assert!(err.is_none());
        assert_eq!(back, s);
        assert_eq!(back.last_rollback.unwrap().at, 7);
        fs::write(&p, b"{not json").unwrap();
        let (_, err) = UpdateState::load(&p);
        assert!(err.unwrap().contains("state.json"));
    }
}
