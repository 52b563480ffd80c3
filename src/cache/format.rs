//! The exported build cache format, BuildKit's `application/vnd.buildkit.cacheconfig.v0`: a
//! cache config (layers linked to their parents, records naming a top layer) plus the layer
//! blobs, wrapped in an OCI image manifest (`image-manifest=true`, BuildKit's default since
//! v0.21) or an OCI index / Docker manifest list (`image-manifest=false`), or stored bare
//! under the cache's name (S3 and GitHub Actions, where the config's layer annotations stand
//! in for the descriptors). Part of `cache`.
//!
//! A config may also list the contents of `RUN --mount=type=cache` directories (`cache-mounts`
//! on `cache-to`) in a field of its own, `bake.mounts`, each an uncompressed or compressed tar
//! blob also listed among the manifest's layers (annotated [`CACHE_MOUNT_ANNOTATION`]) so a
//! registry keeps it. BuildKit decodes the config with Go's `encoding/json`, which skips
//! fields its `CacheConfig` does not declare (`layers`, `records`, matched without regard to
//! case), and reads manifest layers only through the config's `layers`: it never sees them.
//!
//! A record's `digest` is bake's own cache key ([`crate::solver::cache_key`]), not BuildKit's:
//! the two never match, so a bake cache and a BuildKit cache can share a registry repository
//! or a layer blob, never a hit. Keys depend only on what a step does and the content it
//! reads, never on the state root or the project's path, so a cache made on one machine
//! serves a checkout anywhere else.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::oci::{Descriptor, Index, Manifest, media_types};

/// The media type of the cache config blob.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";
/// The layer descriptor annotation holding the uncompressed digest.
// Compat: containerd's label, which BuildKit writes on every cache layer descriptor.
pub const UNCOMPRESSED_ANNOTATION: &str = "containerd.io/uncompressed";
/// The layer descriptor annotation holding the layer's creation time.
pub const CREATED_AT_ANNOTATION: &str = "buildkit/createdat";
/// The annotation naming the cache mount a manifest layer holds the contents of.
pub const CACHE_MOUNT_ANNOTATION: &str = "bake.cache-mount.id";
/// The value of the config's `bake.keys` field: which key scheme the records use.
const KEYS: &str = crate::solver::CACHE_KEY_VERSION;

/// The cache config: BuildKit's `CacheConfig` plus the key scheme bake's records use.
// Compat: buildkit cache/remotecache/v1/spec.go CacheConfig (field names and `parent: -1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Every layer blob, each with the index of the layer below it (`-1`: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<CacheLayer>,
    /// One record per cache key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<CacheRecord>,
    /// The key scheme of the records; BuildKit ignores the field, and a config without it
    /// holds no records bake can use.
    #[serde(default, rename = "bake.keys", skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
    /// The exported contents of cache mounts, by id; BuildKit ignores the field.
    #[serde(default, rename = "bake.mounts", skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<CacheMountEntry>,
    /// Definition key → record key of the steps that hash input content, so an importer
    /// finds them without hashing (and so without fetching) what they read; BuildKit ignores
    /// the field.
    #[serde(
        default,
        rename = "bake.aliases",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aliases: BTreeMap<Digest, Digest>,
}

/// One cache mount's exported contents in the cache config: a tar of its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMountEntry {
    /// The mount's `id` (the `target` when the `RUN` gave none).
    pub id: String,
    /// The blob's digest.
    pub blob: Digest,
    /// The blob's media type, size and uncompressed digest, so a bare config (S3, GitHub
    /// Actions) describes it without a manifest.
    pub annotations: LayerAnnotations,
}

/// The contents of one cache mount as a layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountBlob {
    /// The mount's id.
    pub id: String,
    /// The tar of its directory.
    pub blob: LayerBlob,
}

/// One layer of the cache config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    /// The blob's digest.
    pub blob: Digest,
    /// The index of the layer below, or `-1`.
    #[serde(default = "no_parent")]
    pub parent: i64,
    /// The blob's media type, size and uncompressed digest (BuildKit's newer configs carry
    /// them; inline caches need them since the image manifest has no annotations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<LayerAnnotations>,
}

fn no_parent() -> i64 {
    -1
}

/// What a cache layer's descriptor says, repeated in the config.
// Compat: buildkit cache/remotecache/v1/spec.go LayerAnnotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerAnnotations {
    /// The blob's media type.
    #[serde(default)]
    pub media_type: String,
    /// The uncompressed digest.
    #[serde(rename = "diffID")]
    pub diff_id: Digest,
    /// The blob's size.
    #[serde(default)]
    pub size: u64,
    /// When the layer was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// One cache record: a key and the layer its result's chain ends in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The cache key.
    pub digest: Digest,
    /// The results; bake writes one (ops have one output). BuildKit's key is `layers`.
    #[serde(default, rename = "layers", skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<CacheResult>,
}

