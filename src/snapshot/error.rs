//! The errors of the snapshot module, shared by layer application, diffs and both
//! snapshotters.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of the snapshot module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layer stream is not a readable tar archive.
    #[error("failed to read layer archive")]
    Layer {
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Applying one layer entry failed.
    #[error("failed to {action} layer entry `{entry}`")]
    Entry {
        /// The entry's name as stored in the layer.
        entry: String,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A layer entry's name leaves the root through `..`.
    #[error("layer entry `{entry}` escapes the root with `..`")]
    Escape {
        /// The entry's name as stored in the layer.
        entry: String,
    },
    /// A hard link entry points outside the root.
    #[error("layer entry `{entry}` is a hard link to `{target}`, outside the root")]
    HardLinkEscape {
        /// The entry's name as stored in the layer.
        entry: String,
        /// The link target as stored in the layer.
        target: String,
    },
    /// A whiteout names `.`, `..` or nothing.
    #[error("layer entry `{entry}` is a whiteout of an invalid name")]
    BadWhiteout {
        /// The entry's name as stored in the layer.
        entry: String,
    },
    /// A filesystem operation outside layer application failed.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A tree was made by another snapshotter (an overlay on a native worker).
    #[error("snapshot `{0}` was made by another snapshotter")]
    Foreign(PathBuf),
    /// A snapshot does not exist.
    #[error("snapshot `{0}` not found")]
    NotFound(String),
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns a closure that wraps an [`io::Error`] with an action and a path.
pub(super) fn io_error<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
