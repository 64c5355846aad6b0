//! The user an app's process runs as, with Docker's semantics: `""` is root; `uid`,
//! `uid:gid`, `name` and `name:group` are looked up in the image's own /etc/passwd and
//! /etc/group, whose groups listing the user become its supplementary groups, and HOME
//! comes from its passwd entry. The image's files are read through `openat2` with
//! RESOLVE_IN_ROOT, so a symlink in an image (`/etc/passwd -> /etc/shadow`, `../../`) can
//! never reach the node's own files; the working directory is made the same way.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The most of /etc/passwd or /etc/group read (a bigger one is an error, not a hang).
const MAX_FILE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user {user:?}: no such user in the image's /etc/passwd")]
    NoUser { user: String },
    #[error("user {user:?}: no such group {group:?} in the image's /etc/group")]
    NoGroup { user: String, group: String },
    #[error("user {user:?}: {why}")]
    Bad { user: String, why: String },
    #[error("working directory {dir:?}: {why}")]
    WorkDir { dir: String, why: String },
}

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From the passwd entry, when there is one.
    pub home: Option<String>,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn open_in_root(root: &Path, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let dir = File::open(root).map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(dir.as_raw_fd(), path, how)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The text of `path` inside the image's root, or None when the image has no such file.
fn read_in_root(root: &Path, path: &str) -> Option<String> {
    let fd = open_in_root(root, path, OFlag::O_RDONLY).ok()?;
    let mut text = String::new();
    File::from(fd)
        .take(MAX_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (`""`, `uid`, `uid:gid`, `name`, `name:group`) against the image
/// whose root filesystem is at `root`.
pub fn resolve(spec: &str, root: &Path) -> Result<User, UserError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(User {
            home: Some("/root".into()),
            ..User::default()
        });
    }
    let (who, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let bad = |why: &str| UserError::Bad {
        user: spec.to_owned(),
        why: why.to_owned(),
    };
    if who.is_empty() || group.is_some_and(str::is_empty) {
        return Err(bad("expected uid, uid:gid, name or name:group"));
    }
    let users = read_in_root(root, "/etc/passwd")
        .map(|t| passwd(&t))
        .unwrap_or_default();
    let all_groups = read_in_root(root, "/etc/group")
        .map(|t| groups(&t))
        .unwrap_or_default();
    let entry = match who.parse::<u32>() {
        Ok(uid) => users.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            users
                .iter()
                .find(|p| p.name == who)
                .ok_or_else(|| UserError::NoUser {
                    user: spec.to_owned(),
                })?,
        ),
    };
    let uid = match who.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map(|p| p.uid).unwrap_or(0),
    };
    let gid = match group {
        None => entry.map_or(0, |p| p.gid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => all_groups
                .iter()
                .find(|x| x.name == g)
                .map(|x| x.gid)
                .ok_or_else(|| UserError::NoGroup {
                    user: spec.to_owned(),
                    group: g.to_owned(),
                })?,
        },
    };
    let mut additional_gids: Vec<u32> = match entry {
        Some(p) => all_groups
            .iter()
            .filter(|g| g.members.contains(&p.name))
            .map(|g| g.gid)
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: entry.map(|p| p.home.clone()).filter(|h| !h.is_empty()),
    })
}

