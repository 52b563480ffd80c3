//! Walks the spanned TOML tree key by key: every known key is type-checked into [`Config`],
//! unknown keys become warnings, and every error is collected before returning.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::error::{Diagnostic, Error};
use crate::config::types::{
    Config, Dns, GcPolicy, History, KeyPair, Loaded, OciWorker, Registry, Snapshotter,
};
use crate::config::units::{self, DiskSpace};
use crate::diag::SourceFile;
use crate::platform::Platform;

type Value<'i> = Spanned<DeValue<'i>>;

/// Parses a whole file.
pub(crate) fn document(file: &SourceFile) -> Result<Loaded, Error> {
    let (root, syntax) = DeTable::parse_recoverable(&file.text);
    if !syntax.is_empty() {
        let diagnostics = syntax
            .iter()
            .map(|error| {
                let span = error.span().unwrap_or(0..0);
                Diagnostic::error(
                    "config::syntax",
                    format!("invalid TOML: {}", error.message().trim_end()),
                )
                .at(file, span)
                .label("here")
            })
            .collect();
        return Err(Error { diagnostics });
    }
    let mut walker = Walker {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
        inert: Vec::new(),
    };
    let mut config = Config::default();
    walker.top(root.get_ref(), &mut config);
    let Walker {
        mut errors,
        mut warnings,
        inert,
        ..
    } = walker;
    if !errors.is_empty() {
        errors.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        return Err(Error {
            diagnostics: errors,
        });
    }
    warnings.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
    let mut inert = inert;
    inert.sort_by_key(|(_, start)| *start);
    config.inert = inert.into_iter().map(|(key, _)| key).collect();
    Ok(Loaded { config, warnings })
}

/// Top-level keys, the sections bake uses, and the sections it only checks.
const TOP: &[&str] = &[
    "root",
    "debug",
    "trace",
    "insecure-entitlements",
    "proxyNetwork",
    "provenanceEnvDir",
    "log",
    "dns",
    "grpc",
    "otel",
    "cdi",
    "history",
    "worker",
    "registry",
    "frontend",
    "system",
    "ghacache",
];

/// `[worker.oci]` keys. Compat: buildkit `OCIConfig` with its embedded `GCConfig` and
/// `NetworkConfig` (cmd/buildkitd/config/config.go).
const OCI: &[&str] = &[
    "enabled",
    "labels",
    "platforms",
    "snapshotter",
    "rootless",
    "noProcessSandbox",
    "gc",
    "gckeepstorage",
    "reservedSpace",
    "maxUsedSpace",
    "minFreeSpace",
    "gcpolicy",
    "networkMode",
    "cniConfigPath",
    "cniBinaryPath",
    "cniPoolSize",
    "bridgeName",
    "bridgeSubnet",
    "userRemapUnsupported",
    "binary",
    "proxySnapshotterPath",
    "defaultCgroupParent",
    "isolateCgroups",
    "stargzSnapshotter",
    "apparmor-profile",
    "selinux",
    "max-parallelism",
];

/// The `[worker.oci]` keys bake acts on; the others are listed as inert.
const OCI_USED: &[&str] = &[
    "binary",
    "snapshotter",
    "platforms",
    "max-parallelism",
    "gc",
    "gckeepstorage",
    "reservedSpace",
    "maxUsedSpace",
    "gcpolicy",
];

const GC_POLICY: &[&str] = &[
    "all",
    "filters",
    "keepDuration",
    "keepBytes",
    "reservedSpace",
    "maxUsedSpace",
    "minFreeSpace",
];

const REGISTRY: &[&str] = &[
    "mirrors",
    "http",
    "insecure",
    "ca",
    "keypair",
    "tlsconfigdir",
    "capabilities",
];

/// Snapshotters buildkitd knows that bake does not have; they are warnings, not errors, so
/// a file written for buildkitd still loads.
const OTHER_SNAPSHOTTERS: &[&str] = &["fuse-overlayfs", "stargz", "nydus", "overlay"];

struct Walker<'f> {
    file: &'f SourceFile,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Keys present but not acted on, with where they start (to sort them by file order).
    inert: Vec<(String, usize)>,
}

