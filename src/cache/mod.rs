//! Cache stores for the solver: where a vertex's cache key finds its result again. Layer 4.
//! May import `solver` (traits), `content`, `registry`, `snapshot`, `oci`, `digest`,
//! `buildflags`.
//!
//! [`local::LocalCache`] keeps results across runs in the state root; [`gc`] removes what
//! the budget in buildkitd.toml no longer keeps.

pub mod gc;
pub mod local;
pub mod remote;
