//! An image a Docker engine built, as `docker save` streams it (`GET /images/{name}/get`),
//! rewritten as the `oci` or `docker` output bake writes itself: layers recompressed as the
//! output's `compression` asks, the engine's image config kept byte for byte. Part of
//! `exporter`; `remote` uses it where the engine's BuildKit has no `oci`/`docker` exporter.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::buildflags::ExportEntry;
use crate::exporter::compress::store_layer;
use crate::exporter::error::{Error, Result, io_error};
use crate::exporter::image::{Assembled, AssembledManifest, CREATED_ANNOTATION};
use crate::exporter::oci::{Files, index_json, write_directory, write_tar_destination};
use crate::exporter::options::{AnnotationKind, ImageOptions, parse_bool_attr};
use crate::exporter::output::ExportResponse;
use crate::exporter::reference::normalize;
use crate::oci::{Descriptor, DescriptorPlatform, Manifest, media_types};
use crate::platform::Platform;

/// One image of a `docker save` `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    layers: Vec<String>,
}

/// The fields of the image config the layout's descriptors need.
#[derive(Deserialize)]
struct SavedConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
}

/// Attributes of the image exporters that need bake's own layers to act on.
const NEEDS_OWN_LAYERS: &[&str] = &["rewrite-timestamp", "source-date-epoch"];

/// Writes the `docker save` tarball `saved` as the `oci` or `docker` output `entry` asks
/// (`docker` when `docker_archive`), using `scratch` (an empty directory) for the blobs.
pub fn export_saved(
    saved: impl Read,
    entry: &ExportEntry,
    docker_archive: bool,
    scratch: &Path,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    for key in entry.attrs.keys() {
        if NEEDS_OWN_LAYERS.contains(&key.as_str()) {
            return Err(Error::BadAttribute {
                key: key.clone(),
                value: entry.attrs[key].clone(),
                reason: "not supported for an image the Docker engine built".to_owned(),
            });
        }
    }
    let options = ImageOptions::parse(&entry.attrs, None)?;
    if options.annotations.has(AnnotationKind::Index) {
        // Compat: buildkit exporter/containerimage/writer.go; the engine exports one platform.
        return Err(Error::BadAttribute {
            key: "annotation-index".to_owned(),
            value: String::new(),
            reason: "index annotations not supported for single platform export".to_owned(),
        });
    }
    let names = options
        .names
        .iter()
        .map(|name| normalize(name))
        .collect::<Result<Vec<_>>>()?;
    let files = unpack(saved, &scratch.join("saved"))?;
    let store = crate::content::Store::open(scratch.join("content"))?;
    let assembled = assemble(&store, &files, &options)?;
    let index = index_json(&assembled, &names, &options)?;
    let manifest_json = if docker_archive {
        Some(crate::exporter::docker::manifest_json(
            &assembled.manifests[0].manifest,
            &names,
        )?)
    } else {
        None
    };
    let layout = Files {
        assembled: &assembled,
        index_json: &index,
        docker_manifest: manifest_json.as_deref(),
    };
    let as_tar = match entry.attrs.get("tar") {
        Some(value) if !docker_archive => parse_bool_attr("tar", value)?,
        _ => true,
    };
    if as_tar {
        write_tar_destination(entry, &layout, stdout)?;
    } else {
        write_directory(Path::new(&entry.destination), &layout)?;
    }
    let mut response = ExportResponse {
        metadata: assembled.metadata(),
    };
    if !names.is_empty() {
        response
            .metadata
            .insert("image.name".to_owned(), names.join(",").into());
    }
    Ok(response)
}

