//! Pulling an image from an OCI distribution registry into the store, with the `oci-client`
//! crate.
//!
//! A reference is `host[:port]/repo[:tag|@sha256:...]` (oci-client's parser; a reference
//! without a host is Docker Hub's). A tag resolves to a manifest digest, an image index to its
//! linux/amd64 manifest. Every blob (config, layers) is streamed to a file of an OCI image
//! layout under the pull directory, `<pulls>/<manifest hex>/` (the node's:
//! `/data/images/pulls`), its size and SHA-256 checked while it streams: never a whole
//! layer in memory, never a byte past the size the manifest declares. Then the store's
//! [`Store::import_layout`] imports that layout (checking digests, sizes and limits again,
//! unpacking each layer once) and the layout is removed. A blob that a pull interrupted
//! (a registry that died, a helper killed, a power cut) stays as `<hex>.partial` and the
//! next pull resumes it with a Range request; a whole blob is hashed again before it is
//! kept. Nothing is imported before every blob is whole and right, so a failed pull
//! leaves no image record and no layer in the store. Two pulls of one image at once: the
//! second waits for the first (a lock in its layout), then finds the image imported. A
//! reference by digest that the store already holds needs no registry at all.
//!
//! Auth, plain-HTTP registries and private CAs come from [`registries::load_registries`]
//! (`/data/etc/registries.toml`): anonymous, basic, or a bearer token; HTTPS unless the
//! registry is listed as insecure, its certificate checked against the system's roots,
//! Mozilla's (built in: the node image has no CA bundle) and the registry's own `ca`.
//!
//! [`pull`] blocks its caller for the whole transfer (it runs a tokio current-thread
//! runtime inside). It is meant for a helper process: PID1 runs `fluxnode pull` as a child
//! and reaps it from its loop, so a pull never blocks PID1's event loop; the helper writes
//! its [`Progress`] to a file that PID1 reads.

mod blob;
pub mod registries;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    OciImageIndex, IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::{Arch, ImageManifest, Os};

pub use self::registries::{load_registries, Registries, RegistriesError, Registry};
use super::store::{Imported, Store, StoreError};

/// The largest manifest or index taken (distribution's own limit is 4 MiB too).
const MANIFEST_MAX: usize = 4 << 20;

/// The largest image config taken (Docker's configs, history and all, are kilobytes).
const CONFIG_MAX: u64 = 16 << 20;

/// The manifest types asked for: OCI and Docker schema 2, images and indexes.
const ACCEPT: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// How a pull reaches registries and where it keeps its blobs while it runs.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub registries: Registries,
    /// Where each pull keeps its OCI layout until the import (`<store>/pulls`).
    pub dir: PathBuf,
    pub connect_timeout: Duration,
    /// The longest a registry may send nothing in the middle of a response.
    pub read_timeout: Duration,
}

impl PullOptions {
    /// Options for the store at `store_root`, its pulls kept in `<store_root>/pulls`.
    pub fn new(store_root: &Path, registries: Registries) -> Self {
        PullOptions {
            registries,
            dir: store_root.join("pulls"),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Bytes of the image's blobs (config and layers) on disk, of all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// A pull that failed, naming the image (as given), and the blob and the reason.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(
        "{reference:?}: not an image reference (host[:port]/repo[:tag|@sha256:...]): {reason}"
    )]
    Reference { reference: String, reason: String },
    #[error("{image}: registry {registry} unreachable: {reason}")]
    Unreachable {
        image: String,
        registry: String,
        reason: String,
    },
    #[error("{image}: registry {registry}: TLS: {reason}")]
    Tls {
        image: String,
        registry: String,
        reason: String,
    },
    #[error("{image}: {what}: unauthorized (401) by registry {registry}: {detail}")]
    Unauthorized {
        image: String,
        what: String,
        registry: String,
        detail: String,
    },
    #[error("{image}: manifest unknown: registry {registry} has no such tag or digest ({detail})")]
    ManifestUnknown {
        image: String,
        registry: String,
        detail: String,
    },
    #[error("{image}: image index {index} has no linux/amd64 manifest (it has: {found})")]
    NoPlatform {
        image: String,
        index: String,
        found: String,
    },
    #[error("{image}: {what} {expected}: digest mismatch: expected {expected}, got {got}")]
    Digest {
        image: String,
        what: &'static str,
        expected: String,
        got: String,
    },
    #[error("{image}: blob {blob}: bigger than the {declared} bytes the manifest declares")]
    TooBig {
        image: String,
        blob: String,
        declared: u64,
    },
    #[error(
        "{image}: blob {blob}: the registry sent {got} bytes, the manifest declares {declared}"
    )]
    Short {
        image: String,
        blob: String,
        got: u64,
        declared: u64,
    },
    #[error("{image}: blob {blob}: the transfer broke after {done} of {size} bytes (the next pull resumes it): {reason}")]
    Interrupted {
        image: String,
        blob: String,
        done: u64,
        size: u64,
        reason: String,
    },
    #[error("{image}: {what}: {reason}")]
    Registry {
        image: String,
        what: String,
        reason: String,
    },
    #[error("{image}: {detail}")]
    Unsupported { image: String, detail: String },
    #[error("{image}: {path}: {source}")]
    Io {
        image: String,
        path: String,
        source: io::Error,
    },
    #[error("{image}: {source}")]
    Store { image: String, source: StoreError },
}

