//! The errors of every source (context, image, layout), shared by all of its files.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Errors of the source module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done (`read`, `open`, `copy`, ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A `.dockerignore` or include pattern is malformed.
    #[error("invalid pattern `{pattern}`: {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path resolves, through a symlink or `..`, to somewhere outside the context.
    #[error("path `{path}` resolves outside the build context `{context}`")]
    OutsideContext {
        /// The path as requested, relative to the context.
        path: String,
        /// The context directory.
        context: PathBuf,
    },
    /// A selected path does not exist in the context (or is excluded by `.dockerignore`).
    #[error("path `{path}` not found in the build context `{context}`")]
    NotFound {
        /// The path as requested, relative to the context.
        path: String,
        /// The context directory.
        context: PathBuf,
    },
    /// The stat cache file could not be encoded.
    #[error("failed to encode the stat cache `{path}`")]
    StatCache {
        /// The cache file.
        path: PathBuf,
        /// The serialisation error.
        #[source]
        source: serde_json::Error,
    },
    /// A directory is not an OCI image layout.
    #[error("`{path}` is not an OCI image layout: {reason}")]
    NotLayout {
        /// The layout directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// A JSON document in a layout (index, manifest, config) does not parse.
    #[error("failed to parse {what} `{digest}` in `{layout}`")]
    BadDocument {
        /// `index`, `manifest` or `image config`.
        what: &'static str,
        /// The blob's digest.
        digest: Digest,
        /// The layout directory.
        layout: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A blob's bytes do not hash to (or are not the size of) its descriptor.
    #[error("blob `{digest}` in `{layout}` is corrupt: {reason}")]
    CorruptBlob {
        /// The digest the descriptor names.
        digest: Digest,
        /// The layout directory.
        layout: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// No manifest in a layout carries the requested tag.
    #[error("tag `{tag}` not found in `{layout}`; available tags: {available}")]
    TagNotFound {
        /// The requested tag.
        tag: String,
        /// The layout directory.
        layout: PathBuf,
        /// The tags that exist, comma-separated in backticks (or `none`).
        available: String,
    },
    /// No manifest in a layout has the requested digest.
    #[error("digest `{digest}` not found in `{layout}`")]
    DigestNotFound {
        /// The requested digest.
        digest: Digest,
        /// The layout directory.
        layout: PathBuf,
    },
    /// The layout holds several images and nothing says which one.
    #[error(
        "`{layout}` holds {count} images; name one with `:tag` or `@digest` (tags: {available})"
    )]
    Ambiguous {
        /// The layout directory.
        layout: PathBuf,
        /// How many top-level entries the index has.
        count: usize,
        /// The tags that exist.
        available: String,
    },
    /// No manifest matches the requested platform.
    #[error("no image for platform `{platform}` in `{layout}` (found: {available})")]
    NoPlatform {
        /// The requested platform.
        platform: String,
        /// The layout directory.
        layout: PathBuf,
        /// The platforms that exist.
        available: String,
    },
    /// A registry image is a single manifest for another platform.
    #[error("image `{reference}` is for `{available}`, not `{platform}`")]
    WrongPlatform {
        /// The image reference.
        reference: String,
        /// The requested platform.
        platform: String,
        /// The platform the image is for.
        available: String,
    },
    /// A layer or descriptor has a media type we cannot read.
    #[error("unsupported media type `{media_type}` for blob `{digest}`")]
    MediaType {
        /// The media type.
        media_type: String,
        /// The blob's digest.
        digest: Digest,
    },
    /// Storing a blob in the content store failed.
    #[error("failed to import blob `{digest}` into the content store")]
    Content {
        /// The blob's digest.
        digest: Digest,
        /// The store's error.
        #[source]
        source: Box<crate::content::Error>,
    },
    /// Pulling an image from a registry failed.
    #[error("failed to pull `{reference}`")]
    Pull {
        /// The image reference.
        reference: String,
        /// The registry client's error.
        #[source]
        source: Box<crate::registry::Error>,
    },
    /// Applying a layer failed.
    #[error("failed to apply layer `{digest}` onto `{root}`")]
    Apply {
        /// The layer's digest.
        digest: Digest,
        /// The directory being unpacked into.
        root: PathBuf,
        /// The snapshot module's error.
        #[source]
        source: Box<crate::snapshot::Error>,
    },
    /// A git command failed.
    #[error("failed to {action} `{url}`: git exited with status {status}\n{stderr}")]
    Git {
        /// What was being done (`fetch`, `list the refs of`, ...).
        action: &'static str,
        /// The repository URL.
        url: String,
        /// git's exit status.
        status: i32,
        /// The last lines git wrote to stderr.
        stderr: String,
    },
    /// The `git` binary could not be started.
    #[error("failed to run `git` (Debian package `git`)")]
    GitSpawn {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A ref does not exist on the remote.
    #[error("unknown ref `{reference}` in `{url}`")]
    UnknownRef {
        /// The repository URL.
        url: String,
        /// The branch, tag or commit asked for.
        reference: String,
    },
    /// The ref resolved to another commit than the checksum names.
    #[error("`{url}` resolved to commit `{actual}`, not the expected `{expected}`")]
    GitChecksum {
        /// The repository URL.
        url: String,
        /// The checksum given.
        expected: String,
        /// The commit the ref names.
        actual: String,
    },
    /// The subdirectory a git URL names is not in the repository.
    #[error("directory `{subdir}` not found in `{url}`")]
    GitSubdir {
        /// The repository URL.
        url: String,
        /// The subdirectory.
        subdir: String,
    },
    /// A git URL does not parse.
    #[error(transparent)]
    GitUrl(#[from] crate::graph::git::BadGitUrl),
    /// An HTTP request failed before a response came.
    #[error("failed to download `{url}`")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error status.
    #[error("failed to download `{url}`: HTTP status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A download does not have the checksum the build asked for.
    #[error("checksum mismatch for `{url}`: expected `{expected}`, got `{actual}`")]
    Checksum {
        /// The URL.
        url: String,
        /// The checksum given (`--checksum`).
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// An archive could not be unpacked.
    #[error("failed to unpack `{url}`")]
    Unpack {
        /// Where the archive came from.
        url: String,
        /// Why.
        #[source]
        source: Box<crate::snapshot::Error>,
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
