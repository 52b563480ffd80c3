//! Snapshots: applying image layers onto a root directory, diffing two trees into a layer, the
//! [`Snapshotter`] that prepares mutable directories from committed parents ([`Native`]
//! copies, [`Overlay`] mounts), and the [`Ref`] a step result is, which knows its chain.
//!
//! Layer 2 (storage). May import `content`, `digest` and `oci`; never `solver`, `ops` or
//! anything above. Layer tars are untrusted: [`apply_layer`] resolves every path inside the
//! root with `openat2(RESOLVE_IN_ROOT)`.

mod apply;
mod diff;
mod native;
pub mod overlay;
mod refs;
pub mod usage;

use std::io;
use std::path::{Path, PathBuf};

pub use apply::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX, apply_layer};
pub use diff::{DiffOptions, diff};
pub use native::{Native, copy_tree};
pub use overlay::Overlay;
pub use refs::{Blob, Layer, Ref};

/// Prepares mutable trees from committed parents and keeps committed ones usable. A tree is
/// named by its directory, which every consumer reads as a full root filesystem whatever the
/// implementation.
// Compat: containerd snapshots.Snapshotter (Prepare, Commit, Mounts, Remove), keyed by the
// directory instead of a name because results travel as paths.
pub trait Snapshotter: Send + Sync + std::fmt::Debug {
    /// `overlayfs` or `native`, as buildkitd.toml names it.
    fn name(&self) -> &'static str;
    /// Creates a new active tree that starts as the committed tree at `parent` (or empty) and
    /// returns its directory, to be mutated and then committed.
    fn prepare(&self, parent: Option<&Path>) -> Result<PathBuf>;
    /// Ends the writable phase of the tree at `path`; from then on it may be a parent.
    fn commit(&self, path: &Path) -> Result<()>;
    /// Makes the committed tree at `path` readable in this process (mounting it if this
    /// process has not); fails for a tree this snapshotter cannot serve.
    fn mount(&self, path: &Path) -> Result<()>;
    /// Deletes the tree at `path` and its bookkeeping.
    fn remove(&self, path: &Path) -> Result<()>;
}

/// A fresh snapshot name: 32 hex digits, unique across processes and runs, which is what
/// garbage collection recognises as a step result.
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

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