/// Copies the regular files of the tarball into `dir`, each under a flat name, and returns
/// where each archive path went.
fn unpack(saved: impl Read, dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(saved);
    let read_error = io_error("read the saved image from", "docker save");
    let entries = archive.entries().map_err(read_error)?;
    for (number, entry) in entries.enumerate() {
        let mut entry = entry.map_err(io_error("read the saved image from", "docker save"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(io_error("read the saved image from", "docker save"))?
            .to_string_lossy()
            .into_owned();
        // Numbered names: the archive's own paths are never used as paths here.
        let path = dir.join(format!("{number}"));
        let mut file = fs::File::create(&path).map_err(io_error("create", &path))?;
        io::copy(&mut entry, &mut file).map_err(io_error("write", &path))?;
        files.insert(name.trim_start_matches("./").to_owned(), path);
    }
    Ok(files)
}

/// Builds the image from the unpacked files: the config as it is, each layer compressed.
fn assemble(
    store: &crate::content::Store,
    files: &BTreeMap<String, PathBuf>,
    options: &ImageOptions,
) -> Result<Assembled> {
    let file = |name: &str| {
        files.get(name).ok_or_else(|| Error::Io {
            action: "find in the saved image",
            path: name.into(),
            source: io::ErrorKind::NotFound.into(),
        })
    };
    let manifest_path = file("manifest.json")?;
    let bytes = fs::read(manifest_path).map_err(io_error("read", manifest_path))?;
    let images: Vec<SavedImage> = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        what: "manifest.json of the saved image",
        source,
    })?;
    let [image] = images.as_slice() else {
        return Err(Error::Io {
            action: "find one image in",
            path: "manifest.json".into(),
            source: io::Error::other(format!("it lists {} images", images.len())),
        });
    };
    let config_path = file(&image.config)?;
    let config = fs::read(config_path).map_err(io_error("read", config_path))?;
    let parsed: SavedConfig = serde_json::from_slice(&config).map_err(|source| Error::Json {
        what: "image config of the saved image",
        source,
    })?;
    let oci = options.oci_media_types;
    let layer_media_type = options.compression.compression.layer_media_type(oci);
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    for name in &image.layers {
        let path = file(name)?;
        let tar = fs::File::open(path).map_err(io_error("open", path))?;
        let stored = store_layer(store, tar, &options.compression, layer_media_type, path)?;
        blobs.push((stored.descriptor.digest, stored.path.clone()));
        layers.push(stored.descriptor);
    }
    let config_digest = store.write(&config)?;
    blobs.push((config_digest, store.blob_path(&config_digest)));
    let (manifest_type, config_type) = if oci {
        (media_types::OCI_MANIFEST, media_types::OCI_CONFIG)
    } else {
        (media_types::DOCKER_MANIFEST, media_types::DOCKER_CONFIG)
    };
    let platform = Platform {
        os: parsed.os,
        architecture: parsed.architecture,
        variant: parsed.variant.filter(|v| !v.is_empty()),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: manifest_type.to_owned(),
        artifact_type: None,
        config: Descriptor::new(config_type, config_digest, config.len() as u64),
        layers,
        subject: None,
        annotations: options
            .annotations
            .for_kind(AnnotationKind::Manifest, Some(&platform)),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Json {
        what: "manifest",
        source,
    })?;
    let digest = store.write(&bytes)?;
    blobs.push((digest, store.blob_path(&digest)));
    let descriptor = Descriptor {
        annotations: options
            .annotations
            .for_kind(AnnotationKind::ManifestDescriptor, Some(&platform)),
        platform: Some(DescriptorPlatform::from(&platform)),
        ..Descriptor::new(manifest_type, digest, bytes.len() as u64)
    };
    let created = parsed.created.unwrap_or_default();
    let mut root = descriptor.clone();
    if !created.is_empty() {
        root.annotations
            .insert(CREATED_ANNOTATION.to_owned(), created.clone());
    }
    Ok(Assembled {
        root,
        manifests: vec![AssembledManifest {
            platform,
            descriptor,
            manifest,
        }],
        blobs,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `docker save` tarball of one image with one layer holding `hello`.
    fn saved_tarball() -> (Vec<u8>, String) {
        let mut layer = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        layer
            .append_data(&mut header, "hello", &b"hello"[..])
            .unwrap();
        let layer = layer.into_inner().unwrap();
        let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&layer)));
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let mut saved = tar::Builder::new(Vec::new());
        for (name, bytes) in [
            ("abc/layer.tar", layer.clone()),
            ("cfg.json", config.clone().into_bytes()),
            (
                "manifest.json",
                br#"[{"Config":"cfg.json","RepoTags":["x:latest"],"Layers":["abc/layer.tar"]}]"#
                    .to_vec(),
            ),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            saved.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        (saved.into_inner().unwrap(), config)
    }

    use sha2::Digest as _;

    #[test]
    fn saved_image_becomes_an_oci_layout_with_the_config_unchanged() {
        let (saved, config) = saved_tarball();
        let scratch = tempfile::tempdir().unwrap();
        let dest = scratch.path().join("out.tar");
        let entry = ExportEntry {
            kind: "oci".into(),
            destination: dest.display().to_string(),
            attrs: [("name".to_owned(), "acme/app:1".to_owned())].into(),
        };
        let work = scratch.path().join("work");
        let response = export_saved(&saved[..], &entry, false, &work, &mut io::sink()).unwrap();
        let mut names = BTreeMap::new();
        let mut archive = tar::Archive::new(fs::File::open(&dest).unwrap());
        for item in archive.entries().unwrap() {
            let mut item = item.unwrap();
            let mut bytes = Vec::new();
            item.read_to_end(&mut bytes).unwrap();
            names.insert(item.path().unwrap().display().to_string(), bytes);
        }
        let index: serde_json::Value = serde_json::from_slice(&names["index.json"]).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "docker.io/acme/app:1"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&names[&format!("blobs/sha256/{}", &manifest_digest[7..])])
                .unwrap();
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            media_types::OCI_LAYER_GZIP
        );
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        assert_eq!(
            names[&format!("blobs/sha256/{}", &config_digest[7..])],
            config.as_bytes()
        );
        assert!(!names.contains_key("manifest.json"));
        assert_eq!(
            response.metadata["containerimage.digest"],
            serde_json::Value::String(manifest_digest.to_owned())
        );
    }

    #[test]
    fn attributes_that_need_bake_layers_are_refused() {
        let (saved, _) = saved_tarball();
        let scratch = tempfile::tempdir().unwrap();
        let entry = ExportEntry {
            kind: "docker".into(),
            destination: "-".into(),
            attrs: [("rewrite-timestamp".to_owned(), "true".to_owned())].into(),
        };
        let error = export_saved(&saved[..], &entry, true, scratch.path(), &mut io::sink())
            .unwrap_err()
            .to_string();
        assert!(error.contains("rewrite-timestamp"), "{error}");
    }
}
