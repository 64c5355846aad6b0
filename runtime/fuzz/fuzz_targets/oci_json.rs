//! The OCI image JSON as the image store reads it: an image index, a manifest and a config,
//! parsed with oci-spec's types through serde_json as `Store::import_layout` parses them,
//! never panic; and `Store::check_manifest` accepts exactly the manifests it should (worked
//! out here on its own): the manifest's digest (the index's first), its config's and its
//! layers' are `sha256:` and 64 hex digits (they become file names), its layers are few
//! enough for one overlay mount and, as declared, within the store's limits. What the store
//! takes from a config (`RunConfig::from_image`) gives an argv and an environment (with a
//! PATH, and the app's variables) and goes into the image's record, which reads back the
//! same.
//!
//! The input is the three documents separated by NUL bytes (which JSON text never holds):
//! index, manifest, config; a missing one is empty.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use runtime::image::config::RunConfig;
use runtime::image::store::{Imported, Limits, Store};

/// Small limits, so both sides of each are within reach.
const LIMITS: Limits = Limits {
    layer_bytes: 1 << 20,
    image_bytes: 4 << 20,
    unpacked_bytes: 1 << 30,
};

/// A store whose directory is already gone: `check_manifest` reads nothing from it (and
/// its path, about as long as the node's /data/images, sets how many layers fit a mount).
fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Store::open(dir.path())
            .expect("open a store")
            .with_limits(LIMITS)
    })
}

fn names_a_blob(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let index = parts.next().unwrap_or_default();
    let manifest = parts.next().unwrap_or_default();
    let config = parts.next().unwrap_or_default();
    let store = store();

    // The index: the store takes its first manifest's digest.
    let digest = serde_json::from_slice::<ImageIndex>(index)
        .ok()
        .and_then(|i| i.manifests().first().map(|d| d.digest().to_string()))
        .unwrap_or_else(|| format!("sha256:{}", "0".repeat(64)));

    if let Ok(m) = serde_json::from_slice::<ImageManifest>(manifest) {
        let result = store.check_manifest(Path::new("/fuzz/layout"), &digest, &m);
        let layers = m.layers();
        let total: u128 = layers.iter().map(|l| u128::from(l.size())).sum();
        let acceptable = names_a_blob(&digest)
            && names_a_blob(m.config().digest().as_ref())
            && layers.len() <= store.max_layers()
            && layers
                .iter()
                .all(|l| l.size() <= LIMITS.layer_bytes && names_a_blob(l.digest().as_ref()))
            && total <= u128::from(LIMITS.image_bytes);
        assert_eq!(
            result.is_ok(),
            acceptable,
            "check_manifest said {result:?} to a manifest of {} layers, {total} bytes",
            layers.len()
        );
    }

    if let Ok(c) = serde_json::from_slice::<ImageConfiguration>(config) {
        let run = RunConfig::from_image(&c);
        let argv = run.argv(None, &[]);
        assert_eq!(argv, [&run.entrypoint[..], &run.cmd[..]].concat());
        let env = run.environment(&["APP=1".to_owned()], Some("/root"));
        assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
        assert!(env.iter().any(|e| e == "APP=1"), "{env:?}");
        let record = Imported {
            manifest_digest: digest,
            layers: Vec::new(),
            config: run,
        };
        let json = serde_json::to_vec_pretty(&record).expect("a record serializes");
        let back: Imported = serde_json::from_slice(&json).expect("a record reads back");
        assert_eq!(back, record);
    }
});
