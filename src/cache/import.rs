//! `cache-from`: each entry's manifest and cache config are read before the solve into one
//! index, cache key → chain of layer blobs; a key found there becomes a result of lazy
//! [`Ref`]s whose blobs are fetched from the entry's [`Remote`] only when something needs
//! them (a step that runs on top, a COPY that hashes them, an export). Part of `cache`.
//!
//! A cache may also carry the contents of cache mounts (`bake.mounts`): they are indexed by
//! mount id, the first entry holding an id winning too, and fetched only when a step that
//! mounts an empty cache directory asks for them.
//!
//! Entries are read in order and the first one holding a key wins. Inline caches (the
//! config of an image named by `type=registry,ref=<image>`) are read the same way, their
//! layers being the image's.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;

use crate::cache::format::{self, CacheConfig, LayerBlob, MountBlob, Parsed, Record};
use crate::cache::remote::{Remote, RemoteError};
use crate::content::Store;
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::snapshot::{Blob, Ref};

/// Why an entry could not be imported (a warning: the build goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// There is no cache under the name (any of the names, `;`-separated).
    #[error("no cache manifest `{name}` in {describe}")]
    NotFound {
        /// The backend.
        describe: String,
        /// The manifest name, or the names tried joined with `;`.
        name: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A document is malformed.
    #[error(transparent)]
    Format(#[from] format::FormatError),
}

/// What one entry contributed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Records read.
    pub records: usize,
    /// Records whose key an earlier entry already had.
    pub shadowed: usize,
    /// Cache mounts whose contents the entry carries (and no earlier entry did).
    pub mounts: usize,
}

/// The imported records of every `cache-from` entry.
#[derive(Default)]
pub struct Imported {
    records: HashMap<Digest, Vec<LayerBlob>>,
    /// Definition key → cache key, as the exporting build recorded them.
    aliases: HashMap<Digest, Digest>,
    /// The exported contents of cache mounts, by id, in import order.
    mounts: Vec<MountBlob>,
    /// Which backend serves each blob.
    blobs: HashMap<Digest, Arc<dyn Remote>>,
    /// Lazy refs made so far, by the digests of their chain, so two records that share a
    /// base share its refs (and materialise it once).
    refs: Mutex<HashMap<Digest, Ref>>,
}

impl Imported {
    /// Whether nothing was imported.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// How many records were imported.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Reads the cache named `name` from `remote` and adds its records.
    ///
    /// # Errors
    ///
    /// When the cache is missing, unreachable or malformed; nothing is added then.
    pub fn load(
        &mut self,
        remote: &Arc<dyn Remote>,
        name: &str,
    ) -> Result<ImportSummary, ImportError> {
        self.load_first(remote, &[name.to_owned()])
            .map(|(_, summary)| summary)
    }

    /// Reads the first of `names` that `remote` holds and adds its records; returns that
    /// name.
    ///
    /// # Errors
    ///
    /// When none is there, or the backend fails or the cache is malformed; nothing is added
    /// then.
    // Diverges: buildkit's s3 importer reads only the first name; trying the others lets
    // `name=pr-12;main` fall back to the branch's cache.
    pub fn load_first(
        &mut self,
        remote: &Arc<dyn Remote>,
        names: &[String],
    ) -> Result<(String, ImportSummary), ImportError> {
        let mut found = None;
        for name in names {
            if let Some(manifest) = remote.get_manifest(name)? {
                found = Some((name, manifest));
                break;
            }
        }
        let (name, (media_type, bytes)) = found.ok_or_else(|| ImportError::NotFound {
            describe: remote.describe(),
            name: names.join(";"),
        })?;
        let (records, mounts, aliases) = read_records(remote.as_ref(), &media_type, &bytes)?;
        for (fast, key) in aliases {
            self.aliases.entry(fast).or_insert(key);
        }
        let mut summary = ImportSummary::default();
        for mount in mounts {
            if self.mounts.iter().any(|m| m.id == mount.id) {
                continue;
            }
            self.blobs
                .entry(mount.blob.descriptor.digest)
                .or_insert_with(|| remote.clone());
            self.mounts.push(mount);
            summary.mounts += 1;
        }
        for record in records {
            if self.records.contains_key(&record.key) {
                summary.shadowed += 1;
                continue;
            }
            for blob in &record.chain {
                self.blobs
                    .entry(blob.descriptor.digest)
                    .or_insert_with(|| remote.clone());
            }
            self.records.insert(record.key, record.chain);
            summary.records += 1;
        }
        Ok((name.clone(), summary))
    }

    /// The result imported under `key`: a chain of lazy blob refs, bottom first.
    pub fn lookup(&self, key: &Digest) -> Option<Ref> {
        let chain = self.records.get(key)?;
        let mut refs = self.refs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut parent: Option<Ref> = None;
        let mut digests: Vec<&[u8]> = Vec::new();
        for blob in chain {
            digests.push(blob.descriptor.digest.as_bytes().as_slice());
            let id = Digest::of_parts(digests.iter().copied());
            let next = refs
                .entry(id)
                .or_insert_with(|| {
                    Ref::lazy(
                        parent.clone(),
                        Blob {
                            digest: blob.descriptor.digest,
                            media_type: blob.descriptor.media_type.clone(),
                            size: blob.descriptor.size,
                            diff_id: blob.diff_id,
                        },
                    )
                })
                .clone();
            parent = Some(next);
        }
        parent
    }

