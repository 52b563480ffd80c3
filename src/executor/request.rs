//! What one run is given and what it gives back: [`ExecRequest`] and its mounts and network
//! mode, the output [`Stream`]s and the [`ExitStatus`].

use std::path::PathBuf;

/// The default `PATH` given to a process whose environment lacks one.
// Compat: buildkit util/system DefaultPathEnvUnix.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The hostname used when a request leaves [`ExecRequest::hostname`] empty.
// Compat: buildkit executor/oci/hosts.go defaultHostname.
pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// Everything needed to run one process in a container, and nothing about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The root filesystem directory (absolute); writes to it persist after the run.
    /// Concurrent runs must each get their own rootfs, as every RUN step gets its own
    /// mutable snapshot: mount stubs are cleaned up per run.
    pub rootfs: PathBuf,
    /// The argv of the process; `args[0]` is looked up in `PATH` inside the container.
    pub args: Vec<String>,
    /// `KEY=value` pairs; `PATH` defaults to [`DEFAULT_PATH`] when absent.
    pub env: Vec<String>,
    /// The working directory inside the container; empty means `/`.
    pub cwd: String,
    /// `""` (root), `name`, `uid`, `uid:gid`, `name:group` and mixes, as in Docker's `USER`.
    pub user: String,
    /// The container's hostname; empty means [`DEFAULT_HOSTNAME`].
    pub hostname: String,
    /// Whether the process shares the host's network or gets only a loopback device.
    pub network: Network,
    /// Extra mounts, applied in order after the standard ones.
    pub mounts: Vec<Mount>,
    /// Mounts the rootfs read-only.
    pub readonly_rootfs: bool,
    /// `(host, ip)` pairs appended to `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
    /// `RUN --security=insecure`: every capability, no masked or read-only paths, a writable
    /// `/sys` and access to every device, as BuildKit's insecure mode.
    pub privileged: bool,
    /// Size of `/dev/shm` in bytes; 0 keeps the default of 64 MiB.
    pub shm_size: u64,
    /// Resource limits of the process, replacing the defaults of the same resource.
    pub rlimits: Vec<Rlimit>,
    /// cgroup limits of the container.
    pub resources: Option<Resources>,
}

/// One resource limit of the process; -1 is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// The resource as `ulimit` names it: `nofile`, `nproc`, `core`, ...
    pub resource: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// cgroup limits of a container, each applied by the runtime through its controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes; -1 is unlimited.
    pub memory_swap: Option<i64>,
    /// Relative CPU weight.
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period.
    pub cpu_quota: Option<i64>,
    /// CPUs the container may run on.
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    pub cpuset_mems: Option<String>,
}

impl Resources {
    /// The limits set, each with the cgroup controller that enforces it.
    pub fn controllers(&self) -> Vec<(&'static str, &'static str)> {
        [
            ("resources.memory", "memory", self.memory.is_some()),
            (
                "resources.memory-swap",
                "memory",
                self.memory_swap.is_some(),
            ),
            ("resources.cpu-shares", "cpu", self.cpu_shares.is_some()),
            ("resources.cpu-period", "cpu", self.cpu_period.is_some()),
            ("resources.cpu-quota", "cpu", self.cpu_quota.is_some()),
            (
                "resources.cpuset-cpus",
                "cpuset",
                self.cpuset_cpus.is_some(),
            ),
            (
                "resources.cpuset-mems",
                "cpuset",
                self.cpuset_mems.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, _, set)| *set)
        .map(|(limit, controller, _)| (limit, controller))
        .collect()
    }
}

impl ExecRequest {
    /// Creates a request that runs `args` as root in `rootfs` with host networking.
    pub fn new(rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Self {
            rootfs: rootfs.into(),
            args,
            env: Vec::new(),
            cwd: String::new(),
            user: String::new(),
            hostname: String::new(),
            network: Network::Host,
            mounts: Vec::new(),
            readonly_rootfs: false,
            extra_hosts: Vec::new(),
            privileged: false,
            shm_size: 0,
            rlimits: Vec::new(),
            resources: None,
        }
    }
}

/// The network mode of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Shares the host's network namespace.
    // Compat: buildkit's default when no CNI is configured (`network.mode=host` provider).
    #[default]
    Host,
    /// A new network namespace holding only the loopback device.
    None,
}

/// One extra mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The absolute path inside the container.
    pub destination: String,
    /// What is mounted there.
    pub kind: MountKind,
}

/// The kinds of [`Mount`] the executor supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A recursive bind mount of a host path (a file or a directory).
    Bind {
        /// The host path.
        source: PathBuf,
        /// Mounts it read-only.
        readonly: bool,
    },
    /// An empty, memory-backed file system that disappears with the container.
    Tmpfs {
        /// Size limit in bytes; `None` leaves the kernel default (half of RAM).
        size: Option<u64>,
    },
}

/// Which output stream of the process a chunk of bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The process's standard output.
    Stdout,
    /// The process's standard error.
    Stderr,
}

/// How the process of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    /// The exit code; `128 + n` when the process was killed by signal `n`, as shells report it.
    pub code: i32,
}

impl ExitStatus {
    /// Reports whether the process exited with code 0.
    pub fn success(self) -> bool {
        self.code == 0
    }
}
