//! Snapshots: applying image layers onto a root directory, diffing two trees into a layer, and
//! the [`Snapshotter`] that prepares mutable directories from committed parents.
//!
//! Layer 2 (storage). May import `content` and `digest` (later `oci`); never `solver`, `ops`
//! or anything above. Layer tars are untrusted: [`apply_layer`] resolves every path inside the
//! root with `openat2(RESOLVE_IN_ROOT)`.

mod apply;
mod diff;
mod native;
pub mod overlay;
pub mod usage;

use std::io;
use std::path::PathBuf;

pub use apply::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX, apply_layer};
pub use diff::{DiffOptions, diff};
pub use native::{Native, Snapshotter, copy_tree};

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
    /// A snapshot key is empty or not a single path component.
    #[error("invalid snapshot key `{0}`: expected a non-empty name without `/`")]
    InvalidKey(String),
    /// A snapshot does not exist.
    #[error("snapshot `{0}` not found")]
    NotFound(String),
    /// A snapshot exists already.
    #[error("snapshot `{0}` already exists")]
    Exists(String),
    /// The snapshot is in the wrong state for the operation (for example a parent that is not
    /// committed, or committing twice).
    #[error("snapshot `{key}` is {state}")]
    State {
        /// The snapshot's key.
        key: String,
        /// `active` or `committed`.
        state: &'static str,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;