    /// The cache key an imported alias gives the definition key `fast`.
    pub fn alias(&self, fast: &Digest) -> Option<Digest> {
        self.aliases.get(fast).copied()
    }

    /// The exported contents of the cache mount `id`, if an imported cache carries them (the
    /// blob is fetched through [`crate::content::Fetch`]).
    pub fn mount(&self, id: &str) -> Option<&MountBlob> {
        self.mounts.iter().find(|m| m.id == id)
    }

    /// Every cache mount an imported cache carries, in import order.
    pub fn mounts(&self) -> &[MountBlob] {
        &self.mounts
    }

    /// The backend that serves the blob `digest`, if an import named it.
    pub fn source_of(&self, digest: &Digest) -> Option<&Arc<dyn Remote>> {
        self.blobs.get(digest)
    }
}

impl crate::content::Fetch for Imported {
    fn fetch(
        &self,
        digest: &Digest,
        store: &Store,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let Some(remote) = self.blobs.get(digest) else {
            return Ok(false);
        };
        if store.exists(digest) {
            return Ok(true);
        }
        let Some(reader) = remote.get_blob(digest)? else {
            return Err(Box::new(RemoteError::message(format!(
                "blob `{digest}` is missing from {}",
                remote.describe()
            ))));
        };
        // The store checks the digest and renames the blob into place only when complete.
        store.write_from(reader, Some(*digest)).map_err(|source| {
            RemoteError::new(
                format!("failed to fetch blob `{digest}` from {}", remote.describe()),
                source,
            )
        })?;
        Ok(true)
    }

    fn origin(&self, digest: &Digest) -> Option<String> {
        self.blobs.get(digest)?.repository()
    }
}

/// Reads a blob (a config, a nested manifest) in full and checks its digest.
fn read_blob(remote: &dyn Remote, descriptor: &Descriptor) -> Result<Vec<u8>, ImportError> {
    let missing = || {
        RemoteError::message(format!(
            "blob `{}` is missing from {}",
            descriptor.digest,
            remote.describe()
        ))
    };
    let mut bytes = Vec::new();
    let reader = remote.get_blob(&descriptor.digest)?.ok_or_else(missing)?;
    // Configs and manifests are small; a larger answer is not the blob asked for.
    reader
        .take(64 << 20)
        .read_to_end(&mut bytes)
        .map_err(|source| {
            RemoteError::new(
                format!("failed to read blob `{}`", descriptor.digest),
                source,
            )
        })?;
    if Digest::of(&bytes) != descriptor.digest {
        return Err(RemoteError::message(format!(
            "blob `{}` from {} does not match its digest",
            descriptor.digest,
            remote.describe()
        ))
        .into());
    }
    Ok(bytes)
}

/// A nested manifest: as a manifest by digest, else as a blob.
fn read_manifest(
    remote: &dyn Remote,
    descriptor: &Descriptor,
) -> Result<(String, Vec<u8>), ImportError> {
    if let Some((media_type, bytes)) = remote.get_manifest(&descriptor.digest.to_string())?
        && Digest::of(&bytes) == descriptor.digest
    {
        return Ok((media_type, bytes));
    }
    Ok((
        descriptor.media_type.clone(),
        read_blob(remote, descriptor)?,
    ))
}

/// What one cache manifest holds: records, cache mounts and aliases.
type Contents = (Vec<Record>, Vec<MountBlob>, BTreeMap<Digest, Digest>);

/// The records, cache mounts and aliases a manifest holds: a cache manifest's config, a bare cache
/// config, or the inline caches (records only) of an image or of every image an index lists.
fn read_records(
    remote: &dyn Remote,
    media_type: &str,
    bytes: &[u8],
) -> Result<Contents, ImportError> {
    match format::parse_manifest(media_type, bytes)? {
        Parsed::Cache { config, layers } => {
            let bytes = read_blob(remote, &config)?;
            let config: CacheConfig =
                serde_json::from_slice(&bytes).map_err(|source| format::FormatError::Json {
                    what: "cache config",
                    source,
                })?;
            Ok((
                format::records(&config, &layers, &[]),
                format::mounts(&config),
                format::aliases(&config),
            ))
        }
        Parsed::Image { config, layers } => {
            let bytes = read_blob(remote, &config)?;
            Ok((inline_records(&bytes, &layers), Vec::new(), BTreeMap::new()))
        }
        Parsed::Config(config) => Ok((
            format::records(&config, &[], &[]),
            format::mounts(&config),
            format::aliases(&config),
        )),
        Parsed::Images(manifests) => {
            let mut records = Vec::new();
            for descriptor in manifests {
                let (media_type, bytes) = read_manifest(remote, &descriptor)?;
                if let Parsed::Image { config, layers } =
                    format::parse_manifest(&media_type, &bytes)?
                {
                    let bytes = read_blob(remote, &config)?;
                    records.extend(inline_records(&bytes, &layers));
                }
            }
            Ok((records, Vec::new(), BTreeMap::new()))
        }
    }
}

