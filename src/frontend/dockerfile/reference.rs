//! Image references: validation and Docker's normalisation (`alpine` →
//! `docker.io/library/alpine:latest`).
//!
//! Compat: distribution/reference ParseNormalizedNamed + TagNameOnly: the domain, path
//! component, tag and digest grammar (not the 255-byte name limit or the 64-hex-name refusal).

/// Returns the normalised reference, or `None` when `name` is not a valid reference.
pub(crate) fn normalize(name: &str) -> Option<String> {
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return None;
    }
    let (rest, digest) = match name.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (name, None),
    };
    if let Some(digest) = digest {
        let (algorithm, hex) = digest.split_once(':')?;
        if algorithm.is_empty() || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return None;
        }
    }
    let (domain, remainder) = match path.split_once('/') {
        Some((first, remainder))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_owned(), remainder.to_owned())
        }
        _ => ("docker.io".to_owned(), path.to_owned()),
    };
    let remainder = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder
    };
    if domain != "docker.io" && !is_domain(&domain) {
        return None;
    }
    if !remainder.split('/').all(is_path_component) {
        return None;
    }
    let mut out = format!("{domain}/{remainder}");
    match (tag, digest) {
        (Some(tag), _) => {
            out.push(':');
            out.push_str(tag);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    }
    Some(out)
}

/// Returns true for one path component: lowercase alphanumeric runs joined by `.`, `_`, `__`
/// or a run of `-`.
// Compat: distribution/reference pathComponent and separator (regexp.go).
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    loop {
        let start = index;
        while index < bytes.len() && alphanumeric(bytes[index]) {
            index += 1;
        }
        if index == start {
            return false;
        }
        if index == bytes.len() {
            return true;
        }
        let separator_start = index;
        while index < bytes.len() && !alphanumeric(bytes[index]) {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
}

/// Returns true for a registry host: dot-separated labels (letters, digits, inner `-`) or a
/// bracketed IPv6 address, with an optional numeric port.
// Compat: distribution/reference domainAndPort (regexp.go).
fn is_domain(domain: &str) -> bool {
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) => (
                !address.is_empty() && address.chars().all(|c| c.is_ascii_hexdigit() || c == ':'),
                port,
            ),
            None => return false,
        },
        None => {
            let (host, port) = match domain.find(':') {
                Some(colon) => (&domain[..colon], &domain[colon..]),
                None => (domain, ""),
            };
            let label_ok = |label: &str| {
                let bytes = label.as_bytes();
                !bytes.is_empty()
                    && bytes[0].is_ascii_alphanumeric()
                    && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            };
            (host.split('.').all(label_ok), port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn rejects_what_distribution_rejects() {
        for name in [
            "a..b",
            "a___b",
            "a_-b",
            "a.-b",
            "my_registry.example/app",
            "example.com:port/app",
            "-a",
            "Bad:Name",
        ] {
            assert!(normalize(name).is_none(), "{name}");
        }
        for name in [
            "a__b",
            "a--b",
            "a.b_c-d",
            "Example.com/app",
            "[::1]:5000/app",
            "registry-1.example:443/o/r",
        ] {
            assert!(normalize(name).is_some(), "{name}");
        }
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            normalize("alpine").as_deref(),
            Some("docker.io/library/alpine:latest")
        );
        assert_eq!(
            normalize("user/app:1.0").as_deref(),
            Some("docker.io/user/app:1.0")
        );
        assert_eq!(
            normalize("localhost:5000/app").as_deref(),
            Some("localhost:5000/app:latest")
        );
        assert_eq!(normalize("ghcr.io/o/r:t").as_deref(), Some("ghcr.io/o/r:t"));
        assert!(normalize("").is_none());
        assert!(normalize("UPPER").is_none());
        assert!(normalize(":tag").is_none());
    }
}
