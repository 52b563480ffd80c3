//! Relative paths in a Compose document made relative to the project directory, the way
//! compose-go resolves them before bake sees the model: buildx gives compose-go no working
//! directory, so `./other` comes out as `other`, and paths in included or extended files
//! come out prefixed with that file's directory.

use crate::bake::compose::yaml::{Node, Value};
use crate::bake::resolve::is_remote;

/// Rewrites every path compose-go resolves (build contexts, additional contexts, `env_file`,
/// `extends.file`, secret files) relative to `base` (`""` is the working directory).
// Compat: compose-go paths.ResolveRelativePaths with buildx's empty WorkingDir.
pub(super) fn resolve(root: &mut Node, base: &str, home: Option<&str>) {
    let Value::Map(entries) = &mut root.value else {
        return;
    };
    for (key, section) in entries {
        let Value::Map(items) = &mut section.value else {
            continue;
        };
        for (_, item) in items {
            match key.name.as_str() {
                "services" => resolve_service(item, base, home),
                "secrets" => {
                    if let Some(file) = get_mut(item, "file") {
                        rewrite(file, |path| Some(absolute(base, path, home)));
                    }
                }
                _ => {}
            }
        }
    }
}

fn resolve_service(service: &mut Node, base: &str, home: Option<&str>) {
    if let Some(build) = get_mut(service, "build") {
        match &mut build.value {
            Value::Str(_) => rewrite(build, |path| context(base, path, home)),
            Value::Map(_) => {
                if let Some(node) = get_mut(build, "context") {
                    rewrite(node, |path| context(base, path, home));
                }
                if let Some(node) = get_mut(build, "additional_contexts") {
                    resolve_additional_contexts(node, base, home);
                }
            }
            _ => {}
        }
    }
    if let Some(env_file) = get_mut(service, "env_file") {
        match &mut env_file.value {
            Value::Str(_) => rewrite(env_file, |path| Some(absolute(base, path, home))),
            Value::Seq(items) => {
                for item in items {
                    let node = match item.value {
                        Value::Map(_) => get_mut(item, "path"),
                        _ => Some(item),
                    };
                    if let Some(node) = node {
                        rewrite(node, |path| Some(absolute(base, path, home)));
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(extends) = get_mut(service, "extends")
        && let Some(file) = get_mut(extends, "file")
    {
        rewrite(file, |path| Some(absolute(base, path, home)));
    }
}

/// `additional_contexts` as a mapping or a `NAME=VALUE` list.
fn resolve_additional_contexts(node: &mut Node, base: &str, home: Option<&str>) {
    match &mut node.value {
        Value::Map(entries) => {
            for (_, value) in entries {
                rewrite(value, |path| context(base, path, home));
            }
        }
        Value::Seq(items) => {
            for item in items {
                rewrite(item, |text| {
                    let (name, path) = text.split_once('=')?;
                    Some(format!("{name}={}", context(base, path, home)?))
                });
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Replaces a string node's text when `change` gives a new one.
fn rewrite(node: &mut Node, change: impl FnOnce(&str) -> Option<String>) {
    if let Value::Str(text) = &mut node.value
        && let Some(new) = change(text)
    {
        *text = new;
    }
}

/// A build context: URLs, `service:` links and other `scheme://` contexts stay as written.
// Compat: compose-go paths.absContextPath.
fn context(base: &str, path: &str, home: Option<&str>) -> Option<String> {
    if path.contains("://") || path.starts_with("service:") || is_remote(path) {
        return None;
    }
    Some(absolute(base, path, home))
}

/// Joins `path` to `base` as Go's `filepath.Join` does (cleaned; empty stays empty), after
/// expanding a leading `~` to the home directory; absolute paths are kept as written.
// Compat: compose-go paths.absPath and paths.ExpandUser.
pub(super) fn absolute(base: &str, path: &str, home: Option<&str>) -> String {
    let expanded;
    let path = match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) => {
            expanded = crate::path::clean(&format!("{home}/{rest}"));
            expanded.as_str()
        }
        _ => path,
    };
    if path.is_empty() || path.starts_with('/') {
        return path.to_owned();
    }
    if base.is_empty() {
        return crate::path::clean(path);
    }
    crate::path::clean(&format!("{base}/{path}"))
}

/// The directory of a slash-separated path, as Go's `filepath.Dir` gives it (`.` for none).
pub(super) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(index) => crate::path::clean(&path[..index]),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_joins_and_cleans() {
        assert_eq!(absolute("", "./other", None), "other");
        assert_eq!(absolute("", ".", None), ".");
        assert_eq!(absolute("sub", "./ctx/", None), "sub/ctx");
        assert_eq!(absolute("sub", "../x", None), "x");
        assert_eq!(absolute("sub", "/abs//p", None), "/abs//p");
        assert_eq!(absolute("", "", None), "");
        assert_eq!(absolute("", "~/keys", Some("/home/u")), "/home/u/keys");
    }

    #[test]
    fn contexts_keep_urls_and_links() {
        assert_eq!(context("", "service:api", None), None);
        assert_eq!(context("", "docker-image://alpine", None), None);
        assert_eq!(context("", "https://github.com/a/b.git", None), None);
        assert_eq!(context("", "./x", None).as_deref(), Some("x"));
    }

    #[test]
    fn dir_of_paths() {
        assert_eq!(dir("compose.yaml"), ".");
        assert_eq!(dir("sub/compose.yaml"), "sub");
        assert_eq!(dir("/compose.yaml"), "/");
    }
}
