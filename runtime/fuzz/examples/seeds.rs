//! Writes seed inputs for the fuzz targets: for `oci_json`, the index, manifest and config
//! of a real image layout (made by fluxnode-image's `build_layout`, as tests and operators
//! make images) and of a fuller image (several layers of each kind, platforms, annotations,
//! every config field), and manifests just past the store's limits; for `tar_layer`, that
//! image's gzip layer and layers with every kind of entry (files, directories, symlinks,
//! hard links, whiteouts, an opaque marker, an extended attribute, a long name), plain, gzip
//! and zstd. A seed that decodes lets libFuzzer start from deep inside each decoder.
//!
//!   cargo run --example seeds -- <corpus dir>   (writes <dir>/<target>/seed-*)
//!
//! ./scripts/fuzz.sh runs it before fuzzing; the corpus is never committed.

use std::fs;
use std::io::Write;
use std::path::Path;

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use serde_json::{json, Value};

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
    )
}

fn write(dir: &Path, target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    for (i, s) in seeds.iter().enumerate() {
        fs::write(d.join(format!("seed-{i:02}")), s)?;
    }
    println!("{}: {} seeds", d.display(), seeds.len());
    Ok(())
}

/// An `oci_json` input: the three documents, NUL between them. Each must parse as its type.
fn documents(index: &[u8], manifest: &[u8], config: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<ImageIndex>(index).expect("an index");
    serde_json::from_slice::<ImageManifest>(manifest).expect("a manifest");
    serde_json::from_slice::<ImageConfiguration>(config).expect("a config");
    [index, manifest, config].join(&0u8)
}

/// The index, manifest, config and layer of a real layout of a small tree.
fn real_layout() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("bin")).unwrap();
    fs::create_dir_all(src.path().join("etc")).unwrap();
    fs::write(src.path().join("bin/hello"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::write(src.path().join("etc/hostname"), b"app\n").unwrap();
    std::os::unix::fs::symlink("hello", src.path().join("bin/hi")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let digest = image::oci::build_layout(
        src.path(),
        out.path(),
        &["/bin/hello".into(), "--loud".into()],
        &["PATH=/bin".into(), "A=1".into()],
        "seed:1",
    )
    .expect("build a layout");
    let blob = |d: &str| fs::read(out.path().join("blobs/sha256").join(&d[7..])).unwrap();
    let index = fs::read(out.path().join("index.json")).unwrap();
    let manifest = blob(&digest);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    let config = blob(m["config"]["digest"].as_str().unwrap());
    let layer = blob(m["layers"][0]["digest"].as_str().unwrap());
    (index, manifest, config, layer)
}

fn descriptor(media: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media, "digest": sha256(bytes), "size": bytes.len()})
}

/// A fuller image: every config field, layers of each media type, two platforms.
fn full_documents(layers: &[Vec<u8>]) -> (Value, Value, Value) {
    let config = json!({
        "created": "2026-01-02T03:04:05Z",
        "author": "fluxnode seeds",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "1000:1000",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
            "Entrypoint": ["/bin/app"],
            "Cmd": ["--port", "8080"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Labels": {"org.opencontainers.image.title": "app"},
            "StopSignal": "SIGTERM"
        },
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(l)).collect::<Vec<_>>()},
        "history": [
            {"created": "2026-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file", "comment": "base"},
            {"created_by": "/bin/sh -c true", "empty_layer": true}
        ]
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let media = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ];
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config_bytes),
        "layers": layers.iter().zip(media.iter().cycle()).map(|(l, m)| descriptor(m, l)).collect::<Vec<_>>(),
        "annotations": {"org.opencontainers.image.created": "2026-01-02T03:04:05Z"}
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let mut amd64 = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &manifest_bytes,
    );
    amd64["platform"] = json!({"architecture": "amd64", "os": "linux"});
    amd64["annotations"] = json!({"org.opencontainers.image.ref.name": "app:1"});
    let mut arm64 = amd64.clone();
    arm64["digest"] = sha256(b"another manifest").into();
    arm64["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd64, arm64],
        "annotations": {"org.opencontainers.image.ref.name": "app"}
    });
    (index, manifest, config)
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_800_000_000);
    h
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// A plain tar layer with every kind of entry the unpacker handles.
fn every_kind() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, "etc/", std::io::empty()).unwrap();
    file(&mut b, "etc/hostname", b"app\n");
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "etc/name", "hostname").unwrap();
    let mut h = header(tar::EntryType::Link, 0o644, 0);
    b.append_link(&mut h, "etc/hostname.bak", "etc/hostname")
        .unwrap();
    file(&mut b, "etc/.wh.motd", b"");
    file(&mut b, "var/cache/.wh..wh..opq", b"");
    b.append_pax_extensions([("SCHILY.xattr.trusted.fuzz", &b"y"[..])])
        .unwrap();
    file(&mut b, "var/cache/new", b"x");
    let long = format!("usr/share/{}/file", "long".repeat(30));
    file(&mut b, &long, b"long name");
    b.into_inner().unwrap()
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(raw).unwrap();
    e.finish().unwrap()
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: seeds <corpus dir>");
    let dir = Path::new(&dir);

    let (index, manifest, config, layer) = real_layout();
    let plain = every_kind();
    let zstd = zstd::encode_all(&plain[..], 19).unwrap();
    let layers = vec![plain.clone(), gzip(&plain), zstd.clone()];

    let mut json_seeds = vec![documents(&index, &manifest, &config)];
    let (full_index, full_manifest, full_config) = full_documents(&layers);
    json_seeds.push(documents(
        &bytes(&full_index),
        &bytes(&full_manifest),
        &bytes(&full_config),
    ));
    // Past the limits: a layer of 2 MiB (the fuzz store takes 1 MiB a layer, 4 MiB in all),
    // and more layers than one overlay mount takes.
    let mut big = full_manifest.clone();
    big["layers"][1]["size"] = (2u64 << 20).into();
    let mut deep = full_manifest.clone();
    deep["layers"] = (0..50u32)
        .map(|i| descriptor("application/vnd.oci.image.layer.v1.tar", &i.to_le_bytes()))
        .collect();
    for m in [big, deep] {
        json_seeds.push(documents(
            &bytes(&full_index),
            &bytes(&m),
            &bytes(&full_config),
        ));
    }
    write(dir, "oci_json", &json_seeds)?;

    write(
        dir,
        "tar_layer",
        &[layer, plain.clone(), gzip(&plain), zstd],
    )?;
    Ok(())
}
