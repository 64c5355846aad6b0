//! The desired state: the apps this node should run, kept on /data so they come back after
//! a reboot. Written through a temporary file, fsync and rename: a power cut leaves the old
//! list or the new one, never half of one.

use std::fs;
use std::io::Write;
use std::path::Path;

use runtime::spec::AppSpec;

/// Reads the list; a missing file is an empty list, an unreadable one is an error that
/// names the file.
pub fn load(path: &Path) -> Result<Vec<AppSpec>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save(path: &Path, apps: &[AppSpec]) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = fs::File::create(&tmp)?;
        // PID1 never panics: a serialization failure (none is possible for these types)
        // is an I/O error like any other.
        let bytes = serde_json::to_vec_pretty(apps).map_err(std::io::Error::other)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("{}: {e}", path.display()))
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
        assert!(!path.with_extension("json.tmp").exists());
        fs::write(&path, b"{not json").unwrap();
        assert!(load(&path).unwrap_err().contains("desired.json"));
    }
}
