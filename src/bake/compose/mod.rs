//! Compose files as bake sees them: YAML read into our own tree, interpolated with the
//! Compose rules, several files merged, and every buildable service turned into a [`Target`]
//! plus a `default` group. Mirrors buildx `bake/compose.go`.
#![allow(dead_code, reason = "wired into bake::load on main")]

mod build;
mod dotenv;
mod interpolate;
mod yaml;

use std::collections::BTreeMap;
use std::path::Path;

use crate::bake::error::{Diagnostic, Error};
use crate::diag::SourceFile;

use self::build::Composed;
use self::interpolate::interpolate;
use self::yaml::{CODE, Key, Node, Value, error, keyed_entries};

/// Whether `text` is a YAML mapping with a top-level `services` key (format sniffing).
pub(crate) fn looks_like_compose(text: &str) -> bool {
    yaml::parse(text, 0).is_ok_and(|node| node.get("services").is_some())
}

/// Parses, interpolates and merges Compose files (in order) into targets and a `default`
/// group. `env` is the interpolation environment; `.env` in `dotenv_dir` adds missing keys.
// Compat: buildx bake/compose.go ParseCompose.
pub(crate) fn parse(
    files: &[SourceFile],
    env: &BTreeMap<String, String>,
    dotenv_dir: Option<&Path>,
) -> Result<Composed, Error> {
    let env = load_env(env, dotenv_dir)?;
    let mut merged: Option<Node> = None;
    for (index, file) in files.iter().enumerate() {
        let mut node = yaml::parse(&file.text, index).map_err(|(message, position)| {
            let span = position.map(|(line, column)| {
                let offset = file.offset_of(line, column);
                offset..offset
            });
            Diagnostic::new(CODE, format!("invalid compose file: {message}")).at(file, span)
        })?;
        if node.is_null() {
            node.value = Value::Map(Vec::new());
        }
        if node.entries().is_none() {
            return Err(error(files, &node, "top-level object must be a mapping").into());
        }
        let mut problems = Vec::new();
        interpolate_node(&mut node, &env, files, &mut problems);
        if !problems.is_empty() {
            return Err(Error {
                diagnostics: problems,
            });
        }
        match &mut merged {
            Some(base) => merge_top(base, node),
            None => merged = Some(node),
        }
    }
    let Some(root) = merged else {
        return Err(Diagnostic::new(CODE, "empty compose file").into());
    };
    build::decode(&root, files, &env)
}

/// Adds the keys of `<dir>/.env` that `env` does not set (the environment wins).
// Compat: buildx bake/compose.go loadDotEnv.
fn load_env(
    env: &BTreeMap<String, String>,
    dotenv_dir: Option<&Path>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = env.clone();
    let Some(dir) = dotenv_dir else {
        return Ok(out);
    };
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(out);
    }
    let name = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|err| Diagnostic::new(CODE, format!("cannot read `{name}`: {err}")))?;
    let source = SourceFile::new(name, text.as_str());
    let lookup = |key: &str| env.get(key).cloned();
    let pairs = dotenv::parse(&text, &lookup)
        .map_err(|message| Diagnostic::new(CODE, message).at(&source, None))?;
    for (key, value) in pairs {
        out.entry(key).or_insert(value);
    }
    Ok(out)
}

