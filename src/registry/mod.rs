//! The OCI distribution client: resolving references to manifests, pulling blobs straight
//! into the content store and pushing images, with Docker's credential files and BuildKit's
//! per-registry options (mirrors, plain HTTP, skipped TLS verification, extra CAs).
//!
//! Layer 2 (storage). May import `content`, `oci`, `digest` and `platform`; never `snapshot`,
//! `source` or anything above. The API is blocking, like the rest of the crate; [`Client::pull`]
//! fetches blobs on a few scoped threads, each with its own content-store handle.
//!
//! HTTP goes through `ureq` (blocking, rustls with the `ring` provider): one small client
//! with no async runtime, which keeps compile time low on the two-core machines we build on.

mod auth;
mod client;
mod error;
mod options;
mod pull;
mod push;
mod reference;
mod transport;

pub use self::auth::{Credentials, DockerConfig, Secret};
pub use self::client::Client;
pub use self::error::{Error, Result};
pub use self::options::{ClientOptions, HostOptions};
pub use self::pull::{PulledImage, Resolved, ResolvedImage};
pub use self::push::BlobPush;
pub use self::reference::{DOCKER_HUB, ParseReferenceError, Reference};

#[cfg(test)]
mod tests;
