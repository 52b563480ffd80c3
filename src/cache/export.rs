//! `cache-to`: writes records to a [`Remote`]: every layer blob the destination lacks (the
//! steps' layers, then the tars of any cache mounts), then the cache config, then the manifest
//! under each of its names, so a reader never finds a manifest whose blobs are missing. Part
//! of `cache`.

use crate::cache::format::{
    self, CACHE_CONFIG_MEDIA_TYPE, LayerBlob, ManifestOptions, MountBlob, Record,
};
use crate::cache::remote::{Remote, RemoteError};
use crate::content::Store;
use crate::digest::Digest;
use crate::oci::Descriptor;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Records in the cache config.
    pub records: usize,
    /// Layer blobs the cache names.
    pub layers: usize,
    /// Layer blobs uploaded (the others were there already).
    pub uploaded: usize,
    /// Bytes of the blobs uploaded.
    pub uploaded_bytes: u64,
    /// Cache mounts whose contents the cache carries.
    pub mounts: usize,
    /// The manifest written (the cache config itself when it is stored bare).
    pub manifest: Descriptor,
}

/// What an export writes: records whose layer blobs are all in the store, and the tars of
/// cache mounts (also in the store).
#[derive(Debug, Clone, Copy)]
pub struct Contents<'a> {
    /// The records.
    pub records: &'a [Record],
    /// The cache mounts' contents.
    pub mounts: &'a [MountBlob],
    /// Definition key → record key (see [`format::CacheConfig::aliases`]).
    pub aliases: &'a std::collections::BTreeMap<Digest, Digest>,
}

/// Writes `contents` (whose blobs are all in `store`) to `remote` as the cache under every
/// one of `names` (BuildKit writes an S3 cache to each `;`-separated name). `log` receives
/// one line per blob, config and manifest written, in BuildKit's words.
///
/// # Errors
///
/// When a blob cannot be read from the store or the backend fails; the manifest is then
/// not written, so the destination keeps its previous cache.
pub fn export(
    remote: &dyn Remote,
    names: &[String],
    contents: Contents<'_>,
    store: &Store,
    options: ManifestOptions,
    created_at: &str,
    log: &mut dyn FnMut(String),
) -> Result<Exported, RemoteError> {
    let (mut config, mut blobs) = format::encode(contents.records, created_at);
    config.mounts = format::mount_entries(contents.mounts, created_at);
    config.aliases = contents
        .aliases
        .iter()
        .filter(|(_, key)| contents.records.iter().any(|r| r.key == **key))
        .map(|(fast, key)| (*fast, *key))
        .collect();
    let layers = blobs.len();
    for mount in contents.mounts {
        if !blobs
            .iter()
            .any(|b| b.descriptor.digest == mount.blob.descriptor.digest)
        {
            blobs.push(format::mount_layer(mount));
        }
    }
    let (uploaded, uploaded_bytes) = upload(remote, &blobs, store, log)?;
    let bytes = serde_json::to_vec(&config)
        .map_err(|source| RemoteError::new("failed to encode the cache config", source))?;
    let config_digest = Digest::of(&bytes);
    let config_descriptor =
        Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, config_digest, bytes.len() as u64);
    // Compat: buildkit's s3 and gha exporters store the marshalled config under each name,
    // its layers annotated with media type, size and diffID, and upload no config blob.
    let (media_type, manifest) = if options.config_only {
        (CACHE_CONFIG_MEDIA_TYPE.to_owned(), bytes)
    } else {
        // Compat: buildkit cache/remotecache/export.go Finalize's progress lines.
        log(format!("writing config {config_digest}"));
        remote.put_blob(
            &config_digest,
            CACHE_CONFIG_MEDIA_TYPE,
            bytes.len() as u64,
            &mut &bytes[..],
        )?;
        format::manifest(&config_descriptor, &blobs, options)
    };
    let manifest_digest = Digest::of(&manifest);
    log(match (options.config_only, options.image_manifest) {
        (true, _) => format!("writing cache config {manifest_digest}"),
        (false, true) => format!("writing cache image manifest {manifest_digest}"),
        (false, false) => format!("writing cache manifest {manifest_digest}"),
    });
    for name in names {
        remote.put_manifest(name, &media_type, &manifest)?;
    }
    Ok(Exported {
        records: config.records.len(),
        layers,
        uploaded,
        uploaded_bytes,
        mounts: config.mounts.len(),
        manifest: Descriptor::new(media_type, manifest_digest, manifest.len() as u64),
    })
}

