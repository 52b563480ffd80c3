//! Build inputs: the local context ([`local`], filtered by [`dockerignore`]), registry images
//! ([`image`]), OCI image layouts on disk ([`oci_layout`]), git repositories ([`git`]), files
//! and tarballs over HTTP ([`http`], unpacked by [`archive`]) and the empty `scratch` root
//! ([`scratch`]).
//!
//! Layer 4 (back ends). May import `snapshot`, `content`, `registry`, `oci`, `platform`,
//! `digest` and `graph` (op types only); never `solver`, `ops`, `engine` or anything above.
//! Sources turn something outside the store into a directory (a snapshot) plus a content
//! digest that cache keys use; they never decide what to build.

pub mod archive;
pub mod dockerignore;
mod error;
pub mod git;
pub mod http;
pub mod image;
pub mod local;
pub mod oci_layout;
pub mod scratch;
mod stat_cache;
mod unpack;

pub use self::error::{Error, Result};
pub use self::stat_cache::StatCache;
