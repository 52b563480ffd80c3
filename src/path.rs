//! Slash-separated paths with Go's `path.Clean` semantics, which buildx applies to
//! contexts, moby to `.dockerignore` patterns and BuildKit to COPY paths. Leaf: imports
//! nothing from the crate.

/// Cleans a path like Go's `path.Clean`: drops `.` and empty elements, resolves `..`
/// lexically, and returns `.` for an empty result.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Cleans a path inside a root filesystem and returns it relative to the root: `..` never
/// climbs above `/`, and the root itself is the empty string.
pub fn clean_in_root(path: &str) -> String {
    clean(&format!("/{path}"))
        .trim_start_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            (".", "."),
            ("./api", "api"),
            ("a/../b", "b"),
            ("", "."),
            ("../x", "../x"),
            ("/a/./b/", "/a/b"),
            ("a//b", "a/b"),
            ("/a/../..", "/"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn clean_in_root_never_leaves_the_root() {
        assert_eq!(clean_in_root("/etc/../../x"), "x");
        assert_eq!(clean_in_root("./a//b/"), "a/b");
        assert_eq!(clean_in_root("/"), "");
    }
}