/// Interpolates every string value (keys are left alone, as compose-go does).
fn interpolate_node(
    node: &mut Node,
    env: &BTreeMap<String, String>,
    files: &[SourceFile],
    problems: &mut Vec<Diagnostic>,
) {
    match &mut node.value {
        Value::Str(text) => {
            let lookup = |name: &str| env.get(name).cloned();
            match interpolate(text, &lookup) {
                Ok(value) => *text = value,
                Err(err) => {
                    let message = err.message(text);
                    let diagnostic = error(files, node, message)
                        .help("escape a literal `$` as `$$`, or set the variable");
                    problems.push(diagnostic);
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                interpolate_node(item, env, files, problems);
            }
        }
        Value::Map(entries) => {
            for (_, value) in entries {
                interpolate_node(value, env, files, problems);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

fn map_entries_mut(node: &mut Node) -> Option<&mut Vec<(Key, Node)>> {
    match &mut node.value {
        Value::Map(entries) => Some(entries),
        _ => None,
    }
}

/// Merges a later file's top level into the earlier ones.
// Compat: compose-go override.Merge (the parts bake reads).
fn merge_top(base: &mut Node, over: Node) {
    let Value::Map(entries) = over.value else {
        return;
    };
    for (key, value) in entries {
        let per_item: Option<fn(&mut Node, Node)> = match key.name.as_str() {
            "services" => Some(merge_service),
            "secrets" => Some(merge_generic),
            _ => None,
        };
        let Some(root) = map_entries_mut(base) else {
            return;
        };
        let Some((_, existing)) = root.iter_mut().find(|(k, _)| k.name == key.name) else {
            root.push((key, value));
            continue;
        };
        match (per_item, value.value) {
            (Some(merge), Value::Map(items)) if existing.entries().is_some() => {
                // Services and secrets merge one by one, by name.
                for (name, item) in items {
                    let Some(list) = map_entries_mut(existing) else {
                        break;
                    };
                    match list.iter_mut().find(|(k, _)| k.name == name.name) {
                        Some((_, old)) => merge(old, item),
                        None => list.push((name, item)),
                    }
                }
            }
            (_, new) => {
                let over = Node {
                    value: new,
                    span: value.span,
                    file: value.file,
                };
                merge_generic(existing, over);
            }
        }
    }
}

/// Maps merge key by key, anything else is replaced.
fn merge_generic(base: &mut Node, over: Node) {
    match (map_entries_mut(base), over.value) {
        (Some(entries), Value::Map(items)) => {
            for (key, value) in items {
                match entries.iter_mut().find(|(k, _)| k.name == key.name) {
                    Some((_, existing)) => merge_generic(existing, value),
                    None => entries.push((key, value)),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.span = over.span;
            base.file = over.file;
        }
    }
}

fn merge_service(base: &mut Node, over: Node) {
    if base.is_null() || over.entries().is_none() {
        *base = over;
        return;
    }
    let Value::Map(items) = over.value else {
        return;
    };
    for (key, mut value) in items {
        let Some(entries) = map_entries_mut(base) else {
            return;
        };
        let Some((_, existing)) = entries.iter_mut().find(|(k, _)| k.name == key.name) else {
            entries.push((key, value));
            continue;
        };
        match key.name.as_str() {
            "build" => {
                build_long_form(existing);
                build_long_form(&mut value);
                merge_build(existing, value);
            }
            "environment" => merge_keyed(existing, value, &['=']),
            _ => *existing = value,
        }
    }
}

/// Turns `build: ./dir` into `build: {context: ./dir}` so the two forms merge.
fn build_long_form(node: &mut Node) {
    if let Value::Str(_) = node.value {
        let context = node.clone();
        let key = Key {
            name: "context".to_owned(),
            span: node.span.clone(),
        };
        node.value = Value::Map(vec![(key, context)]);
    }
}

fn merge_build(base: &mut Node, over: Node) {
    if base.entries().is_none() || over.entries().is_none() {
        *base = over;
        return;
    }
    let Value::Map(items) = over.value else {
        return;
    };
    for (key, value) in items {
        let Some(entries) = map_entries_mut(base) else {
            return;
        };
        let Some((_, existing)) = entries.iter_mut().find(|(k, _)| k.name == key.name) else {
            entries.push((key, value));
            continue;
        };
        match key.name.as_str() {
            "args" | "labels" | "additional_contexts" | "ssh" => {
                merge_keyed(existing, value, &['=']);
            }
            "extra_hosts" => merge_keyed(existing, value, &['=', ':']),
            "tags" | "platforms" => *existing = value,
            _ => match (&mut existing.value, value.value) {
                (Value::Seq(old), Value::Seq(new)) => {
                    for item in new {
                        let text = item.scalar_text();
                        if text.is_none() || !old.iter().any(|o| o.scalar_text() == text) {
                            old.push(item);
                        }
                    }
                }
                (_, new) => {
                    let over = Node {
                        value: new,
                        span: value.span,
                        file: value.file,
                    };
                    merge_generic(existing, over);
                }
            },
        }
    }
}

/// Merges two "mapping or `KEY=VALUE` list" nodes key by key, the later value winning.
fn merge_keyed(base: &mut Node, over: Node, separators: &[char]) {
    let (Some(mut old), Some(new)) = (
        keyed_entries(base, separators),
        keyed_entries(&over, separators),
    ) else {
        *base = over;
        return;
    };
    for (key, value) in new {
        match old.iter_mut().find(|(k, _)| k.name == key.name) {
            Some((_, existing)) => *existing = value,
            None => old.push((key, value)),
        }
    }
    base.value = Value::Map(old);
}

#[cfg(test)]
mod tests;