/// The result of a record: the index of its top layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheResult {
    /// The index of the top layer of the result's chain.
    pub layer: usize,
    /// When the result was made (RFC 3339).
    #[serde(default, rename = "createdAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// A layer blob as a record's chain names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The blob (media type, digest, size).
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// A cache key and its result's layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The cache key.
    pub key: Digest,
    /// The layers of the result, bottom first (never empty).
    pub chain: Vec<LayerBlob>,
}

/// Why a cache manifest cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A document is not the JSON it should be.
    #[error("malformed {what}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest is neither a cache manifest nor an image.
    #[error("`{media_type}` is not a build cache manifest")]
    NotACache {
        /// Its media type.
        media_type: String,
    },
}

/// The cache config of `records`, and the layer blobs it names (each once), bottom first.
pub fn encode(records: &[Record], created_at: &str) -> (CacheConfig, Vec<LayerBlob>) {
    let mut layers: Vec<CacheLayer> = Vec::new();
    let mut blobs: Vec<LayerBlob> = Vec::new();
    // A layer is identified by its blob and the layer below: the same blob on two bases is
    // two layers, as in BuildKit.
    let mut index: HashMap<(Digest, i64), usize> = HashMap::new();
    let mut out = Vec::new();
    for record in records {
        let mut parent: i64 = -1;
        for blob in &record.chain {
            let at = *index
                .entry((blob.descriptor.digest, parent))
                .or_insert_with(|| {
                    layers.push(CacheLayer {
                        blob: blob.descriptor.digest,
                        parent,
                        annotations: Some(LayerAnnotations {
                            media_type: blob.descriptor.media_type.clone(),
                            diff_id: blob.diff_id,
                            size: blob.descriptor.size,
                            created_at: Some(created_at.to_owned()),
                        }),
                    });
                    if !blobs
                        .iter()
                        .any(|b| b.descriptor.digest == blob.descriptor.digest)
                    {
                        blobs.push(blob.clone());
                    }
                    layers.len() - 1
                });
            parent = i64::try_from(at).unwrap_or(-1);
        }
        let Ok(top) = usize::try_from(parent) else {
            continue;
        };
        if out.iter().any(|r: &CacheRecord| r.digest == record.key) {
            continue;
        }
        out.push(CacheRecord {
            digest: record.key,
            results: vec![CacheResult {
                layer: top,
                created_at: Some(created_at.to_owned()),
            }],
        });
    }
    let config = CacheConfig {
        layers,
        records: out,
        keys: Some(KEYS.to_owned()),
        mounts: Vec::new(),
        aliases: BTreeMap::new(),
    };
    (config, blobs)
}

/// The config entries of `mounts`, made at `created_at`.
pub fn mount_entries(mounts: &[MountBlob], created_at: &str) -> Vec<CacheMountEntry> {
    mounts
        .iter()
        .map(|mount| CacheMountEntry {
            id: mount.id.clone(),
            blob: mount.blob.descriptor.digest,
            annotations: LayerAnnotations {
                media_type: mount.blob.descriptor.media_type.clone(),
                diff_id: mount.blob.diff_id,
                size: mount.blob.descriptor.size,
                created_at: Some(created_at.to_owned()),
            },
        })
        .collect()
}

/// The manifest layer of a cache mount's blob: annotated with its id, so a reader of the
/// manifest alone can tell it from a step's layer.
pub fn mount_layer(mount: &MountBlob) -> LayerBlob {
    let mut blob = mount.blob.clone();
    blob.descriptor
        .annotations
        .insert(CACHE_MOUNT_ANNOTATION.to_owned(), mount.id.clone());
    blob
}

/// The aliases of `config` whose key names one of its records, under bake's key scheme.
pub fn aliases(config: &CacheConfig) -> BTreeMap<Digest, Digest> {
    if config.keys.as_deref() != Some(KEYS) {
        return BTreeMap::new();
    }
    config
        .aliases
        .iter()
        .filter(|(_, key)| config.records.iter().any(|r| r.digest == **key))
        .map(|(fast, key)| (*fast, *key))
        .collect()
}

