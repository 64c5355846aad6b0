//! The log file on the data partition, /data/log/fluxnode.log, rotated by size: four files of
//! 8 MiB (fluxnode.log, .1, .2, .3). Console lines are written here too once /data is up.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const MAX_BYTES: u64 = 8 * 1024 * 1024;
pub const FILES: usize = 4;

pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, max: u64) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_owned(),
            file,
            size,
            max,
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        PathBuf::from(format!("{}.{n}", self.path.display()))
    }

    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..FILES - 1).rev() {
            let _ = fs::rename(self.numbered(n), self.numbered(n + 1));
        }
        fs::rename(&self.path, self.numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }

    pub fn write_line(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + buf.len() as u64 > self.max {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        Ok(())
    }
}

static LOG: Mutex<Option<RotatingFile>> = Mutex::new(None);

/// Starts copying console lines to `path`.
pub fn start(path: &Path) -> io::Result<()> {
    let f = RotatingFile::open(path, MAX_BYTES)?;
    if let Ok(mut slot) = LOG.lock() {
        *slot = Some(f);
    }
    Ok(())
}

/// Stops writing (before /data is unmounted).
pub fn stop() {
    if let Ok(mut slot) = LOG.lock() {
        if let Some(f) = slot.take() {
            let _ = f.file.sync_all();
        }
    }
}

/// Copies one formatted line to the log file, if one is open. Errors are dropped: logging
/// never stops the node.
pub fn tee(buf: &[u8]) {
    if let Ok(mut slot) = LOG.lock() {
        if let Some(f) = slot.as_mut() {
            if f.write_line(buf).is_err() {
                *slot = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_rotate_into_four_files_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fluxnode.log");
        let mut f = RotatingFile::open(&path, 100).unwrap();
        for i in 0..40 {
            f.write_line(format!("line {i:04} padded to twenty\n").as_bytes())
                .unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "fluxnode.log",
                "fluxnode.log.1",
                "fluxnode.log.2",
                "fluxnode.log.3"
            ]
        );
        for n in &names {
            assert!(
                fs::metadata(dir.path().join(n)).unwrap().len() <= 100,
                "{n}"
            );
        }
        let newest = fs::read_to_string(&path).unwrap();
        assert!(newest.ends_with("line 0039 padded to twenty\n"), "{newest}");
    }
}