/// One pull's names, for its errors.
struct Pulling<'a> {
    image: &'a str,
    registry: String,
}

/// An error and its sources, `a: b: c`, the way an operator needs to read it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        next = inner.source();
    }
    s
}

/// The TLS error under `e`, if a handshake is what failed (rustls's error travels inside
/// `io::Error`s, nested, whose `source` skips what they hold, so each is looked into).
fn tls_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    let held = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
    if let Some(t) = held.and_then(|inner| tls_error(inner)) {
        return Some(t);
    }
    e.source().and_then(tls_error)
}

/// Gives the process a CA bundle when the system has none (the node image has none).
///
/// oci-client builds a throwaway default reqwest client whatever its config says
/// (`..Default::default()` in `Client::try_from`), and reqwest's rustls platform verifier
/// panics there when it finds no system CA certificate, even for a plain-HTTP registry.
/// So, when rustls-native-certs finds none, Mozilla's roots are written to
/// `<pulls>/roots.pem` and named by `SSL_CERT_FILE`, which it reads. That sets a process
/// environment variable: [`pull`] is meant for a helper process that calls it before any
/// other thread runs (as `fluxnode pull` does).
fn ensure_system_roots(dir: &Path) -> io::Result<()> {
    if !rustls_native_certs::load_native_certs().certs.is_empty() {
        return Ok(());
    }
    use base64::Engine as _;
    let mut pem = String::new();
    for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    fs::create_dir_all(dir)?;
    let path = dir.join("roots.pem");
    crate::durable::write(&path, pem.as_bytes(), 0o644).map_err(|e| e.source)?;
    std::env::set_var("SSL_CERT_FILE", &path);
    Ok(())
}

/// The roots an HTTPS registry's certificate may chain to, besides the system's: Mozilla's
/// and the registry's own `ca`.
fn roots(p: &Pulling<'_>, entry: Option<&Registry>) -> Result<Vec<Certificate>, PullError> {
    let mut roots: Vec<Certificate> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| Certificate {
            encoding: CertificateEncoding::Der,
            data: c.to_vec(),
        })
        .collect();
    if let Some(ca) = entry.and_then(|e| e.ca.as_ref()) {
        roots.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: fs::read(ca).map_err(p.io(ca))?,
        });
    }
    Ok(roots)
}

