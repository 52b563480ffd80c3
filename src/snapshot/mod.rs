//! Snapshots: applying image layers onto a root directory, diffing two trees into a layer, the
//! [`Snapshotter`] that prepares mutable directories from committed parents ([`Native`]
//! copies, [`Overlay`] mounts), and the [`Ref`] a step result is, which knows its chain.
//!
//! Layer 2 (storage). May import `content`, `digest` and `oci`; never `solver`, `ops` or
//! anything above. Layer tars are untrusted: [`apply_layer`] resolves every path inside the
//! root with `openat2(RESOLVE_IN_ROOT)`.

mod apply;
mod diff;
mod error;
mod native;
pub mod overlay;
mod refs;
mod snapshotter;
mod tree;
pub mod usage;

pub use self::apply::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX, apply_layer};
pub use self::diff::{DiffOptions, diff};
pub use self::error::{Error, Result};
pub use self::native::Native;
pub use self::overlay::Overlay;
pub use self::refs::{Blob, Layer, Ref, apply_blob};
pub use self::snapshotter::Snapshotter;
pub use self::tree::copy_tree;
