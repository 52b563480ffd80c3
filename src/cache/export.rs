//! `cache-to`: writes records to a [`Remote`]: every layer blob the destination lacks, then
//! the cache config, then the manifest under its name, so a reader never finds a manifest
//! whose blobs are missing. Part of `cache`.

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
    /// The manifest written.
    pub manifest: Descriptor,
}

/// Writes `records` (whose layer blobs are all in `store`) to `remote` as the cache `name`.
///
/// # Errors
///
/// When a blob cannot be read from the store or the backend fails; the manifest is then
/// not written, so the destination keeps its previous cache.
pub fn export(
    remote: &dyn Remote,
    name: &str,
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
    remote.put_blob(
        &config_digest,
        CACHE_CONFIG_MEDIA_TYPE,
        bytes.len() as u64,
        &mut &bytes[..],
    )?;
    let config_descriptor =
        Descriptor::new(CACHE_CONFIG_MEDIA_TYPE, config_digest, bytes.len() as u64);
    let (media_type, manifest) = format::manifest(&config_descriptor, &blobs, options);
    remote.put_manifest(name, &media_type, &manifest)?;
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
        };
        let first = export(
            &remote,
            "latest",
            std::slice::from_ref(&record),
            &store,
            options,
            "t",
        )
        .unwrap();
        assert_eq!((first.records, first.layers, first.uploaded), (1, 1, 1));
        let second = export(&remote, "latest", &[record], &store, options, "t").unwrap();
        assert_eq!(second.uploaded, 0);
        let remote: std::sync::Arc<dyn Remote> = std::sync::Arc::new(remote);
        let mut imported = crate::cache::import::Imported::default();
        assert_eq!(imported.load(&remote, "latest").unwrap().records, 1);
    }
}
