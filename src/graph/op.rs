//! The four op kinds a vertex can run, as plain data. Inputs are referred to by their index in
//! the owning vertex's input list; `None` means the empty filesystem (`scratch`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a vertex does.
// Compat: buildkit solver/pb/ops.proto Op (Source, Exec, File, Merge); Diff/Build are not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "each op is built once and lives behind its vertex's Arc; boxing the exec op \
              would only add an allocation per RUN step"
)]
pub enum Op {
    /// Brings content in: an image, the build context, a git repository, an HTTP file.
    Source(SourceOp),
    /// Runs a process over a root filesystem and mounts.
    Exec(ExecOp),
    /// Changes files: copy, mkdir, mkfile, rm.
    File(FileOp),
    /// Layers its inputs on top of each other, first at the bottom.
    Merge(MergeOp),
}

/// A source: `docker-image://…`, `local://…`, `git://…`, `https://…`, `oci-layout://…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOp {
    /// The source identifier with its scheme, e.g. `docker-image://docker.io/library/alpine:3`.
    pub identifier: String,
    /// Source-specific attributes (include patterns, checksum, keep-git-dir, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// A process run (`RUN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// Argument vector, working directory, environment and user.
    pub meta: ExecMeta,
    /// Mounts; the one at `/` is the root filesystem and produces output 0.
    pub mounts: Vec<Mount>,
    /// Network mode.
    pub network: NetworkMode,
    /// Security mode.
    pub security: SecurityMode,
    /// Secrets exposed as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnv>,
    /// Proxy variables (`HTTP_PROXY`, ...) passed to the process but left out of the digest, so
    /// a different proxy never invalidates the cache.
    // Compat: buildkit llb ProxyEnv (excluded from the exec op's cache key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_env: BTreeMap<String, String>,
    /// cgroup limits of the container, left out of the digest: a step's result does not
    /// depend on them, and BuildKit keeps them out of the op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ExecResources>>,
}

/// The process part of an [`ExecOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecMeta {
    /// Argument vector.
    pub args: Vec<String>,
    /// Environment as `KEY=value`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// User (`name`, `uid`, `uid:gid`), empty for root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Extra `/etc/hosts` entries as `host=ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// Devices requested with `RUN --device`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Size of `/dev/shm` in bytes; 0 keeps the default.
    // Compat: buildkit pb.Meta.shmSize (part of the op, so of the cache key).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shm_size: u64,
    /// Resource limits of the process.
    // Compat: buildkit pb.Meta.ulimit (part of the op, so of the cache key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
}

// serde's `skip_serializing_if` passes a reference.
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde passes a reference"
)]
fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One resource limit of a RUN process (`RLIMIT_<NAME>`); -1 is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// The resource in lower case, as `ulimit` names it (`nofile`, `nproc`, ...).
    pub name: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// cgroup limits of an exec's container, as the runtime spec's `linux.resources` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResources {
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes; -1 is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// Relative CPU weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// CPUs the container may run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The sandbox network.
    #[default]
    Sandbox,
    /// The host network (needs an entitlement).
    Host,
    /// Loopback only.
    None,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    /// Default confinement.
    #[default]
    Sandbox,
    /// Privileged (needs an entitlement).
    Insecure,
}

/// A secret exposed as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnv {
    /// Secret id.
    pub id: String,
    /// Variable name.
    pub name: String,
    /// Fail when the secret is missing.
    pub required: bool,
}

/// One mount of an [`ExecOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Index of the input mounted here; `None` for an empty directory or a non-bind mount.
    pub input: Option<usize>,
    /// Sub-path of the input to mount.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector: String,
    /// Mount point inside the container.
    pub dest: String,
    /// Output index this mount produces, if its changes are kept.
    pub output: Option<usize>,
    /// Mounted read-only.
    pub readonly: bool,
    /// Kind-specific settings.
    pub kind: MountKind,
}

/// The kind of a [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountKind {
    /// A bind of an input (or of scratch).
    Bind,
    /// A persistent cache directory.
    Cache {
        /// Cache id.
        id: String,
        /// `shared`, `private` or `locked`.
        sharing: CacheSharing,
        /// Owner and mode of a new directory.
        owner: FileOwner,
    },
    /// A tmpfs.
    Tmpfs {
        /// Size limit in bytes, 0 for the default.
        size: u64,
    },
    /// A secret file.
    Secret {
        /// Secret id.
        id: String,
        /// Owner and mode.
        owner: FileOwner,
        /// Fail when the secret is missing.
        required: bool,
    },
    /// An SSH agent socket.
    Ssh {
        /// SSH id.
        id: String,
        /// Owner and mode.
        owner: FileOwner,
        /// Fail when the agent is missing.
        required: bool,
    },
}

/// How a cache mount is shared between concurrent builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Concurrent writers share the directory.
    #[default]
    Shared,
    /// Each writer gets its own directory.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// Numeric or named ownership plus a mode, for files and mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwner {
    /// User: a number or a name resolved in the destination's `/etc/passwd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group: a number or a name resolved in `/etc/group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Mode bits, when set explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// A chain of file actions applied to one base filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// Index of the base input; `None` starts from scratch.
    pub base: Option<usize>,
    /// Actions, applied in order.
    pub actions: Vec<FileAction>,
}

/// One change made by a [`FileOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileAction {
    /// Creates a directory.
    Mkdir {
        /// Absolute path.
        path: String,
        /// Owner and mode (default 0755).
        owner: FileOwner,
        /// Create missing parents.
        make_parents: bool,
    },
    /// Creates a file with the given content.
    Mkfile {
        /// Absolute path.
        path: String,
        /// Owner and mode (default 0644).
        owner: FileOwner,
        /// File content.
        data: String,
    },
    /// Removes a path.
    Rm {
        /// Absolute path.
        path: String,
        /// Succeed when the path is missing.
        allow_not_found: bool,
    },
    /// Copies from an input.
    Copy(CopyAction),
}

/// A copy from one input into the base (`COPY`, `ADD`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index of the input copied from; `None` copies from scratch.
    pub source: Option<usize>,
    /// Path (or glob) inside the source.
    pub src: String,
    /// Destination path.
    pub dest: String,
    /// Owner and mode of copied files.
    pub owner: FileOwner,
    /// Symbolic `--chmod` value when it is not octal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_str: Option<String>,
    /// Follow a symlink given as the source.
    pub follow_symlinks: bool,
    /// Copy a directory's contents rather than the directory.
    pub dir_copy_contents: bool,
    /// Create missing destination parents.
    pub create_dest_path: bool,
    /// Treat `src` as a glob.
    pub allow_wildcard: bool,
    /// A glob that matches nothing is not an error.
    pub allow_empty_wildcard: bool,
    /// Unpack archives (`ADD` of a local tar).
    pub attempt_unpack: bool,
    /// Keep parent directories (`--parents`).
    pub parents: bool,
    /// `--exclude` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_patterns: Vec<String>,
}

/// Layers all vertex inputs, first at the bottom (`COPY --link`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeOp {}
