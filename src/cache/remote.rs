//! Where an exported build cache lives: a place that holds blobs by digest and a few named
//! manifests. Every `cache-to`/`cache-from` backend (a local OCI layout, a registry
//! repository, an S3 bucket, the GitHub Actions cache) is one [`Remote`]; the cache format
//! (which blobs, which manifest, how records map to layers) is written once on top of it.
//! Part of `cache`.
//!
//! The trait is blocking: exports and imports run on the engine's threads before and after
//! the solve, and backends whose client is async keep their own runtime.

use std::collections::BTreeMap;
use std::io::Read;

use crate::digest::Digest;

/// A blob or manifest could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct RemoteError {
    /// What was being done, naming the backend and the object (`uploading blob sha256:… to s3://bucket/prefix`).
    pub what: String,
    /// The transport or storage error underneath.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl RemoteError {
    /// An error about `what`, caused by `source`.
    pub fn new(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    /// An error about `what` with no underlying cause (a bad response, say).
    pub fn message(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            source: None,
        }
    }
}

/// Attributes every cache entry may carry, read by the cache format and the engine rather
/// than by the backend.
pub const GENERIC_ATTRIBUTES: &[&str] = &[
    "mode",
    "ignore-error",
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "image-manifest",
    "cache-mounts",
];

/// Fails on the first attribute of a `kind` entry that is neither generic nor in `known`,
/// naming it and the backend's own attributes.
///
/// # Errors
///
/// The unknown attribute.
pub fn check_attributes(
    kind: &str,
    attrs: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<()> {
    match attrs
        .keys()
        .find(|key| !known.contains(&key.as_str()) && !GENERIC_ATTRIBUTES.contains(&key.as_str()))
    {
        Some(unknown) => Err(RemoteError::message(format!(
            "{kind} cache: unknown attribute `{unknown}` (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// What a [`Remote`] call returns.
pub type Result<T> = std::result::Result<T, RemoteError>;

/// One cache backend: blobs by digest, manifests by name.
///
/// A manifest name is the backend's tag for one cache (`buildcache`, the `name` option of
/// S3, the scope of GitHub Actions). Writers upload every blob a manifest refers to before
/// the manifest itself, and [`Remote::put_manifest`] replaces it in one step, so a reader
/// never sees a manifest whose blobs are missing.
pub trait Remote: Send + Sync {
    /// Describes the backend for messages (`type=s3,bucket=b,name=main`).
    fn describe(&self) -> String;

    /// The registry repository (`host/path`) the backend keeps its blobs in, when it is a
    /// registry.
    fn repository(&self) -> Option<String> {
        None
    }

    /// Returns whether the blob `digest` is stored already (so an export can skip it).
    ///
    /// # Errors
    ///
    /// When the backend cannot be asked.
    fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Opens the blob `digest` for reading; `None` when it is not stored.
    ///
    /// # Errors
    ///
    /// When the backend cannot be read.
    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>>;

    /// Stores `size` bytes read from `blob` as the blob `digest`, with `media_type`. The
    /// backend may trust the digest; readers verify what they fetch.
    ///
    /// # Errors
    ///
    /// When the blob cannot be written.
    fn put_blob(
        &self,
        digest: &Digest,
        media_type: &str,
        size: u64,
        blob: &mut dyn Read,
    ) -> Result<()>;

    /// Reads the manifest `name`: its media type and bytes; `None` when there is none.
    ///
    /// # Errors
    ///
    /// When the backend cannot be read.
    fn get_manifest(&self, name: &str) -> Result<Option<(String, Vec<u8>)>>;

    /// Stores `bytes` of `media_type` as the manifest `name`, replacing any earlier one at
    /// once (readers see the old or the new manifest, never a mix).
    ///
    /// # Errors
    ///
    /// When the manifest cannot be written.
    fn put_manifest(&self, name: &str, media_type: &str, bytes: &[u8]) -> Result<()>;
}
