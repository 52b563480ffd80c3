//! Turns one [`Layer`] into a stored layer blob: diffs snapshot trees, rewrites timestamps
//! when asked, and reuses or recompresses blobs already in the store. Part of `exporter`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::content::Store;
use crate::exporter::archive::{Mtime, copy_entries};
use crate::exporter::compress::{StoredLayer, store_layer};
use crate::exporter::error::{Error, Result, io_error};
use crate::exporter::options::{Compression, ImageOptions};
use crate::exporter::output::{Layer, LazyBlobs};
use crate::oci::Descriptor;

/// Stores `layer` as a blob of `media_type`, compressed as `options` ask. A blob the store
/// lacks that `lazy` serves is described without being fetched when it is kept as it is.
pub(crate) fn write_layer(
    store: &Store,
    layer: &Layer,
    options: &ImageOptions,
    media_type: &str,
    lazy: Option<&LazyBlobs>,
) -> Result<StoredLayer> {
    let clamp = options
        .source_date_epoch
        .filter(|_| options.rewrite_timestamp);
    match layer {
        Layer::Diff { lower, upper } => {
            // Snapshots never change once a step is done and their paths are never reused, so
            // the layer of one (lower, upper) pair with the same options is the same blob: a
            // warm rebuild exports without walking or compressing a tree again.
            let memo = format!(
                "{}{}",
                crate::content::LAYER_MEMO_PREFIX,
                crate::digest::Digest::of_parts([
                    lower
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .as_os_str()
                        .as_encoded_bytes(),
                    b"\0",
                    upper.as_os_str().as_encoded_bytes(),
                    b"\0",
                    format!("{clamp:?}/{:?}/{media_type}", options.compression).as_bytes(),
                ])
                .hex()
            );
            if let Some(stored) = recall(store, &memo) {
                return Ok(stored);
            }
            let mut temp = temp_file(store)?;
            let diff_options = crate::snapshot::DiffOptions {
                source_date_epoch: clamp,
            };
            crate::snapshot::diff(lower.as_deref(), upper, &mut temp, &diff_options)?;
            temp.seek(SeekFrom::Start(0))
                .map_err(io_error("rewind the layer of", upper))?;
            let stored = store_layer(store, temp, &options.compression, media_type, upper)?;
            remember(store, &memo, lower.as_deref(), upper, &stored);
            Ok(stored)
        }
        Layer::Tar(path) => {
            let file = File::open(path).map_err(io_error("open layer", path))?;
            store_tar(store, file, clamp, options, media_type, path)
        }
        Layer::Blob {
            descriptor,
            diff_id,
        } => write_blob(store, descriptor, diff_id, clamp, options, media_type, lazy),
    }
}

/// Stores `layers` as blobs compressed as `options` ask and returns each one's descriptor
/// and uncompressed digest, bottom first: the same blobs (through the same memo) an image
/// export with those options writes, so a build cache and an image share their layers.
///
/// # Errors
///
/// When a tree cannot be diffed or a blob is not in the store.
pub fn layer_blobs(
    store: &Store,
    layers: &[Layer],
    options: &ImageOptions,
) -> Result<Vec<(Descriptor, String)>> {
    let media_type = options
        .compression
        .compression
        .layer_media_type(options.oci_media_types);
    layers
        .iter()
        .map(|layer| {
            write_layer(store, layer, options, media_type, None)
                .map(|stored| (stored.descriptor, stored.diff_id))
        })
        .collect()
}

/// What a memo records: the blob, and the snapshots it came from (garbage collection drops
/// the memo once they are gone).
#[derive(serde::Serialize, serde::Deserialize)]
struct Memo {
    descriptor: Descriptor,
    diff_id: String,
    lower: Option<std::path::PathBuf>,
    upper: std::path::PathBuf,
}

fn recall(store: &Store, memo: &str) -> Option<StoredLayer> {
    let reference = store.reference(memo).ok()??;
    let memo: Memo = serde_json::from_str(&reference.record).ok()?;
    let digest = memo.descriptor.digest;
    store.exists(&digest).then(|| StoredLayer {
        path: store.blob_path(&digest),
        descriptor: memo.descriptor,
        diff_id: memo.diff_id,
    })
}

