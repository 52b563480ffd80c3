//! Image assembly: compresses each platform's layers into the content store and writes the
//! image config, the manifest and, for several platforms, an index. Part of `exporter`; the
//! `oci` and `docker` exporters package what this produces.
//!
//! The same inputs always give the same manifest digest: layers are diffed in sorted order,
//! gzip headers carry no time or name, JSON keys come out in a fixed order, and every time
//! comes from `SOURCE_DATE_EPOCH` when it is set.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::content::Store;
use crate::digest::Digest;
use crate::exporter::compress::StoredLayer;
use crate::exporter::error::{Error, Result};
use crate::exporter::layer::write_layer;
use crate::exporter::options::{AnnotationKind, ImageOptions};
use crate::exporter::output::{BuildOutput, LazyBlobs, PlatformOutput};
use crate::oci::{Descriptor, DescriptorPlatform, History, Index, Manifest, media_types};
use crate::platform::Platform;

/// Annotation on the exported descriptor naming the image config.
// Compat: buildkit exporter/containerimage/exptypes (the `config.digest` key buildx shows in
// `containerimage.descriptor`).
const CONFIG_DIGEST_ANNOTATION: &str = "config.digest";
/// The OCI annotation for the creation time.
pub(crate) const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// The history comment BuildKit gives entries it adds for layers the config does not explain.
// Compat: buildkit exporter/containerimage/writer.go normalizeLayersAndHistory.
const EXPORTER_HISTORY_COMMENT: &str = "buildkit.exporter.image.v0";

/// One platform's manifest, assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledManifest {
    /// The platform.
    pub platform: Platform,
    /// The descriptor of the manifest (with its platform).
    pub descriptor: Descriptor,
    /// The manifest itself.
    pub manifest: Manifest,
}

/// An image assembled in the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// What the image is: the manifest for one platform, the index for several.
    pub root: Descriptor,
    /// The per-platform manifests, in the order of the build output.
    pub manifests: Vec<AssembledManifest>,
    /// Every blob of the image (layers, configs, manifests, index) with its path in the store,
    /// deduplicated, in the order written.
    pub blobs: Vec<(Digest, PathBuf)>,
    /// The creation time recorded in the descriptor annotations (RFC 3339, seconds).
    pub created: String,
}

impl Assembled {
    /// Returns buildx's metadata keys for this image.
    pub fn metadata(&self) -> BTreeMap<String, serde_json::Value> {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "containerimage.digest".to_owned(),
            serde_json::Value::String(self.root.digest.to_string()),
        );
        if let [single] = self.manifests.as_slice() {
            metadata.insert(
                "containerimage.config.digest".to_owned(),
                serde_json::Value::String(single.manifest.config.digest.to_string()),
            );
        }
        if let Ok(value) = serde_json::to_value(&self.root) {
            metadata.insert("containerimage.descriptor".to_owned(), value);
        }
        metadata
    }
}

/// Assembles the image of `output` in `store` as `options` ask; `now` (seconds since the
/// epoch) is the creation time when no `SOURCE_DATE_EPOCH` is set.
pub fn assemble(
    store: &Store,
    output: &BuildOutput,
    options: &ImageOptions,
    now: u64,
) -> Result<Assembled> {
    let created_seconds = options.source_date_epoch.unwrap_or(now);
    let created = format_time(created_seconds);
    let multi = output.platforms.len() > 1;
    if !multi && options.annotations.has(AnnotationKind::Index) {
        // Compat: buildkit exporter/containerimage/writer.go (the same refusal).
        return Err(Error::BadAttribute {
            key: "annotation-index".to_owned(),
            value: String::new(),
            reason: "index annotations not supported for single platform export".to_owned(),
        });
    }
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    for platform_output in &output.platforms {
        let manifest = assemble_platform(
            store,
            platform_output,
            options,
            &created,
            output.lazy.as_ref(),
            &mut blobs,
        )?;
        manifests.push(manifest);
    }
    let root = if multi {
        write_index(store, &manifests, options, &mut blobs)?
    } else {
        let single = &manifests[0];
        let mut root = single.descriptor.clone();
        root.annotations.insert(
            CONFIG_DIGEST_ANNOTATION.to_owned(),
            single.manifest.config.digest.to_string(),
        );
        root
    };
    let mut root = root;
    root.annotations
        .insert(CREATED_ANNOTATION.to_owned(), created.clone());
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|(digest, _)| seen.insert(*digest));
    Ok(Assembled {
        root,
        manifests,
        blobs,
        created,
    })
}

