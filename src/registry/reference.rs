//! Image references (`busybox`, `me/app:1`, `host:port/repo:tag@sha256:…`) parsed and
//! normalised the way Docker does. Part of `registry`.
//!
//! Diverges: a port of the parts of distribution's `reference.ParseNormalizedNamed` that
//! decide where a pull goes (domain detection, `library/` for official images, lowercase
//! paths, tag and digest syntax), not its full regular grammar.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// The registry Docker Hub references name.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's API really answers on.
// Compat: containerd remotes/docker DefaultHost (`registry-1.docker.io`).
pub(crate) const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A fully qualified image reference: registry, repository and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    /// The tag, `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// The digest, when the reference pins one.
    pub digest: Option<Digest>,
}

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{reference}`: {reason}")]
pub struct ParseReferenceError {
    /// The text as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Reference {
    /// Returns `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Returns what a manifest request names: the digest when pinned, else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// Returns the same repository pinned to `digest` (the tag dropped).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// Returns the same repository with `tag` and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ParseReferenceError;

    // Compat: distribution reference.ParseNormalizedNamed + TagNameOnly.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason| ParseReferenceError {
            reference: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("the reference is empty"));
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                let digest = digest
                    .parse::<Digest>()
                    .map_err(|_| bad("the digest is not `sha256:` and 64 hex digits"))?;
                (name, Some(digest))
            }
            None => (text, None),
        };
        let last_slash = name.rfind('/').map_or(0, |index| index + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(colon) => (
                &name[..last_slash + colon],
                Some(&name[last_slash + colon + 1..]),
            ),
            None => (name, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(bad(
                "a tag is 1 to 128 of `[A-Za-z0-9_.-]`, not starting with `.` or `-`",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            registry
        };
        if repository.is_empty() || repository.split('/').any(|part| !valid_component(part)) {
            return Err(bad(
                "repository path components are lowercase letters, digits and `._-` separators",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A path component: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(part: &str) -> bool {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !part.is_empty()
        && part.starts_with(lower_alnum)
        && part.ends_with(lower_alnum)
        && part
            .chars()
            .all(|c| lower_alnum(c) || matches!(c, '.' | '_' | '-'))
        && !part.contains("..")
        && !part.contains("___")
}

/// Reports whether `host` is a loopback name that BuildKit talks plain HTTP to by default.
// Compat: containerd remotes/docker MatchLocalhost (`localhost`, `127.0.0.1`, `::1`, any port).
pub(crate) fn is_localhost(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    matches!(name, "localhost" | "127.0.0.1" | "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> String {
        text.parse::<Reference>().expect(text).to_string()
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        assert_eq!(parse("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(parse("me/app:1"), "docker.io/me/app:1");
        assert_eq!(
            parse("index.docker.io/library/x:y"),
            "docker.io/library/x:y"
        );
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference: Reference = format!("127.0.0.1:5000/team/app:v1@{digest}")
            .parse()
            .expect("reference");
        assert_eq!(reference.registry, "127.0.0.1:5000");
        assert_eq!(reference.repository, "team/app");
        assert_eq!(reference.tag.as_deref(), Some("v1"));
        assert_eq!(reference.object(), digest);
        let pinned: Reference = format!("localhost/app@{digest}").parse().expect("ref");
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.name(), "localhost/app");
        assert_eq!(parse("localhost:5000/app"), "localhost:5000/app:latest");
    }

    #[test]
    fn malformed_references_are_rejected() {
        for text in [
            "",
            "Busybox",
            "a//b",
            "app:",
            "app@sha256:abc",
            "app:-x",
            "-app",
        ] {
            assert!(text.parse::<Reference>().is_err(), "{text}");
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_localhost("127.0.0.1:5000"));
        assert!(is_localhost("localhost"));
        assert!(is_localhost("[::1]:5000"));
        assert!(!is_localhost("registry.local:5000"));
    }
}
