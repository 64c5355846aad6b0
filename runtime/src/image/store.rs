//! The image store on /data/images: OCI image layouts imported by digest. Every blob is
//! checked against its digest before use (manifest and config here, layers while they
//! stream into `unpack`), and each layer is unpacked once, into `layers/<hex>/`, shared by
//! every image that has it and ready to be an overlay lowerdir. What an import found is
//! recorded in `images/<hex>.json`, so an app names its image by manifest digest alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use ring::digest::{digest, SHA256};

use super::unpack::{self, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {expected}: digest mismatch (got {got})")]
    Digest {
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{path}: {detail}")]
    Bad { path: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error(transparent)]
    Durable(#[from] crate::durable::DurableError),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// An image ready to run: its layers bottom first, and what its config says to run
/// (flattened, so records written before all of it was kept still read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Imported {
    pub manifest_digest: String,
    pub layers: Vec<PathBuf>,
    #[serde(flatten)]
    pub config: super::config::RunConfig,
}

/// A name part no other import running now uses (process id and a counter).
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// What the store takes, checked before anything is unpacked (and the unpacked size while
/// it unpacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One layer blob, as the manifest declares it.
    pub layer_bytes: u64,
    /// All layer blobs of an image together.
    pub image_bytes: u64,
    /// What one layer's files may add up to once unpacked.
    pub unpacked_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            layer_bytes: 16 << 30,
            image_bytes: 32 << 30,
            unpacked_bytes: 64 << 30,
        }
    }
}

/// The longest mount option string the kernel takes (one page, with its NUL).
const MOUNT_OPTIONS_MAX: usize = 4095;
/// Room kept in the options for `upperdir=` and `workdir=` of an instance.
const INSTANCE_OPTIONS: usize = 256;

pub struct Store {
    root: PathBuf,
    limits: Limits,
}

/// The `<hex>` of a `sha256:<hex>` digest, refusing anything else (it becomes a path).
fn hex_of(d: &str, path: &Path) -> Result<String, StoreError> {
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(StoreError::Bad {
            path: path.display().to_string(),
            detail: format!("unsupported digest {d:?}"),
        }),
    }
}

fn read_verified(layout: &Path, what: &'static str, expected: &str) -> Result<Vec<u8>, StoreError> {
    let path = layout.join("blobs/sha256").join(hex_of(expected, layout)?);
    let bytes = fs::read(&path).map_err(io_at(&path))?;
    let got = format!("sha256:{}", hex::encode(digest(&SHA256, &bytes).as_ref()));
    if got != expected {
        return Err(StoreError::Digest {
            what,
            expected: expected.to_owned(),
            got,
        });
    }
    Ok(bytes)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Bad {
        path: what.to_owned(),
        detail: e.to_string(),
    })
}

