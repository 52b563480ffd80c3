//! The [`Snapshotter`] trait both snapshotters implement, and the names they give new trees.

use std::path::{Path, PathBuf};

use crate::snapshot::error::Result;

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
    /// Calls `fill` with the directory that holds what the freshly prepared tree at `path`
    /// adds over its parent, with no mount in between, so what `fill` writes there may be
    /// hard links to other committed trees: an overlay's upper directory (the tree is
    /// unmounted around the call), or the tree itself for a native snapshot. `fill` may only
    /// add paths the parent does not have, or real directories over the parent's.
    fn fill(&self, path: &Path, fill: &mut dyn FnMut(&Path)) -> Result<()>;
}

/// A fresh snapshot name: 32 hex digits, unique across processes and runs, which is what
/// garbage collection recognises as a step result.
pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