/// Advisory: a memo that cannot be written only costs a diff next time.
fn remember(store: &Store, name: &str, lower: Option<&Path>, upper: &Path, stored: &StoredLayer) {
    let digest = stored.descriptor.digest;
    let memo = Memo {
        descriptor: stored.descriptor.clone(),
        diff_id: stored.diff_id.clone(),
        lower: lower.map(Path::to_path_buf),
        upper: upper.to_path_buf(),
    };
    if let Ok(record) = serde_json::to_string(&memo) {
        let _ = store.set_reference(name, &record, &[digest]);
    }
}

/// Stores an uncompressed tar, clamping its mtimes first when `clamp` is set.
fn store_tar(
    store: &Store,
    tar: impl Read,
    clamp: Option<u64>,
    options: &ImageOptions,
    media_type: &str,
    source: &Path,
) -> Result<StoredLayer> {
    let Some(epoch) = clamp else {
        return store_layer(store, tar, &options.compression, media_type, source);
    };
    let mut builder = tar::Builder::new(temp_file(store)?);
    copy_entries(tar, &mut builder, Path::new(""), Mtime::Clamp(epoch))
        .map_err(io_error("rewrite timestamps of layer", source))?;
    let mut temp = builder
        .into_inner()
        .map_err(io_error("rewrite timestamps of layer", source))?;
    temp.seek(SeekFrom::Start(0))
        .map_err(io_error("rewind the layer of", source))?;
    store_layer(store, temp, &options.compression, media_type, source)
}

/// Reuses a stored blob, or decompresses and stores it anew when its timestamps must be
/// rewritten, `force-compression` asks for another compression, or the media types cannot
/// express its compression (zstd with Docker media types).
// Compat: buildkit cache/remote.go GetRemotes (existing blobs keep their compression unless
// force-compression is set).
fn write_blob(
    store: &Store,
    descriptor: &Descriptor,
    diff_id: &str,
    clamp: Option<u64>,
    options: &ImageOptions,
    media_type: &str,
    lazy: Option<&LazyBlobs>,
) -> Result<StoredLayer> {
    let bad = |reason| Error::BadLayer {
        digest: descriptor.digest,
        media_type: descriptor.media_type.clone(),
        reason,
    };
    let compression = Compression::of_media_type(&descriptor.media_type)
        .ok_or_else(|| bad("not a known layer media type"))?;
    let digest = descriptor.digest;
    let path = store.blob_path(&digest);
    let wanted = options.compression.compression;
    let representable = options.oci_media_types || compression != Compression::Zstd;
    let keep =
        clamp.is_none() && representable && (compression == wanted || !options.compression.force);
    if !store.exists(&digest) {
        let fetched = match lazy {
            // Kept as it is, the blob is described and left where it is.
            Some(_) if keep => true,
            Some(LazyBlobs(fetch)) => fetch
                .fetch(&digest, store)
                .map_err(|source| Error::FetchLayer { digest, source })?,
            None => false,
        };
        if !fetched {
            return Err(bad("the blob is not in the content store"));
        }
    }
    if keep {
        let media_type = compression.layer_media_type(options.oci_media_types);
        return Ok(StoredLayer {
            descriptor: Descriptor::new(media_type, digest, descriptor.size),
            diff_id: diff_id.to_owned(),
            path,
        });
    }
    let file = File::open(&path).map_err(io_error("open layer", &path))?;
    let tar: Box<dyn Read> = match compression {
        Compression::Uncompressed => Box::new(file),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(file)
                .map_err(io_error("start zstd decompression of", &path))?,
        ),
    };
    store_tar(store, tar, clamp, options, media_type, &path)
}

fn temp_file(store: &Store) -> Result<File> {
    // Anonymous (O_TMPFILE-like) files vanish on drop, so a failed export leaves nothing.
    tempfile::tempfile_in(store.root()).map_err(io_error("create a temp file in", store.root()))
}