impl Pulling<'_> {
    fn io<'p>(&'p self, path: &'p Path) -> impl FnOnce(io::Error) -> PullError + 'p {
        move |source| PullError::Io {
            image: self.image.to_owned(),
            path: path.display().to_string(),
            source,
        }
    }

    fn unsupported(&self, detail: String) -> PullError {
        PullError::Unsupported {
            image: self.image.to_owned(),
            detail,
        }
    }

    /// What an oci-client error means for this pull; `what` is the manifest or blob asked.
    fn oci(&self, e: OciDistributionError, what: &str) -> PullError {
        let image = self.image.to_owned();
        let registry = self.registry.clone();
        let unauthorized = |detail: String| PullError::Unauthorized {
            image: image.clone(),
            what: what.to_owned(),
            registry: registry.clone(),
            detail,
        };
        match e {
            OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
                match tls_error(&r) {
                    Some(t) => {
                        let hint = match t {
                            rustls::Error::InvalidMessage(_) => {
                                " (a plain-HTTP registry? list it with insecure = true)"
                            }
                            rustls::Error::InvalidCertificate(_) => {
                                " (a private CA? give it as ca = \"/path.pem\")"
                            }
                            _ => "",
                        };
                        PullError::Tls {
                            image,
                            registry,
                            reason: format!("{}{hint}", chain(&r)),
                        }
                    }
                    None => PullError::Unreachable {
                        image,
                        registry,
                        reason: chain(&r),
                    },
                }
            }
            OciDistributionError::UnauthorizedError { url } => unauthorized(url),
            OciDistributionError::AuthenticationFailure(reason) => unauthorized(reason),
            OciDistributionError::RegistryError { envelope, url } => {
                let detail = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let has = |c: OciErrorCode| envelope.errors.iter().any(|e| e.code == c);
                if has(OciErrorCode::Unauthorized) || has(OciErrorCode::Denied) {
                    unauthorized(format!("{detail} ({url})"))
                } else if what == "manifest"
                    && (has(OciErrorCode::ManifestUnknown) || has(OciErrorCode::NameUnknown))
                {
                    PullError::ManifestUnknown {
                        image,
                        registry,
                        detail,
                    }
                } else {
                    PullError::Registry {
                        image,
                        what: what.to_owned(),
                        reason: format!("{detail} ({url})"),
                    }
                }
            }
            OciDistributionError::ServerError { code, url, message } => match code {
                401 => unauthorized(url),
                404 if what == "manifest" => PullError::ManifestUnknown {
                    image,
                    registry,
                    detail: format!("404 at {url}"),
                },
                _ => PullError::Registry {
                    image,
                    what: what.to_owned(),
                    reason: format!("HTTP {code} at {url}: {}", message.trim()),
                },
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => PullError::Digest {
                image,
                what: if what == "manifest" {
                    "manifest"
                } else {
                    "blob"
                },
                expected,
                got: actual,
            },
            other => PullError::Registry {
                image,
                what: what.to_owned(),
                reason: chain(&other),
            },
        }
    }
}

/// The `<hex>` of a `sha256:<hex>` digest, or None (it becomes a file name).
fn sha256_hex(d: &str) -> Option<&str> {
    d.strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The linux/amd64 entry of an index (no variant, or `v1`, preferred to others).
fn pick_amd64(index: &OciImageIndex) -> Option<&str> {
    let amd64 = |e: &&oci_client::manifest::ImageIndexEntry| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.os == Os::Linux && p.architecture == Arch::Amd64)
    };
    let plain = |e: &&oci_client::manifest::ImageIndexEntry| {
        e.platform
            .as_ref()
            .is_some_and(|p| matches!(p.variant.as_deref(), None | Some("") | Some("v1")))
    };
    let mut all = index.manifests.iter().filter(amd64);
    let first = all.clone().find(plain).or_else(|| all.next());
    first.map(|e| e.digest.as_str())
}

fn platforms(index: &OciImageIndex) -> String {
    let found: Vec<String> = index
        .manifests
        .iter()
        .map(|e| match &e.platform {
            Some(p) => match &p.variant {
                Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
                _ => format!("{}/{}", p.os, p.architecture),
            },
            None => format!("{} (no platform)", e.digest),
        })
        .collect();
    if found.is_empty() {
        "no manifests".into()
    } else {
        found.join(", ")
    }
}

fn is_index(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|p| match p.media_type.as_deref() {
        Some(OCI_IMAGE_INDEX_MEDIA_TYPE | IMAGE_MANIFEST_LIST_MEDIA_TYPE) => true,
        Some(_) => false,
        None => p.manifests.is_some(),
    })
}

