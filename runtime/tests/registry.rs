//! Registry pulls against a real registry: Debian's `docker-registry` (distribution 2.8)
//! started by each test on a free loopback port with its own storage, filled with
//! `skopeo copy` from OCI layouts made here (`apt-get install docker-registry skopeo`;
//! scripts/common.sh installs both).

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use qemu_tests::registry::{free_port, Registry};
use ring::digest::{digest, SHA256};
use runtime::image::pull::{self, Progress, PullError, PullOptions, Registries};
use runtime::image::store::Store;
use serde_json::json;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest(&SHA256, bytes).as_ref()))
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut v)
        .unwrap();
    v
}

/// A layout built by the project's own image builder (one gzip layer): its manifest digest.
fn small_layout(files: &[(&str, &[u8])], tag: &str) -> (tempfile::TempDir, String) {
    let src = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let p = src.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let digest =
        image::oci::build_layout(src.path(), out.path(), &["/bin/app".into()], &[], tag).unwrap();
    (out, digest)
}

fn put_blob(layout: &Path, bytes: &[u8]) -> serde_json::Value {
    let d = sha256(bytes);
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    json!({"digest": d, "size": bytes.len()})
}

/// An image of one uncompressed tar layer written here, for `arch`, into `layout` (the
/// project's builder gzips at its best level, far too slow in a debug test for 50 MB of
/// random bytes). Returns the manifest's descriptor and the layer's digest.
fn raw_image(layout: &Path, files: &[(&str, &[u8])], arch: &str) -> (serde_json::Value, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(bytes.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, *bytes).unwrap();
    }
    let layer_bytes = tar.into_inner().unwrap();
    let mut layer = put_blob(layout, &layer_bytes);
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
    let config = json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    });
    let mut config_desc = put_blob(layout, &serde_json::to_vec(&config).unwrap());
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer],
    });
    let mut desc = put_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    desc["platform"] = json!({"os": "linux", "architecture": arch});
    let layer_digest = layer["digest"].as_str().unwrap().to_owned();
    (desc, layer_digest)
}

/// Names `top` (a manifest or an index descriptor) as `tag` in the layout's index.json.
fn tag_layout(layout: &Path, top: &serde_json::Value, tag: &str) {
    let mut top = top.clone();
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    if let Some(o) = top.as_object_mut() {
        o.remove("platform");
    }
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
}

/// An image index over `manifests`, as a blob of the layout: its descriptor.
fn index_of(layout: &Path, manifests: &[serde_json::Value]) -> serde_json::Value {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let mut desc = put_blob(layout, &serde_json::to_vec(&index).unwrap());
    desc["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
    desc
}

fn insecure(r: &Registry) -> Registries {
    Registries::parse(&format!(
        "[[registry]]\nhost = \"{}\"\ninsecure = true\n",
        r.host()
    ))
    .unwrap()
}

/// What a pull gave, and every progress report it made.
struct Pulled {
    img: runtime::image::store::Imported,
    seen: Vec<Progress>,
}

struct Node {
    dir: tempfile::TempDir,
    store: Store,
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("images")).unwrap();
    Node { dir, store }
}

impl Node {
    fn opts(&self, registries: Registries) -> PullOptions {
        let mut o = PullOptions::new(&self.dir.path().join("images"), registries);
        o.connect_timeout = Duration::from_secs(5);
        o.read_timeout = Duration::from_secs(10);
        o
    }

    fn pull(&self, reference: &str, registries: Registries) -> Result<Pulled, PullError> {
        let mut seen = Vec::new();
        let img = pull::pull(reference, &self.store, &self.opts(registries), &mut |p| {
            seen.push(p)
        })?;
        Ok(Pulled { img, seen })
    }