/// The cache mounts `config` lists, each once (the first entry of an id wins).
pub fn mounts(config: &CacheConfig) -> Vec<MountBlob> {
    let mut out: Vec<MountBlob> = Vec::new();
    for entry in &config.mounts {
        if out.iter().any(|m| m.id == entry.id) {
            continue;
        }
        out.push(MountBlob {
            id: entry.id.clone(),
            blob: LayerBlob {
                descriptor: Descriptor::new(
                    entry.annotations.media_type.clone(),
                    entry.blob,
                    entry.annotations.size,
                ),
                diff_id: entry.annotations.diff_id,
            },
        });
    }
    out
}

/// How the cache manifest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestOptions {
    /// An OCI image manifest whose config is the cache config (`image-manifest=true`);
    /// otherwise an index listing the layers and the config.
    pub image_manifest: bool,
    /// OCI media types; otherwise Docker's (a manifest list; only with an index).
    pub oci_media_types: bool,
    /// The cache config itself is stored under the cache's name, with no manifest and no
    /// config blob: BuildKit's form in S3 and the GitHub Actions cache.
    pub config_only: bool,
}

/// The cache manifest for `config` (already stored as `config_descriptor`) and `blobs`:
/// its media type and bytes.
// Compat: buildkit cache/remotecache/export.go (the index with the config as its last entry,
// or the image manifest with the config as its config).
pub fn manifest(
    config_descriptor: &Descriptor,
    blobs: &[LayerBlob],
    options: ManifestOptions,
) -> (String, Vec<u8>) {
    let layers: Vec<Descriptor> = blobs
        .iter()
        .map(|blob| {
            let mut descriptor = blob.descriptor.clone();
            descriptor
                .annotations
                .insert(UNCOMPRESSED_ANNOTATION.to_owned(), blob.diff_id.to_string());
            descriptor
        })
        .collect();
    if options.image_manifest {
        let manifest = Manifest {
            schema_version: 2,
            media_type: media_types::OCI_MANIFEST.to_owned(),
            artifact_type: None,
            config: config_descriptor.clone(),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        return (media_types::OCI_MANIFEST.to_owned(), bytes);
    }
    let media_type = if options.oci_media_types {
        media_types::OCI_INDEX
    } else {
        media_types::DOCKER_MANIFEST_LIST
    };
    let mut manifests = layers;
    manifests.push(config_descriptor.clone());
    let index = Index {
        schema_version: 2,
        media_type: media_type.to_owned(),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    (media_type.to_owned(), bytes)
}

/// What a cache manifest refers to before its config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A cache manifest: the config blob to read and the layer descriptors.
    Cache {
        /// The cache config blob.
        config: Descriptor,
        /// The layer blobs it names.
        layers: Vec<Descriptor>,
    },
    /// An image (inline cache): its config blob holds the cache, its layers are the blobs.
    Image {
        /// The image config blob.
        config: Descriptor,
        /// The image's layers.
        layers: Vec<Descriptor>,
    },
    /// An index of images (a multi-platform image with inline caches): their manifests.
    Images(Vec<Descriptor>),
    /// A bare cache config (S3, GitHub Actions): its layers carry their own descriptors.
    Config(CacheConfig),
}

/// Reads a manifest found under a cache name (or an image's reference).
pub fn parse_manifest(media_type: &str, bytes: &[u8]) -> Result<Parsed, FormatError> {
    let kind = media_type_of(media_type, bytes);
    match kind.as_str() {
        media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => {
            let index: Index =
                serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
                    what: "cache index",
                    source,
                })?;
            let (configs, layers): (Vec<Descriptor>, Vec<Descriptor>) = index
                .manifests
                .into_iter()
                .partition(|d| d.media_type == CACHE_CONFIG_MEDIA_TYPE);
            match configs.into_iter().next() {
                Some(config) => Ok(Parsed::Cache { config, layers }),
                None => Ok(Parsed::Images(layers)),
            }
        }
        media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => {
            let manifest: Manifest =
                serde_json::from_slice(bytes).map_err(|source| FormatError::Json {
                    what: "cache manifest",
                    source,
                })?;
            if manifest.config.media_type == CACHE_CONFIG_MEDIA_TYPE {
                Ok(Parsed::Cache {
                    config: manifest.config,
                    layers: manifest.layers,
                })
            } else {
                Ok(Parsed::Image {
                    config: manifest.config,
                    layers: manifest.layers,
                })
            }
        }
        CACHE_CONFIG_MEDIA_TYPE => {
            serde_json::from_slice(bytes)
                .map(Parsed::Config)
                .map_err(|source| FormatError::Json {
                    what: "cache config",
                    source,
                })
        }
        other => Err(FormatError::NotACache {
            media_type: other.to_owned(),
        }),
    }
}

