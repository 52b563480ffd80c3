//! Unpacking an image's layers onto a directory: the one loop registry images and OCI layouts
//! share, with decompression by media type and each layer checked against the config's
//! `diff_ids`. Part of `source`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result, io_error};
use crate::digest::Digest;
use crate::oci::{Descriptor, media_types};
use crate::snapshot;

/// Where an image's blobs are read from while unpacking.
pub(crate) struct Blobs<'a> {
    /// The store or layout directory, named in errors.
    pub(crate) origin: &'a Path,
    /// Returns the file holding a blob.
    pub(crate) path: &'a dyn Fn(&Digest) -> PathBuf,
    /// Checks a layer before it is applied (a layout verifies its untrusted blobs here).
    pub(crate) check: &'a dyn Fn(&Descriptor) -> Result<()>,
}

/// Applies `layers`, base first, onto `into` (created if needed), checking each uncompressed
/// layer against `diff_ids` (the image config's `rootfs.diff_ids`).
pub(crate) fn unpack_layers(
    blobs: &Blobs<'_>,
    layers: &[Descriptor],
    diff_ids: &[Digest],
    into: &Path,
) -> Result<()> {
    for (index, layer) in layers.iter().enumerate() {
        (blobs.check)(layer)?;
        let path = (blobs.path)(&layer.digest);
        let file = File::open(&path).map_err(io_error("open", &path))?;
        let reader = decompress(&layer.media_type, &layer.digest, BufReader::new(file))?;
        let mut tar = HashingReader::new(reader);
        snapshot::apply_layer(into, &mut tar).map_err(|source| Error::Apply {
            digest: layer.digest,
            root: into.to_owned(),
            source: Box::new(source),
        })?;
        // apply_layer may stop at the tar end-of-archive blocks; the diff_id covers the whole
        // uncompressed stream.
        io::copy(&mut tar, &mut io::sink()).map_err(io_error("read", &path))?;
        let (diff_id, _) = tar.finish();
        if let Some(expected) = diff_ids.get(index)
            && *expected != diff_id
        {
            return Err(Error::CorruptBlob {
                digest: layer.digest,
                layout: blobs.origin.to_owned(),
                reason: format!(
                    "uncompressed layer hashes to `{diff_id}`, the config says `{expected}`"
                ),
            });
        }
    }
    Ok(())
}

/// Wraps a layer blob of `media_type` in its decompressor.
pub(crate) fn decompress<'a>(
    media_type: &str,
    digest: &Digest,
    reader: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>> {
    let base = media_type
        .strip_prefix(media_types::OCI_NONDISTRIBUTABLE_LAYER_PREFIX)
        .or_else(|| media_type.strip_prefix(media_types::OCI_LAYER_PREFIX));
    Ok(match (base, media_type) {
        (Some("tar"), _) | (_, media_types::DOCKER_LAYER) => Box::new(reader),
        (Some("tar+gzip"), _)
        | (_, media_types::DOCKER_LAYER_GZIP)
        | (_, media_types::DOCKER_FOREIGN_LAYER_GZIP) => {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        }
        (Some("tar+zstd"), _) => Box::new(
            zstd::stream::read::Decoder::new(reader)
                .map_err(io_error("start decompressing", digest.to_string()))?,
        ),
        _ => {
            return Err(Error::MediaType {
                media_type: media_type.to_owned(),
                digest: *digest,
            });
        }
    })
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Returns the digest and byte count of everything read.
    pub(crate) fn finish(self) -> (Digest, u64) {
        (Digest::from_bytes(self.hasher.finalize().into()), self.size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        self.size += count as u64;
        Ok(count)
    }
}
