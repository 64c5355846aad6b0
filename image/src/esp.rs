//! The EFI system partition: a FAT32 filesystem written with fatfs straight into the disk
//! image at the partition's offset. fatfs is built without its clock, so every timestamp is
//! its fixed epoch and the bytes depend only on the files.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use fatfs::{FatType, FileSystem, FormatVolumeOptions, FsOptions};

use crate::error::{Error, IoContext, Result};

pub const VOLUME_ID: u32 = 0xF10D_0001;
const LABEL: [u8; 11] = *b"ESP        ";

/// A window of a file: byte `start` of the file is byte 0 of the window.
struct Window<'f> {
    file: &'f mut File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
        if room == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "past the partition end",
            ));
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.write(&buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if pos < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = pos as u64;
        Ok(self.pos)
    }
}

/// Formats `len` bytes at `start` of `file` as FAT32 and writes `files` (path inside the
/// ESP with `/` separators, contents) into it, creating directories as needed.
pub fn write(
    file: &mut File,
    path: &Path,
    start: u64,
    len: u64,
    files: &[(String, Vec<u8>)],
) -> Result<()> {
    let fat_err =
        |what: &str, e: io::Error| Error::Layout(format!("{} ESP {what}: {e}", path.display()));
    let mut window = Window {
        file,
        start,
        len,
        pos: 0,
    };
    let options = FormatVolumeOptions::new()
        .volume_id(VOLUME_ID)
        .volume_label(LABEL)
        .fat_type(FatType::Fat32);
    fatfs::format_volume(&mut window, options).map_err(|e| fat_err("format", e))?;
    window.seek(SeekFrom::Start(0)).at(path)?;
    let fs = FileSystem::new(&mut window, FsOptions::new()).map_err(|e| fat_err("mount", e))?;
    for (inner, data) in files {
        let root = fs.root_dir();
        let mut dir = root.clone();
        let parts: Vec<&str> = inner.split('/').collect();
        let (name, parents) = parts.split_last().expect("split gives at least one part");
        for part in parents {
            dir = dir.create_dir(part).map_err(|e| fat_err(inner, e))?;
        }
        let mut f = dir.create_file(name).map_err(|e| fat_err(inner, e))?;
        f.truncate().map_err(|e| fat_err(inner, e))?;
        f.write_all(data).map_err(|e| fat_err(inner, e))?;
    }
    fs.unmount().map_err(|e| fat_err("unmount", e))?;
    Ok(())
}

/// Lists the files of an ESP (path, size), for reports and tests.
pub fn list(file: &mut File, path: &Path, start: u64, len: u64) -> Result<Vec<(String, u64)>> {
    let mut window = Window {
        file,
        start,
        len,
        pos: 0,
    };
    let fs = FileSystem::new(&mut window, FsOptions::new())
        .map_err(|e| Error::Layout(format!("{} ESP mount: {e}", path.display())))?;
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), fs.root_dir())];
    while let Some((prefix, dir)) = stack.pop() {
        for entry in dir.iter() {
            let entry = entry.at(path)?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let full = format!("{prefix}{name}");
            if entry.is_dir() {
                stack.push((format!("{full}/"), entry.to_dir()));
            } else {
                out.push((full, entry.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}
