//! Boot-loop protection for the apps: a count, kept durably on /data, of the boots in a
//! row that started the apps but never reached a healthy loop (a node that crashed, hung
//! or lost power each time). From the third such boot on, the apps are held: the node
//! boots without starting them, says why, and `fluxnode ctl app resume` releases them. So
//! one bad app cannot boot-loop a node.

use std::path::{Path, PathBuf};

/// Boots in a row without a healthy loop after which the apps are held.
pub const HOLD_AFTER: u32 = 3;

/// The counter file (`/data/apps/unhealthy-boots`).
#[derive(Debug, Clone)]
pub struct BootGuard {
    path: PathBuf,
}

impl BootGuard {
    pub fn new(path: &Path) -> Self {
        BootGuard {
            path: path.to_owned(),
        }
    }

    fn read(&self) -> u32 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Called when a boot is about to start the apps: counts this boot as unhealthy
    /// until [`BootGuard::healthy`] says otherwise. Returns why the apps are held, when
    /// the boots before this one were unhealthy [`HOLD_AFTER`] times in a row.
    pub fn begin(&self) -> Result<Option<String>, String> {
        let before = self.read();
        crate::durable::write(&self.path, format!("{}\n", before + 1).as_bytes(), 0o644)
            .map_err(|e| e.to_string())?;
        Ok((before >= HOLD_AFTER).then(|| {
            format!(
                "the last {before} boots never reached a healthy loop; apps held until \
                 `fluxnode ctl app resume`"
            )
        }))
    }

    /// Called once the loop has run healthy: the count starts again from zero.
    pub fn healthy(&self) -> Result<(), String> {
        if self.read() == 0 {
            return Ok(());
        }
        crate::durable::write(&self.path, b"0\n", 0o644).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourth_boot_after_three_unhealthy_ones_holds_the_apps() {
        let dir = tempfile::tempdir().unwrap();
        let g = BootGuard::new(&dir.path().join("apps/unhealthy-boots"));
        for _ in 0..HOLD_AFTER {
            assert_eq!(g.begin().unwrap(), None);
        }
        let held = g.begin().unwrap().expect("held");
        assert!(held.contains("last 3 boots"), "{held}");
        assert!(held.contains("fluxnode ctl app resume"), "{held}");
    }

    #[test]
    fn a_healthy_loop_starts_the_count_again() {
        let dir = tempfile::tempdir().unwrap();
        let g = BootGuard::new(&dir.path().join("unhealthy-boots"));
        for _ in 0..5 {
            g.begin().unwrap();
        }
        g.healthy().unwrap();
        assert_eq!(g.begin().unwrap(), None);
        // A garbled counter counts as none: apps are never held by a damaged file.
        std::fs::write(dir.path().join("unhealthy-boots"), b"\xff\xfe").unwrap();
        assert_eq!(g.begin().unwrap(), None);
    }
}
