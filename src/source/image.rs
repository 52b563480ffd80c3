//! Registry images (`FROM ref`, `docker-image://ref`): pulling an image for a platform into
//! the content store through [`registry::Client`], remembering what a tag resolved to, and
//! unpacking the layers into a directory. Part of `source`.
//!
//! A resolved tag is recorded in the store as the reference `image/<ref>`, so later builds use
//! the stored image without asking the registry; `refresh` (`--pull`) resolves the tag again.
//! The record also keeps the image's blobs safe from garbage collection.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::unpack::{Blobs, unpack_layers};
use crate::content::Store;
use crate::digest::Digest;
use crate::oci::{self, Descriptor, Index, Manifest, media_types, select_platform};
use crate::platform::Platform;
use crate::registry::{self, Client, PulledImage, Reference};

/// A registry client plus the store it pulls into: what `ops` and `engine` hold to resolve
/// and unpack `docker-image://` sources without naming registry types.
#[derive(Debug)]
pub struct Puller {
    client: Client,
    root: std::path::PathBuf,
    refresh: bool,
}

impl Puller {
    /// Creates a puller for the store at `root` with default registry settings (credentials
    /// from `$DOCKER_CONFIG` or `~/.docker/config.json`); `refresh` is `--pull`.
    pub fn from_env(root: &Path, refresh: bool) -> Result<Self> {
        Self::new(registry::ClientOptions::default(), root, refresh)
    }

    /// Creates a puller with explicit registry options (host settings, credentials file).
    pub fn new(options: registry::ClientOptions, root: &Path, refresh: bool) -> Result<Self> {
        let client = Client::new(options).map_err(|source| Error::Pull {
            reference: "registry credentials".to_owned(),
            source: Box::new(source),
        })?;
        Ok(Self {
            client,
            root: root.to_owned(),
            refresh,
        })
    }

    fn store(&self, reference: &str) -> Result<Store> {
        Store::open(&self.root).map_err(|source| Error::Pull {
            reference: reference.to_owned(),
            source: Box::new(registry::Error::Content {
                reference: reference.to_owned(),
                source: Box::new(source),
            }),
        })
    }

    fn parse(reference: &str) -> Result<Reference> {
        reference.parse().map_err(|source| Error::Pull {
            reference: reference.to_owned(),
            source: Box::new(registry::Error::Reference(source)),
        })
    }

    /// Pulls `reference` for `platform` and returns its manifest digest and image config.
    pub fn image(&self, reference: &str, platform: &Platform) -> Result<(Digest, oci::Image)> {
        let parsed = Self::parse(reference)?;
        let store = self.store(reference)?;
        let image = pull(&self.client, &store, &parsed, platform, self.refresh)?;
        Ok((image.manifest.digest, image.image))
    }

    /// Pulls `reference` for `platform` (from the store when it is there) and describes it.
    pub fn pulled(&self, reference: &str, platform: &Platform) -> Result<PulledImage> {
        let parsed = Self::parse(reference)?;
        let store = self.store(reference)?;
        pull(&self.client, &store, &parsed, platform, self.refresh)
    }

    /// Pulls `reference` for `platform` and unpacks its layers into `into`.
    pub fn unpack(&self, reference: &str, platform: &Platform, into: &Path) -> Result<()> {
        let parsed = Self::parse(reference)?;
        let store = self.store(reference)?;
        let image = pull(&self.client, &store, &parsed, platform, self.refresh)?;
        unpack(&store, &image, into)
    }
}

/// The prefix of the store references that remember resolved images.
pub const REFERENCE_PREFIX: &str = "image/";

/// What `image/<ref>` records: the index or manifest the reference resolved to.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    media_type: String,
    digest: Digest,
    size: u64,
}

/// Returns the image `reference` names for `platform`, pulling what the store lacks. Without
/// `refresh`, a tag resolved earlier is not resolved again.
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    refresh: bool,
) -> Result<PulledImage> {
    let image = pull_any(client, store, reference, platform, refresh)?;
    // A reference to a single-platform manifest has no index to choose from: its config
    // must still be for the platform, so an amd64 image never becomes an arm64 base.
    let has = image.image.platform();
    if !has.os.is_empty() && !has.architecture.is_empty() && platform.match_rank(&has).is_none() {
        return Err(Error::WrongPlatform {
            reference: reference.to_string(),
            platform: platform.to_string(),
            available: has.to_string(),
        });
    }
    Ok(image)
}

