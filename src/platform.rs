//! Platforms (`os/arch[/variant]`): parsing, normalising and the host default. Leaf.

use std::fmt;
use std::str::FromStr;

/// A target platform such as `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go naming, e.g. `amd64`.
    pub architecture: String,
    /// Optional variant, e.g. `v7`.
    pub variant: Option<String>,
}

impl Platform {
    /// Returns the platform this process runs on, in Go/OCI naming.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match architecture {
            "arm" => Some("v7".to_owned()),
            _ => None,
        };
        Self {
            os: std::env::consts::OS.to_owned(),
            architecture: architecture.to_owned(),
            variant,
        }
    }
}

/// The error returned for text that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform `{0}`: expected `os/arch[/variant]`")]
pub struct ParsePlatformError(pub String);

impl Platform {
    /// Returns the platform with architecture aliases and default variants normalised the way
    /// containerd does (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm64/v8` → `arm64`).
    // Compat: containerd platforms.Normalize.
    pub fn normalize(mut self) -> Self {
        self.os = self.os.to_lowercase();
        let (architecture, variant) = match (
            self.architecture.to_lowercase().as_str(),
            self.variant.as_deref(),
        ) {
            ("x86_64" | "x86-64" | "amd64", variant) => ("amd64", variant.filter(|v| *v != "v1")),
            ("aarch64" | "arm64", variant) => ("arm64", variant.filter(|v| *v != "v8")),
            ("armhf", _) => ("arm", Some("v7")),
            ("armel", _) => ("arm", Some("v6")),
            ("arm", None) => ("arm", Some("v7")),
            ("i386" | "386", variant) => ("386", variant),
            (other, variant) => {
                return Self {
                    architecture: other.to_owned(),
                    variant: variant.map(str::to_owned),
                    ..self
                };
            }
        };
        self.architecture = architecture.to_owned();
        self.variant = variant.map(str::to_owned);
        self
    }
}

impl FromStr for Platform {
    type Err = ParsePlatformError;

    /// Parses `os/arch[/variant]` (also `os` alone is rejected) and normalises it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParsePlatformError(text.to_owned());
        let mut parts = text.split('/');
        let os = parts.next().filter(|p| !p.is_empty()).ok_or_else(error)?;
        let architecture = parts.next().filter(|p| !p.is_empty()).ok_or_else(error)?;
        let variant = parts.next().map(str::to_owned);
        if parts.next().is_some() || variant.as_deref() == Some("") {
            return Err(error());
        }
        let valid = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !valid(os) || !valid(architecture) || !variant.as_deref().is_none_or(valid) {
            return Err(error());
        }
        Ok(Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant,
        }
        .normalize())
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_platform_is_linux_on_this_machine() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(host.to_string().starts_with("linux/"));
    }

    #[test]
    fn parse_normalises_aliases_and_default_variants() {
        let parse = |s: &str| s.parse::<Platform>().map(|p| p.to_string());
        assert_eq!(parse("linux/arm64/v8"), Ok("linux/arm64".to_owned()));
        assert_eq!(parse("linux/x86_64"), Ok("linux/amd64".to_owned()));
        assert_eq!(parse("linux/arm"), Ok("linux/arm/v7".to_owned()));
        assert_eq!(parse("linux/arm/v6"), Ok("linux/arm/v6".to_owned()));
        assert!(parse("linux").is_err());
        assert!(parse("linux/amd64/v1/x").is_err());
    }
}