/// Pulls `reference` into `store`; see the module doc. `progress` hears of every chunk
/// written (bytes of all the image's blobs on disk, of their total).
pub fn pull(
    reference: &str,
    store: &Store,
    opts: &PullOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, PullError> {
    let parsed: Reference = reference.parse().map_err(|e| PullError::Reference {
        reference: reference.to_owned(),
        reason: format!("{e}"),
    })?;
    let p = Pulling {
        image: reference,
        registry: parsed.resolve_registry().to_owned(),
    };
    // reqwest takes the process's rustls provider: ring, already in the tree (another
    // install first, in this process, is as good).
    let _ = rustls::crypto::ring::default_provider().install_default();
    ensure_system_roots(&opts.dir).map_err(p.io(&opts.dir))?;
    let entry = opts
        .registries
        .find(parsed.registry(), parsed.resolve_registry());
    let auth = entry.map_or(RegistryAuth::Anonymous, Registry::auth);
    let protocol = match entry {
        Some(r) if r.insecure => ClientProtocol::HttpsExcept(vec![p.registry.clone()]),
        _ => ClientProtocol::Https,
    };
    // Already in the store under the digest asked for: no registry needed.
    if let Some(d) = parsed.digest() {
        if let Ok(Some(img)) = store.image(d) {
            if img.layers.iter().all(|l| l.is_dir()) {
                progress(Progress { done: 0, total: 0 });
                return Ok(img);
            }
        }
    }
    let client = Client::try_from(ClientConfig {
        protocol,
        extra_root_certificates: roots(&p, entry)?,
        platform_resolver: None,
        connect_timeout: Some(opts.connect_timeout),
        read_timeout: Some(opts.read_timeout),
        ..Default::default()
    })
    .map_err(|e| p.unsupported(format!("cannot make an HTTP client: {}", chain(&e))))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| p.unsupported(format!("cannot start a tokio runtime: {e}")))?;
    rt.block_on(pull_async(
        &p, &client, &parsed, &auth, store, opts, progress,
    ))
}

