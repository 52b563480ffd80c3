//! Compresses one uncompressed layer tar into the content store in a single pass, hashing the
//! tar (the diff_id) and the compressed blob (the layer digest) as the bytes stream through.
//! Part of `exporter`.

use std::io::{self, Read};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use crate::exporter::error::{Result, io_error};
use crate::exporter::options::{Compression, CompressionOptions};
use crate::oci::Descriptor;

/// BuildKit's default zstd level (klauspost `SpeedDefault`, which corresponds to level 3).
const ZSTD_DEFAULT_LEVEL: u32 = 3;

/// A layer blob written to the store.
#[derive(Debug, Clone)]
pub(crate) struct StoredLayer {
    /// The blob's descriptor.
    pub descriptor: Descriptor,
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Where the blob lives in the store.
    pub path: PathBuf,
}

/// Counts and hashes the bytes read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..count]);
        self.count += count as u64;
        Ok(count)
    }
}

/// Streams `tar` (uncompressed) into `store`, compressed as `options` asks, and returns the
/// stored layer. `source` names the input in errors.
pub(crate) fn store_layer(
    store: &crate::content::Store,
    tar: impl Read,
    options: &CompressionOptions,
    media_type: &str,
    source: &std::path::Path,
) -> Result<StoredLayer> {
    let mut uncompressed = Hashing::new(tar);
    let (digest, size) = match options.compression {
        Compression::Uncompressed => {
            let digest = store.write_from(&mut uncompressed, None)?;
            (digest, uncompressed.count)
        }
        Compression::Gzip => {
            let level = flate2::Compression::new(options.level.unwrap_or(6));
            // A fixed header (mtime 0, no file name, OS "unknown" as Go writes it) keeps the
            // blob a function of the tar alone, which `rewrite-timestamp` relies on.
            let encoder = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .read(&mut uncompressed, level);
            let mut compressed = Hashing::new(encoder);
            let digest = store.write_from(&mut compressed, None)?;
            (digest, compressed.count)
        }
        Compression::Zstd => {
            let level = options.level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            let level = i32::try_from(level).unwrap_or(ZSTD_DEFAULT_LEVEL as i32);
            let encoder = zstd::stream::read::Encoder::new(&mut uncompressed, level)
                .map_err(io_error("start zstd compression of", source))?;
            let mut compressed = Hashing::new(encoder);
            let digest = store.write_from(&mut compressed, None)?;
            (digest, compressed.count)
        }
    };
    let diff_id = uncompressed.digest();
    Ok(StoredLayer {
        descriptor: Descriptor::new(media_type, digest, size),
        diff_id,
        path: store.blob_path(&digest),
    })
}
