//! Image references: validation and Docker's normalisation (`alpine` →
//! `docker.io/library/alpine:latest`).
//!
//! Compat: distribution/reference ParseNormalizedNamed + TagNameOnly (a subset: no
//! validation of every grammar corner, enough for names, tags and digests).

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
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
            && c.chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphanumeric())
            && c.chars()
                .last()
                .is_some_and(|ch| ch.is_ascii_alphanumeric())
    };
    if !remainder.split('/').all(component_ok) {
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

#[cfg(test)]
mod tests {
    use super::normalize;

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
