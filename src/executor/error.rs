//! The errors of the executor, shared by user resolution, spec generation and the runtime.

use std::path::PathBuf;

/// Errors of the executor. A process that exits non-zero is not an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (empty argv, relative paths).
    #[error("invalid exec request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// A user string is not a name, a number or `user:group`.
    #[error("invalid user `{user}`")]
    InvalidUser {
        /// The user string as given.
        user: String,
    },
    /// A user name is not in the rootfs `/etc/passwd` (or the file is missing).
    #[error("unable to find user `{user}` in `{path}`")]
    UnknownUser {
        /// The user name.
        user: String,
        /// The passwd file looked at, on the host.
        path: PathBuf,
    },
    /// A group name is not in the rootfs `/etc/group` (or the file is missing).
    #[error("unable to find group `{group}` in `{path}`")]
    UnknownGroup {
        /// The group name.
        group: String,
        /// The group file looked at, on the host.
        path: PathBuf,
    },
    /// The rootfs `/etc/passwd` or `/etc/group` exists but cannot be read.
    #[error("failed to read `{path}`")]
    ReadUserDatabase {
        /// The file, on the host.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The oci-spec crate rejected a value while building the runtime spec.
    #[error("failed to build the OCI runtime spec")]
    Spec(#[from] oci_spec::OciSpecError),
    /// Writing the bundle (config.json, generated /etc files) failed.
    #[error("failed to write the OCI bundle at `{path}`")]
    Bundle {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime binary could not be started or waited for.
    #[error("failed to run `{binary}`")]
    Spawn {
        /// The runtime binary.
        binary: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The runtime started but could not create or start the container.
    #[error("`{binary}` failed to run container `{id}`: {message}")]
    Runtime {
        /// The runtime binary.
        binary: PathBuf,
        /// The container id.
        id: String,
        /// The runtime's own error message.
        message: String,
    },
    /// A cgroup limit was asked for and this host has no controller to enforce it.
    #[error("`{limit}` cannot be applied: this host has no `{controller}` cgroup controller")]
    MissingController {
        /// The limit, as the target names it (`resources.memory`).
        limit: String,
        /// The cgroup controller it needs.
        controller: String,
    },
    /// The runtime refuses this host's cgroup layout (crun 1.8 on a cgroup v1/v2 hybrid).
    #[error("`{binary}` does not support this host's hybrid cgroup layout: {message}")]
    HybridCgroups {
        /// The runtime binary.
        binary: PathBuf,
        /// The runtime's own error message.
        message: String,
    },
}

/// The result type of the executor.
pub type Result<T> = std::result::Result<T, Error>;