impl Store {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(root.join("layers")).map_err(io_at(root))?;
        fs::create_dir_all(root.join("images")).map_err(io_at(root))?;
        Ok(Store {
            root: root.to_owned(),
            limits: Limits::default(),
        })
    }

    /// The same store with other limits (tests, small nodes).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How many layers fit one overlay mount from this store (their paths go into the
    /// mount options, which the kernel takes up to one page).
    pub fn max_layers(&self) -> usize {
        let one = self
            .root
            .join("layers")
            .join("0".repeat(64))
            .as_os_str()
            .len()
            + 1;
        (MOUNT_OPTIONS_MAX - "lowerdir=".len() - INSTANCE_OPTIONS) / one
    }

    /// The checks `import_layout` makes on a parsed manifest before it reads a layer blob:
    /// the manifest's own digest (`digest`), its config's and its layers' are digests that can
    /// name a blob (`sha256:` and 64 hex digits), and its layers, as declared, are few enough
    /// for one overlay mount and within this store's limits. (That each blob is the size
    /// declared is checked after, on disk.) `layout` only names the image in errors. Public
    /// for the fuzz target `oci_json` (runtime/fuzz), which gives it manifests of any JSON.
    pub fn check_manifest(
        &self,
        layout: &Path,
        digest: &str,
        manifest: &ImageManifest,
    ) -> Result<(), StoreError> {
        let bad = |detail: String| StoreError::Bad {
            path: format!("image {digest}"),
            detail,
        };
        hex_of(digest, layout)?;
        hex_of(manifest.config().digest().as_ref(), layout)?;
        let layers = manifest.layers();
        if layers.len() > self.max_layers() {
            return Err(bad(format!(
                "{} layers; at most {} fit one overlay mount",
                layers.len(),
                self.max_layers()
            )));
        }
        let mut total: u64 = 0;
        for l in layers {
            let size = l.size();
            if size > self.limits.layer_bytes {
                return Err(bad(format!(
                    "layer {} is {size} bytes; the limit is {}",
                    l.digest(),
                    self.limits.layer_bytes
                )));
            }
            total = total.saturating_add(size);
            hex_of(l.digest().as_ref(), layout)?;
        }
        if total > self.limits.image_bytes {
            return Err(bad(format!(
                "its layers are {total} bytes; the limit is {}",
                self.limits.image_bytes
            )));
        }
        Ok(())
    }

    /// Refuses an image whose layers are too many for one overlay mount, or too big, or
    /// whose blobs are not the size the manifest says, before anything is unpacked.
    fn check_sizes(
        &self,
        layout: &Path,
        digest: &str,
        manifest: &ImageManifest,
    ) -> Result<(), StoreError> {
        self.check_manifest(layout, digest, manifest)?;
        for l in manifest.layers() {
            let size = l.size();
            let blob = layout
                .join("blobs/sha256")
                .join(hex_of(l.digest().as_ref(), layout)?);
            let on_disk = fs::metadata(&blob).map_err(io_at(&blob))?.len();
            if on_disk != size {
                return Err(StoreError::Bad {
                    path: format!("image {digest}"),
                    detail: format!(
                        "layer {}: {on_disk} bytes, the manifest says {size}",
                        l.digest()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Imports the first manifest of the OCI image layout at `layout`.
    pub fn import_layout(&self, layout: &Path) -> Result<Imported, StoreError> {
        let index_path = layout.join("index.json");
        let index: ImageIndex = parse(
            &fs::read(&index_path).map_err(io_at(&index_path))?,
            &index_path.display().to_string(),
        )?;
        let desc = index.manifests().first().ok_or_else(|| StoreError::Bad {
            path: index_path.display().to_string(),
            detail: "no manifest in the index".into(),
        })?;
        let manifest_digest = desc.digest().to_string();
        let manifest: ImageManifest = parse(
            &read_verified(layout, "manifest", &manifest_digest)?,
            &manifest_digest,
        )?;
        let config_digest = manifest.config().digest().to_string();
        let config: ImageConfiguration = parse(
            &read_verified(layout, "config", &config_digest)?,
            &config_digest,
        )?;
        self.check_sizes(layout, &manifest_digest, &manifest)?;
        let mut layers = Vec::new();
        for layer in manifest.layers() {
            let d = layer.digest().to_string();
            let hex = hex_of(&d, layout)?;
            let dest = self.root.join("layers").join(&hex);
            if !dest.exists() {
                // Private to this process: two imports of one layer may run at once.
                let tmp = self
                    .root
                    .join("layers")
                    .join(format!("{hex}.partial-{}", unique()));
                let _ = fs::remove_dir_all(&tmp);
                let blob_path = layout.join("blobs/sha256").join(&hex);
                let blob = fs::File::open(&blob_path).map_err(io_at(&blob_path))?;
                let max = self.limits.unpacked_bytes;
                if let Err(e) = unpack::unpack(io::BufReader::new(blob), &d, &tmp, max) {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(e.into());
                }
                // Every file of the layer reaches the disk before the layer's name does, so
                // a power cut never leaves a named layer with empty files (one syncfs
                // rather than an fsync per file).
                if let Err(e) = crate::durable::sync_fs(&tmp) {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(e.into());
                }
                if let Err(e) = fs::rename(&tmp, &dest) {
                    let _ = fs::remove_dir_all(&tmp);
                    // Another import finished the same layer first: theirs is as good.
                    if !dest.is_dir() {
                        return Err(io_at(&dest)(e));
                    }
                }
                crate::durable::sync_dir(&self.root.join("layers"))?;
            }
            layers.push(dest);
        }
        let imported = Imported {
            manifest_digest,
            layers,
            config: super::config::RunConfig::from_image(&config),
        };
        self.record(&imported)?;
        Ok(imported)
    }

    fn record_path(&self, digest: &str) -> Result<PathBuf, StoreError> {
        let hex = hex_of(digest, &self.root)?;
        Ok(self.root.join("images").join(format!("{hex}.json")))
    }

    /// Writes the image's record durably, so a reader sees either no record or a whole one,
    /// after a power cut too.
    fn record(&self, img: &Imported) -> Result<(), StoreError> {
        let path = self.record_path(&img.manifest_digest)?;
        let json = serde_json::to_vec_pretty(img).map_err(|e| StoreError::Bad {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(crate::durable::write(&path, &json, 0o644)?)
    }

    /// The image imported under `digest`, or None when it has not been imported.
    pub fn image(&self, digest: &str) -> Result<Option<Imported>, StoreError> {
        let path = self.record_path(digest)?;
        match fs::read(&path) {
            Ok(bytes) => parse(&bytes, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        let h = hex::encode(digest(&SHA256, reference.as_bytes()).as_ref());
        self.root.join("images/refs").join(format!("{h}.json"))
    }

    /// Remembers that the registry image `reference` was pulled as `manifest` (written
    /// durably), so an app naming it by tag starts from the store without asking again.
    pub fn record_ref(&self, reference: &str, manifest: &str) -> Result<(), StoreError> {
        let path = self.ref_path(reference);
        let json = serde_json::json!({"reference": reference, "digest": manifest});
        Ok(crate::durable::write(
            &path,
            json.to_string().as_bytes(),
            0o644,
        )?)
    }

    /// The image `reference` was last pulled as, when it is still in the store.
    pub fn by_ref(&self, reference: &str) -> Result<Option<Imported>, StoreError> {
        if reference.starts_with("sha256:") {
            return self.image(reference);
        }
        let path = self.ref_path(reference);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let v: serde_json::Value = parse(&bytes, &path.display().to_string())?;
        match v["digest"].as_str() {
            Some(d) => self.image(d),
            None => Ok(None),
        }
    }

    /// The manifest digest `source` (a layout or an oci-archive) would import as, from its
    /// `index.json`, without importing anything.
    pub fn source_digest(source: &Path) -> Result<String, StoreError> {
        let bytes = if source.is_dir() {
            let p = source.join("index.json");
            fs::read(&p).map_err(io_at(&p))?
        } else {
            let file = fs::File::open(source).map_err(io_at(source))?;
            let mut tar = tar::Archive::new(io::BufReader::new(file));
            let mut found = None;
            for entry in tar.entries().map_err(io_at(source))? {
                let mut entry = entry.map_err(io_at(source))?;
                let path = entry.path().map_err(io_at(source))?.into_owned();
                if path
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .eq([std::path::Component::Normal("index.json".as_ref())])
                {
                    let mut buf = Vec::new();
                    io::Read::read_to_end(&mut entry, &mut buf).map_err(io_at(source))?;
                    found = Some(buf);
                    break;
                }
            }
            found.ok_or_else(|| StoreError::Bad {
                path: source.display().to_string(),
                detail: "no index.json in the archive".into(),
            })?
        };
        let index: ImageIndex = parse(&bytes, &source.display().to_string())?;
        index
            .manifests()
            .first()
            .map(|d| d.digest().to_string())
            .ok_or_else(|| StoreError::Bad {
                path: source.display().to_string(),
                detail: "no manifest in the index".into(),
            })
    }

    /// Imports `source`: an OCI image layout directory, or an `oci-archive` tarball.
    pub fn import(&self, source: &Path) -> Result<Imported, StoreError> {
        if source.is_dir() {
            self.import_layout(source)
        } else {
            self.import_archive(source)
        }
    }

    /// Imports an `oci-archive` tarball (what `skopeo copy ... oci-archive:` writes): its
    /// layout is unpacked into a scratch directory of the store (regular files and
    /// directories only, nothing outside it), imported, and removed.
    pub fn import_archive(&self, archive: &Path) -> Result<Imported, StoreError> {
        let scratch = self.root.join(format!("incoming-{}", unique()));
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(&scratch).map_err(io_at(&scratch))?;
        let result = self
            .unpack_archive(archive, &scratch)
            .and_then(|()| self.import_layout(&scratch));
        let _ = fs::remove_dir_all(&scratch);
        result
    }

    fn unpack_archive(&self, archive: &Path, scratch: &Path) -> Result<(), StoreError> {
        let file = fs::File::open(archive).map_err(io_at(archive))?;
        let mut tar = tar::Archive::new(io::BufReader::new(file));
        let bad = |detail: String| StoreError::Bad {
            path: archive.display().to_string(),
            detail,
        };
        for entry in tar.entries().map_err(io_at(archive))? {
            let mut entry = entry.map_err(io_at(archive))?;
            let kind = entry.header().entry_type();
            let name = entry.path().map_err(io_at(archive))?.display().to_string();
            if !(kind.is_file() || kind.is_dir()) {
                return Err(bad(format!(
                    "entry {name:?} is not a file or directory; refused"
                )));
            }
            // unpack_in refuses absolute paths and `..`; false means it skipped the entry.
            if !entry.unpack_in(scratch).map_err(io_at(archive))? {
                return Err(bad(format!(
                    "entry {name:?} would escape the archive; refused"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, String) {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("bin")).unwrap();
        fs::write(src.path().join("bin/hello"), b"hi").unwrap();
        let out = tempfile::tempdir().unwrap();
        let digest = image::oci::build_layout(
            src.path(),
            out.path(),
            &["/bin/hello".into()],
            &["A=1".into()],
            "t",
        )
        .unwrap();
        (out, digest)
    }

    #[test]
    fn an_image_is_imported_with_its_layer_unpacked_once() {
        let (out, digest) = layout();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let img = store.import_layout(out.path()).unwrap();
        assert_eq!(img.manifest_digest, digest);
        assert_eq!(
            (img.config.cmd.clone(), img.config.env.clone()),
            (vec!["/bin/hello".to_owned()], vec!["A=1".to_owned()])
        );
        assert_eq!(fs::read(img.layers[0].join("bin/hello")).unwrap(), b"hi");
        assert_eq!(store.image(&digest).unwrap().as_ref(), Some(&img));
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(store.image(&other).unwrap(), None);
        fs::write(img.layers[0].join("marker"), b"kept").unwrap();
        let again = store.import_layout(out.path()).unwrap();
        assert_eq!(again, img);
        assert!(
            img.layers[0].join("marker").exists(),
            "the layer was not unpacked twice"
        );
    }

    #[test]
    fn imports_of_one_image_at_the_same_time_both_succeed() {
        let (out, digest) = layout();
        let store_dir = tempfile::tempdir().unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        Store::open(store_dir.path())
                            .unwrap()
                            .import_layout(out.path())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            assert_eq!(r.unwrap().manifest_digest, digest);
        }
        let layers: Vec<_> = fs::read_dir(store_dir.path().join("layers"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            layers.len(),
            1,
            "one layer, no partial leftovers: {layers:?}"
        );
    }

    #[test]
    fn an_oci_archive_imports_like_its_layout_and_leaves_no_scratch() {
        let (out, digest) = layout();
        let archive = out.path().with_extension("tar");
        let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
        b.append_dir_all(".", out.path()).unwrap();
        b.finish().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        assert_eq!(Store::source_digest(&archive).unwrap(), digest);
        assert_eq!(Store::source_digest(out.path()).unwrap(), digest);
        let img = store.import_archive(&archive).unwrap();
        assert_eq!(img.manifest_digest, digest);
        assert_eq!(fs::read(img.layers[0].join("bin/hello")).unwrap(), b"hi");
        let mut names: Vec<_> = fs::read_dir(store_dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["images", "layers"], "scratch directory removed");
        fs::remove_file(archive).unwrap();
    }

    #[test]
    fn an_archive_with_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("evil.tar");
        let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "blobs", "/etc").unwrap();
        b.finish().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let err = store.import_archive(&archive).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"blobs\" is not a file or directory"),
            "{err}"
        );
    }

    /// Imports `layout` into a fresh store, expecting it to fail.
    fn import_error(layout: &Path) -> (tempfile::TempDir, StoreError) {
        let store_dir = tempfile::tempdir().unwrap();
        let err = Store::open(store_dir.path())
            .unwrap()
            .import_layout(layout)
            .unwrap_err();
        (store_dir, err)
    }

    fn tamper(out: &Path, hex: &str) {
        let p = out.join("blobs/sha256").join(hex);
        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&p, bytes).unwrap();
    }

    #[test]
    fn a_tampered_layer_is_refused_naming_its_digest_and_nothing_is_left() {
        let (out, digest) = layout();
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(out.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
        )
        .unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
        tamper(out.path(), &layer[7..]);
        let (store_dir, err) = import_error(out.path());
        assert!(
            err.to_string().starts_with(&format!("layer {layer}: ")),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(store_dir.path().join("layers"))
                .unwrap()
                .count(),
            0,
            "no half-unpacked layer left"
        );
    }

    #[test]
    fn a_tampered_manifest_is_refused_naming_its_digest() {
        let (out, digest) = layout();
        tamper(out.path(), &digest[7..]);
        let (_store_dir, err) = import_error(out.path());
        assert!(
            err.to_string()
                .starts_with(&format!("manifest {digest}: digest mismatch (got sha256:")),
            "{err}"
        );
    }

    #[test]
    fn an_image_too_big_or_with_lying_sizes_is_refused_before_anything_is_unpacked() {
        let (out, digest) = layout();
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(out.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
        )
        .unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
        let size = manifest["layers"][0]["size"].as_u64().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let small = Limits {
            layer_bytes: size - 1,
            ..Limits::default()
        };
        let store = Store::open(store_dir.path()).unwrap().with_limits(small);
        let err = store.import_layout(out.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("image {digest}: layer {layer} is {size} bytes")),
            "{err}"
        );
        let small = Limits {
            image_bytes: size - 1,
            ..Limits::default()
        };
        let store = Store::open(store_dir.path()).unwrap().with_limits(small);
        let err = store.import_layout(out.path()).unwrap_err().to_string();
        assert!(err.contains("its layers are"), "{err}");
        // A blob longer than its manifest says.
        let blob = out.path().join("blobs/sha256").join(&layer[7..]);
        let mut f = fs::OpenOptions::new().append(true).open(&blob).unwrap();
        std::io::Write::write_all(&mut f, b"more").unwrap();
        let err = Store::open(store_dir.path())
            .unwrap()
            .import_layout(out.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{} bytes, the manifest says {size}", size + 4)),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(store_dir.path().join("layers"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn a_manifest_naming_a_blob_by_another_algorithm_is_refused_before_any_read() {
        let (out, digest) = layout();
        let path = out.path().join("blobs/sha256").join(&digest[7..]);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        manifest["layers"][0]["digest"] = format!("sha512:{}", "ab".repeat(64)).into();
        let manifest: ImageManifest = serde_json::from_value(manifest).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let err = store
            .check_manifest(Path::new("/nonexistent"), &digest, &manifest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported digest \"sha512:abab"), "{err}");
    }

    #[test]
    fn the_overlay_takes_the_layers_of_a_deep_image_from_this_store() {
        // The node's own store (not opened: nothing is made on this machine).
        let store = Store {
            root: "/data/images".into(),
            limits: Limits::default(),
        };
        // 64 hex and a separator per layer, next to room for the instance: about 45.
        let n = store.max_layers();
        assert!((40..=48).contains(&n), "{n}");
        let layers: Vec<PathBuf> = (0..n)
            .map(|i| store.root.join("layers").join(format!("{i:064x}")))
            .collect();
        let inst = super::super::instance::Instance::new(Path::new("/data/apps"), "web-0");
        assert!(inst.options(&layers).len() <= MOUNT_OPTIONS_MAX);
    }

    #[test]
    fn a_pulled_reference_finds_its_image_until_the_image_is_gone() {
        let (out, digest) = layout();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let r = "registry.example:5000/team/web:1.4";
        assert_eq!(store.by_ref(r).unwrap(), None);
        let img = store.import_layout(out.path()).unwrap();
        store.record_ref(r, &digest).unwrap();
        assert_eq!(store.by_ref(r).unwrap(), Some(img.clone()));
        assert_eq!(store.by_ref(&digest).unwrap(), Some(img));
        fs::remove_file(
            store_dir
                .path()
                .join("images")
                .join(format!("{}.json", &digest[7..])),
        )
        .unwrap();
        assert_eq!(store.by_ref(r).unwrap(), None);
    }
}
