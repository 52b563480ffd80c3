//! The registry [`Client`]: its options and the transport every request goes through; pulls
//! and pushes are its methods in `pull.rs` and `push.rs`.

use crate::registry::auth::DockerConfig;
use crate::registry::error::Result;
use crate::registry::options::ClientOptions;
use crate::registry::transport::Transport;

/// A registry client. It caches tokens per registry and scope, so one client should serve a
/// whole build. It is `Sync`: pulls share it across threads.
#[derive(Debug)]
pub struct Client {
    pub(super) options: ClientOptions,
    pub(super) transport: Transport,
}

impl Client {
    /// Creates a client, reading the Docker config file for credentials.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let path = options
            .docker_config
            .clone()
            .unwrap_or_else(DockerConfig::default_path);
        let config = DockerConfig::load(&path)?;
        let transport = Transport::new(options.hosts.clone(), config);
        Ok(Self { options, transport })
    }
}
