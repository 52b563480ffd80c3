//! Targets and groups as bake files describe them and as `--print` shows them. The field
//! order of [`Target`] is the order buildx prints (its `Target` struct order).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::buildflags::{Attest, CacheEntry, ExportEntry, Secret, Ssh};

/// A map whose `null` values mean "not set" (`args`, `labels`, `extra-hosts`, `contexts`).
pub type NullableMap = BTreeMap<String, Option<String>>;

/// One build target: every attribute buildx v0.36 knows. `None`/empty means "not set".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Target {
    /// The target's name (the block label or the matrix-generated name).
    #[serde(skip)]
    pub name: String,
    /// Shown by `--list=targets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parents merged under this target, in order; cleared by resolution.
    #[serde(skip)]
    pub inherits: Vec<String>,
    /// Exporter annotations (`KEY=VALUE`, optionally typed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    /// Attestations (`type=sbom|provenance`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attest: Vec<Attest>,
    /// The build context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Named contexts; `target:<name>` links another target.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: NullableMap,
    /// The Dockerfile path, relative to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// Dockerfile text that replaces `dockerfile`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Build arguments.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: NullableMap,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: NullableMap,
    /// Image names.
    #[serde(skip_serializing_if = "option_vec_is_empty")]
    pub tags: Option<Vec<String>>,
    /// Cache import sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<CacheEntry>,
    /// Cache export destinations.
    #[serde(skip_serializing_if = "option_vec_is_empty")]
    pub cache_to: Option<Vec<CacheEntry>>,
    /// The Dockerfile stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Secrets exposed to `RUN --mount=type=secret`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret: Vec<Secret>,
    /// SSH agents or keys exposed to `RUN --mount=type=ssh`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<Ssh>,
    /// Target platforms.
    #[serde(skip_serializing_if = "option_vec_is_empty")]
    pub platforms: Option<Vec<String>>,
    /// Exporters.
    #[serde(skip_serializing_if = "option_vec_is_empty")]
    pub output: Option<Vec<ExportEntry>>,
    /// Always pull base images.
    #[serde(skip_serializing_if = "is_none_or_false")]
    pub pull: Option<bool>,
    /// Build without cache.
    #[serde(skip_serializing_if = "is_none_or_false")]
    pub no_cache: Option<bool>,
    /// Network mode for RUN steps (`default`, `host`, `none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Stages whose cache is ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_cache_filter: Vec<String>,
    /// Size of `/dev/shm` for RUN steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// Ulimits for RUN steps (`type=soft[:hard]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// cgroup limits for RUN steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The frontend method (`build`, `check`, `outline`, `targets`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Privileges the build needs (`network.host`, `security.insecure`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Extra `/etc/hosts` entries for RUN steps.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_hosts: NullableMap,
    /// Policy evaluation options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<Policy>,
}

fn option_vec_is_empty<T>(value: &Option<Vec<T>>) -> bool {
    value.as_ref().is_none_or(Vec::is_empty)
}

fn is_none_or_false(value: &Option<bool>) -> bool {
    !value.unwrap_or(false)
}

/// cgroup limits for the RUN containers of one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Resources {
    /// Memory limit, e.g. `512m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Memory plus swap limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<String>,
    /// Relative CPU weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// CFS period in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    /// CFS quota in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// CPUs the container may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
}

impl Resources {
    /// Checks the values a runtime takes: sizes (`memory-swap` may be `-1`, unlimited),
    /// non-negative CPU shares and period, and cpuset lists.
    pub fn check(&self) -> Result<(), crate::buildflags::Error> {
        for (key, size) in [("memory", &self.memory), ("memory-swap", &self.memory_swap)] {
            let Some(size) = size.as_deref().filter(|s| *s != "-1" || key == "memory") else {
                continue;
            };
            if crate::buildflags::ram_in_bytes(size).is_err() {
                return Err(crate::buildflags::Error::BadValue {
                    key: key.to_owned(),
                    value: size.to_owned(),
                    reason: "expected bytes with an optional unit such as `512m` or `2g`"
                        .to_owned(),
                });
            }
        }
        for (key, value) in [
            ("cpu-shares", self.cpu_shares),
            ("cpu-period", self.cpu_period),
        ] {
            if let Some(value) = value.filter(|v| *v < 0) {
                return Err(crate::buildflags::Error::BadValue {
                    key: key.to_owned(),
                    value: value.to_string(),
                    reason: "it must not be negative".to_owned(),
                });
            }
        }
        for cpuset in [&self.cpuset_cpus, &self.cpuset_mems].into_iter().flatten() {
            crate::buildflags::check_cpuset(cpuset)?;
        }
        Ok(())
    }
}

/// One policy option set (`filename`, `reset`, `disabled`, `strict`, `log-level`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Policy {
    /// The options, printed as a flat object with sorted keys.
    pub attrs: BTreeMap<String, String>,
}

/// A named collection of targets and groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    /// The group's name.
    #[serde(skip)]
    pub name: String,
    /// Shown by `--list=targets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Member target or group names, in declaration order.
    pub targets: Vec<String>,
}

/// A declared variable and its final value, for `--list=variables`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Its `description`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its declared `type`, as written.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Its value as text; `None` for null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