async fn manifest(
    p: &Pulling<'_>,
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<(Vec<u8>, String), PullError> {
    let (body, digest) = client
        .pull_manifest_raw(reference, auth, ACCEPT)
        .await
        .map_err(|e| p.oci(e, "manifest"))?;
    if body.len() > MANIFEST_MAX {
        return Err(p.unsupported(format!(
            "manifest {digest} is {} bytes; at most {MANIFEST_MAX} are taken",
            body.len()
        )));
    }
    Ok((body.to_vec(), digest))
}

async fn pull_async(
    p: &Pulling<'_>,
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
    store: &Store,
    opts: &PullOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Imported, PullError> {
    let (mut body, mut digest) = manifest(p, client, reference, auth).await?;
    if is_index(&body) {
        let index: OciImageIndex = serde_json::from_slice(&body)
            .map_err(|e| p.unsupported(format!("image index {digest}: not an image index: {e}")))?;
        let chosen = pick_amd64(&index).ok_or_else(|| PullError::NoPlatform {
            image: p.image.to_owned(),
            index: digest.clone(),
            found: platforms(&index),
        })?;
        let by_digest = reference.clone_with_digest(chosen.to_owned());
        (body, digest) = manifest(p, client, &by_digest, auth).await?;
        if is_index(&body) {
            return Err(p.unsupported(format!(
                "manifest {digest}: an image index inside an image index is not supported"
            )));
        }
    }
    let hex = sha256_hex(&digest)
        .ok_or_else(|| p.unsupported(format!("manifest digest {digest:?}: not sha256")))?
        .to_owned();
    let parsed: ImageManifest = serde_json::from_slice(&body)
        .map_err(|e| p.unsupported(format!("manifest {digest}: not an image manifest: {e}")))?;
    let media_type = parsed
        .media_type()
        .as_ref()
        .map_or(OCI_IMAGE_MEDIA_TYPE.to_owned(), |m| m.to_string());

    // The config, then the layers, each once.
    let mut wants: Vec<(String, u64, String)> = Vec::new();
    for d in std::iter::once(parsed.config()).chain(parsed.layers()) {
        let dg = d.digest().to_string();
        if !wants.iter().any(|w| w.0 == dg) {
            wants.push((dg, d.size(), d.media_type().to_string()));
        }
    }
    let mut tally = blob::Tally {
        done: 0,
        total: wants.iter().map(|w| w.1).sum(),
        report: progress,
    };
    // Already here: nothing to fetch.
    let stored = |tally: &mut blob::Tally<'_>| match store.image(&digest) {
        Ok(Some(img)) if img.layers.iter().all(|l| l.is_dir()) => {
            tally.done = tally.total;
            tally.tell();
            Some(img)
        }
        _ => None,
    };
    if let Some(img) = stored(&mut tally) {
        return Ok(img);
    }

    let layout = opts.dir.join(&hex);
    store
        .check_manifest(&layout, &digest, &parsed)
        .map_err(|source| PullError::Store {
            image: p.image.to_owned(),
            source,
        })?;
    // The store reads the config whole into memory: the store's limits are for layers.
    let config_size = parsed.config().size();
    if config_size > CONFIG_MAX {
        return Err(p.unsupported(format!(
            "config {}: {config_size} bytes declared; at most {CONFIG_MAX} are taken",
            parsed.config().digest()
        )));
    }
    let blobs_dir = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs_dir).map_err(p.io(&blobs_dir))?;
    // One pull of this image at a time: another waits here, then finds it imported.
    let lock_path = layout.join("lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(p.io(&lock_path))?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| p.io(&lock_path)(e.into()))?;
    if let Some(img) = stored(&mut tally) {
        let _ = fs::remove_dir_all(&layout);
        return Ok(img);
    }

    let write = |path: PathBuf, bytes: &[u8]| fs::write(&path, bytes).map_err(p.io(&path));
    write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write(blobs_dir.join(&hex), &body)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": body.len()}],
    });
    write(layout.join("index.json"), index.to_string().as_bytes())?;

    tally.tell();
    for (dg, size, media) in &wants {
        let hex = sha256_hex(dg)
            .ok_or_else(|| p.unsupported(format!("blob digest {dg:?}: not sha256")))?;
        let want = blob::Want {
            digest: dg,
            hex,
            size: *size,
            media_type: media,
        };
        blob::fetch(p, client, reference, &want, &blobs_dir, &mut tally).await?;
    }

    match store.import_layout(&layout) {
        Ok(img) => {
            let _ = fs::remove_dir_all(&layout);
            Ok(img)
        }
        Err(source) => {
            // Content the store refuses is dropped; a disk that failed keeps the blobs
            // for the next try.
            let keep = matches!(
                source,
                StoreError::Io { .. }
                    | StoreError::Durable(_)
                    | StoreError::Unpack(super::unpack::UnpackError::Io { .. })
            );
            if !keep {
                let _ = fs::remove_dir_all(&layout);
            }
            Err(PullError::Store {
                image: p.image.to_owned(),
                source,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>, &str)]) -> OciImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(os, arch, variant, d)| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = (*v).into();
                }
                serde_json::json!({
                    "mediaType": OCI_IMAGE_MEDIA_TYPE,
                    "digest": d,
                    "size": 1,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    #[test]
    fn linux_amd64_is_picked_from_an_index_and_its_absence_names_what_is_there() {
        let i = index(&[
            ("linux", "arm64", Some("v8"), "sha256:a"),
            ("linux", "amd64", Some("v3"), "sha256:b"),
            ("linux", "amd64", None, "sha256:c"),
        ]);
        assert_eq!(pick_amd64(&i), Some("sha256:c"));
        let i = index(&[("linux", "amd64", Some("v3"), "sha256:b")]);
        assert_eq!(pick_amd64(&i), Some("sha256:b"));
        let i = index(&[
            ("linux", "arm64", Some("v8"), "sha256:a"),
            ("windows", "amd64", None, "sha256:w"),
        ]);
        assert_eq!(pick_amd64(&i), None);
        assert_eq!(platforms(&i), "linux/arm64/v8, windows/amd64");
    }

    #[test]
    fn an_index_is_told_from_a_manifest() {
        assert!(is_index(br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(is_index(
            br#"{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#
        ));
        assert!(!is_index(
            br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#
        ));
        assert!(!is_index(b"not json"));
    }

    #[test]
    fn only_plain_sha256_digests_name_files() {
        let h = "ab".repeat(32);
        assert_eq!(sha256_hex(&format!("sha256:{h}")), Some(h.as_str()));
        assert_eq!(sha256_hex(&format!("sha256:{}", h.to_uppercase())), None);
        assert_eq!(sha256_hex("sha256:../../etc"), None);
        assert_eq!(sha256_hex(&format!("sha512:{h}{h}")), None);
    }
}