/// Makes the working directory `dir` inside the image's root (as Docker does when the image
/// lacks it), owned by `uid:gid` where it is new; every step resolves inside the root.
pub fn make_workdir(root: &Path, dir: &str, uid: u32, gid: u32) -> Result<(), UserError> {
    let err = |why: String| UserError::WorkDir {
        dir: dir.to_owned(),
        why,
    };
    if !dir.starts_with('/') {
        return Err(err("not an absolute path".into()));
    }
    let mut at = String::new();
    for c in Path::new(dir).components() {
        let Component::Normal(name) = c else {
            if c == Component::RootDir {
                continue;
            }
            return Err(err("`.` or `..` in it".into()));
        };
        let parent = if at.is_empty() {
            "/".to_owned()
        } else {
            at.clone()
        };
        at = format!("{at}/{}", name.to_string_lossy());
        if open_in_root(root, &at, OFlag::O_DIRECTORY | OFlag::O_RDONLY).is_ok() {
            continue;
        }
        let p = open_in_root(root, &parent, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .map_err(|e| err(format!("{parent}: {e}")))?;
        nix::sys::stat::mkdirat(Some(p.as_raw_fd()), name, Mode::from_bits_truncate(0o755))
            .map_err(|e| err(format!("mkdir {at}: {e}")))?;
        let made = open_in_root(root, &at, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .map_err(|e| err(format!("{at}: {e}")))?;
        nix::unistd::fchown(
            made.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| err(format!("chown {at}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn image() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc");
        fs::create_dir_all(&etc).unwrap();
        fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:App:/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            etc.join("group"),
            "root:x:0:\napp:x:1234:\nextra:x:2000:app,other\nwheel:x:10:root\nmore:x:3000:app\n",
        )
        .unwrap();
        root
    }

    #[test]
    fn names_and_numbers_resolve_as_docker_does() {
        let img = image();
        let r = img.path();
        let app = resolve("app", r).unwrap();
        assert_eq!((app.uid, app.gid), (1234, 1234));
        assert_eq!(app.additional_gids, [2000, 3000]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        assert_eq!(resolve("1234", r).unwrap(), app);
        let g = resolve("app:extra", r).unwrap();
        assert_eq!(
            (g.uid, g.gid, g.additional_gids.clone()),
            (1234, 2000, vec![3000])
        );
        assert_eq!(resolve("1234:77", r).unwrap().gid, 77);
        // A uid the image does not know runs with gid 0 and no groups.
        let n = resolve("4242", r).unwrap();
        assert_eq!((n.uid, n.gid, n.additional_gids.len()), (4242, 0, 0));
        assert_eq!(resolve("", r).unwrap().uid, 0);
        assert_eq!(resolve("root", r).unwrap().additional_gids, [10]);
    }

    #[test]
    fn unknown_names_are_refused_naming_them() {
        let img = image();
        let e = resolve("nobody", img.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user \"nobody\": no such user in the image's /etc/passwd"
        );
        let e = resolve("app:staff", img.path()).unwrap_err();
        assert!(e.to_string().contains("no such group \"staff\""), "{e}");
        assert!(matches!(
            resolve("app:", img.path()),
            Err(UserError::Bad { .. })
        ));
    }

    #[test]
    fn a_symlinked_passwd_resolves_inside_the_image_never_on_the_node() {
        let img = tempfile::tempdir().unwrap();
        fs::create_dir_all(img.path().join("etc")).unwrap();
        // An absolute link: on the node it would be the node's own /etc/passwd, which has
        // root; inside the image it points at itself, a loop, so nothing resolves.
        std::os::unix::fs::symlink("/etc/passwd", img.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve("root", img.path()),
            Err(UserError::NoUser { .. })
        ));
        // A link that climbs out with `..` stays at the image's root.
        fs::remove_file(img.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../etc/passwd",
            img.path().join("etc/passwd"),
        )
        .unwrap();
        assert!(matches!(
            resolve("root", img.path()),
            Err(UserError::NoUser { .. })
        ));
    }

    #[test]
    fn the_workdir_is_made_inside_the_image_never_through_a_hostile_link() {
        let img = image();
        let outside = tempfile::tempdir().unwrap();
        // /srv -> an absolute path that exists on this machine but not in the image.
        std::os::unix::fs::symlink(outside.path(), img.path().join("srv")).unwrap();
        let e = make_workdir(img.path(), "/srv/work", 1234, 1234).unwrap_err();
        assert!(
            e.to_string().starts_with("working directory \"/srv/work\""),
            "{e}"
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing outside"
        );
        // A link inside the image is followed inside it.
        fs::create_dir_all(img.path().join("data")).unwrap();
        std::os::unix::fs::symlink("data", img.path().join("app")).unwrap();
        make_workdir(img.path(), "/app/work/deep", 1234, 1234).unwrap();
        let made = img.path().join("data/work/deep");
        assert!(made.is_dir());
        use std::os::unix::fs::MetadataExt;
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(fs::metadata(&made).unwrap().uid(), 1234);
        }
        make_workdir(img.path(), "/app/work/deep", 0, 0).unwrap();
        assert!(make_workdir(img.path(), "relative", 0, 0).is_err());
        assert!(make_workdir(img.path(), "/a/../b", 0, 0).is_err());
    }
}
