//! The typed settings of a `buildkitd.toml`: what `config::parse` fills in and the rest of
//! bake reads.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::error::Diagnostic;
use crate::config::units::DiskSpace;
use crate::platform::Platform;

/// The settings of one `buildkitd.toml` (or the defaults when there is none).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Config {
    /// The file the settings came from; `None` for the defaults.
    pub path: Option<PathBuf>,
    /// `root`: the state directory.
    pub root: Option<PathBuf>,
    /// `debug`: more logging.
    pub debug: bool,
    /// `trace`: even more logging.
    pub trace: bool,
    /// `insecure-entitlements` the worker allows (`network.host`, `security.insecure`);
    /// `None` when the file does not set it (see [`Config::insecure_entitlements`]).
    pub insecure_entitlements: Option<Vec<String>>,
    /// `[worker.oci]`.
    pub worker: OciWorker,
    /// `[registry."host"]`, by host.
    pub registries: BTreeMap<String, Registry>,
    /// `[dns]`: what RUN steps get in `/etc/resolv.conf`.
    pub dns: Option<Dns>,
    /// `[history]`: how long build records are kept.
    pub history: Option<History>,
    /// Keys present in the file that bake reads but does not act on, in file order.
    pub(super) inert: Vec<String>,
}

impl Config {
    /// The entitlements a build may be granted. Without `insecure-entitlements` in the file
    /// both are: bake has no daemon, so whoever runs it is the operator, and `--allow` is
    /// already their explicit consent. A file that sets the key (even to `[]`) is the
    /// operator narrowing that down, as for buildkitd.
    pub fn insecure_entitlements(&self) -> Vec<String> {
        self.insecure_entitlements
            .clone()
            .unwrap_or_else(|| vec!["network.host".to_owned(), "security.insecure".to_owned()])
    }

    /// Returns the `[registry."host"]` entries, by host (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &BTreeMap<String, Registry> {
        &self.registries
    }

    /// Returns the keys of the file that bake checks but does not act on (`grpc`, `dns`,
    /// `worker.oci.minFreeSpace`, ...), in file order, so the caller can warn once.
    pub fn inert_keys(&self) -> &[String] {
        &self.inert
    }

    /// Returns one warning naming every key of the file that bake does not act on, or
    /// `None` when there is none, so the command line says it once per run.
    pub fn inert_warning(&self) -> Option<Diagnostic> {
        if self.inert.is_empty() {
            return None;
        }
        let keys: Vec<String> = self.inert.iter().map(|k| format!("`{k}`")).collect();
        let file = self.path.as_deref().map_or_else(
            || "the config file".to_owned(),
            |p| format!("`{}`", p.display()),
        );
        Some(
            Diagnostic::warning(
                "config::inert",
                format!(
                    "bake checks but does not act on these keys of {file}: {}",
                    keys.join(", ")
                ),
            )
            .help(
                "bake acts on `root`, `[worker.oci]` `binary`, `max-parallelism`, \
                 `snapshotter`, `platforms` and the GC keys, and `[registry]` `mirrors`, \
                 `http`, `insecure` and `ca`; see `bake --help` and the book's config page",
            ),
        )
    }

    /// Returns the runtime binary: `[worker.oci] binary`, else `runc` (BuildKit's default).
    pub fn runtime(&self) -> PathBuf {
        self.worker
            .binary
            .as_deref()
            .map_or_else(|| PathBuf::from("runc"), PathBuf::from)
    }
}

/// `[worker.oci]`: the worker that runs RUN steps under runc or crun.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OciWorker {
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `binary`: the OCI runtime (`runc` when unset; `crun` works too). A name looked up in
    /// `PATH`, or a path.
    pub binary: Option<String>,
    /// `snapshotter`.
    pub snapshotter: Snapshotter,
    /// `rootless`.
    pub rootless: bool,
    /// `noProcessSandbox`.
    pub no_process_sandbox: bool,
    /// `max-parallelism`: steps run at once; `None` means the number of CPUs.
    pub max_parallelism: Option<NonZeroUsize>,
    /// `platforms`: what the worker builds for (nothing else, when set); the first is the default platform.
    pub platforms: Vec<Platform>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `cniPoolSize`.
    pub cni_pool_size: Option<u64>,
    /// The garbage-collection keys.
    pub gc: Gc,
}

/// Which snapshotter the file asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Snapshotter {
    /// `auto` (or unset): the best one available.
    #[default]
    Auto,
    /// `overlayfs`.
    Overlayfs,
    /// `native`: full copies.
    Native,
    /// A snapshotter buildkitd knows but bake does not have (`fuse-overlayfs`, `stargz`, ...).
    Unsupported(String),
}

/// The garbage-collection keys of a worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Gc {
    /// `gc`: whether to collect at all.
    pub enabled: Option<bool>,
    /// `gckeepstorage` (deprecated in BuildKit for `reservedSpace`).
    pub keep_storage: Option<DiskSpace>,
    /// `reservedSpace`.
    pub reserved_space: Option<DiskSpace>,
    /// `maxUsedSpace`.
    pub max_used_space: Option<DiskSpace>,
    /// `minFreeSpace`.
    pub min_free_space: Option<DiskSpace>,
    /// `[[worker.oci.gcpolicy]]`, in order.
    pub policies: Vec<GcPolicy>,
}

/// One `[[worker.oci.gcpolicy]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcPolicy {
    /// `all`: also collect internal records.
    pub all: bool,
    /// `filters` such as `type==source.local`.
    pub filters: Vec<String>,
    /// `keepDuration`.
    pub keep_duration: Option<Duration>,
    /// `keepBytes` (deprecated in BuildKit for `reservedSpace`).
    pub keep_bytes: Option<DiskSpace>,
    /// `reservedSpace`.
    pub reserved_space: Option<DiskSpace>,
    /// `maxUsedSpace`.
    pub max_used_space: Option<DiskSpace>,
    /// `minFreeSpace`.
    pub min_free_space: Option<DiskSpace>,
}

/// One `[registry."host"]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Registry {
    /// `mirrors`: hosts (with an optional path) tried before the registry itself.
    pub mirrors: Vec<String>,
    /// `http`: plain HTTP.
    pub http: Option<bool>,
    /// `insecure`: HTTPS without certificate verification.
    pub insecure: Option<bool>,
    /// `ca`: extra CA certificate files.
    pub ca: Vec<PathBuf>,
    /// `[[registry."host".keypair]]`: client certificates.
    pub keypairs: Vec<KeyPair>,
    /// `tlsconfigdir`: directories of `*.crt`, `*.cert` and `*.key` files.
    pub tls_config_dir: Vec<PathBuf>,
    /// `capabilities` (`pull`, `push`, `resolve`).
    pub capabilities: Vec<String>,
}

/// A client certificate and its key.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyPair {
    /// `key`: the private key file.
    pub key: PathBuf,
    /// `cert`: the certificate file.
    pub cert: PathBuf,
}

/// `[dns]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dns {
    /// `nameservers`.
    pub nameservers: Vec<String>,
    /// `options` such as `edns0`.
    pub options: Vec<String>,
    /// `searchDomains`.
    pub search_domains: Vec<String>,
}

/// `[history]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    /// `maxAge`.
    pub max_age: Option<Duration>,
    /// `maxEntries`.
    pub max_entries: Option<u64>,
}

/// A parsed file and the warnings found while reading it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// Unknown keys and values bake replaces, in file order; print them and go on.
    pub warnings: Vec<Diagnostic>,
}
