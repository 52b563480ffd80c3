//! Cache stores for the solver: where a vertex's cache key finds its result again. Layer 4.
//! May import `solver` (traits), `content`, `registry`, `snapshot`, `oci`, `digest`,
//! `buildflags`.
//!
//! [`local::LocalCache`] keeps results across runs in the state root; [`gc`] removes what
//! the budget in buildkitd.toml no longer keeps. [`s3::S3Remote`] and [`gha::GhaRemote`] are
//! [`remote::Remote`]s for `type=s3` and `type=gha`.

pub mod gc;
pub mod gha;
pub mod local;
pub mod remote;
pub mod s3;
