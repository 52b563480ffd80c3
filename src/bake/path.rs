//! Slash-separated path helpers with Go's `path` semantics, which buildx applies to
//! contexts and which bake's `basename`/`dirname` functions expose.

/// Cleans a path like Go's `path.Clean`: drops `.` and empty elements, resolves `..`
/// lexically, and returns `.` for an empty result.
pub(crate) fn clean(path: &str) -> String {
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
