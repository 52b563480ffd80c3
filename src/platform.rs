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

/// The error returned for a platform whose OS or architecture no Go toolchain knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` in platform `{text}`")]
pub struct UnknownPlatformError {
    /// The platform as written.
    pub text: String,
    /// `OS` or `architecture`.
    pub what: &'static str,
    /// The unknown part.
    pub value: String,
}

/// Operating systems Go (and so containerd and BuildKit) knows.
// Compat: containerd platforms isKnownOS (Go's GOOS list).
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

/// Architectures Go knows, after normalisation (`x86_64` is `amd64` by then).
// Compat: containerd platforms isKnownArch (Go's GOARCH list).
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

impl Platform {
    /// Checks that a platform a user wrote names an OS and an architecture Go knows, so a
    /// typo (`linux/amd65`) fails when the file is read, not as a missing base image.
    pub fn check_known(&self, text: &str) -> Result<(), UnknownPlatformError> {
        let unknown = |what, value: &str| UnknownPlatformError {
            text: text.to_owned(),
            what,
            value: value.to_owned(),
        };
        if !KNOWN_OS.contains(&self.os.as_str()) {
            return Err(unknown("OS", &self.os));
        }
        if !KNOWN_ARCH.contains(&self.architecture.as_str()) {
            return Err(unknown("architecture", &self.architecture));
        }
        Ok(())
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

impl Platform {
    /// Ranks `candidate` (an image's platform as written, not normalised) as a base for this
    /// wanted platform: `Some(0)` for the exact os/arch/variant, `Some(1)` for a spelling
    /// that normalises to it (`arm64` for `arm64/v8`, `arm` for `arm/v7`), then higher ranks
    /// for older variants the wanted one can run (`arm/v6` for `arm/v7`, `amd64/v2` for
    /// `amd64/v3`); `None` when it cannot be used. `unknown` platforms (attestation
    /// manifests) never match.
    // Compat: containerd platforms.Only (platformVector + Ordered): the same fallbacks within
    // one architecture, with an exact variant preferred over an equivalent spelling.
    // Diverges: containerd also falls back from `amd64` to `386` and from `arm64` to `arm`;
    // we never pick another architecture, so a base is never silently a 32-bit image.
    pub fn match_rank(&self, candidate: &Platform) -> Option<usize> {
        if candidate.os.eq_ignore_ascii_case("unknown")
            || candidate.architecture.eq_ignore_ascii_case("unknown")
        {
            return None;
        }
        let wanted = self.clone().normalize();
        let normalized = candidate.clone().normalize();
        if normalized.os != wanted.os || normalized.architecture != wanted.architecture {
            return None;
        }
        if normalized.variant == wanted.variant {
            let as_written = |p: &Platform| {
                (
                    p.architecture.to_lowercase(),
                    p.variant.as_deref().map(str::to_lowercase),
                )
            };
            return Some(if as_written(candidate) == as_written(self) {
                0
            } else {
                1
            });
        }
        let (floor, default) = match wanted.architecture.as_str() {
            "arm" => (5, None),
            "amd64" => (1, Some(1)),
            _ => return None,
        };
        let level = |variant: Option<&str>| match variant {
            None => default,
            Some(v) => v.strip_prefix('v')?.parse::<usize>().ok(),
        };
        let wanted_level = level(wanted.variant.as_deref())?;
        let candidate_level = level(normalized.variant.as_deref())?;
        (candidate_level >= floor && candidate_level < wanted_level)
            .then(|| 1 + wanted_level - candidate_level)
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
    fn only_known_os_and_architectures_pass_the_user_check() {
        for good in [
            "linux/amd64",
            "linux/x86_64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "windows/amd64",
            "linux/riscv64",
        ] {
            let platform: Platform = good.parse().expect(good);
            assert!(platform.check_known(good).is_ok(), "{good}");
        }
        let typo: Platform = "linux/amd65".parse().expect("parses");
        let error = typo.check_known("linux/amd65").expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "unknown architecture `amd65` in platform `linux/amd65`"
        );
        let os: Platform = "linx/amd64".parse().expect("parses");
        assert!(os.check_known("linx/amd64").is_err());
    }

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

    fn rank(wanted: &str, candidate: &str) -> Option<usize> {
        let raw = |text: &str| {
            let mut parts = text.split('/').map(str::to_owned);
            Platform {
                os: parts.next().expect("os"),
                architecture: parts.next().expect("architecture"),
                variant: parts.next(),
            }
        };
        raw(wanted).match_rank(&raw(candidate))
    }

    #[test]
    fn exact_variants_rank_before_equivalent_spellings() {
        assert_eq!(rank("linux/arm64", "linux/arm64"), Some(0));
        assert_eq!(rank("linux/arm64", "linux/arm64/v8"), Some(1));
        assert_eq!(rank("linux/arm64/v8", "linux/arm64/v8"), Some(0));
        assert_eq!(rank("linux/arm64/v8", "linux/arm64"), Some(1));
        assert_eq!(rank("linux/arm/v7", "linux/arm"), Some(1));
        assert_eq!(rank("linux/amd64", "linux/amd64/v1"), Some(1));
        assert_eq!(rank("linux/amd64", "linux/x86_64"), Some(1));
    }

    #[test]
    fn older_variants_are_lesser_fallbacks() {
        assert_eq!(rank("linux/arm/v7", "linux/arm/v6"), Some(2));
        assert_eq!(rank("linux/arm/v7", "linux/arm/v5"), Some(3));
        assert_eq!(rank("linux/arm/v6", "linux/arm/v7"), None);
        assert_eq!(rank("linux/arm/v5", "linux/arm/v4"), None);
        assert_eq!(rank("linux/amd64/v3", "linux/amd64/v2"), Some(2));
        assert_eq!(rank("linux/amd64/v3", "linux/amd64"), Some(3));
        assert_eq!(rank("linux/amd64", "linux/amd64/v2"), None);
        assert_eq!(rank("linux/arm64/v9", "linux/arm64"), None);
    }

    #[test]
    fn other_architectures_and_unknown_never_match() {
        assert_eq!(rank("linux/amd64", "linux/386"), None);
        assert_eq!(rank("linux/arm64", "linux/arm/v7"), None);
        assert_eq!(rank("linux/amd64", "unknown/unknown"), None);
        assert_eq!(rank("linux/amd64", "windows/amd64"), None);
    }
}
