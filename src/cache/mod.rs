//! Cache stores for the solver: where a vertex's cache key finds its result again. Layer 4.
//! May import `solver` (traits), `content`, `registry`, `snapshot`, `oci`, `digest`,
//! `buildflags`.
//!
//! Today: [`local::LocalCache`], which keeps results across runs in the state root. Import
//! and export backends (`registry`, `inline`, `local` directories, S3, Azure, GHA) come later.

pub mod gc;
pub mod local;
