//! The desired state: the apps this node should run, kept on /data so they come back after
//! a reboot. Written durably (runtime::durable): a power cut leaves the old list or the new
//! one, never half of one.

use std::fs;
use std::path::Path;

use crate::spec::AppSpec;

/// Reads the list; a missing file is an empty list, an unreadable one is an error that
/// names the file.
pub fn load(path: &Path) -> Result<Vec<AppSpec>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Moves a list that cannot be read out of the way (to `desired.json.damaged-<secs>`), so
/// the next save does not overwrite what a person may still recover from it. Returns the
/// new name.
pub fn set_aside(path: &Path, now_secs: u64) -> Result<std::path::PathBuf, String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let aside = path.with_file_name(format!("{}.damaged-{now_secs}", name.unwrap_or_default()));
    fs::rename(path, &aside).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        crate::durable::sync_dir(dir).map_err(|e| e.to_string())?;
    }
    Ok(aside)
}

pub fn save(path: &Path, apps: &[AppSpec]) -> Result<(), String> {
    // PID1 never panics: a serialization failure (none is possible for these types) is
    // an error like any other.
    let bytes = serde_json::to_vec_pretty(apps).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::durable::write(path, &bytes, 0o644).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_round_trips_and_a_bad_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apps/desired.json");
        assert_eq!(load(&path), Ok(vec![]));
        let app: AppSpec = serde_json::from_value(serde_json::json!({
            "name": "web", "image": "sha256:00", "cpu_millis": 500, "ram_bytes": 1 << 26
        }))
        .unwrap();
        save(&path, std::slice::from_ref(&app)).unwrap();
        assert_eq!(load(&path), Ok(vec![app]));
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().contains("desired.json"));
        let aside = set_aside(&path, 1234).unwrap();
        assert!(aside.ends_with("desired.json.damaged-1234"), "{aside:?}");
        assert_eq!(fs::read(&aside).unwrap(), b"{not json");
        assert_eq!(load(&path), Ok(vec![]));
    }
}