fn format_time(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    Timestamp::from_second(seconds)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}

fn assemble_platform(
    store: &Store,
    output: &PlatformOutput,
    options: &ImageOptions,
    created: &str,
    lazy: Option<&LazyBlobs>,
    blobs: &mut Vec<(Digest, PathBuf)>,
) -> Result<AssembledManifest> {
    let oci = options.oci_media_types;
    let layer_media_type = options.compression.compression.layer_media_type(oci);
    let mut layers = Vec::new();
    for layer in &output.layers {
        let stored = write_layer(store, layer, options, layer_media_type, lazy)?;
        blobs.push((stored.descriptor.digest, stored.path.clone()));
        layers.push(stored);
    }
    let config = config_json(output, &layers, options, created)?;
    let config_digest = store.write(&config)?;
    blobs.push((config_digest, store.blob_path(&config_digest)));
    let config_media_type = if oci {
        media_types::OCI_CONFIG
    } else {
        media_types::DOCKER_CONFIG
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: if oci {
            media_types::OCI_MANIFEST
        } else {
            media_types::DOCKER_MANIFEST
        }
        .to_owned(),
        artifact_type: None,
        config: Descriptor::new(config_media_type, config_digest, config.len() as u64),
        layers: layers.into_iter().map(|layer| layer.descriptor).collect(),
        subject: None,
        annotations: options
            .annotations
            .for_kind(AnnotationKind::Manifest, Some(&output.platform)),
    };
    // Compat: buildkit writes manifests with json.MarshalIndent(…, "", "  ").
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| Error::Json {
        what: "manifest",
        source,
    })?;
    let digest = store.write(&bytes)?;
    blobs.push((digest, store.blob_path(&digest)));
    Ok(AssembledManifest {
        platform: output.platform.clone(),
        descriptor: Descriptor {
            annotations: options
                .annotations
                .for_kind(AnnotationKind::ManifestDescriptor, Some(&output.platform)),
            platform: Some(DescriptorPlatform::from(&output.platform)),
            ..Descriptor::new(manifest.media_type.clone(), digest, bytes.len() as u64)
        },
        manifest,
    })
}

