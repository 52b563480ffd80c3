//! The errors of every exporter, shared by all of their files.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Errors of the exporters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An exporter attribute has a value the exporter does not accept.
    #[error("invalid value `{value}` for exporter attribute `{key}`: {reason}")]
    BadAttribute {
        /// The attribute name.
        key: String,
        /// The rejected value.
        value: String,
        /// What is accepted instead.
        reason: String,
    },
    /// The output type is not one this crate can export.
    #[error(
        "unknown output type `{0}`: the types are `local`, `tar`, `oci`, `docker`, `image`, `registry` and `cacheonly`"
    )]
    UnsupportedType(String),
    /// The exporter needs `dest=` and none was given.
    #[error("exporter `{kind}` requires `dest`")]
    MissingDestination {
        /// The exporter type.
        kind: String,
    },
    /// The result has no platform to export.
    #[error("nothing to export: the build result has no platform")]
    EmptyResult,
    /// The docker exporter was given a multi-platform result.
    // Compat: buildkit exporter/oci/export.go (the exact message).
    #[error("docker exporter does not currently support exporting manifest lists")]
    DockerManifestList,
    /// Two platforms of one result share a name, so their outputs would collide.
    #[error("platform `{0}` appears twice in the build result")]
    DuplicatePlatform(String),
    /// An image name is not a valid reference.
    #[error("invalid image name `{name}`: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored layer's descriptor names no valid digest or an unknown media type.
    #[error("cannot reuse layer `{digest}` of media type `{media_type}`: {reason}")]
    BadLayer {
        /// The layer's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A layer left in the build cache it was imported from could not be fetched.
    #[error("failed to fetch layer `{digest}` from the imported build cache")]
    FetchLayer {
        /// The layer's digest.
        digest: Digest,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A filesystem or stream operation failed.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved (`-` for stdout).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] crate::content::Error),
    /// Diffing or copying a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// Pushing the image to a registry failed.
    #[error("failed to push `{name}`")]
    Push {
        /// The image name being pushed.
        name: String,
        /// The registry client's error.
        #[source]
        source: Box<crate::registry::Error>,
    },
    /// `--load` found no Docker engine to load the image into.
    #[error(
        "cannot load the image: no Docker engine answers on `{socket}`; write it to a file \
         instead with `--set *.output=type=docker,dest=img.tar` (then `docker load -i img.tar`) \
         or `--set *.output=type=oci,dest=img.tar`"
    )]
    NoDockerEngine {
        /// The socket or address tried.
        socket: String,
    },
    /// Serialising an image document failed.
    #[error("failed to encode `{what}` as JSON")]
    Json {
        /// Which document.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns a closure that wraps an [`io::Error`] with an action and a path.
pub(super) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
