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
mod pull;
mod push;
mod reference;
mod transport;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use auth::{Credentials, DockerConfig, Secret};
pub use pull::{PulledImage, Resolved, ResolvedImage};
pub use push::BlobPush;
pub use reference::{DOCKER_HUB, ParseReferenceError, Reference};

use crate::digest::Digest;

/// Errors of the registry client. Messages never contain a password or token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference does not parse.
    #[error(transparent)]
    Reference(#[from] ParseReferenceError),
    /// The registry asked for credentials we do not have, or refused the ones we sent.
    #[error("unauthorized: authentication required for `{name}` ({hint})")]
    Unauthorized {
        /// `registry/repository`.
        name: String,
        /// What to check: which credentials were used and where they came from.
        hint: String,
    },
    /// The registry understood the credentials but denied the operation.
    #[error("denied: access to `{name}` was refused by the registry: {message}")]
    Denied {
        /// `registry/repository`.
        name: String,
        /// The registry's own message.
        message: String,
    },
    /// A manifest or blob does not exist.
    #[error("{what} not found: `{reference}`")]
    NotFound {
        /// `manifest` or `blob`.
        what: &'static str,
        /// The reference or `name@digest` asked for.
        reference: String,
    },
    /// The registry answered with a status this operation does not expect.
    #[error("failed to {action} `{name}`: the registry answered {status}{message}")]
    Status {
        /// What was being done (`fetch manifest`, `upload blob`, ...).
        action: &'static str,
        /// `registry/repository` or `name@digest`.
        name: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text, `: `-prefixed, or empty.
        message: String,
    },
    /// The registry could not be reached, or the connection failed mid-transfer.
    #[error("failed to {action} `{host}`")]
    Connect {
        /// What was being done.
        action: &'static str,
        /// The host (and port) dialled.
        host: String,
        /// The transport error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A manifest, index or config does not parse.
    #[error("failed to parse {what} of `{reference}`")]
    BadDocument {
        /// `manifest`, `index`, `image config`, `token response`.
        what: &'static str,
        /// The reference it came from.
        reference: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A document has a media type this client cannot use.
    #[error("unsupported media type `{media_type}` for `{reference}`")]
    MediaType {
        /// The media type.
        media_type: String,
        /// The reference.
        reference: String,
    },
    /// A downloaded document does not hash to the digest that named it.
    #[error("`{reference}` does not match its digest: got `{actual}`")]
    DigestMismatch {
        /// The reference (with the expected digest).
        reference: String,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A manifest or index is larger than any sane one.
    #[error("{what} of `{reference}` is larger than {limit} bytes")]
    TooLarge {
        /// `manifest` or `index`.
        what: &'static str,
        /// The reference.
        reference: String,
        /// The limit.
        limit: u64,
    },
    /// No manifest of an index matches the requested platform.
    #[error("no image for platform `{platform}` in `{reference}` (found: {available})")]
    NoPlatform {
        /// The requested platform.
        platform: String,
        /// The reference.
        reference: String,
        /// The platforms the index lists.
        available: String,
    },
    /// A Docker `config.json` is unreadable or malformed.
    #[error("failed to read registry credentials from `{path}`: {reason}")]
    Credentials {
        /// The config file.
        path: PathBuf,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper `{helper}` (configured in `{path}`) failed: {reason}")]
    CredentialHelper {
        /// The helper program.
        helper: String,
        /// The config file that names it.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A CA certificate file from the host options is unreadable or not PEM.
    #[error("failed to load CA certificate `{path}` for registry `{host}`: {reason}")]
    Certificate {
        /// The registry host.
        host: String,
        /// The certificate file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading a blob from, or writing one to, the content store failed.
    #[error("failed to store `{reference}` in the content store")]
    Content {
        /// The blob's `name@digest`.
        reference: String,
        /// The store's error.
        #[source]
        source: Box<crate::content::Error>,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Settings for one registry host, with BuildKit's `[registry."host"]` meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOptions {
    /// Mirrors (`host[:port][/path]`) tried, in order, before the registry itself for pulls.
    pub mirrors: Vec<String>,
    /// Talk plain HTTP. Loopback hosts (`localhost`, `127.0.0.1`, `::1`) default to it.
    pub http: bool,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// PEM CA certificates to trust instead of the built-in roots.
    pub ca: Vec<PathBuf>,
}

/// How a [`Client`] is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-host settings keyed by registry host (`docker.io`, `127.0.0.1:5000`).
    pub hosts: BTreeMap<String, HostOptions>,
    /// The Docker config file holding credentials; `None` reads
    /// [`DockerConfig::default_path`].
    pub docker_config: Option<PathBuf>,
    /// How many blobs [`Client::pull`] fetches at once.
    pub concurrency: usize,
    /// Blobs larger than this are uploaded in chunks of this size.
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            hosts: BTreeMap::new(),
            docker_config: None,
            concurrency: 4,
            chunk_size: 32 << 20,
        }
    }
}

/// A registry client. It caches tokens per registry and scope, so one client should serve a
/// whole build. It is `Sync`: pulls share it across threads.
#[derive(Debug)]
pub struct Client {
    options: ClientOptions,
    transport: transport::Transport,
}

impl Client {
    /// Creates a client, reading the Docker config file for credentials.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let path = options
            .docker_config
            .clone()
            .unwrap_or_else(DockerConfig::default_path);
        let config = DockerConfig::load(&path)?;
        let transport = transport::Transport::new(options.hosts.clone(), config);
        Ok(Self { options, transport })
    }
}

#[cfg(test)]
mod tests;