/// Uploads the blobs `remote` lacks; returns how many, and their bytes.
fn upload(
    remote: &dyn Remote,
    blobs: &[LayerBlob],
    store: &Store,
    log: &mut dyn FnMut(String),
) -> Result<(usize, u64), RemoteError> {
    let mut uploaded = 0;
    let mut bytes = 0;
    for blob in blobs {
        let digest = blob.descriptor.digest;
        log(format!("writing layer {digest}"));
        if remote.has_blob(&digest)? {
            continue;
        }
        let mut file = store.open_blob(&digest).map_err(|source| {
            RemoteError::new(
                format!("failed to read layer `{digest}` from the content store"),
                source,
            )
        })?;
        remote.put_blob(
            &digest,
            &blob.descriptor.media_type,
            blob.descriptor.size,
            &mut file,
        )?;
        uploaded += 1;
        bytes += blob.descriptor.size;
    }
    Ok((uploaded, bytes))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cache::local_layout::LocalLayout;

    #[test]
    fn an_export_reads_back_and_a_second_one_uploads_nothing_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("state")).unwrap();
        let digest = store.write(b"layer").unwrap();
        let record = Record {
            key: Digest::of(b"key"),
            chain: vec![format::LayerBlob {
                descriptor: Descriptor::new(crate::oci::media_types::OCI_LAYER, digest, 5),
                diff_id: digest,
            }],
        };
        let remote = LocalLayout::new(dir.path().join("cache"));
        let options = ManifestOptions {
            image_manifest: false,
            oci_media_types: true,
            config_only: false,
        };
        let names = ["latest".to_owned()];
        let no_aliases = BTreeMap::new();
        let contents = |records| Contents {
            records,
            mounts: &[],
            aliases: &no_aliases,
        };
        let mut lines = Vec::new();
        let first = export(
            &remote,
            &names,
            contents(std::slice::from_ref(&record)),
            &store,
            options,
            "t",
            &mut |line| lines.push(line),
        )
        .unwrap();
        assert_eq!((first.records, first.layers, first.uploaded), (1, 1, 1));
        assert_eq!(first.uploaded_bytes, 5);
        assert_eq!(lines[0], format!("writing layer {digest}"));
        assert!(lines[1].starts_with("writing config sha256:"), "{lines:?}");
        assert!(
            lines[2].starts_with("writing cache manifest sha256:"),
            "{lines:?}"
        );
        let second = export(
            &remote,
            &names,
            contents(std::slice::from_ref(&record)),
            &store,
            options,
            "t",
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(second.uploaded, 0);
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(remote);
        let mut imported = crate::cache::import::Imported::default();
        assert_eq!(imported.load(&remote, "latest").unwrap().records, 1);
    }

    #[test]
    fn a_config_only_export_stores_the_config_under_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("state")).unwrap();
        let digest = store.write(b"layer").unwrap();
        let record = Record {
            key: Digest::of(b"key"),
            chain: vec![format::LayerBlob {
                descriptor: Descriptor::new(crate::oci::media_types::OCI_LAYER, digest, 5),
                diff_id: digest,
            }],
        };
        let remote = LocalLayout::new(dir.path().join("cache"));
        let options = ManifestOptions {
            image_manifest: true,
            oci_media_types: true,
            config_only: true,
        };
        let names = ["main".to_owned(), "pr-7".to_owned()];
        let contents = Contents {
            records: &[record],
            mounts: &[],
            aliases: &BTreeMap::new(),
        };
        let exported =
            export(&remote, &names, contents, &store, options, "t", &mut |_| {}).unwrap();
        assert_eq!(exported.manifest.media_type, CACHE_CONFIG_MEDIA_TYPE);
        for name in &names {
            let (media_type, bytes) = remote.get_manifest(name).unwrap().unwrap();
            assert_eq!(media_type, CACHE_CONFIG_MEDIA_TYPE);
            let config: format::CacheConfig = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(config.records.len(), 1);
        }
        // No config blob beside the layer and the two (identical) manifests.
        let blobs = std::fs::read_dir(dir.path().join("cache/blobs/sha256"))
            .unwrap()
            .count();
        assert_eq!(blobs, 2);
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(remote);
        let mut imported = crate::cache::import::Imported::default();
        let names = ["missing".to_owned(), "pr-7".to_owned()];
        let (name, summary) = imported.load_first(&remote, &names).unwrap();
        assert_eq!((name.as_str(), summary.records), ("pr-7", 1));
    }
    #[test]
    fn cache_mounts_ride_as_annotated_layers_and_read_back_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("state")).unwrap();
        let layer = store.write(b"layer").unwrap();
        let tar = store.write(b"mount tar").unwrap();
        let record = Record {
            key: Digest::of(b"key"),
            chain: vec![format::LayerBlob {
                descriptor: Descriptor::new(crate::oci::media_types::OCI_LAYER, layer, 5),
                diff_id: layer,
            }],
        };
        let mount = MountBlob {
            id: "x".to_owned(),
            blob: format::LayerBlob {
                descriptor: Descriptor::new(crate::oci::media_types::OCI_LAYER, tar, 9),
                diff_id: tar,
            },
        };
        let remote = LocalLayout::new(dir.path().join("cache"));
        for image_manifest in [true, false] {
            let options = ManifestOptions {
                image_manifest,
                oci_media_types: true,
                config_only: false,
            };
            let contents = Contents {
                records: std::slice::from_ref(&record),
                mounts: std::slice::from_ref(&mount),
                aliases: &BTreeMap::new(),
            };
            let names = ["latest".to_owned()];
            let exported =
                export(&remote, &names, contents, &store, options, "t", &mut |_| {}).unwrap();
            assert_eq!((exported.layers, exported.mounts), (1, 1));
            let (media_type, bytes) = remote.get_manifest("latest").unwrap().unwrap();
            let format::Parsed::Cache { layers, .. } =
                format::parse_manifest(&media_type, &bytes).unwrap()
            else {
                panic!("not a cache manifest");
            };
            let annotated: Vec<_> = layers
                .iter()
                .filter_map(|d| d.annotations.get(format::CACHE_MOUNT_ANNOTATION))
                .collect();
            assert_eq!(annotated, ["x"]);
            let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(remote.clone());
            let mut imported = crate::cache::import::Imported::default();
            let summary = imported.load(&remote, "latest").unwrap();
            assert_eq!((summary.records, summary.mounts), (1, 1));
            assert_eq!(imported.mount("x"), Some(&mount));
            assert!(imported.mount("y").is_none());
            // A second cache with the same id does not replace the first one's.
            assert_eq!(imported.load(&remote, "latest").unwrap().mounts, 0);
        }
    }
}