/// Joins a dotted key path, quoting parts that are not bare TOML keys (`registry."docker.io"`).
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let key = if bare {
        key.to_owned()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn article(kind: &str) -> &'static str {
    match kind {
        "integer" | "array" => "an",
        _ => "a",
    }
}

/// Levenshtein distance, for "did you mean" on unknown keys.
/// Suggests a known key: one that differs only in case, `-` or `_` first (the alphabetically
/// first of them), else the nearest within a third of the key's length (one or two edits).
fn suggestion(key: &str, known: &[&str]) -> Option<String> {
    let fold = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let mut sorted = known.to_vec();
    sorted.sort_unstable();
    // Short keys get less leeway, so `gc` does not suggest `grpc`.
    let limit = (key.chars().count() / 3).clamp(1, 2);
    sorted
        .iter()
        .find(|k| fold(k) == fold(key))
        .copied()
        .or_else(|| crate::diag::suggest(key, sorted.iter().copied(), false, |_| limit))
        .map(|k| format!("did you mean `{k}`?"))
}

impl Walker<'_> {
    fn error(
        &mut self,
        code: &'static str,
        message: String,
        span: Range<usize>,
    ) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::error(code, message).at(self.file, span));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    fn wrong_type(&mut self, path: &str, expected: &str, value: &Value<'_>) {
        let found = value.get_ref().type_str();
        self.error(
            "config::type",
            format!(
                "`{path}` must be {} {expected}, not {} {found}",
                article(expected),
                article(found)
            ),
            value.span(),
        )
        .label = Some(format!("expected {} {expected}", article(expected)));
    }

    fn bad_value(&mut self, code: &'static str, path: &str, why: String, value: &Value<'_>) {
        self.error(code, format!("invalid `{path}`: {why}"), value.span())
            .label = Some("this value".to_owned());
    }

    fn mark_inert(&mut self, path: &str, value: &Value<'_>) {
        // A key repeated in an array of tables (`gcpolicy`) is named once.
        if !self.inert.iter().any(|(key, _)| key == path) {
            self.inert.push((path.to_owned(), value.span().start));
        }
    }

    /// Calls `f` for each key of `table` listed in `known`; warns about the others.
    fn each<'i>(
        &mut self,
        path: &str,
        table: &DeTable<'i>,
        known: &[&str],
        mut f: impl FnMut(&mut Self, &str, &str, &Value<'i>),
    ) {
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            let full = join(path, name);
            if known.contains(&name) {
                f(self, name, &full, value);
            } else {
                let where_ = if path.is_empty() {
                    "at the top level".to_owned()
                } else {
                    format!("in `[{path}]`")
                };
                self.warnings.push(
                    Diagnostic::warning(
                        "config::unknown_key",
                        format!("unknown key `{name}` {where_}; bake ignores it"),
                    )
                    .at(self.file, key.span())
                    .label("not a buildkitd.toml key")
                    .maybe_help(suggestion(name, known)),
                );
            }
        }
    }

    fn table<'v, 'i>(&mut self, path: &str, value: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            _ => {
                self.wrong_type(path, "table", value);
                None
            }
        }
    }

    fn string(&mut self, path: &str, value: &Value<'_>) -> Option<String> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.to_string()),
            _ => {
                self.wrong_type(path, "string", value);
                None
            }
        }
    }

    /// A string where `""` means unset, as Go's zero value does.
    fn non_empty(&mut self, path: &str, value: &Value<'_>) -> Option<String> {
        self.string(path, value).filter(|s| !s.is_empty())
    }

    fn boolean(&mut self, path: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(path, "boolean", value);
                None
            }
        }
    }

    fn integer(&mut self, path: &str, value: &Value<'_>) -> Option<i64> {
        match value.get_ref() {
            DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.bad_value(
                        "config::value",
                        path,
                        "the number is too large".to_owned(),
                        value,
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(path, "integer", value);
                None
            }
        }
    }

    fn count(&mut self, path: &str, value: &Value<'_>) -> Option<u64> {
        let n = self.integer(path, value)?;
        match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.bad_value(
                    "config::value",
                    path,
                    "must not be negative".to_owned(),
                    value,
                );
                None
            }
        }
    }

    fn strings(&mut self, path: &str, value: &Value<'_>) -> Vec<String> {
        match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(text) => Some(text.to_string()),
                    _ => {
                        let found = item.get_ref().type_str();
                        self.error(
                            "config::type",
                            format!(
                                "`{path}` must be an array of strings, but holds {} {found}",
                                article(found)
                            ),
                            item.span(),
                        )
                        .label = Some("expected a string".to_owned());
                        None
                    }
                })
                .collect(),
            _ => {
                self.wrong_type(path, "array", value);
                Vec::new()
            }
        }
    }

    fn paths(&mut self, path: &str, value: &Value<'_>) -> Vec<PathBuf> {
        self.strings(path, value)
            .into_iter()
            .map(PathBuf::from)
            .collect()
    }

    fn string_map(&mut self, path: &str, value: &Value<'_>) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        if let Some(table) = self.table(path, value) {
            for (key, item) in table.iter() {
                let name = key.get_ref().to_string();
                if let Some(text) = self.string(&join(path, &name), item) {
                    map.insert(name, text);
                }
            }
        }
        map
    }

    /// A size: an integer number of bytes or a string with a unit or `%`.
    fn size(&mut self, path: &str, value: &Value<'_>) -> Option<DiskSpace> {
        match value.get_ref() {
            DeValue::Integer(_) => self.count(path, value).map(DiskSpace::Bytes),
            DeValue::String(text) => match units::parse_size(text) {
                Ok(size) => size,
                Err(units::UnitError(why)) => {
                    self.error(
                        "config::size",
                        format!("invalid size `{text}` for `{path}`"),
                        value.span(),
                    )
                    .label = Some(why);
                    None
                }
            },
            _ => {
                self.wrong_type(path, "size", value);
                None
            }
        }
    }

    /// A duration: an integer number of seconds or a Go duration string.
    fn duration(&mut self, path: &str, value: &Value<'_>) -> Option<Duration> {
        match value.get_ref() {
            DeValue::Integer(_) => self.count(path, value).map(Duration::from_secs),
            DeValue::String(text) => match units::parse_duration(text) {
                Ok(duration) => duration,
                Err(units::UnitError(why)) => {
                    self.error(
                        "config::duration",
                        format!("invalid duration `{text}` for `{path}`"),
                        value.span(),
                    )
                    .label = Some(why);
                    None
                }
            },
            _ => {
                self.wrong_type(path, "duration", value);
                None
            }
        }
    }

    /// Checks the shape of a section bake does not use: a table, keys typed as buildkitd
    /// expects, listed as inert.
    fn inert_section<'i>(
        &mut self,
        path: &str,
        value: &Value<'i>,
        known: &[&str],
        mut check: impl FnMut(&mut Self, &str, &str, &Value<'i>),
    ) {
        self.mark_inert(path, value);
        if let Some(table) = self.table(path, value) {
            self.each(path, table, known, |w, key, full, v| check(w, key, full, v));
        }
    }

    fn top(&mut self, table: &DeTable<'_>, config: &mut Config) {
        self.each("", table, TOP, |w, key, path, value| match key {
            "root" => config.root = w.non_empty(path, value).map(PathBuf::from),
            "debug" => {
                config.debug = w.boolean(path, value).unwrap_or_default();
                w.mark_inert(path, value);
            }
            "trace" => {
                config.trace = w.boolean(path, value).unwrap_or_default();
                w.mark_inert(path, value);
            }
            "proxyNetwork" => {
                w.boolean(path, value);
                w.mark_inert(path, value);
            }
            "insecure-entitlements" => {
                let names = w.strings(path, value);
                if let Some(unknown) = names
                    .iter()
                    .find(|n| !matches!(n.as_str(), "network.host" | "security.insecure"))
                {
                    w.bad_value(
                        "config::value",
                        path,
                        format!(
                            "unknown entitlement `{unknown}` (expected `network.host` or `security.insecure`)"
                        ),
                        value,
                    );
                }
                config.insecure_entitlements = Some(names);
            }
            "provenanceEnvDir" => {
                w.string(path, value);
                w.mark_inert(path, value);
            }
            "log" => w.inert_section(path, value, &["format", "level"], |w, _, p, v| {
                w.string(p, v);
            }),
            "dns" => {
                let mut dns = Dns::default();
                w.inert_section(
                    path,
                    value,
                    &["nameservers", "options", "searchDomains"],
                    |w, key, p, v| {
                        let list = w.strings(p, v);
                        match key {
                            "nameservers" => dns.nameservers = list,
                            "options" => dns.options = list,
                            _ => dns.search_domains = list,
                        }
                    },
                );
                config.dns = Some(dns);
            }
            "grpc" => w.grpc(path, value),
            "otel" => w.inert_section(path, value, &["socketPath"], |w, _, p, v| {
                w.string(p, v);
            }),
            "cdi" => w.inert_section(
                path,
                value,
                &["disabled", "specDirs", "autoAllowed"],
                |w, key, p, v| {
                    if key == "disabled" {
                        w.boolean(p, v);
                    } else {
                        w.strings(p, v);
                    }
                },
            ),
            "history" => {
                let mut history = History::default();
                w.inert_section(path, value, &["maxAge", "maxEntries"], |w, key, p, v| {
                    if key == "maxAge" {
                        history.max_age = w.duration(p, v);
                    } else {
                        history.max_entries = w.count(p, v);
                    }
                });
                config.history = Some(history);
            }
            "worker" => {
                if let Some(workers) = w.table(path, value) {
                    w.each(path, workers, &["oci", "containerd"], |w, key, p, v| {
                        if key == "oci" {
                            if let Some(oci) = w.table(p, v) {
                                config.worker = w.oci(p, oci);
                            }
                        } else {
                            // Known, never used: bake has no containerd worker.
                            w.table(p, v);
                            w.mark_inert(p, v);
                        }
                    });
                }
            }
            "registry" => {
                // `mirrors`, `http`, `insecure` and `ca` reach the registry client; keypairs,
                // tlsconfigdir and capabilities are parsed and named as inert.
                if let Some(hosts) = w.table(path, value) {
                    for (host, entry) in hosts.iter() {
                        let host = host.get_ref().to_string();
                        let p = join(path, &host);
                        if let Some(entry) = w.table(&p, entry) {
                            let registry = w.registry(&p, entry);
                            config.registries.insert(host, registry);
                        }
                    }
                }
            }
            "frontend" => w.inert_section(
                path,
                value,
                &["dockerfile.v0", "gateway.v0"],
                |w, key, p, v| {
                    let Some(frontend) = w.table(p, v) else {
                        return;
                    };
                    let known: &[&str] = if key == "gateway.v0" {
                        &["enabled", "allowedRepositories"]
                    } else {
                        &["enabled"]
                    };
                    w.each(p, frontend, known, |w, key, p, v| {
                        if key == "enabled" {
                            w.boolean(p, v);
                        } else {
                            w.strings(p, v);
                        }
                    });
                },
            ),
            "system" => w.inert_section(
                path,
                value,
                &["platformsCacheMaxAge", "maxRegistryConcurrency"],
                |w, key, p, v| {
                    if key == "platformsCacheMaxAge" {
                        w.duration(p, v);
                    } else {
                        w.count(p, v);
                    }
                },
            ),
            // Known, never used: the GitHub Actions cache signing settings.
            _ => {
                w.table(path, value);
                w.mark_inert(path, value);
            }
        });
    }

    fn grpc(&mut self, path: &str, value: &Value<'_>) {
        let known = &[
            "address",
            "debugAddress",
            "uid",
            "gid",
            "securityDescriptor",
            "tls",
        ];
        self.inert_section(path, value, known, |w, key, p, v| match key {
            "address" => {
                w.strings(p, v);
            }
            "uid" | "gid" => {
                w.integer(p, v);
            }
            "tls" => {
                if let Some(tls) = w.table(p, v) {
                    w.each(p, tls, &["cert", "key", "ca"], |w, _, p, v| {
                        w.string(p, v);
                    });
                }
            }
            _ => {
                w.string(p, v);
            }
        });
    }

    fn oci(&mut self, path: &str, table: &DeTable<'_>) -> OciWorker {
        let mut oci = OciWorker::default();
        self.each(path, table, OCI, |w, key, p, v| {
            if !OCI_USED.contains(&key) {
                w.mark_inert(p, v);
            }
            match key {
                "enabled" => oci.enabled = w.boolean(p, v),
                "labels" => oci.labels = w.string_map(p, v),
                "platforms" => oci.platforms = w.platforms(p, v),
                "snapshotter" => {
                    if let Some(name) = w.string(p, v) {
                        oci.snapshotter = w.snapshotter(p, &name, v);
                    }
                }
                "rootless" => oci.rootless = w.boolean(p, v).unwrap_or_default(),
                "noProcessSandbox" => oci.no_process_sandbox = w.boolean(p, v).unwrap_or_default(),
                "gc" => oci.gc.enabled = w.boolean(p, v),
                "gckeepstorage" => oci.gc.keep_storage = w.size(p, v),
                "reservedSpace" => oci.gc.reserved_space = w.size(p, v),
                "maxUsedSpace" => oci.gc.max_used_space = w.size(p, v),
                "minFreeSpace" => oci.gc.min_free_space = w.size(p, v),
                "gcpolicy" => oci.gc.policies = w.gc_policies(p, v),
                "cniPoolSize" => oci.cni_pool_size = w.count(p, v),
                "binary" => oci.binary = w.non_empty(p, v),
                "max-parallelism" => {
                    // Diverges: buildkitd reads 0 (and negatives) as "no limit"; bake keeps
                    // its default of one step per CPU for 0 and rejects negatives.
                    oci.max_parallelism = w
                        .count(p, v)
                        .and_then(|n| usize::try_from(n).ok())
                        .and_then(NonZeroUsize::new);
                }
                "isolateCgroups" | "selinux" => {
                    w.boolean(p, v);
                }
                "stargzSnapshotter" => {
                    w.table(p, v);
                }
                _ => {
                    w.string(p, v);
                }
            }
        });
        oci
    }

    fn platforms(&mut self, path: &str, value: &Value<'_>) -> Vec<Platform> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(path, "array", value);
            return Vec::new();
        };
        let mut platforms = Vec::new();
        for item in items.iter() {
            let Some(text) = self.string(path, item) else {
                continue;
            };
            match text.parse::<Platform>() {
                Ok(platform) => platforms.push(platform),
                Err(error) => {
                    let diagnostic = self.error("config::platform", error.to_string(), item.span());
                    diagnostic.label = Some("not `os/arch[/variant]`".to_owned());
                    diagnostic.help =
                        Some("write platforms as `linux/amd64` or `linux/arm/v7`".to_owned());
                }
            }
        }
        platforms
    }

    fn snapshotter(&mut self, path: &str, name: &str, value: &Value<'_>) -> Snapshotter {
        match name {
            "" | "auto" => Snapshotter::Auto,
            "native" => Snapshotter::Native,
            "overlayfs" => Snapshotter::Overlayfs,
            other if OTHER_SNAPSHOTTERS.contains(&other) => {
                self.warnings.push(
                    Diagnostic::warning(
                        "config::unsupported",
                        format!(
                            "bake has no `{other}` snapshotter; the native snapshotter is used"
                        ),
                    )
                    .at(self.file, value.span())
                    .label("native is used instead"),
                );
                Snapshotter::Unsupported(other.to_owned())
            }
            other => {
                self.bad_value(
                    "config::value",
                    path,
                    format!("unknown snapshotter `{other}`"),
                    value,
                );
                if let Some(last) = self.errors.last_mut() {
                    last.help = Some("use `auto`, `overlayfs` or `native`".to_owned());
                }
                Snapshotter::Auto
            }
        }
    }

    fn gc_policies(&mut self, path: &str, value: &Value<'_>) -> Vec<GcPolicy> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(path, "array", value);
            return Vec::new();
        };
        let mut policies = Vec::new();
        for item in items.iter() {
            let Some(table) = self.table(path, item) else {
                continue;
            };
            let mut policy = GcPolicy::default();
            self.each(path, table, GC_POLICY, |w, key, p, v| {
                // Diverges: bake collects with one budget and one age limit, so a policy's
                // `all`, `filters` and `minFreeSpace` change nothing and are named as inert.
                if matches!(key, "all" | "filters" | "minFreeSpace") {
                    w.mark_inert(p, v);
                }
                match key {
                    "all" => policy.all = w.boolean(p, v).unwrap_or_default(),
                    "filters" => policy.filters = w.strings(p, v),
                    "keepDuration" => policy.keep_duration = w.duration(p, v),
                    "keepBytes" => policy.keep_bytes = w.size(p, v),
                    "reservedSpace" => policy.reserved_space = w.size(p, v),
                    "maxUsedSpace" => policy.max_used_space = w.size(p, v),
                    _ => policy.min_free_space = w.size(p, v),
                }
            });
            policies.push(policy);
        }
        policies
    }

    fn registry(&mut self, path: &str, table: &DeTable<'_>) -> Registry {
        let mut registry = Registry::default();
        self.each(path, table, REGISTRY, |w, key, p, v| {
            if matches!(key, "keypair" | "tlsconfigdir" | "capabilities") {
                w.mark_inert(p, v);
            }
            w.registry_key(&mut registry, key, p, v);
        });
        registry
    }

    fn registry_key(&mut self, registry: &mut Registry, key: &str, p: &str, v: &Value<'_>) {
        let w = self;
        match key {
            "mirrors" => registry.mirrors = w.strings(p, v),
            "http" => registry.http = w.boolean(p, v),
            "insecure" => registry.insecure = w.boolean(p, v),
            "ca" => registry.ca = w.paths(p, v),
            "tlsconfigdir" => registry.tls_config_dir = w.paths(p, v),
            "capabilities" => registry.capabilities = w.strings(p, v),
            _ => {
                let DeValue::Array(items) = v.get_ref() else {
                    w.wrong_type(p, "array", v);
                    return;
                };
                for item in items.iter() {
                    let Some(pair) = w.table(p, item) else {
                        continue;
                    };
                    let mut keypair = KeyPair::default();
                    w.each(p, pair, &["key", "cert"], |w, key, p, v| {
                        let file = w.string(p, v).map(PathBuf::from).unwrap_or_default();
                        if key == "key" {
                            keypair.key = file;
                        } else {
                            keypair.cert = file;
                        }
                    });
                    registry.keypairs.push(keypair);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Loaded, Error> {
        document(&SourceFile::new("buildkitd.toml", text))
    }

    fn codes(text: &str) -> Vec<&'static str> {
        parse(text)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    }

    const FULL: &str = r#"
root = "/srv/bake"
debug = true
trace = false
insecure-entitlements = ["network.host", "security.insecure"]

[log]
format = "text"

[dns]
nameservers = ["1.1.1.1"]
options = ["edns0"]
searchDomains = ["example.com"]

[grpc]
address = ["tcp://0.0.0.0:1234"]
uid = 0
[grpc.tls]
cert = "/etc/buildkit/tls.crt"

[otel]
socketPath = "/run/otel.sock"

[cdi]
disabled = true
specDirs = ["/etc/cdi"]

[history]
maxAge = 172800
maxEntries = 50

[worker.oci]
enabled = true
platforms = ["linux/amd64", "linux/arm64/v8"]
snapshotter = "native"
rootless = false
noProcessSandbox = true
gc = true
gckeepstorage = "10GB"
reservedSpace = "30%"
maxUsedSpace = 1024
minFreeSpace = "20GB"
binary = "crun"
max-parallelism = 4
cniPoolSize = 16
[worker.oci.labels]
"foo" = "bar"
[[worker.oci.gcpolicy]]
keepDuration = "48h"
filters = ["type==source.local"]
keepBytes = "512MB"
[[worker.oci.gcpolicy]]
all = true
keepDuration = 3600
reservedSpace = 1024000000

[worker.containerd]
address = "/run/containerd/containerd.sock"
enabled = false

[registry."docker.io"]
mirrors = ["mirror.local:5000"]
http = true
insecure = false
ca = ["/etc/config/myca.pem"]
[[registry."docker.io".keypair]]
key = "/etc/config/key.pem"
cert = "/etc/config/cert.pem"

[registry."mirror.local:5000"]
http = true

[frontend."dockerfile.v0"]
enabled = true

[system]
platformsCacheMaxAge = "1h"
"#;

    #[test]
    fn every_buildkit_key_parses_into_typed_values() {
        let loaded = parse(FULL).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let config = loaded.config;
        assert_eq!(config.root, Some(PathBuf::from("/srv/bake")));
        assert!(config.debug && !config.trace);
        assert_eq!(
            config.insecure_entitlements(),
            ["network.host", "security.insecure"]
        );
        let dns = config.dns.clone().unwrap();
        assert_eq!(dns.nameservers, ["1.1.1.1"]);
        assert_eq!(dns.options, ["edns0"]);
        assert_eq!(dns.search_domains, ["example.com"]);
        let history = config.history.clone().unwrap();
        assert_eq!(history.max_age, Some(Duration::from_secs(172_800)));
        assert_eq!(history.max_entries, Some(50));

        let oci = &config.worker;
        assert_eq!(oci.enabled, Some(true));
        assert_eq!(
            oci.platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64"]
        );
        assert_eq!(oci.snapshotter, Snapshotter::Native);
        assert!(!oci.rootless && oci.no_process_sandbox);
        assert_eq!(oci.binary.as_deref(), Some("crun"));
        assert_eq!(config.runtime(), PathBuf::from("crun"));
        assert_eq!(oci.max_parallelism, NonZeroUsize::new(4));
        assert_eq!(oci.cni_pool_size, Some(16));
        assert_eq!(oci.labels["foo"], "bar");
        assert_eq!(oci.gc.enabled, Some(true));
        assert_eq!(oci.gc.keep_storage, Some(DiskSpace::Bytes(10 << 30)));
        assert_eq!(oci.gc.reserved_space, Some(DiskSpace::Percent(30)));
        assert_eq!(oci.gc.max_used_space, Some(DiskSpace::Bytes(1024)));
        assert_eq!(oci.gc.min_free_space, Some(DiskSpace::Bytes(20 << 30)));
        let [first, second] = oci.gc.policies.as_slice() else {
            panic!("two policies: {:?}", oci.gc.policies);
        };
        assert!(!first.all && second.all);
        assert_eq!(first.keep_duration, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(first.filters, ["type==source.local"]);
        assert_eq!(first.keep_bytes, Some(DiskSpace::Bytes(512 << 20)));
        assert_eq!(second.keep_duration, Some(Duration::from_secs(3600)));
        assert_eq!(second.reserved_space, Some(DiskSpace::Bytes(1_024_000_000)));

        let hub = &config.registry()["docker.io"];
        assert_eq!(hub.mirrors, ["mirror.local:5000"]);
        assert_eq!((hub.http, hub.insecure), (Some(true), Some(false)));
        assert_eq!(hub.ca, [PathBuf::from("/etc/config/myca.pem")]);
        assert_eq!(hub.keypairs[0].key, PathBuf::from("/etc/config/key.pem"));
        assert_eq!(hub.keypairs[0].cert, PathBuf::from("/etc/config/cert.pem"));
        assert_eq!(config.registry()["mirror.local:5000"].http, Some(true));

        assert_eq!(
            config.inert_keys(),
            [
                "debug",
                "trace",
                "log",
                "dns",
                "grpc",
                "otel",
                "cdi",
                "history",
                "worker.oci.enabled",
                "worker.oci.rootless",
                "worker.oci.noProcessSandbox",
                "worker.oci.minFreeSpace",
                "worker.oci.cniPoolSize",
                "worker.oci.labels",
                "worker.oci.gcpolicy.filters",
                "worker.oci.gcpolicy.all",
                "worker.containerd",
                "registry.\"docker.io\".keypair",
                "frontend",
                "system",
            ]
        );
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let loaded = parse("# nothing\n").unwrap();
        assert_eq!(loaded.config, Config::default());
        assert!(loaded.config.inert_keys().is_empty());
    }

    #[test]
    fn empty_strings_mean_unset_as_in_go() {
        let config = parse("root = \"\"\n[worker.oci]\nbinary = \"\"\nsnapshotter = \"\"\n")
            .unwrap()
            .config;
        assert_eq!(config.root, None);
        assert_eq!(config.runtime(), PathBuf::from("runc"));
        assert_eq!(config.worker.snapshotter, Snapshotter::Auto);
    }

    #[test]
    fn zero_parallelism_keeps_the_default() {
        let config = parse("[worker.oci]\nmax-parallelism = 0\n").unwrap().config;
        assert_eq!(config.worker.max_parallelism, None);
    }

    #[test]
    fn wrong_types_are_errors_at_the_value() {
        let text = "root = 5\n[worker.oci]\ngc = \"yes\"\nplatforms = \"linux/amd64\"\n";
        let error = parse(text).unwrap_err();
        let found: Vec<(&str, &str)> = error
            .diagnostics
            .iter()
            .map(|d| (d.code, &text[d.span.clone().unwrap()]))
            .collect();
        assert_eq!(
            found,
            [
                ("config::type", "5"),
                ("config::type", "\"yes\""),
                ("config::type", "\"linux/amd64\""),
            ]
        );
        assert_eq!(
            error.diagnostics[0].message,
            "`root` must be a string, not an integer"
        );
    }

    #[test]
    fn every_value_kind_is_checked() {
        assert_eq!(codes("debug = 1\n"), ["config::type"]);
        assert_eq!(
            codes("[worker.oci]\nmax-parallelism = -1\n"),
            ["config::value"]
        );
        assert_eq!(
            codes("[worker.oci]\nmax-parallelism = 1.5\n"),
            ["config::type"]
        );
        assert_eq!(
            codes("[worker.oci]\ngckeepstorage = \"lots\"\n"),
            ["config::size"]
        );
        assert_eq!(
            codes("[worker.oci]\nreservedSpace = true\n"),
            ["config::type"]
        );
        assert_eq!(
            codes("[worker.oci]\nminFreeSpace = -5\n"),
            ["config::value"]
        );
        assert_eq!(
            codes("[history]\nmaxAge = \"2 days\"\n"),
            ["config::duration"]
        );
        assert_eq!(codes("[history]\nmaxAge = [1]\n"), ["config::type"]);
        assert_eq!(
            codes("[worker.oci]\nplatforms = [\"linux\"]\n"),
            ["config::platform"]
        );
        assert_eq!(codes("[worker.oci]\nplatforms = [1]\n"), ["config::type"]);
        assert_eq!(
            codes("[worker.oci]\nsnapshotter = \"zfs\"\n"),
            ["config::value"]
        );
        assert_eq!(codes("[worker.oci.labels]\nfoo = 1\n"), ["config::type"]);
        assert_eq!(
            codes("[registry.\"x\"]\nmirrors = [true]\n"),
            ["config::type"]
        );
        assert_eq!(codes("[registry.\"x\"]\nkeypair = 1\n"), ["config::type"]);
        assert_eq!(
            codes("[dns]\nnameservers = \"1.1.1.1\"\n"),
            ["config::type"]
        );
        assert_eq!(codes("[grpc]\nuid = \"root\"\n"), ["config::type"]);
        assert_eq!(codes("worker = 1\n"), ["config::type"]);
        assert_eq!(codes("root = \"unterminated\n"), ["config::syntax"]);
        assert_eq!(codes("a = 1\na = 2\n"), ["config::syntax"]);
        assert_eq!(
            codes("[[worker.oci.gcpolicy]]\nkeepDuration = \"1d\"\nkeepBytes = \"1ZB\"\n"),
            ["config::duration", "config::size"]
        );
    }

    #[test]
    fn unknown_keys_are_warnings_with_suggestions() {
        let loaded =
            parse("rooot = \"/x\"\n[worker.oci]\nmax_parallelism = 2\n[gc]\nenabled = true\n")
                .unwrap();
        let found: Vec<(&str, Option<&str>)> = loaded
            .warnings
            .iter()
            .map(|d| (d.message.as_str(), d.help.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "unknown key `rooot` at the top level; bake ignores it",
                    Some("did you mean `root`?")
                ),
                (
                    "unknown key `max_parallelism` in `[worker.oci]`; bake ignores it",
                    Some("did you mean `max-parallelism`?")
                ),
                ("unknown key `gc` at the top level; bake ignores it", None),
            ]
        );
        assert!(loaded.warnings.iter().all(Diagnostic::is_warning));
    }

    #[test]
    fn snapshotters_bake_lacks_are_warnings() {
        let loaded = parse("[worker.oci]\nsnapshotter = \"overlayfs\"\n").unwrap();
        assert_eq!(loaded.config.worker.snapshotter, Snapshotter::Overlayfs);
        assert!(loaded.warnings.is_empty());
        let loaded = parse("[worker.oci]\nsnapshotter = \"fuse-overlayfs\"\n").unwrap();
        assert_eq!(
            loaded.config.worker.snapshotter,
            Snapshotter::Unsupported("fuse-overlayfs".to_owned())
        );
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn keys_are_quoted_when_not_bare() {
        assert_eq!(join("registry", "docker.io"), "registry.\"docker.io\"");
        assert_eq!(join("", "max-parallelism"), "max-parallelism");
    }
}
