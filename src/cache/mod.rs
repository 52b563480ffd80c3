//! Cache stores for the solver: where a vertex's cache key finds its result again, in this
//! state root or in a build cache exported elsewhere. Layer 4. May import `solver` (traits),
//! `content`, `registry`, `snapshot`, `oci`, `digest`, `buildflags`.
//!
//! [`local::LocalCache`] keeps results across runs in the state root; [`gc`] removes what
//! the budget in buildkitd.toml no longer keeps. `cache-to`/`cache-from` entries open as a
//! [`backend::Backend`] on a [`remote::Remote`] ([`local_layout`], [`registry`],
//! [`s3::S3Remote`] for `type=s3`, [`gha::GhaRemote`] for `type=gha`); the [`format`](mod@format) is
//! BuildKit's cache config; [`import`] reads records before a solve and [`layered::Layered`]
//! serves them to it; [`export`] writes them after, with the contents of cache mounts when
//! the entry asks (`cache-mounts=`).

pub mod backend;
pub mod export;
pub mod format;
pub mod gc;
pub mod gha;
pub mod import;
pub mod layered;
pub mod local;
pub mod local_layout;
pub mod registry;
pub mod remote;
pub mod s3;
