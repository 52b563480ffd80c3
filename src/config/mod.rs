//! Settings from a `buildkitd.toml`, read with BuildKit's own keys so an existing file works
//! unchanged. Leaf: imports only `diag` and `platform`.
//!
//! [`parse`] checks every key it knows and returns typed values with the warnings found on
//! the way: unknown keys and values bake replaces (snapshotters such as `stargz`). Wrong types
//! and bad values are errors that point at the file, line and column. [`default_path`] says
//! where buildkitd looks for the file; [`load`] reads it.
//!
//! bake acts on `root`; on `[worker.oci]` `binary`, `max-parallelism`, `snapshotter`,
//! `platforms` and the GC keys (`gc`, `gckeepstorage`, `reservedSpace`, `maxUsedSpace`,
//! `gcpolicy`); and on `[registry."host"]` `mirrors`, `http`, `insecure` and `ca`. Every other
//! known key is checked, kept in [`Config`] (DNS, history, client certificates, ...) and
//! listed by [`Config::inert_keys`] so the command line can say it was ignored.

mod error;
mod parse;
mod units;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::diag::SourceFile;
use crate::platform::Platform;

pub use error::{Diagnostic, Error};
pub use units::DiskSpace;

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
    /// `insecure-entitlements` the daemon allows (`network.host`, `security.insecure`, ...).
    pub insecure_entitlements: Vec<String>,
    /// `[worker.oci]`.
    pub worker: OciWorker,
    /// `[registry."host"]`, by host.
    pub registries: BTreeMap<String, Registry>,
    /// `[dns]`: what RUN steps get in `/etc/resolv.conf`.
    pub dns: Option<Dns>,
    /// `[history]`: how long build records are kept.
    pub history: Option<History>,
    /// Keys present in the file that bake reads but does not act on, in file order.
    inert: Vec<String>,
}

impl Config {
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
    /// `platforms`: what the worker builds for; the first is the default platform.
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

/// Parses a `buildkitd.toml`. Every wrong type or bad value in the file is reported at
/// once.
///
/// # Errors
///
/// Returns every error found: TOML syntax, wrong types, bad sizes, durations, platforms and
/// values.
pub fn parse(file: &SourceFile) -> Result<Loaded, Error> {
    parse::document(file)
}

/// Returns where buildkitd looks for its config when no `--config` is given:
/// `/etc/buildkit/buildkitd.toml` as root, else `$XDG_CONFIG_HOME/buildkit/buildkitd.toml`,
/// else `~/.config/buildkit/buildkitd.toml`. `None` when there is no home to look in.
// Compat: buildkitd's default `--config` (cmd/buildkitd/main.go with util/appdefaults):
// rootful uses /etc/buildkit, rootless the XDG config directory.
pub fn default_path(
    is_root: bool,
    xdg_config_home: Option<&Path>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    let dir = if is_root {
        PathBuf::from("/etc/buildkit")
    } else {
        let set = |p: &&Path| !p.as_os_str().is_empty();
        match (xdg_config_home.filter(set), home.filter(set)) {
            (Some(config), _) => config.join("buildkit"),
            (None, Some(home)) => home.join(".config/buildkit"),
            (None, None) => return None,
        }
    };
    Some(dir.join("buildkitd.toml"))
}

/// Reads and parses the file at `path`. A missing file gives the defaults unless
/// `required` (the user named it with `--config`).
///
/// # Errors
///
/// `config::read` when the file cannot be read (or is missing and required), and every
/// error of [`parse`].
pub fn load(path: &Path, required: bool) -> Result<Loaded, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Loaded::default());
        }
        Err(error) => {
            let help = (error.kind() == std::io::ErrorKind::NotFound)
                .then(|| "check the path given to `--config`".to_owned());
            return Err(Error::one(
                Diagnostic::error(
                    "config::read",
                    format!("failed to read config file `{}`: {error}", path.display()),
                )
                .maybe_help(help),
            ));
        }
    };
    let file = SourceFile::new(path.display().to_string(), text);
    let mut loaded = parse(&file)?;
    loaded.config.path = Some(path.to_path_buf());
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_follows_buildkitd() {
        assert_eq!(
            default_path(true, Some(Path::new("/x")), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/etc/buildkit/buildkitd.toml"))
        );
        assert_eq!(
            default_path(false, Some(Path::new("/x")), Some(Path::new("/home/u"))),
            Some(PathBuf::from("/x/buildkit/buildkitd.toml"))
        );
        assert_eq!(
            default_path(false, None, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/home/u/.config/buildkit/buildkitd.toml"))
        );
        // An empty XDG_CONFIG_HOME counts as unset.
        assert_eq!(
            default_path(false, Some(Path::new("")), Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.config/buildkit/buildkitd.toml"))
        );
        assert_eq!(default_path(false, None, None), None);
    }

    #[test]
    fn missing_files_are_defaults_unless_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buildkitd.toml");
        let loaded = load(&path, false).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.config.runtime(), PathBuf::from("runc"));
        let error = load(&path, true).unwrap_err();
        assert_eq!(error.diagnostics[0].code, "config::read");
        std::fs::write(&path, "root = \"/state\"\n").unwrap();
        let loaded = load(&path, true).unwrap();
        assert_eq!(loaded.config.root, Some(PathBuf::from("/state")));
        assert_eq!(loaded.config.path, Some(path.clone()));
        assert!(loaded.config.inert_warning().is_none());
        std::fs::write(&path, "debug = true\n[grpc]\nuid = 0\n").unwrap();
        let warning = load(&path, true).unwrap().config.inert_warning().unwrap();
        assert!(warning.is_warning());
        assert_eq!(
            warning.message,
            format!(
                "bake checks but does not act on these keys of `{}`: `debug`, `grpc`",
                path.display()
            )
        );
    }
}
