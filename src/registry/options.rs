//! How a client is set up: per-host settings and client-wide limits.

use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// How a [`Client`](crate::registry::Client) is set up.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-host settings keyed by registry host (`docker.io`, `127.0.0.1:5000`).
    pub hosts: BTreeMap<String, HostOptions>,
    /// The Docker config file holding credentials; `None` reads
    /// [`DockerConfig::default_path`](crate::registry::DockerConfig::default_path).
    pub docker_config: Option<PathBuf>,
    /// How many blobs [`Client::pull`](crate::registry::Client::pull) fetches at once.
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
