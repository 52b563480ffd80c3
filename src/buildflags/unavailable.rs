//! Why a secret or SSH agent a target names cannot be provided on this host. Part of
//! `buildflags`.

use std::path::PathBuf;

/// Why a secret or SSH agent a target names cannot be provided.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The environment variable a secret reads is not set.
    #[error("secret `{id}`: environment variable `{name}` is not set")]
    SecretEnv {
        /// The secret id.
        id: String,
        /// The variable.
        name: String,
    },
    /// The file a secret reads cannot be read.
    #[error("secret `{id}`: failed to read `{path}`: {error}")]
    SecretFile {
        /// The secret id.
        id: String,
        /// The file as written.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// An entry without a path, and no `SSH_AUTH_SOCK`.
    #[error(
        "SSH `{id}`: no agent (SSH_AUTH_SOCK is not set; start ssh-agent or give a socket path)"
    )]
    NoAgent {
        /// The SSH id.
        id: String,
    },
    /// The path is not a socket (a key file, say).
    #[error(
        "SSH `{id}`: `{}` is not an agent socket; key files are not supported (load them into ssh-agent and use its socket)",
        path.display()
    )]
    NotSocket {
        /// The SSH id.
        id: String,
        /// The path.
        path: PathBuf,
    },
    /// The path cannot be looked at.
    #[error("SSH `{id}`: `{}`: {error}", path.display())]
    AgentPath {
        /// The SSH id.
        id: String,
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// More than one path: only key files may be combined, and bake forwards one agent.
    #[error(
        "SSH `{id}`: {count} paths given; bake forwards one agent socket per id (key files are not supported)"
    )]
    SeveralPaths {
        /// The SSH id.
        id: String,
        /// How many paths.
        count: usize,
    },
}
