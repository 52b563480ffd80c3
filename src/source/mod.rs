//! Build inputs: the local context ([`local`], filtered by [`dockerignore`]), registry images
//! ([`image`]), OCI image layouts on disk ([`oci_layout`]) and the empty `scratch` root
//! ([`scratch`]).
//!
//! Layer 4 (back ends). May import `snapshot`, `content`, `registry`, `oci`, `platform`,
//! `digest` and `graph` (op types only); never `solver`, `ops`, `engine` or anything above.
//! Sources turn something outside the store into a directory (a snapshot) plus a content
//! digest that cache keys use; they never decide what to build.

pub mod dockerignore;
mod error;
pub mod image;
pub mod local;
pub mod oci_layout;
pub mod scratch;
mod stat_cache;
mod unpack;

pub use self::error::{Error, Result};
pub use self::stat_cache::StatCache;