/// Pulls `reference` for `platform`, from the store when it is there.
fn pull_any(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    refresh: bool,
) -> Result<PulledImage> {
    let name = format!("{REFERENCE_PREFIX}{reference}");
    let recorded = match store.reference(&name).map_err(content_error(reference))? {
        Some(found) if !refresh || reference.digest.is_some() => {
            serde_json::from_str::<Record>(&found.record).ok()
        }
        _ => None,
    };
    let root = match (recorded, reference.digest) {
        (Some(record), _) => Some(Descriptor::new(
            record.media_type,
            record.digest,
            record.size,
        )),
        (None, Some(digest)) => stored_root(store, digest),
        (None, None) => None,
    };
    if let Some(root) = &root
        && let Some(image) = from_store(store, reference, root, platform)
    {
        return Ok(image);
    }
    // Pin a recorded tag to its digest, so a platform pulled later comes from the same index.
    let target = match &root {
        Some(root) => reference.with_digest(root.digest),
        None => reference.clone(),
    };
    let mut pulled = client
        .pull(&target, platform, store)
        .map_err(|source| Error::Pull {
            reference: reference.to_string(),
            source: Box::new(source),
        })?;
    pulled.reference = reference.clone();
    remember(store, &name, &pulled)?;
    Ok(pulled)
}

/// Records `image/<ref>` → the pulled root, adding its blobs to those already held.
fn remember(store: &Store, name: &str, image: &PulledImage) -> Result<()> {
    let reference = &image.reference;
    let mut blobs = match store.reference(name).map_err(content_error(reference))? {
        Some(existing) => existing.blobs,
        None => Vec::new(),
    };
    blobs.extend(image.blobs());
    blobs.sort();
    blobs.dedup();
    let record = Record {
        media_type: image.root.media_type.clone(),
        digest: image.root.digest,
        size: image.root.size,
    };
    let record = serde_json::to_string(&record).expect("a record of strings always encodes");
    store
        .set_reference(name, &record, &blobs)
        .map_err(content_error(reference))
}

/// Describes a stored index or manifest, sniffing its media type.
fn stored_root(store: &Store, digest: Digest) -> Option<Descriptor> {
    let bytes = store.read(&digest).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let media_type = match value.get("mediaType").and_then(|v| v.as_str()) {
        Some(media_type) => media_type.to_owned(),
        None if value.get("manifests").is_some() => media_types::OCI_INDEX.to_owned(),
        None => media_types::OCI_MANIFEST.to_owned(),
    };
    Some(Descriptor::new(media_type, digest, bytes.len() as u64))
}

/// Rebuilds the image for `platform` from stored blobs only; `None` when any is missing.
fn from_store(
    store: &Store,
    reference: &Reference,
    root: &Descriptor,
    platform: &Platform,
) -> Option<PulledImage> {
    let mut manifest_descriptor = root.clone();
    for _ in 0..4 {
        if !media_types::is_index(&manifest_descriptor.media_type) {
            break;
        }
        let index: Index =
            serde_json::from_slice(&store.read(&manifest_descriptor.digest).ok()?).ok()?;
        manifest_descriptor = select_platform(&index.manifests, platform)?.clone();
    }
    let manifest: Manifest =
        serde_json::from_slice(&store.read(&manifest_descriptor.digest).ok()?).ok()?;
    let all_present = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .all(|blob| store.exists(&blob.digest));
    if !all_present {
        return None;
    }
    let config = store.read(&manifest.config.digest).ok()?;
    let image: oci::Image = serde_json::from_slice(&config).ok()?;
    let diff_ids = serde_json::from_slice::<serde_json::Value>(&config)
        .ok()?
        .pointer("/rootfs/diff_ids")
        .and_then(|ids| serde_json::from_value::<Vec<Digest>>(ids.clone()).ok())
        .unwrap_or_default();
    Some(PulledImage {
        reference: reference.clone(),
        root: root.clone(),
        manifest: manifest_descriptor,
        config: manifest.config,
        layers: manifest.layers,
        image,
        diff_ids,
    })
}

/// Applies the image's layers, base first, onto `into` (created if needed), checking each
/// uncompressed layer against the config's `diff_ids`.
pub fn unpack(store: &Store, image: &PulledImage, into: &Path) -> Result<()> {
    let blobs = Blobs {
        origin: store.root(),
        path: &|digest| store.blob_path(digest),
        // The store verified every blob when it was written.
        check: &|_| Ok(()),
    };
    unpack_layers(&blobs, &image.layers, &image.diff_ids, into)
}

fn content_error(reference: &Reference) -> impl FnOnce(crate::content::Error) -> Error + '_ {
    move |source| Error::Pull {
        reference: reference.to_string(),
        source: Box::new(registry::Error::Content {
            reference: reference.to_string(),
            source: Box::new(source),
        }),
    }
}