/// Builds the image config: the front end's image plus `created`, `rootfs` and a history with
/// one non-empty entry per layer.
fn config_json(
    output: &PlatformOutput,
    layers: &[StoredLayer],
    options: &ImageOptions,
    created: &str,
) -> Result<Vec<u8>> {
    let mut image = output.image.clone();
    image.history = normalize_history(image.history, layers.len(), created);
    fill_history_times(&mut image.history, created);
    if let Some(epoch) = options.source_date_epoch {
        // Compat: buildkit exporter/containerimage/writer.go patchImageConfig: with an epoch,
        // history times later than it (or missing) become the epoch.
        for entry in &mut image.history {
            let later = match entry.created.as_deref().map(str::parse::<Timestamp>) {
                Some(Ok(time)) => time.as_second() > i64::try_from(epoch).unwrap_or(i64::MAX),
                _ => true,
            };
            if later {
                entry.created = Some(created.to_owned());
            }
        }
    }
    let value = serde_json::to_value(&image).map_err(|source| Error::Json {
        what: "image config",
        source,
    })?;
    // Compat: buildkit patches the config as a map[string]json.RawMessage, so top-level keys
    // come out sorted.
    let mut sorted: BTreeMap<String, serde_json::Value> = match value {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    sorted.insert("created".to_owned(), created.into());
    if let Some(cache) = &output.inline_cache {
        sorted.insert(
            crate::oci::INLINE_CACHE_KEY.to_owned(),
            cache.clone().into(),
        );
    }
    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
    sorted.insert(
        "rootfs".to_owned(),
        serde_json::json!({ "type": "layers", "diff_ids": diff_ids }),
    );
    serde_json::to_vec(&sorted).map_err(|source| Error::Json {
        what: "image config",
        source,
    })
}

/// Gives every history entry a `created` time: layer entries without one get the layer's
/// time (the build time here), and the others the time of the entry before them, or of the
/// first timed entry after them when none comes before.
// Compat: buildkit exporter/containerimage/writer.go normalizeLayersAndHistory (the two
// passes over `created` after layer times are filled in).
fn fill_history_times(history: &mut [History], layer_time: &str) {
    for entry in history.iter_mut() {
        if !entry.empty_layer && entry.created.is_none() {
            entry.created = Some(layer_time.to_owned());
        }
    }
    let mut fill: Option<String> = None;
    let mut missing = false;
    for entry in history.iter() {
        match &entry.created {
            Some(time) => {
                fill = Some(time.clone());
                if missing {
                    break;
                }
            }
            None => missing = true,
        }
    }
    let mut missing = false;
    for entry in history.iter_mut() {
        match &entry.created {
            Some(time) if missing => fill = Some(time.clone()),
            Some(_) => {}
            None => {
                missing = true;
                entry.created.clone_from(&fill);
            }
        }
    }
}

/// Makes the history agree with the layer count: surplus non-empty entries become empty from
/// the top, missing ones are appended.
// Compat: buildkit exporter/containerimage/writer.go normalizeLayersAndHistory.
fn normalize_history(history: Vec<History>, layers: usize, created: &str) -> Vec<History> {
    let mut seen = 0;
    let mut history: Vec<History> = history
        .into_iter()
        .map(|mut entry| {
            if !entry.empty_layer {
                if seen >= layers {
                    entry.empty_layer = true;
                } else {
                    seen += 1;
                }
            }
            entry
        })
        .collect();
    for _ in seen..layers {
        history.push(History {
            created: Some(created.to_owned()),
            comment: Some(EXPORTER_HISTORY_COMMENT.to_owned()),
            ..History::default()
        });
    }
    history
}

fn write_index(
    store: &Store,
    manifests: &[AssembledManifest],
    options: &ImageOptions,
    blobs: &mut Vec<(Digest, PathBuf)>,
) -> Result<Descriptor> {
    let oci = options.oci_media_types;
    let media_type = if oci {
        media_types::OCI_INDEX
    } else {
        media_types::DOCKER_MANIFEST_LIST
    };
    let index = Index {
        schema_version: 2,
        media_type: media_type.to_owned(),
        artifact_type: None,
        manifests: manifests.iter().map(|m| m.descriptor.clone()).collect(),
        subject: None,
        annotations: options.annotations.for_kind(AnnotationKind::Index, None),
    };
    let bytes = serde_json::to_vec_pretty(&index).map_err(|source| Error::Json {
        what: "index",
        source,
    })?;
    let digest = store.write(&bytes)?;
    blobs.push((digest, store.blob_path(&digest)));
    Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(empty: bool) -> History {
        History {
            created_by: Some(format!("step empty={empty}")),
            empty_layer: empty,
            ..History::default()
        }
    }

    #[test]
    fn history_times_follow_buildkit() {
        let timed = |empty: bool, created: Option<&str>| History {
            created: created.map(str::to_owned),
            ..entry(empty)
        };
        let mut history = vec![
            timed(false, Some("BASE")),
            timed(true, None),
            timed(false, None),
            timed(true, None),
        ];
        fill_history_times(&mut history, "NOW");
        let times: Vec<_> = history.iter().map(|h| h.created.as_deref()).collect();
        assert_eq!(times, [Some("BASE"), Some("NOW"), Some("NOW"), Some("NOW")]);
        let mut metadata_only = vec![timed(false, Some("BASE")), timed(true, None)];
        fill_history_times(&mut metadata_only, "NOW");
        assert_eq!(metadata_only[1].created.as_deref(), Some("BASE"));
        let mut scratch = vec![timed(true, None)];
        fill_history_times(&mut scratch, "NOW");
        assert_eq!(scratch[0].created, None);
    }

    #[test]
    fn missing_history_entries_are_appended() {
        let history = normalize_history(vec![entry(true), entry(false)], 3, "T");
        assert_eq!(history.len(), 4);
        assert!(history[2..].iter().all(|h| !h.empty_layer
            && h.comment.as_deref() == Some(EXPORTER_HISTORY_COMMENT)
            && h.created.as_deref() == Some("T")));
    }

    #[test]
    fn surplus_history_entries_become_empty() {
        let history = normalize_history(vec![entry(false), entry(false)], 1, "T");
        assert_eq!(
            history.iter().map(|h| h.empty_layer).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn times_are_rfc3339_seconds() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