/// The records of an image config's inline cache (none when it has none).
fn inline_records(config: &[u8], layers: &[Descriptor]) -> Vec<Record> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default, rename = "moby.buildkit.cache.v0")]
        cache: Option<String>,
        #[serde(default)]
        rootfs: RootFs,
    }
    #[derive(Default, serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<Digest>,
    }
    let Ok(parsed) = serde_json::from_slice::<Config>(config) else {
        return Vec::new();
    };
    let Some(encoded) = parsed.cache else {
        return Vec::new();
    };
    let Ok(json) = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes()) else {
        return Vec::new();
    };
    let Ok(cache) = serde_json::from_slice::<CacheConfig>(&json) else {
        return Vec::new();
    };
    format::records(&cache, layers, &parsed.rootfs.diff_ids)
}

/// The value of an image config's inline cache key for `records`: base64 of the cache
/// config, as BuildKit writes a Go `[]byte`.
pub fn inline_value(records: &[Record], created_at: &str) -> String {
    let (config, _) = format::encode(records, created_at);
    let json = serde_json::to_vec(&config).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::local_layout::LocalLayout;
    use crate::content::Fetch as _;

    fn blob(remote: &dyn Remote, text: &str) -> LayerBlob {
        let digest = Digest::of(text.as_bytes());
        remote
            .put_blob(&digest, "t", text.len() as u64, &mut text.as_bytes())
            .unwrap();
        LayerBlob {
            descriptor: Descriptor::new(
                crate::oci::media_types::OCI_LAYER,
                digest,
                text.len() as u64,
            ),
            diff_id: digest,
        }
    }

    fn write_cache(remote: &dyn Remote, records: &[Record]) {
        let (config, blobs) = format::encode(records, "t");
        let bytes = serde_json::to_vec(&config).unwrap();
        let digest = Digest::of(&bytes);
        remote
            .put_blob(&digest, "c", bytes.len() as u64, &mut &bytes[..])
            .unwrap();
        let descriptor =
            Descriptor::new(format::CACHE_CONFIG_MEDIA_TYPE, digest, bytes.len() as u64);
        let options = format::ManifestOptions {
            image_manifest: true,
            oci_media_types: true,
            config_only: false,
        };
        let (media_type, manifest) = format::manifest(&descriptor, &blobs, options);
        remote
            .put_manifest("latest", &media_type, &manifest)
            .unwrap();
    }

    #[test]
    fn imported_keys_give_lazy_chains_fetched_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let remote: Arc<dyn Remote> = Arc::new(LocalLayout::new(dir.path().join("cache")));
        let (a, b) = (blob(remote.as_ref(), "a"), blob(remote.as_ref(), "b"));
        let base = Record {
            key: Digest::of(b"base"),
            chain: vec![a.clone()],
        };
        let step = Record {
            key: Digest::of(b"step"),
            chain: vec![a.clone(), b.clone()],
        };
        write_cache(remote.as_ref(), &[base, step]);

        let mut imported = Imported::default();
        let summary = imported.load(&remote, "latest").unwrap();
        assert_eq!(summary.records, 2);
        assert_eq!(imported.load(&remote, "latest").unwrap().shadowed, 2);
        assert!(matches!(
            imported.load(&remote, "nope"),
            Err(ImportError::NotFound { .. })
        ));
        let top = imported.lookup(&Digest::of(b"step")).unwrap();
        assert!(!top.is_materialised());
        let bottom = imported.lookup(&Digest::of(b"base")).unwrap();
        assert!(
            top.parent().unwrap().ptr_eq(&bottom),
            "shared bases are shared"
        );
        assert!(imported.lookup(&Digest::of(b"other")).is_none());

        let store = Store::open(dir.path().join("state")).unwrap();
        assert!(!store.exists(&b.descriptor.digest));
        assert!(imported.fetch(&b.descriptor.digest, &store).unwrap());
        assert!(store.exists(&b.descriptor.digest));
        assert!(!imported.fetch(&Digest::of(b"unknown"), &store).unwrap());
    }

    #[test]
    fn inline_caches_resolve_against_the_image_layers() {
        let layer = Descriptor::new(crate::oci::media_types::OCI_LAYER_GZIP, Digest::of(b"l"), 1);
        let record = Record {
            key: Digest::of(b"k"),
            chain: vec![LayerBlob {
                descriptor: layer.clone(),
                diff_id: Digest::of(b"tar"),
            }],
        };
        let config = serde_json::json!({
            "moby.buildkit.cache.v0": inline_value(std::slice::from_ref(&record), "t"),
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"tar").to_string()]},
        });
        let bytes = serde_json::to_vec(&config).unwrap();
        assert_eq!(inline_records(&bytes, &[layer]), [record]);
        assert!(inline_records(b"{}", &[]).is_empty());
    }
}
