//! A small OCI image from a directory, in OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`): one gzip layer (entries sorted, uid/gid 0, mtime 0), a config with
//! the command and environment, a manifest, and an index naming it. No registry is needed,
//! so tests and operators make images from, say, Debian's busybox-static.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, IoContext, Result};

fn spec_err(e: impl std::fmt::Display) -> Error {
    Error::Input {
        path: "<oci spec>".into(),
        detail: e.to_string(),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes a blob under `blobs/sha256/` and returns its descriptor.
fn put_blob(layout: &Path, media: MediaType, bytes: &[u8]) -> Result<Descriptor> {
    let digest = sha256(bytes);
    let path = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    fs::write(&path, bytes).at(&path)?;
    DescriptorBuilder::default()
        .media_type(media)
        .digest(Digest::from_str(&digest).map_err(spec_err)?)
        .size(bytes.len() as u64)
        .build()
        .map_err(spec_err)
}

fn add_tree(tar: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .at(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .at(&dir)?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).at(&path)?;
        let mut h = tar::Header::new_ustar();
        h.set_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, &rel, std::io::empty()).at(&path)?;
            add_tree(tar, root, &rel)?;
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, &rel, fs::read_link(&path).at(&path)?)
                .at(&path)?;
        } else if ft.is_file() {
            let data = fs::read(&path).at(&path)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(data.len() as u64);
            tar.append_data(&mut h, &rel, &data[..]).at(&path)?;
        }
    }
    Ok(())
}

/// Builds an OCI image layout at `out` from the tree at `from`; returns the manifest digest.
pub fn build_layout(
    from: &Path,
    out: &Path,
    cmd: &[String],
    env: &[String],
    tag: &str,
) -> Result<String> {
    let mut tar = tar::Builder::new(Vec::new());
    add_tree(&mut tar, from, Path::new(""))?;
    let raw = tar.into_inner().at(from)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw).at(out)?;
    let layer_bytes = gz.finish().at(out)?;

    fs::create_dir_all(out.join("blobs/sha256")).at(out)?;
    let layer = put_blob(out, MediaType::ImageLayerGzip, &layer_bytes)?;
    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .cmd(cmd.to_vec())
                .env(env.to_vec())
                .build()
                .map_err(spec_err)?,
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![sha256(&raw)])
                .build()
                .map_err(spec_err)?,
        )
        .build()
        .map_err(spec_err)?;
    let config = put_blob(
        out,
        MediaType::ImageConfig,
        &serde_json::to_vec(&config).map_err(spec_err)?,
    )?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .build()
        .map_err(spec_err)?;
    let mut manifest_desc = put_blob(
        out,
        MediaType::ImageManifest,
        &serde_json::to_vec(&manifest).map_err(spec_err)?,
    )?;
    let digest = manifest_desc.digest().to_string();
    manifest_desc.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            tag.to_owned(),
        )]
        .into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_desc])
        .build()
        .map_err(spec_err)?;
    let index_path = out.join("index.json");
    fs::write(&index_path, serde_json::to_vec(&index).map_err(spec_err)?).at(&index_path)?;
    let layout_path = out.join("oci-layout");
    fs::write(&layout_path, br#"{"imageLayoutVersion":"1.0.0"}"#).at(&layout_path)?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join("bin/hello"), b"#!/bin/sh\necho hi\n").unwrap();
        std::os::unix::fs::symlink("hello", dir.path().join("bin/hi")).unwrap();
        dir
    }

    #[test]
    fn a_layout_has_index_manifest_config_and_layer_with_matching_digests() {
        let src = tree();
        let out = tempfile::tempdir().unwrap();
        let digest = build_layout(
            src.path(),
            out.path(),
            &["/bin/hello".into()],
            &["A=1".into()],
            "test:1",
        )
        .unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(out.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], digest.as_str());
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "test:1"
        );
        for entry in fs::read_dir(out.path().join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let bytes = fs::read(entry.path()).unwrap();
            assert_eq!(
                sha256(&bytes),
                format!("sha256:{}", entry.file_name().to_string_lossy())
            );
        }
        let manifest_path = out.path().join("blobs/sha256").join(&digest[7..]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(manifest_path).unwrap()).unwrap();
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }

    #[test]
    fn the_same_tree_gives_the_same_manifest_digest() {
        let src = tree();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cmd = ["/bin/hello".to_owned()];
        assert_eq!(
            build_layout(src.path(), a.path(), &cmd, &[], "t").unwrap(),
            build_layout(src.path(), b.path(), &cmd, &[], "t").unwrap()
        );
    }
}
