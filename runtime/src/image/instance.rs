//! App instances as overlays: the image's layers are the read-only lowerdirs and each
//! instance has its own upperdir on /data, so what an app writes survives its restarts and
//! the node's reboots. Also writes the instance's OCI bundle (`config.json`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::Spec;

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("instance {path}: {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        source: io::Error,
    },
    #[error("instance {0}: an image needs at least one layer")]
    NoLayers(String),
    #[error("bundle {path}: {detail}")]
    Bundle { path: String, detail: String },
}

/// `/data/apps/<id>/{upper,work,rootfs}`.
#[derive(Debug, Clone)]
pub struct Instance {
    dir: PathBuf,
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> InstanceError + 'a {
    move |source| InstanceError::Io {
        path: path.display().to_string(),
        op,
        source,
    }
}

impl Instance {
    pub fn new(apps_dir: &Path, id: &str) -> Self {
        Instance {
            dir: apps_dir.join(id),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The overlay's mount options: lowerdirs top first (layers are given bottom first).
    pub fn options(&self, layers: &[PathBuf]) -> String {
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|l| l.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.dir.join("upper").display(),
            self.dir.join("work").display()
        )
    }

    /// Mounts the overlay at `rootfs` (again, if it was mounted) and returns that path.
    pub fn mount(&self, layers: &[PathBuf]) -> Result<PathBuf, InstanceError> {
        if layers.is_empty() {
            return Err(InstanceError::NoLayers(self.dir.display().to_string()));
        }
        let options = self.options(layers);
        if options.len() > 4095 {
            return Err(InstanceError::Bundle {
                path: self.dir.display().to_string(),
                detail: format!(
                    "{} layers need {} bytes of overlay options; the kernel takes 4095",
                    layers.len(),
                    options.len()
                ),
            });
        }
        for sub in ["upper", "work", "rootfs"] {
            let p = self.dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err(&p, "mkdir"))?;
        }
        let rootfs = self.rootfs();
        let _ = umount2(&rootfs, MntFlags::MNT_DETACH);
        // nodev: a device node shipped in an image (or made on the rootfs) never opens;
        // the container's /dev is libcontainer's own tmpfs with the standard devices.
        mount(
            Some("overlay"),
            &rootfs,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| io_err(&rootfs, "mount overlay")(e.into()))?;
        Ok(rootfs)
    }

    /// Unmounts the overlay (lazily: a process still inside keeps its view).
    pub fn unmount(&self) {
        let _ = umount2(&self.rootfs(), MntFlags::MNT_DETACH);
    }

    /// Unmounts and removes the instance with what it wrote.
    pub fn remove(&self) -> Result<(), InstanceError> {
        self.unmount();
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&self.dir, "remove")(e)),
            _ => Ok(()),
        }
    }
}

/// Writes `spec` as `<bundle>/config.json` (creating the directory).
pub fn write_bundle(bundle: &Path, spec: &Spec) -> Result<(), InstanceError> {
    fs::create_dir_all(bundle).map_err(io_err(bundle, "mkdir"))?;
    let path = bundle.join("config.json");
    spec.save(&path).map_err(|e| InstanceError::Bundle {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_are_listed_top_first_next_to_the_instance_dirs() {
        let i = Instance::new(Path::new("/data/apps"), "web-0");
        let layers = [PathBuf::from("/s/layers/aa"), PathBuf::from("/s/layers/bb")];
        assert_eq!(
            i.options(&layers),
            "lowerdir=/s/layers/bb:/s/layers/aa,upperdir=/data/apps/web-0/upper,workdir=/data/apps/web-0/work"
        );
        assert!(matches!(i.mount(&[]), Err(InstanceError::NoLayers(_))));
    }

    /// A real overlay (root only: elsewhere there is nothing to mount with): the top
    /// layer's whiteout hides a file of the bottom one, and writes land in the upperdir.
    #[test]
    fn an_overlay_stacks_layers_and_keeps_writes_in_its_upperdir() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("not root: overlay mount not tried");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (bottom, top) = (dir.path().join("l1"), dir.path().join("l2"));
        fs::create_dir_all(&bottom).unwrap();
        fs::create_dir_all(&top).unwrap();
        fs::write(bottom.join("kept"), b"1").unwrap();
        fs::write(bottom.join("gone"), b"2").unwrap();
        fs::write(top.join("kept"), b"3").unwrap();
        nix::sys::stat::mknod(
            &top.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let i = Instance::new(&dir.path().join("apps"), "t-0");
        let root = i.mount(&[bottom, top]).unwrap();
        let got = (
            fs::read(root.join("kept")).unwrap(),
            root.join("gone").exists(),
        );
        fs::write(root.join("new"), b"4").unwrap();
        i.unmount();
        assert_eq!(got, (b"3".to_vec(), false));
        assert_eq!(fs::read(i.dir().join("upper/new")).unwrap(), b"4");
        i.remove().unwrap();
        assert!(!i.dir().exists());
    }

    #[test]
    fn a_bundle_is_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec::default();
        write_bundle(&dir.path().join("b"), &spec).unwrap();
        let back = Spec::load(dir.path().join("b/config.json")).unwrap();
        assert_eq!(back, spec);
    }
}
