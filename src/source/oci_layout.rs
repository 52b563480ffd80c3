//! OCI image layouts on disk (`oci-layout://path[:tag|@digest]`): selecting an image by tag,
//! digest and platform, verifying and importing its blobs, and unpacking its layers. Part of
//! `source`.
//!
//! A layout is untrusted input: every blob is checked against its descriptor's digest and size
//! before it is used, and layers are applied with `snapshot::apply_layer`, which never writes
//! outside the target directory.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Error, Result, io_error};
use super::unpack::{Blobs, HashingReader, unpack_layers};
use crate::content;
use crate::digest::Digest;
use crate::oci::{
    self, Descriptor, Index, Manifest, REF_NAME_ANNOTATION, media_types, platform_list,
    select_platform,
};
use crate::platform::Platform;

/// Manifests and indexes are small; anything larger is refused before it is read.
const MAX_DOCUMENT_SIZE: u64 = 4 << 20;

/// The parts of an image config that [`oci::Image`] does not model.
#[derive(Debug, Default, Deserialize)]
struct ConfigExtras {
    #[serde(default)]
    rootfs: RootFs,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// Which image of a layout to use.
pub use crate::graph::LayoutSelector as Selector;

/// The selector for the part after a layout path (`:tag`, `@sha256:...`, or nothing).
pub fn selector(reference: Option<&str>) -> Selector {
    match reference {
        None => Selector::Default,
        Some(text) => match text.parse::<Digest>() {
            Ok(digest) if text.starts_with("sha256:") => Selector::Digest(digest),
            _ => Selector::Tag(text.to_owned()),
        },
    }
}

/// An opened OCI image layout directory.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    index: Vec<Descriptor>,
}

