//! Platforms (`os/arch[/variant]`): parsing, normalising and the host default. Leaf.

use std::fmt;

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
}
