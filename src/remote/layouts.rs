//! `oci-layout://` named contexts on the Docker engine: the engine's BuildKit cannot read a
//! layout on the client, so the image the context names is loaded into the engine
//! (`POST /images/load`, a `docker load` archive made from the layout's own blobs, each checked
//! against its digest) under an internal name, taken as an image context, and removed when
//! the build ends. Part of `remote`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use crate::plan::{BuildRequest, NamedContext};
use crate::platform::Platform;
use crate::remote::builder::{Builder, Driver};
use crate::remote::error::{Error, Result};
use crate::remote::saved::internal_image_name;
use crate::remote::transport::{Dialer, engine_upload, remove_image};
use crate::source::oci_layout::{OciLayout, selector};

/// One image of a layout: its directory, the tag or digest given, and the platform.
type Key = (PathBuf, Option<String>, Platform);

/// The layout images loaded into the engine for one build.
#[derive(Default)]
pub(crate) struct Layouts {
    images: BTreeMap<Key, String>,
}

/// The layout contexts of `request`, by context name.
fn contexts(request: &BuildRequest) -> impl Iterator<Item = (&String, &PathBuf, &Option<String>)> {
    request
        .named_contexts
        .iter()
        .filter_map(|(name, context)| match context {
            NamedContext::OciLayout { path, reference } => Some((name, path, reference)),
            _ => None,
        })
}

impl Layouts {
    /// Loads the image of every `oci-layout://` context in `groups` (target → its requests)
    /// into the engine, once per layout, reference and platform; `host` is the platform of a
    /// request that names none. Only the docker driver has a store to load into.
    /// What was loaded before a failure stays recorded, for [`Layouts::remove`].
    pub(crate) async fn load(
        &mut self,
        builder: &Builder,
        dialer: &Dialer,
        host: &Platform,
        groups: &BTreeMap<String, Vec<BuildRequest>>,
    ) -> Result<()> {
        let layouts = self;
        if builder.driver != Driver::Docker {
            return Ok(());
        }
        for (target, requests) in groups {
            for request in requests {
                let platform = request.platform.clone().unwrap_or_else(|| host.clone());
                for (_, path, reference) in contexts(request) {
                    let key = (
                        path.clone(),
                        reference.clone(),
                        platform.clone().normalize(),
                    );
                    if layouts.images.contains_key(&key) {
                        continue;
                    }
                    let name = internal_image_name("layout");
                    // Recorded first, so a failed load is still cleaned up.
                    layouts.images.insert(key.clone(), name.clone());
                    load_one(dialer, &key, &name)
                        .await
                        .map_err(|message| Error::Solve {
                            target: target.clone(),
                            message: format!(
                                "the `oci-layout://{}` context could not be loaded into the engine: {message}",
                                path.display()
                            ),
                        })?;
                }
            }
        }
        Ok(())
    }

    /// The engine images of `requests`' layout contexts, by context name: only where every
    /// platform of the target takes the same image, since one Dockerfile names one image.
    pub(crate) fn of(
        &self,
        host: &Platform,
        requests: &[BuildRequest],
    ) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
        for request in requests {
            let platform = request.platform.clone().unwrap_or_else(|| host.clone());
            for (name, path, reference) in contexts(request) {
                let key = (
                    path.clone(),
                    reference.clone(),
                    platform.clone().normalize(),
                );
                let image = self.images.get(&key).cloned();
                out.entry(name.clone())
                    .and_modify(|seen| {
                        if *seen != image {
                            *seen = None;
                        }
                    })
                    .or_insert(image);
            }
        }
        out.into_iter()
            .filter_map(|(name, image)| Some((name, image?)))
            .collect()
    }

    /// Removes the loaded images from the engine.
    pub(crate) async fn remove(&self, dialer: &Dialer) {
        for name in self.images.values() {
            remove_image(dialer, name).await;
        }
    }
}