/// The media type a document declares, falling back to the one it was served with.
fn media_type_of(served: &str, bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct MediaType {
        #[serde(default, rename = "mediaType")]
        media_type: String,
    }
    serde_json::from_slice::<MediaType>(bytes)
        .ok()
        .map(|m| m.media_type)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| served.to_owned())
}

/// The records of `config` that bake can use, each with its chain of layer blobs, resolved
/// against `layers` (the descriptors the manifest lists) and, for an inline cache,
/// `diff_ids` (the image config's, in layer order). Records whose layers are unknown are
/// left out rather than half used.
pub fn records(config: &CacheConfig, layers: &[Descriptor], diff_ids: &[Digest]) -> Vec<Record> {
    if config.keys.as_deref() != Some(KEYS) {
        return Vec::new();
    }
    let blob = |at: usize| -> Option<LayerBlob> {
        let layer = config.layers.get(at)?;
        let found = layers.iter().position(|d| d.digest == layer.blob);
        let descriptor = match (found, &layer.annotations) {
            (Some(i), _) => layers[i].clone(),
            (None, Some(a)) => Descriptor::new(a.media_type.clone(), layer.blob, a.size),
            (None, None) => return None,
        };
        let diff_id = descriptor
            .annotations
            .get(UNCOMPRESSED_ANNOTATION)
            .and_then(|text| text.parse().ok())
            .or_else(|| layer.annotations.as_ref().map(|a| a.diff_id))
            .or_else(|| found.and_then(|i| diff_ids.get(i).copied()))?;
        let mut descriptor = descriptor;
        descriptor.annotations.clear();
        Some(LayerBlob {
            descriptor,
            diff_id,
        })
    };
    let mut out = Vec::new();
    for record in &config.records {
        let Some(result) = record.results.first() else {
            continue;
        };
        let mut chain = Vec::new();
        let mut at = Some(result.layer);
        let mut complete = true;
        while let Some(index) = at {
            // A parent index that does not point below is malformed (it could loop).
            if chain.len() > config.layers.len() {
                complete = false;
                break;
            }
            let Some(layer) = blob(index) else {
                complete = false;
                break;
            };
            chain.push(layer);
            at = config
                .layers
                .get(index)
                .and_then(|l| usize::try_from(l.parent).ok());
        }
        if complete && !chain.is_empty() {
            chain.reverse();
            out.push(Record {
                key: record.digest,
                chain,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(name: &str) -> LayerBlob {
        LayerBlob {
            descriptor: Descriptor::new(
                media_types::OCI_LAYER_GZIP,
                Digest::of(name.as_bytes()),
                name.len() as u64,
            ),
            diff_id: Digest::of(format!("tar of {name}").as_bytes()),
        }
    }

    fn records() -> Vec<Record> {
        vec![
            Record {
                key: Digest::of(b"base"),
                chain: vec![blob("a")],
            },
            Record {
                key: Digest::of(b"run"),
                chain: vec![blob("a"), blob("b")],
            },
            Record {
                key: Digest::of(b"other"),
                chain: vec![blob("c"), blob("b")],
            },
        ]
    }

    #[test]
    fn aliases_are_read_only_for_records_the_config_holds_under_bake_keys() {
        let (held, gone) = (Digest::of(b"held"), Digest::of(b"gone"));
        let (mut config, _) = encode(
            &[Record {
                key: held,
                chain: vec![blob("a")],
            }],
            "2026-01-01T00:00:00Z",
        );
        config.aliases.insert(Digest::of(b"1"), held);
        config.aliases.insert(Digest::of(b"2"), gone);
        let text = serde_json::to_string(&config).unwrap();
        let read: CacheConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(
            aliases(&read).into_iter().collect::<Vec<_>>(),
            vec![(Digest::of(b"1"), held)]
        );
        let foreign = CacheConfig { keys: None, ..read };
        assert!(aliases(&foreign).is_empty());
    }

    #[test]
    fn shared_layers_are_written_once_and_chains_read_back() {
        let (config, blobs) = encode(&records(), "2024-01-01T00:00:00Z");
        // `b` on `a` and `b` on `c` are two layers but one blob.
        assert_eq!(config.layers.len(), 4);
        assert_eq!(blobs.len(), 3);
        assert_eq!(config.layers[0].parent, -1);
        assert_eq!(config.layers[1].parent, 0);
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(r#""parent":-1"#), "{text}");
        assert!(text.contains(r#""layers":[{"layer":1"#), "{text}");
        let back: CacheConfig = serde_json::from_str(&text).unwrap();
        let descriptors: Vec<Descriptor> = blobs.iter().map(|b| b.descriptor.clone()).collect();
        assert_eq!(super::records(&back, &descriptors, &[]), records());
    }

    #[test]
    fn manifests_round_trip_in_both_shapes() {
        let (_, blobs) = encode(&records(), "t");
        let config = Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, Digest::of(b"config"), 6);
        for image_manifest in [true, false] {
            let options = ManifestOptions {
                image_manifest,
                oci_media_types: true,
                config_only: false,
            };
            let (media_type, bytes) = manifest(&config, &blobs, options);
            let Parsed::Cache {
                config: read,
                layers,
            } = parse_manifest(&media_type, &bytes).unwrap()
            else {
                panic!("not a cache: {media_type}");
            };
            assert_eq!(read, config);
            assert_eq!(layers.len(), 3);
            assert_eq!(
                layers[0].annotations[UNCOMPRESSED_ANNOTATION],
                blobs[0].diff_id.to_string()
            );
        }
    }

    #[test]
    fn foreign_configs_and_broken_chains_give_no_records() {
        let (mut config, blobs) = encode(&records(), "t");
        let descriptors: Vec<Descriptor> = blobs.iter().map(|b| b.descriptor.clone()).collect();
        config.layers[1].parent = 1;
        assert_eq!(
            super::records(&config, &descriptors, &[]).len(),
            2,
            "the looping chain is left out"
        );
        config.keys = None;
        assert!(super::records(&config, &descriptors, &[]).is_empty());
        assert!(matches!(
            parse_manifest("text/plain", b"{}"),
            Err(FormatError::NotACache { .. })
        ));
    }

    #[test]
    fn a_bare_config_reads_back_from_its_layer_annotations() {
        let (config, _) = encode(&records(), "2024-01-01T00:00:00Z");
        let bytes = serde_json::to_vec(&config).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        // BuildKit's LayerAnnotations field names.
        for field in ["\"mediaType\"", "\"diffID\"", "\"size\"", "\"createdAt\""] {
            assert!(text.contains(field), "{text}");
        }
        let Parsed::Config(read) = parse_manifest(CACHE_CONFIG_MEDIA_TYPE, &bytes).unwrap() else {
            panic!("not a bare config");
        };
        assert_eq!(super::records(&read, &[], &[]), records());
        assert!(matches!(
            parse_manifest(CACHE_CONFIG_MEDIA_TYPE, b"[1]"),
            Err(FormatError::Json { .. })
        ));
    }
    /// BuildKit's `CacheConfig` as its Go decoder sees it (cache/remotecache/v1/spec.go):
    /// only `layers` and `records` are declared; serde, like `encoding/json`, skips the rest.
    #[derive(Deserialize)]
    struct GoCacheConfig {
        #[serde(default)]
        layers: Vec<GoLayer>,
        #[serde(default)]
        records: Vec<GoRecord>,
    }

    #[derive(Deserialize)]
    struct GoLayer {
        blob: Digest,
    }

    #[derive(Deserialize)]
    struct GoRecord {
        #[serde(default)]
        layers: Vec<GoResult>,
    }

    #[derive(Deserialize)]
    struct GoResult {
        layer: usize,
    }

    #[test]
    fn cache_mounts_are_listed_where_buildkit_does_not_look() {
        let (mut config, blobs) = encode(&records(), "t");
        let mount = MountBlob {
            id: "/root/.cache/go-build".to_owned(),
            blob: blob("mount"),
        };
        config.mounts = mount_entries(std::slice::from_ref(&mount), "t");
        let text = serde_json::to_string(&config).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Go matches JSON keys to fields without regard to case: no added key may fold to
        // one of BuildKit's.
        for key in value.as_object().unwrap().keys() {
            for field in ["layers", "records"] {
                assert!(
                    key == field || !key.eq_ignore_ascii_case(field),
                    "{key} would be read as {field}"
                );
            }
        }
        let go: GoCacheConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(go.layers.len(), config.layers.len());
        assert!(
            go.layers
                .iter()
                .all(|l| l.blob != mount.blob.descriptor.digest),
            "the mount's blob is no layer of a record"
        );
        assert!(
            go.records
                .iter()
                .all(|r| r.layers.iter().all(|result| result.layer < go.layers.len()))
        );
        // bake reads the mounts back, and the records as before.
        let back: CacheConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(mounts(&back), std::slice::from_ref(&mount));
        let descriptors: Vec<Descriptor> = blobs.iter().map(|b| b.descriptor.clone()).collect();
        assert_eq!(super::records(&back, &descriptors, &[]), records());
        let layer = mount_layer(&mount);
        assert_eq!(
            layer.descriptor.annotations[CACHE_MOUNT_ANNOTATION],
            "/root/.cache/go-build"
        );
    }
}
