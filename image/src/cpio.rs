//! A deterministic cpio "newc" writer, the format the kernel unpacks as initramfs.
//! Entries are written sorted by path, with mtime 0, uid and gid 0, and inode numbers in
//! order, so the same tree always gives the same bytes.

use std::collections::BTreeMap;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    /// Permission bits only (e.g. 0o755).
    perm: u32,
}

/// A tree of entries keyed by path without a leading slash.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

fn normalize(path: &str) -> String {
    path.trim_matches('/').to_owned()
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `path` and every missing parent directory (mode 0755).
    pub fn add(&mut self, path: &str, kind: Kind, perm: u32) {
        let path = normalize(path);
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.entries.entry(parent.clone()).or_insert(Entry {
                kind: Kind::Dir,
                perm: 0o755,
            });
        }
        self.entries.insert(path, Entry { kind, perm });
    }

    pub fn dir(&mut self, path: &str, perm: u32) {
        self.add(path, Kind::Dir, perm);
    }

    pub fn file(&mut self, path: &str, data: Vec<u8>, perm: u32) {
        self.add(path, Kind::File(data), perm);
    }

    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&normalize(path))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serializes the archive, ending with the `TRAILER!!!` entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (type_bits, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match &entry.kind {
                Kind::Dir => (0o040000, 2, &[], (0, 0)),
                Kind::File(d) => (0o100000, 1, d, (0, 0)),
                Kind::Symlink(t) => (0o120000, 1, t.as_bytes(), (0, 0)),
                Kind::CharDev { major, minor } => (0o020000, 1, &[], (*major, *minor)),
            };
            let header = Header {
                ino: ino as u32 + 1,
                mode: type_bits | entry.perm,
                nlink,
                size: data.len() as u32,
                rdev,
            };
            write_entry(&mut out, &header, path, data);
        }
        let trailer = Header {
            ino: 0,
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        write_entry(&mut out, &trailer, "TRAILER!!!", &[]);
        out
    }
}

struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn write_entry(out: &mut Vec<u8>, h: &Header, name: &str, data: &[u8]) {
    let fields = [
        h.ino,
        h.mode,
        0, // uid
        0, // gid
        h.nlink,
        0, // mtime
        h.size,
        0, // devmajor
        0, // devminor
        h.rdev.0,
        h.rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_added_and_entries_sorted() {
        let mut a = Archive::new();
        a.file("/usr/bin/x", b"x".to_vec(), 0o755);
        a.file("/init", b"i".to_vec(), 0o755);
        assert!(a.contains("usr") && a.contains("usr/bin"));
        let bytes = a.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let order: Vec<usize> = [
            "init\0",
            "usr\0",
            "usr/bin\0",
            "usr/bin/x\0",
            "TRAILER!!!\0",
        ]
        .iter()
        .map(|n| text.find(n).expect(n))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn header_fields_follow_newc() {
        let mut a = Archive::new();
        a.file("hello", b"hi!".to_vec(), 0o644);
        let b = a.to_bytes();
        let field = |i: usize| {
            u32::from_str_radix(std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).unwrap(), 16)
                .unwrap()
        };
        assert_eq!(&b[..6], b"070701");
        assert_eq!(field(1), 0o100644, "mode");
        assert_eq!(field(5), 0, "mtime");
        assert_eq!(field(6), 3, "filesize");
        assert_eq!(field(11), 6, "namesize includes the NUL");
        // 110-byte header + "hello\0" = 116, already 4-aligned; then "hi!" and one pad byte.
        assert_eq!(&b[110..116], b"hello\0");
        assert_eq!(&b[116..120], b"hi!\0");
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn same_tree_gives_same_bytes_whatever_the_insert_order() {
        let mut a = Archive::new();
        a.file("b", vec![1], 0o644);
        a.add("dev/console", Kind::CharDev { major: 5, minor: 1 }, 0o600);
        let mut b = Archive::new();
        b.add("dev/console", Kind::CharDev { major: 5, minor: 1 }, 0o600);
        b.file("b", vec![1], 0o644);
        assert_eq!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn gnu_cpio_lists_what_we_wrote() {
        let mut a = Archive::new();
        a.file("etc/os-release", b"ID=fluxnode\n".to_vec(), 0o644);
        a.add("bin/sh", Kind::Symlink("fluxnode".into()), 0o777);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.cpio");
        std::fs::write(&path, a.to_bytes()).unwrap();
        let out = std::process::Command::new("cpio")
            .args(["-it", "-F"])
            .arg(&path)
            .output()
            .expect("cpio is installed by scripts/test.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            ["bin", "bin/sh", "etc", "etc/os-release"]
        );
    }
}
