//! How Compose documents merge: later files over earlier ones, and a service over the one
//! it `extends`, key by key with compose-go's per-key rules.

use crate::bake::compose::yaml::{Key, Node, Value, keyed_entries};

fn map_entries_mut(node: &mut Node) -> Option<&mut Vec<(Key, Node)>> {
    match &mut node.value {
        Value::Map(entries) => Some(entries),
        _ => None,
    }
}

/// Merges a later file's top level into the earlier ones.
// Compat: compose-go override.Merge (the parts bake reads).
pub(super) fn merge_top(base: &mut Node, over: Node) {
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

pub(super) fn merge_service(base: &mut Node, over: Node) {
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
            "env_file" => merge_env_files(existing, value),
            _ => *existing = value,
        }
    }
}

/// Env files of both, in order, each path once (a single path is a one-item list).
fn merge_env_files(base: &mut Node, over: Node) {
    let as_list = |node: Node| match node.value {
        Value::Seq(items) => items,
        Value::Null => Vec::new(),
        _ => vec![node],
    };
    let path = |node: &Node| match node.get("path") {
        Some(path) => path.scalar_text(),
        None => node.scalar_text(),
    };
    let mut list = as_list(std::mem::replace(base, Node::synthetic(Value::Null, &over)));
    for item in as_list(over.clone()) {
        if !list.iter().any(|old| path(old) == path(&item)) {
            list.push(item);
        }
    }
    *base = Node::synthetic(Value::Seq(list), &over);
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