    fn layers(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path().join("images/layers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn pulls(&self) -> PathBuf {
        self.dir.path().join("images/pulls")
    }
}

#[test]
fn a_pull_by_tag_and_by_digest_gives_the_same_image_with_its_files() {
    let reg = Registry::start();
    let noise = random(1 << 20);
    let (layout, digest) = small_layout(&[("bin/app", b"hello"), ("data/noise", &noise)], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");

    let a = node();
    let by_tag = a
        .pull(&format!("{}/team/app:v1", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(by_tag.img.manifest_digest, digest);
    assert_eq!(
        fs::read(by_tag.img.layers[0].join("bin/app")).unwrap(),
        b"hello"
    );
    assert_eq!(
        fs::read(by_tag.img.layers[0].join("data/noise")).unwrap(),
        noise
    );
    assert_eq!(a.store.image(&digest).unwrap(), Some(by_tag.img.clone()));
    let last = by_tag.seen.last().unwrap();
    assert_eq!(last.done, last.total);
    assert!(last.total > noise.len() as u64, "{last:?}");
    assert!(
        by_tag.seen.windows(2).all(|w| w[0].done <= w[1].done),
        "progress only grows"
    );
    assert_eq!(
        fs::read_dir(a.pulls())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        0,
        "the pull's layout is removed once imported"
    );

    let b = node();
    let by_digest = b
        .pull(&format!("{}/team/app@{digest}", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(by_digest.img.manifest_digest, digest);
    assert_eq!(
        fs::read(by_digest.img.layers[0].join("data/noise")).unwrap(),
        noise
    );

    // Pulled again: already in the store, nothing fetched.
    let again = a
        .pull(&format!("{}/team/app:v1", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(again.img, by_tag.img);
    assert_eq!(
        again.seen,
        [Progress {
            done: last.total,
            total: last.total
        }]
    );
    assert!(!a.pulls().join(&digest[7..]).exists());
}

#[test]
fn an_image_index_gives_its_linux_amd64_manifest_and_one_without_it_is_named() {
    let reg = Registry::start();
    let layout = tempfile::tempdir().unwrap();
    let (arm, _) = raw_image(layout.path(), &[("arch", b"arm64")], "arm64");
    let (amd, _) = raw_image(layout.path(), &[("arch", b"amd64")], "amd64");
    let both = index_of(layout.path(), &[arm.clone(), amd.clone()]);
    tag_layout(layout.path(), &both, "multi");
    reg.push(layout.path(), "multi", "team/multi:1");
    let arm_only = index_of(layout.path(), &[arm]);
    tag_layout(layout.path(), &arm_only, "arm");
    reg.push(layout.path(), "arm", "team/multi:arm");

    let n = node();
    let got = n
        .pull(&format!("{}/team/multi:1", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(got.img.manifest_digest, amd["digest"].as_str().unwrap());
    assert_eq!(fs::read(got.img.layers[0].join("arch")).unwrap(), b"amd64");
    assert_eq!(n.layers().len(), 1, "only the amd64 layer is fetched");

    let reference = format!("{}/team/multi:arm", reg.host());
    let err = n.pull(&reference, insecure(&reg)).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, PullError::NoPlatform { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "{reference}: image index {}",
            arm_only["digest"].as_str().unwrap()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("no linux/amd64 manifest (it has: linux/arm64)"),
        "{msg}"
    );
}

#[test]
fn a_tampered_blob_is_refused_naming_its_digest_and_nothing_is_kept() {
    let reg = Registry::start();
    let (layout, digest) = small_layout(&[("bin/app", &random(4096))], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let data = reg.blob_data(&layer);
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&data, &bytes).unwrap();

    let n = node();
    let reference = format!("{}/team/app:v1", reg.host());
    let err = n.pull(&reference, insecure(&reg)).err().unwrap();
    let msg = err.to_string();
    let got = sha256(&bytes);
    assert_eq!(
        msg,
        format!("{reference}: blob {layer}: digest mismatch: expected {layer}, got {got}")
    );
    assert_eq!(n.store.image(&digest).unwrap(), None);
    assert!(n.layers().is_empty());
    let blobs = n.pulls().join(&digest[7..]).join("blobs/sha256");
    assert!(!blobs.join(&layer[7..]).exists());
    assert!(
        !blobs.join(format!("{}.partial", &layer[7..])).exists(),
        "wrong bytes are not kept to resume from"
    );
}

#[test]
fn a_registry_killed_mid_pull_is_resumed_by_the_next_pull_and_nothing_half_written_is_used() {
    let mut reg = Registry::start();
    let big = random(50 << 20);
    let layout = tempfile::tempdir().unwrap();
    let (desc, layer) = raw_image(layout.path(), &[("big", &big)], "amd64");
    tag_layout(layout.path(), &desc, "big");
    reg.push(layout.path(), "big", "team/big:1");
    let digest = desc["digest"].as_str().unwrap().to_owned();
    let reference = format!("{}/team/big:1", reg.host());

    let n = node();
    let opts = n.opts(insecure(&reg));
    let (reached, wait_reached) = mpsc::channel();
    let (go_on, killed) = mpsc::channel::<()>();
    let first = std::thread::scope(|s| {
        let (reference, store, opts) = (&reference, &n.store, &opts);
        let pulling = s.spawn(move || {
            let mut told = false;
            pull::pull(reference, store, opts, &mut |p: Progress| {
                // Some megabytes in: hold the pull here while the registry is killed.
                if !told && p.done > 4 << 20 {
                    told = true;
                    reached.send(p).unwrap();
                    killed.recv().unwrap();
                }
            })
        });
        let at = wait_reached.recv_timeout(Duration::from_secs(120)).unwrap();
        reg.kill();
        go_on.send(()).unwrap();
        let r = pulling.join().unwrap();
        assert!(at.done < at.total);
        r
    });
    let Err(err) = first else {
        panic!("the pull did not fail once its registry was gone")
    };
    let msg = err.to_string();
    assert!(
        matches!(&err, PullError::Interrupted { blob, .. } if *blob == layer),
        "{msg}"
    );
    assert!(msg.contains("the transfer broke after"), "{msg}");
    assert_eq!(n.store.image(&digest).unwrap(), None, "no image record");
    assert!(n.layers().is_empty(), "no layer unpacked");
    let partial = n
        .pulls()
        .join(&digest[7..])
        .join("blobs/sha256")
        .join(format!("{}.partial", &layer[7..]));
    let kept = fs::metadata(&partial).unwrap().len();
    assert!(kept > 4 << 20 && kept < big.len() as u64, "{kept}");

    // With the registry down the pull names it unreachable and keeps what it has.
    let err = n.pull(&reference, insecure(&reg)).err().unwrap();
    assert!(matches!(err, PullError::Unreachable { .. }), "{err}");
    assert_eq!(fs::metadata(&partial).unwrap().len(), kept);

    reg.run();
    let log_before = reg.log().len();
    let second = n.pull(&reference, insecure(&reg)).unwrap();
    assert_eq!(second.img.manifest_digest, digest);
    assert_eq!(fs::read(second.img.layers[0].join("big")).unwrap(), big);
    assert_eq!(n.store.image(&digest).unwrap(), Some(second.img.clone()));
    // Resumed with a Range request: distribution 2.8 answers 206 with only the rest.
    let layer_size = desc_size(layout.path(), &layer);
    let log = reg.log()[log_before..].to_owned();
    let want = format!(
        "GET /v2/team/big/blobs/{layer} HTTP/1.1\" 206 {}",
        layer_size - kept
    );
    assert!(
        log.contains(&want),
        "{want} not in the registry log:\n{log}"
    );
    assert!(!partial.exists());
}

fn desc_size(layout: &Path, digest: &str) -> u64 {
    fs::metadata(layout.join("blobs/sha256").join(&digest[7..]))
        .unwrap()
        .len()
}

#[test]
fn a_partial_blob_with_wrong_bytes_is_fetched_again_whole() {
    let reg = Registry::start();
    let noise = random(256 << 10);
    let (layout, digest) = small_layout(&[("bin/app", &noise)], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let n = node();
    let blobs = n.pulls().join(&digest[7..]).join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    // What a power cut might leave: a partial blob with garbage, and a "whole" config
    // that is not right.
    fs::write(blobs.join(format!("{}.partial", &layer[7..])), random(1000)).unwrap();
    fs::write(blobs.join(&config[7..]), b"{}").unwrap();
    let got = n
        .pull(&format!("{}/team/app:v1", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(got.img.manifest_digest, digest);
    assert_eq!(fs::read(got.img.layers[0].join("bin/app")).unwrap(), noise);
}

#[test]
fn basic_auth_a_wrong_password_is_refused_with_401_named_and_the_right_one_works() {
    let reg = Registry::with_auth("team", "s3cret");
    let (layout, digest) = small_layout(&[("bin/app", b"private")], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let reference = format!("{}/team/app:v1", reg.host());
    let conf = |extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registries.toml");
        fs::write(
            &path,
            format!(
                "[[registry]]\nhost = \"{}\"\ninsecure = true\n{extra}",
                reg.host()
            ),
        )
        .unwrap();
        pull::load_registries(&path).unwrap()
    };
    let n = node();
    for extra in ["", "username = \"team\"\npassword = \"wrong\"\n"] {
        let err = n.pull(&reference, conf(extra)).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, PullError::Unauthorized { .. }), "{msg}");
        assert!(
            msg.starts_with(&format!(
                "{reference}: manifest: unauthorized (401) by registry {}",
                reg.host()
            )),
            "{msg}"
        );
    }
    assert_eq!(n.store.image(&digest).unwrap(), None);
    let got = n
        .pull(
            &reference,
            conf("username = \"team\"\npassword = \"s3cret\"\n"),
        )
        .unwrap();
    assert_eq!(got.img.manifest_digest, digest);
    assert_eq!(
        fs::read(got.img.layers[0].join("bin/app")).unwrap(),
        b"private"
    );
}

#[test]
fn an_unknown_tag_or_repository_is_named() {
    let reg = Registry::start();
    let (layout, _) = small_layout(&[("bin/app", b"x")], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let n = node();
    for reference in [
        format!("{}/team/app:v2", reg.host()),
        format!("{}/team/nothing:v1", reg.host()),
    ] {
        let err = n.pull(&reference, insecure(&reg)).err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, PullError::ManifestUnknown { .. }), "{msg}");
        assert!(
            msg.starts_with(&format!(
                "{reference}: manifest unknown: registry {} has no such tag or digest",
                reg.host()
            )),
            "{msg}"
        );
    }
}

#[test]
fn a_registry_that_is_not_there_is_named_unreachable() {
    let host = format!("127.0.0.1:{}", free_port());
    let reference = format!("{host}/team/app:v1");
    let registries = Registries::parse(&format!(
        "[[registry]]\nhost = \"{host}\"\ninsecure = true\n"
    ))
    .unwrap();
    let err = node().pull(&reference, registries).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, PullError::Unreachable { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!("{reference}: registry {host} unreachable: ")),
        "{msg}"
    );
    assert!(msg.contains("Connection refused"), "{msg}");
}

#[test]
fn https_is_used_unless_the_registry_is_listed_insecure() {
    let reg = Registry::start();
    let (layout, _) = small_layout(&[("bin/app", b"x")], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let err = node()
        .pull(
            &format!("{}/team/app:v1", reg.host()),
            Registries::default(),
        )
        .err()
        .unwrap();
    // A TLS handshake with a plain HTTP server: refused before any request is sent.
    assert!(matches!(err, PullError::Tls { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("(a plain-HTTP registry? list it with insecure = true)"),
        "{err}"
    );
}

#[test]
fn an_https_registry_is_trusted_through_its_ca_and_refused_without_it() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let reg = Registry::with_tls(&cert.cert.pem(), &cert.signing_key.serialize_pem());
    let (layout, digest) = small_layout(&[("bin/app", b"over https")], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let reference = format!("{}/team/app:v1", reg.host());
    let n = node();
    let err = n.pull(&reference, Registries::default()).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, PullError::Tls { .. }), "{msg}");
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    let ca = reg.dir.path().join("cert.pem");
    let registries = Registries::parse(&format!(
        "[[registry]]\nhost = \"{}\"\nca = \"{}\"\n",
        reg.host(),
        ca.display()
    ))
    .unwrap();
    let got = n.pull(&reference, registries).unwrap();
    assert_eq!(got.img.manifest_digest, digest);
    assert_eq!(
        fs::read(got.img.layers[0].join("bin/app")).unwrap(),
        b"over https"
    );
}

/// The node image has no CA bundle: a pull still works (Mozilla's roots are built in),
/// here from a plain-HTTP registry. Run in a child process of this test binary, with the
/// system's roots hidden from rustls (its loader reads these variables), so no other test
/// shares that environment.
#[test]
fn a_system_without_ca_certificates_still_pulls() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "without_ca_certificates",
            "--ignored",
            "--nocapture",
        ])
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
#[ignore = "run by a_system_without_ca_certificates_still_pulls, in a child process"]
fn without_ca_certificates() {
    assert_eq!(
        std::env::var_os("SSL_CERT_DIR").as_deref(),
        Some(std::ffi::OsStr::new("/nonexistent"))
    );
    let reg = Registry::start();
    let (layout, digest) = small_layout(&[("bin/app", b"x")], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let got = node()
        .pull(&format!("{}/team/app:v1", reg.host()), insecure(&reg))
        .unwrap();
    assert_eq!(got.img.manifest_digest, digest);
}

/// distribution does bearer auth only through a token server of its own, so a listener
/// here stands for the registry: it records what it is asked and knows no manifest.
#[test]
fn a_bearer_token_is_sent_as_it_is() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    let registries = Registries::parse(&format!(
        "[[registry]]\nhost = \"{host}\"\ninsecure = true\ntoken = \"tok-123\"\n"
    ))
    .unwrap();
    let reference = format!("{host}/team/app:v1");
    let err = node().pull(&reference, registries).err().unwrap();
    assert!(matches!(err, PullError::ManifestUnknown { .. }), "{err}");
    let asked: Vec<String> = rx.try_iter().collect();
    let manifest = asked
        .iter()
        .find(|h| h.starts_with("GET /v2/team/app/manifests/v1 "))
        .unwrap_or_else(|| panic!("{asked:?}"));
    assert!(
        manifest
            .to_ascii_lowercase()
            .contains("\r\nauthorization: bearer tok-123\r\n"),
        "{manifest}"
    );
}

#[test]
fn a_blob_longer_or_shorter_than_its_manifest_says_is_refused() {
    let reg = Registry::start();
    let (layout, digest) = small_layout(&[("bin/app", &random(64 << 10))], "v1");
    reg.push(layout.path(), "v1", "team/app:v1");
    let mut manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.path().join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    let n = node();
    // distribution 2.8 takes a manifest whose sizes are wrong (it checks only that the
    // blobs exist).
    manifest["layers"][0]["size"] = (size - 100).into();
    reg.put_manifest("team/app:small", &serde_json::to_vec(&manifest).unwrap());
    let reference = format!("{}/team/app:small", reg.host());
    let msg = n
        .pull(&reference, insecure(&reg))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        msg,
        format!(
            "{reference}: blob {layer}: bigger than the {} bytes the manifest declares",
            size - 100
        )
    );
    manifest["layers"][0]["size"] = (size + 100).into();
    let lying = reg.put_manifest("team/app:big", &serde_json::to_vec(&manifest).unwrap());
    // A partial blob kept from before, longer than the registry's: its resume is refused
    // (416), so the blob is fetched from its start, and found short.
    let blobs = n.pulls().join(&lying[7..]).join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{}.partial", &layer[7..]));
    fs::write(&partial, random(size as usize + 50)).unwrap();
    let reference = format!("{}/team/app:big", reg.host());
    let msg = n
        .pull(&reference, insecure(&reg))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        msg,
        format!(
            "{reference}: blob {layer}: the registry sent {size} bytes, the manifest declares {}",
            size + 100
        )
    );
    assert!(reg.log().contains("\" 416 "), "{}", reg.log());
    assert!(!partial.exists());
    // A config declared huge is refused before anything is fetched.
    manifest["layers"][0]["size"] = size.into();
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    manifest["config"]["size"] = (1u64 << 40).into();
    reg.put_manifest("team/app:huge", &serde_json::to_vec(&manifest).unwrap());
    let reference = format!("{}/team/app:huge", reg.host());
    let msg = n
        .pull(&reference, insecure(&reg))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        msg,
        format!("{reference}: config {config}: 1099511627776 bytes declared; at most 16777216 are taken")
    );
    assert!(n.layers().is_empty());
}
