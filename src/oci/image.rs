//! The image configuration (`application/vnd.oci.image.config.v1+json`): what a front end
//! produces from a Dockerfile and an exporter writes. Part of `oci`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platform::Platform;

/// The image config key that carries an inline build cache (base64 of a BuildKit cache
/// config), which `cache-from type=registry,ref=<image>` reads back.
// Compat: buildkit exporter/containerimage/writer.go (`moby.buildkit.cache.v0`).
pub const INLINE_CACHE_KEY: &str = "moby.buildkit.cache.v0";

/// The default `PATH` an empty (scratch) Linux image starts with.
// Compat: buildkit util/system DefaultPathEnvUnix.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An OCI image configuration document (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// CPU architecture, e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// Architecture variant, e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Author, set by `MAINTAINER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Runtime defaults for containers started from the image.
    #[serde(default)]
    pub config: ImageConfig,
    /// One entry per instruction that built the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

impl Image {
    /// Returns the empty image for a platform, as BuildKit starts `FROM scratch` stages.
    // Compat: buildkit dockerfile2llb/image.go emptyImage.
    pub fn empty(platform: &Platform) -> Self {
        let mut config = ImageConfig {
            working_dir: Some("/".to_owned()),
            ..ImageConfig::default()
        };
        if platform.os != "windows" {
            config.env.push(format!("PATH={DEFAULT_PATH_ENV}"));
        }
        Self {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
            config,
            ..Self::default()
        }
    }

    /// Returns the platform recorded in the image.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// The `config` object of an image: what a container runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE`: keys such as `80/tcp`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `ENV`, as `KEY=value` entries in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers, as instruction text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// Windows shell-form escaping marker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
}

impl ImageConfig {
    /// Returns the value of an environment variable, if set.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|entry| {
            let (name, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
            (name == key).then_some(value)
        })
    }

    /// Sets an environment variable, replacing an earlier entry in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let existing = self
            .env
            .iter()
            .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
        match existing {
            Some(index) => self.env[index] = entry,
            None => self.env.push(entry),
        }
    }
}

/// The empty JSON object OCI uses as a set member (`{}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A container health check (`HEALTHCHECK`), durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    /// Time before a check is considered hung.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    /// Grace period after start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    /// Interval during the start period.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    /// Consecutive failures before unhealthy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One history entry of an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339 creation time, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction that created the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Author of the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Free-form comment, `buildkit.dockerfile.v0` for our entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the entry added no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_uses_oci_field_names() {
        let mut image = Image::empty(&Platform::host());
        image.config.cmd = Some(vec!["sh".into()]);
        let json = serde_json::to_value(&image).expect("serialises");
        assert_eq!(json["config"]["Cmd"][0], "sh");
        assert_eq!(json["config"]["WorkingDir"], "/");
        assert!(
            json["config"]["Env"][0]
                .as_str()
                .is_some_and(|e| e.starts_with("PATH="))
        );
    }

    #[test]
    fn set_env_replaces_in_place() {
        let mut config = ImageConfig::default();
        config.set_env("A", "1");
        config.set_env("B", "2");
        config.set_env("A", "3");
        assert_eq!(config.env, ["A=3", "B=2"]);
        assert_eq!(config.env_value("A"), Some("3"));
    }
}
