//! The limits a target puts on its RUN steps (`shm-size`, `ulimits`, `resources`), typed:
//! sizes in bytes, ulimits parsed, one entry per resource name.

use serde::Serialize;

use crate::bake::model::Target;
use crate::buildflags::{self, Ulimit};

/// What a target's RUN steps are limited to; the default leaves every limit as the
/// runtime sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Size of `/dev/shm` in bytes; 0 keeps the default of 64 MiB.
    #[serde(skip_serializing_if = "is_zero")]
    pub shm_size: u64,
    /// Resource limits of the process, sorted by name, one per name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// cgroup limits of the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// cgroup limits, as the runtime spec's `linux.resources` takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Resources {
    /// Memory limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes; -1 is unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// Relative CPU weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// CPUs the container may run on (`0-3,6`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
}

impl Limits {
    /// Reports whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads the limits of `target`.
    ///
    /// # Errors
    ///
    /// A size, ulimit or cpuset that does not parse (the bake file loader checks them
    /// first, so only a target built by other means gets here).
    pub fn of(target: &Target) -> buildflags::Result<Self> {
        let shm_size = match &target.shm_size {
            Some(text) => u64::try_from(buildflags::ram_in_bytes(text)?).unwrap_or(0),
            None => 0,
        };
        // Compat: buildx keeps ulimits in a map by name (dockeropts.UlimitOpt): a later
        // entry replaces an earlier one, and the list comes out sorted by name.
        let mut ulimits: Vec<Ulimit> = Vec::new();
        for text in &target.ulimits {
            let limit = Ulimit::parse(text)?;
            ulimits.retain(|u| u.name != limit.name);
            ulimits.push(limit);
        }
        ulimits.sort_by(|a, b| a.name.cmp(&b.name));
        let resources = match &target.resources {
            Some(r) => {
                r.check()?;
                let size = |text: &Option<String>| -> buildflags::Result<Option<i64>> {
                    text.as_deref()
                        .map(|t| {
                            if t == "-1" {
                                Ok(-1)
                            } else {
                                buildflags::ram_in_bytes(t)
                            }
                        })
                        .transpose()
                };
                let unsigned = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok());
                Some(Resources {
                    memory: size(&r.memory)?,
                    memory_swap: size(&r.memory_swap)?,
                    cpu_shares: unsigned(r.cpu_shares),
                    cpu_period: unsigned(r.cpu_period),
                    cpu_quota: r.cpu_quota,
                    cpuset_cpus: r.cpuset_cpus.clone(),
                    cpuset_mems: r.cpuset_mems.clone(),
                })
                .filter(|r| *r != Resources::default())
            }
            None => None,
        };
        Ok(Self {
            shm_size,
            ulimits,
            resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_typed_and_ulimits_keep_the_last_entry_per_name() {
        let target = Target {
            shm_size: Some("96m".into()),
            ulimits: vec![
                "nproc=512".into(),
                "nofile=1:2".into(),
                "nofile=1000:2000".into(),
            ],
            resources: Some(crate::bake::model::Resources {
                memory: Some("64m".into()),
                memory_swap: Some("-1".into()),
                cpu_shares: Some(512),
                ..Default::default()
            }),
            ..Default::default()
        };
        let limits = Limits::of(&target).unwrap();
        assert_eq!(limits.shm_size, 96 << 20);
        let ulimits: Vec<String> = limits.ulimits.iter().map(ToString::to_string).collect();
        assert_eq!(ulimits, ["nofile=1000:2000", "nproc=512:512"]);
        let resources = limits.resources.unwrap();
        assert_eq!(
            (
                resources.memory,
                resources.memory_swap,
                resources.cpu_shares
            ),
            (Some(64 << 20), Some(-1), Some(512))
        );
        assert!(Limits::of(&Target::default()).unwrap().is_empty());
    }

    #[test]
    fn bad_limits_are_errors() {
        let target = Target {
            shm_size: Some("lots".into()),
            ..Default::default()
        };
        assert!(Limits::of(&target).is_err());
    }
}
