//! Image names as the exporters record them: Docker's normalised form
//! (`docker.io/library/busybox:latest`), the familiar form `docker load` shows
//! (`busybox:latest`) and the OCI `ref.name` (the tag). Part of `exporter`.
//!
//! Diverges: a small port of distribution's `reference.ParseNormalizedNamed` + `TagNameOnly`
//! that checks what matters for naming an export (lowercase repository, non-empty parts),
//! not the full grammar.

use crate::exporter::error::{Error, Result};

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_PREFIX: &str = "library/";

/// Returns `name` fully qualified, with `:latest` added when it has neither tag nor digest.
// Compat: buildkit exporter/oci/export.go normalizedNames.
pub(crate) fn normalize(name: &str) -> Result<String> {
    let bad = |reason: &str| Error::BadName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let (without_digest, digest) = match name.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (name, None),
    };
    let (domain, remainder) = match without_digest.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_owned())
        }
        Some(_) => (DEFAULT_DOMAIN, without_digest.to_owned()),
        None => (DEFAULT_DOMAIN, format!("{OFFICIAL_PREFIX}{without_digest}")),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    let last_slash = remainder.rfind('/').map_or(0, |index| index + 1);
    let (path, tag) = match remainder[last_slash..].find(':') {
        Some(colon) => (
            &remainder[..last_slash + colon],
            Some(&remainder[last_slash + colon + 1..]),
        ),
        None => (remainder.as_str(), None),
    };
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(bad("empty path component"));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository name must be lowercase"));
    }
    if tag.is_some_and(str::is_empty) || digest.is_some_and(|d| !d.contains(':')) {
        return Err(bad("empty tag or malformed digest"));
    }
    let mut normalized = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(tag), _) => {
            normalized.push(':');
            normalized.push_str(tag);
        }
        (None, None) => normalized.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        normalized.push('@');
        normalized.push_str(digest);
    }
    Ok(normalized)
}

/// Returns the short form Docker shows (`busybox:latest`, `me/app:1`).
// Compat: containerd images/archive familiarizeReference.
pub(crate) fn familiar(normalized: &str) -> String {
    let Some(rest) = normalized.strip_prefix("docker.io/") else {
        return normalized.to_owned();
    };
    match rest.strip_prefix(OFFICIAL_PREFIX) {
        Some(short) if !short.split(['@', ':']).next().unwrap_or("").contains('/') => {
            short.to_owned()
        }
        _ => rest.to_owned(),
    }
}

/// Returns the OCI `org.opencontainers.image.ref.name` of a normalised name: what follows the
/// repository (`latest`, `1@sha256:…`, `@sha256:…`).
// Compat: containerd images/archive ociReferenceName (reference.Parse(...).Object).
pub(crate) fn oci_ref_name(normalized: &str) -> String {
    let path = normalized
        .split_once('/')
        .map_or(normalized, |(_, path)| path);
    match path.find([':', '@']) {
        Some(index) => path[index..].trim_start_matches(':').to_owned(),
        None => normalized.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_like_docker() {
        for (input, expected) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("me/app:1", "docker.io/me/app:1"),
            ("localhost:5000/app", "localhost:5000/app:latest"),
            ("reg.io/a/b:v2", "reg.io/a/b:v2"),
            ("index.docker.io/library/x:y", "docker.io/library/x:y"),
            ("app@sha256:abc", "docker.io/library/app@sha256:abc"),
            ("app:1@sha256:abc", "docker.io/library/app:1@sha256:abc"),
        ] {
            assert_eq!(normalize(input).expect(input), expected, "{input}");
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        for input in ["Busybox", "a//b", "app:", "app@abc", ""] {
            assert!(normalize(input).is_err(), "{input}");
        }
    }

    #[test]
    fn familiar_and_ref_names() {
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
        assert_eq!(familiar("reg.io/a:1"), "reg.io/a:1");
        assert_eq!(oci_ref_name("docker.io/library/busybox:latest"), "latest");
        assert_eq!(oci_ref_name("localhost:5000/app:v1"), "v1");
        assert_eq!(oci_ref_name("docker.io/library/a@sha256:x"), "@sha256:x");
    }
}
