//! `cache-to`: writes records to a [`Remote`]: every layer blob the destination lacks, then
//! the cache config, then the manifest under each of its names, so a reader never finds a
//! manifest whose blobs are missing. Part of `cache`.

use crate::cache::format::{self, CACHE_CONFIG_MEDIA_TYPE, ManifestOptions, Record};
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
    /// The manifest written (the cache config itself when it is stored bare).
    pub manifest: Descriptor,
}

/// Writes `records` (whose layer blobs are all in `store`) to `remote` as the cache under
/// every one of `names` (BuildKit writes an S3 cache to each `;`-separated name).
///
/// # Errors
///
/// When a blob cannot be read from the store or the backend fails; the manifest is then
/// not written, so the destination keeps its previous cache.
pub fn export(
    remote: &dyn Remote,
    names: &[String],
    records: &[Record],
    store: &Store,
    options: ManifestOptions,
    created_at: &str,
) -> Result<Exported, RemoteError> {
    let (config, blobs) = format::encode(records, created_at);
    let mut uploaded = 0;
    for blob in &blobs {
        let digest = blob.descriptor.digest;
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
    }
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
        remote.put_blob(
            &config_digest,
            CACHE_CONFIG_MEDIA_TYPE,
            bytes.len() as u64,
            &mut &bytes[..],
        )?;
        format::manifest(&config_descriptor, &blobs, options)
    };
    for name in names {
        remote.put_manifest(name, &media_type, &manifest)?;
    }
    Ok(Exported {
        records: config.records.len(),
        layers: blobs.len(),
        uploaded,
        manifest: Descriptor::new(media_type, Digest::of(&manifest), manifest.len() as u64),
    })
}

#[cfg(test)]
mod tests {
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
        let first = export(
            &remote,
            &names,
            std::slice::from_ref(&record),
            &store,
            options,
            "t",
        )
        .unwrap();
        assert_eq!((first.records, first.layers, first.uploaded), (1, 1, 1));
        let second = export(&remote, &names, &[record], &store, options, "t").unwrap();
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
        let exported = export(&remote, &names, &[record], &store, options, "t").unwrap();
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
}