/// Loads the image `key` names under `name`; the error as text.
async fn load_one(dialer: &Dialer, key: &Key, name: &str) -> std::result::Result<(), String> {
    let (dir, reference, platform) = key.clone();
    let name_owned = name.to_owned();
    let archive =
        tokio::task::spawn_blocking(move || archive(&dir, reference, &platform, &name_owned))
            .await
            .map_err(|e| e.to_string())??;
    let length = archive
        .as_file()
        .metadata()
        .map_err(|e| e.to_string())?
        .len();
    let mut file = tokio::fs::File::from_std(archive.reopen().map_err(|e| e.to_string())?);
    let mut answer = Vec::new();
    let status = engine_upload(
        dialer,
        "POST",
        "/images/load?quiet=1",
        (&mut file, length),
        &mut answer,
    )
    .await
    .map_err(|e| e.to_string())?;
    // The engine answers 200 and reports a failed load inside its JSON message stream.
    let reported = String::from_utf8_lossy(&answer)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| message["error"].as_str().map(str::to_owned));
    match (status, reported) {
        (200, None) => Ok(()),
        (_, Some(error)) => Err(error),
        (status, None) => Err(format!(
            "the engine answered HTTP {status}: {}",
            String::from_utf8_lossy(&answer).trim()
        )),
    }
}

/// Writes the `docker load` archive of the chosen image (`manifest.json` and the blobs it
/// names, each verified) to a temporary file.
fn archive(
    dir: &std::path::Path,
    reference: Option<String>,
    platform: &Platform,
    name: &str,
) -> std::result::Result<tempfile::NamedTempFile, String> {
    let layout = OciLayout::open(dir).map_err(|e| e.to_string())?;
    let selector = selector(reference.as_deref());
    let image = layout
        .resolve(&selector, platform)
        .map_err(|e| e.to_string())?;
    let blob = |digest: &crate::oci::Descriptor| format!("blobs/sha256/{}", digest.digest.hex());
    let manifest = serde_json::json!([{
        "Config": blob(&image.config_descriptor),
        "RepoTags": [name],
        "Layers": image.layers.iter().map(blob).collect::<Vec<_>>(),
    }]);
    let file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let manifest = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let mut header = tar::Header::new_ustar();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "manifest.json", manifest.as_slice())
        .map_err(|e| e.to_string())?;
    let mut written = std::collections::BTreeSet::new();
    for descriptor in std::iter::once(&image.config_descriptor).chain(&image.layers) {
        if !written.insert(descriptor.digest) {
            continue;
        }
        layout.verify_blob(descriptor).map_err(|e| e.to_string())?;
        let path = layout.blob_path(&descriptor.digest);
        tar.append_path_with_name(&path, blob(descriptor))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut writer = tar.into_inner().map_err(|e| e.to_string())?;
    writer.flush().map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_manifest_and_each_verified_blob_of_the_platform() {
        let layout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/base/busybox");
        let file =
            archive(&layout, None, &Platform::host(), "bake-internal/layout:t").expect("archive");
        let mut tar = tar::Archive::new(std::fs::File::open(file.path()).expect("open"));
        let mut names = Vec::new();
        let mut manifest = None;
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let name = entry.path().expect("path").display().to_string();
            if name == "manifest.json" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
                manifest = Some(serde_json::from_str::<serde_json::Value>(&text).expect("json"));
            }
            names.push(name);
        }
        let manifest = manifest.expect("manifest.json");
        assert_eq!(manifest[0]["RepoTags"][0], "bake-internal/layout:t");
        let config = manifest[0]["Config"].as_str().expect("config");
        assert!(names.iter().any(|n| n == config), "{names:?}");
        for layer in manifest[0]["Layers"].as_array().expect("layers") {
            assert!(
                names.iter().any(|n| n == layer.as_str().unwrap()),
                "{names:?}"
            );
        }
        let missing = archive(&layout, Some("nosuchtag".into()), &Platform::host(), "x");
        assert!(missing.expect_err("unknown tag").contains("nosuchtag"));
    }

    #[test]
    fn a_context_whose_platforms_take_different_images_has_no_single_image() {
        let request = |platform: &str| {
            let mut request = crate::plan::tests::request_for("/w");
            request.platform = Some(platform.parse().expect("platform"));
            request.named_contexts.insert(
                "os".into(),
                NamedContext::OciLayout {
                    path: "/l".into(),
                    reference: None,
                },
            );
            request
        };
        let host = Platform::host();
        let mut layouts = Layouts::default();
        for (platform, image) in [("linux/amd64", "a"), ("linux/arm64", "b")] {
            let key = (
                PathBuf::from("/l"),
                None,
                platform.parse::<Platform>().unwrap().normalize(),
            );
            layouts.images.insert(key, image.into());
        }
        let one = layouts.of(&host, &[request("linux/arm64")]);
        assert_eq!(one.get("os").map(String::as_str), Some("b"));
        let both = layouts.of(&host, &[request("linux/amd64"), request("linux/arm64")]);
        assert!(both.is_empty(), "{both:?}");
    }
}