/// One image chosen from a layout: its manifest, parsed config and ordered layers.
#[derive(Debug, Clone)]
pub struct LayoutImage {
    /// The digest of the image manifest.
    pub manifest_digest: Digest,
    /// The manifest's descriptor (media type, size).
    pub manifest: Descriptor,
    /// The config blob's descriptor.
    pub config_descriptor: Descriptor,
    /// The parsed image config.
    pub config: oci::Image,
    /// The uncompressed digests of the layers, from the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Digest>,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

impl OciLayout {
    /// Opens a layout: checks `oci-layout` and reads `index.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        let not_layout = |reason: String| Error::NotLayout {
            path: dir.to_owned(),
            reason,
        };
        let marker = std::fs::read(dir.join("oci-layout"))
            .map_err(|e| not_layout(format!("cannot read `oci-layout`: {e}")))?;
        let marker: serde_json::Value = serde_json::from_slice(&marker)
            .map_err(|e| not_layout(format!("`oci-layout` is not JSON: {e}")))?;
        if marker.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(not_layout(
                "`oci-layout` lacks `imageLayoutVersion` 1.0.0".to_owned(),
            ));
        }
        let index = std::fs::read(dir.join("index.json"))
            .map_err(|e| not_layout(format!("cannot read `index.json`: {e}")))?;
        let index: Index = serde_json::from_slice(&index)
            .map_err(|e| not_layout(format!("`index.json` does not parse: {e}")))?;
        Ok(Self {
            dir: dir.to_owned(),
            index: index.manifests,
        })
    }

    /// Returns the layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the tags of the top-level entries, in index order.
    pub fn tags(&self) -> Vec<&str> {
        self.index
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME_ANNOTATION).map(String::as_str))
            .collect()
    }

    fn available_tags(&self) -> String {
        let tags = self.tags();
        if tags.is_empty() {
            "none".to_owned()
        } else {
            tags.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Returns where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join("sha256").join(digest.hex())
    }

    /// Selects one image for `platform` and reads its manifest and config.
    pub fn resolve(&self, selector: &Selector, platform: &Platform) -> Result<LayoutImage> {
        let platform = platform.clone().normalize();
        let descriptor = match selector {
            Selector::Tag(tag) => self
                .index
                .iter()
                .find(|d| d.annotations.get(REF_NAME_ANNOTATION) == Some(tag))
                .cloned()
                .ok_or_else(|| Error::TagNotFound {
                    tag: tag.clone(),
                    layout: self.dir.clone(),
                    available: self.available_tags(),
                })?,
            Selector::Digest(digest) => {
                self.find_digest(&self.index, digest, 0)?
                    .ok_or_else(|| Error::DigestNotFound {
                        digest: *digest,
                        layout: self.dir.clone(),
                    })?
            }
            Selector::Default => match self.index.as_slice() {
                [only] => only.clone(),
                entries if entries.iter().all(|d| d.platform.is_some()) => {
                    // A bare multi-platform index.json: choose among its entries by platform.
                    return self.select_platform(entries, &platform, 0);
                }
                entries => {
                    return Err(Error::Ambiguous {
                        layout: self.dir.clone(),
                        count: entries.len(),
                        available: self.available_tags(),
                    });
                }
            },
        };
        self.resolve_descriptor(&descriptor, &platform, 0)
    }

    /// Searches the index, and the indexes it names, for a descriptor with `digest`.
    fn find_digest(
        &self,
        entries: &[Descriptor],
        digest: &Digest,
        depth: usize,
    ) -> Result<Option<Descriptor>> {
        if let Some(found) = entries.iter().find(|d| d.digest == *digest) {
            return Ok(Some(found.clone()));
        }
        if depth > 4 {
            return Ok(None);
        }
        for entry in entries.iter().filter(|d| is_index(d)) {
            let index: Index = self.read_document(entry, "index")?;
            if let Some(found) = self.find_digest(&index.manifests, digest, depth + 1)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn resolve_descriptor(
        &self,
        descriptor: &Descriptor,
        platform: &Platform,
        depth: usize,
    ) -> Result<LayoutImage> {
        if is_index(descriptor) {
            let index: Index = self.read_document(descriptor, "index")?;
            return self.select_platform(&index.manifests, platform, depth + 1);
        }
        let image = self.load_image(descriptor)?;
        // A manifest named directly (no index to choose from) must still be for the platform:
        // an amd64 image is never the base of an arm64 build.
        let has = image.config.platform();
        if !has.os.is_empty() && !has.architecture.is_empty() && platform.match_rank(&has).is_none()
        {
            return Err(Error::NoPlatform {
                platform: platform.to_string(),
                layout: self.dir.clone(),
                available: format!("`{has}`"),
            });
        }
        Ok(image)
    }

    /// Picks the entry for `platform` by the one rule registry pulls use too
    /// ([`oci::select_platform`]); when no entry names a matching platform, tries the nested
    /// indexes that name none, in order (bounded depth, so a layout whose indexes name each
    /// other cannot loop).
    fn select_platform(
        &self,
        entries: &[Descriptor],
        platform: &Platform,
        depth: usize,
    ) -> Result<LayoutImage> {
        if depth <= 4 {
            if let Some(entry) = select_platform(entries, platform) {
                return self.resolve_descriptor(entry, platform, depth);
            }
            for entry in entries
                .iter()
                .filter(|d| d.platform.is_none() && is_index(d))
            {
                match self.resolve_descriptor(entry, platform, depth) {
                    Err(Error::NoPlatform { .. }) => {}
                    other => return other,
                }
            }
        }
        Err(Error::NoPlatform {
            platform: platform.to_string(),
            layout: self.dir.clone(),
            available: platform_list(entries),
        })
    }

    fn load_image(&self, descriptor: &Descriptor) -> Result<LayoutImage> {
        let manifest: Manifest = self.read_document(descriptor, "manifest")?;
        let media_type = if manifest.media_type.is_empty() {
            descriptor.media_type.as_str()
        } else {
            manifest.media_type.as_str()
        };
        if !media_type.is_empty() && !media_types::is_manifest(media_type) {
            return Err(Error::MediaType {
                media_type: media_type.to_owned(),
                digest: descriptor.digest,
            });
        }
        let config: oci::Image = self.read_document(&manifest.config, "image config")?;
        let extras: ConfigExtras = self.read_document(&manifest.config, "image config")?;
        Ok(LayoutImage {
            manifest_digest: descriptor.digest,
            manifest: descriptor.clone(),
            config_descriptor: manifest.config,
            config,
            diff_ids: extras.rootfs.diff_ids,
            layers: manifest.layers,
        })
    }

    /// Reads a small JSON blob after checking its size and digest.
    fn read_document<T: serde::de::DeserializeOwned>(
        &self,
        descriptor: &Descriptor,
        what: &'static str,
    ) -> Result<T> {
        if descriptor.size > MAX_DOCUMENT_SIZE {
            return Err(self.corrupt(
                descriptor,
                format!("{what} of {} bytes is too large", descriptor.size),
            ));
        }
        let path = self.blob_path(&descriptor.digest);
        let bytes = std::fs::read(&path).map_err(io_error("read", &path))?;
        let actual = Digest::of(&bytes);
        if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
            return Err(self.corrupt(
                descriptor,
                format!(
                    "read {} bytes hashing to `{actual}`, expected {} bytes",
                    bytes.len(),
                    descriptor.size
                ),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::BadDocument {
            what,
            digest: descriptor.digest,
            layout: self.dir.clone(),
            source,
        })
    }

    fn corrupt(&self, descriptor: &Descriptor, reason: String) -> Error {
        Error::CorruptBlob {
            digest: descriptor.digest,
            layout: self.dir.clone(),
            reason,
        }
    }

    /// Checks a blob's size and digest by reading it once.
    pub fn verify_blob(&self, descriptor: &Descriptor) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        let file = File::open(&path).map_err(io_error("open", &path))?;
        let mut reader = HashingReader::new(file);
        io::copy(&mut reader, &mut io::sink()).map_err(io_error("read", &path))?;
        let (actual, size) = reader.finish();
        if actual != descriptor.digest || size != descriptor.size {
            return Err(self.corrupt(
                descriptor,
                format!(
                    "read {size} bytes hashing to `{actual}`, expected {} bytes",
                    descriptor.size
                ),
            ));
        }
        Ok(())
    }

    /// Copies the image's manifest, config and layers into `store`; the store re-hashes every
    /// blob, so a corrupt one is refused there.
    pub fn import(&self, image: &LayoutImage, store: &content::Store) -> Result<()> {
        let blobs = std::iter::once(&image.manifest)
            .chain(std::iter::once(&image.config_descriptor))
            .chain(&image.layers);
        for descriptor in blobs {
            if store.exists(&descriptor.digest) {
                continue;
            }
            let path = self.blob_path(&descriptor.digest);
            let file = File::open(&path).map_err(io_error("open", &path))?;
            store
                .write_from(file, Some(descriptor.digest))
                .map_err(|source| match source {
                    content::Error::DigestMismatch { actual, .. } => {
                        self.corrupt(descriptor, format!("its bytes hash to `{actual}`"))
                    }
                    source => Error::Content {
                        digest: descriptor.digest,
                        source: Box::new(source),
                    },
                })?;
        }
        Ok(())
    }

    /// Applies the image's layers, base first, onto `into` (created if needed). Each layer is
    /// verified before it is applied and its uncompressed digest checked against the config's
    /// `diff_ids`, so a damaged layout fails before it half-populates a snapshot.
    pub fn unpack(&self, image: &LayoutImage, into: &Path) -> Result<()> {
        let blobs = Blobs {
            origin: &self.dir,
            path: &|digest| self.blob_path(digest),
            check: &|layer| self.verify_blob(layer),
        };
        unpack_layers(&blobs, &image.layers, &image.diff_ids, into)
    }
}

fn is_index(descriptor: &Descriptor) -> bool {
    media_types::is_index(&descriptor.media_type)
}
