//! Turns evaluated attribute values into [`Target`] and [`Group`] fields, with cty's
//! conversions (numbers and bools become strings where a string is expected) and buildx's
//! accepted forms for structured attributes (CSV strings or objects).

use std::collections::BTreeMap;

use hcl::Value;

use crate::bake::hcl::types::value_to_string;
use crate::bake::model::{Group, NullableMap, Policy, Resources, Target};
use crate::buildflags::{Attest, CacheEntry, ExportEntry, Secret, Ssh};

/// Every attribute a `target` block accepts, besides `matrix` and `name`.
pub(crate) const TARGET_ATTRIBUTES: &[&str] = &[
    "description",
    "inherits",
    "annotations",
    "attest",
    "context",
    "contexts",
    "dockerfile",
    "dockerfile-inline",
    "args",
    "labels",
    "tags",
    "cache-from",
    "cache-to",
    "target",
    "secret",
    "ssh",
    "platforms",
    "output",
    "pull",
    "no-cache",
    "network",
    "no-cache-filter",
    "shm-size",
    "ulimits",
    "resources",
    "call",
    "entitlements",
    "extra-hosts",
    "policy",
];

fn kind(value: &Value) -> &'static str {
    crate::bake::hcl::eval::type_name(value)
}

fn string(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        other => value_to_string(other)
            .map(Some)
            .ok_or_else(|| format!("a string is required, found a {}", kind(other))),
    }
}

fn list(value: &Value) -> Result<Option<Vec<String>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => Err("list elements must not be null".to_owned()),
                other => value_to_string(other).ok_or_else(|| {
                    format!(
                        "a list of strings is required, found a {} in it",
                        kind(other)
                    )
                }),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(format!(
            "a list of strings is required, found a {}",
            kind(other)
        )),
    }
}

fn map(value: &Value) -> Result<NullableMap, String> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(object) => object
            .iter()
            .map(|(key, item)| match item {
                Value::Null => Ok((key.clone(), None)),
                other => value_to_string(other)
                    .map(|s| (key.clone(), Some(s)))
                    .ok_or_else(|| {
                        format!(
                            "the value of `{key}` must be a string, found a {}",
                            kind(other)
                        )
                    }),
            })
            .collect(),
        other => Err(format!(
            "a map of strings is required, found a {}",
            kind(other)
        )),
    }
}

fn boolean(value: &Value) -> Result<Option<bool>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) => crate::buildflags::parse_bool(s)
            .map(Some)
            .ok_or_else(|| format!("a bool is required, found `{s}`")),
        other => Err(format!("a bool is required, found a {}", kind(other))),
    }
}

/// The string and object elements of a structured list; nulls and empty strings skipped.
enum Item {
    Text(String),
    Pairs(String, Vec<(String, String)>),
}

fn items(value: &Value) -> Result<Option<Vec<Item>>, String> {
    let elements = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for element in elements {
        match element {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            Value::Object(object) => {
                let mut pairs = Vec::new();
                for (key, item) in object {
                    if let Some(text) = value_to_string(&item) {
                        pairs.push((key.to_lowercase(), text));
                    } else if let Value::Array(list) = &item {
                        let joined: Vec<String> = list.iter().filter_map(value_to_string).collect();
                        pairs.push((key.to_lowercase(), joined.join(",")));
                    }
                }
                let shown = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                out.push(Item::Pairs(shown, pairs));
            }
            other => match value_to_string(&other) {
                Some(text) => out.push(Item::Text(text)),
                None => {
                    return Err(format!(
                        "a string or an object is required, found a {}",
                        kind(&other)
                    ));
                }
            },
        }
    }
    Ok(Some(out))
}

fn outputs(value: &Value) -> Result<Option<Vec<ExportEntry>>, String> {
    let Some(items) = items(value)? else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            Item::Text(text) => ExportEntry::parse(&text),
            Item::Pairs(shown, pairs) => ExportEntry::from_pairs(&shown, pairs),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|e| e.to_string())
}

fn caches(value: &Value) -> Result<Option<Vec<CacheEntry>>, String> {
    let Some(items) = items(value)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Text(text) => {
                out.extend(CacheEntry::parse_list(&text).map_err(|e| e.to_string())?)
            }
            Item::Pairs(shown, pairs) => {
                out.push(CacheEntry::from_pairs(&shown, pairs).map_err(|e| e.to_string())?);
            }
        }
    }
    Ok(Some(out))
}

fn secrets(value: &Value) -> Result<Vec<Secret>, String> {
    let items = items(value)?.unwrap_or_default();
    items
        .into_iter()
        .map(|item| match item {
            Item::Text(text) => Secret::parse(&text),
            Item::Pairs(shown, pairs) => Secret::from_pairs(&shown, pairs),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn ssh(value: &Value) -> Result<Vec<Ssh>, String> {
    let items = items(value)?.unwrap_or_default();
    Ok(items
        .into_iter()
        .map(|item| match item {
            Item::Text(text) => Ssh::parse(&text),
            Item::Pairs(_, pairs) => {
                let mut ssh = Ssh::default();
                for (key, value) in pairs {
                    match key.as_str() {
                        "id" => ssh.id = value,
                        "paths" => ssh.paths = value.split(',').map(str::to_owned).collect(),
                        _ => {}
                    }
                }
                ssh
            }
        })
        .collect())
}

fn attests(value: &Value) -> Result<Vec<Attest>, String> {
    let items = items(value)?.unwrap_or_default();
    items
        .into_iter()
        .map(|item| match item {
            Item::Text(text) => Attest::parse(&text),
            Item::Pairs(shown, pairs) => Attest::from_pairs(&shown, pairs),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn policies(value: &Value) -> Result<Vec<Policy>, String> {
    let items = items(value)?.unwrap_or_default();
    items
        .into_iter()
        .map(|item| {
            let pairs = match item {
                Item::Text(text) => crate::buildflags::split_fields(&text)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|field| match field.split_once('=') {
                        Some((k, v)) => Ok((k.to_lowercase(), v.to_owned())),
                        None => Err(format!(
                            "invalid policy field `{field}`: expected `key=value`"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Item::Pairs(_, pairs) => pairs,
            };
            Ok(Policy {
                attrs: pairs.into_iter().collect(),
            })
        })
        .collect()
}

fn shm_size(value: &Value) -> Result<Option<String>, String> {
    let size = string(value)?;
    if let Some(text) = &size {
        crate::buildflags::ram_in_bytes(text).map_err(|e| e.to_string())?;
    }
    Ok(size)
}

fn ulimits(value: &Value) -> Result<Vec<String>, String> {
    let entries = list(value)?.unwrap_or_default();
    for entry in &entries {
        crate::buildflags::Ulimit::parse(entry).map_err(|e| e.to_string())?;
    }
    Ok(entries)
}

fn resources(value: &Value) -> Result<Option<Resources>, String> {
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        other => return Err(format!("an object is required, found a {}", kind(other))),
    };
    let mut out = Resources::default();
    for (key, item) in object {
        let text = || string(item);
        let int = || -> Result<Option<i64>, String> {
            match item {
                Value::Null => Ok(None),
                Value::Number(n) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a whole number")),
                Value::String(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("`{key}` must be a whole number")),
                other => Err(format!("`{key}` must be a number, found a {}", kind(other))),
            }
        };
        match key.as_str() {
            "memory" => out.memory = text()?,
            "memory-swap" => out.memory_swap = text()?,
            "cpu-shares" => out.cpu_shares = int()?,
            "cpu-period" => out.cpu_period = int()?,
            "cpu-quota" => out.cpu_quota = int()?,
            "cpuset-cpus" => out.cpuset_cpus = text()?,
            "cpuset-mems" => out.cpuset_mems = text()?,
            other => return Err(format!("unknown resource `{other}`")),
        }
    }
    out.check().map_err(|e| e.to_string())?;
    Ok(Some(out))
}

/// Sets one target attribute from its evaluated value.
pub(crate) fn set_target_field(
    target: &mut Target,
    name: &str,
    value: &Value,
) -> Result<(), String> {
    match name {
        "description" => target.description = string(value)?,
        "inherits" => target.inherits = list(value)?.unwrap_or_default(),
        "annotations" => target.annotations = list(value)?.unwrap_or_default(),
        "attest" => target.attest = attests(value)?,
        "context" => target.context = string(value)?,
        "contexts" => target.contexts = map(value)?,
        "dockerfile" => target.dockerfile = string(value)?,
        "dockerfile-inline" => target.dockerfile_inline = string(value)?,
        "args" => target.args = map(value)?,
        "labels" => target.labels = map(value)?,
        "tags" => target.tags = list(value)?,
        "cache-from" => target.cache_from = caches(value)?.unwrap_or_default(),
        "cache-to" => target.cache_to = caches(value)?,
        "target" => target.target = string(value)?,
        "secret" => target.secret = secrets(value)?,
        "ssh" => target.ssh = ssh(value)?,
        "platforms" => target.platforms = list(value)?,
        "output" => target.output = outputs(value)?,
        "pull" => target.pull = boolean(value)?,
        "no-cache" => target.no_cache = boolean(value)?,
        "network" => target.network = string(value)?,
        "no-cache-filter" => target.no_cache_filter = list(value)?.unwrap_or_default(),
        "shm-size" => target.shm_size = shm_size(value)?,
        "ulimits" => target.ulimits = ulimits(value)?,
        "resources" => target.resources = resources(value)?,
        "call" => target.call = string(value)?,
        "entitlements" => target.entitlements = list(value)?.unwrap_or_default(),
        "extra-hosts" => target.extra_hosts = map(value)?,
        "policy" => target.policy = policies(value)?,
        other => return Err(format!("unknown target attribute `{other}`")),
    }
    Ok(())
}

/// Sets one group attribute from its evaluated value.
pub(crate) fn set_group_field(group: &mut Group, name: &str, value: &Value) -> Result<(), String> {
    match name {
        "targets" => group.targets = list(value)?.unwrap_or_default(),
        "description" => group.description = string(value)?,
        other => return Err(format!("unknown group attribute `{other}`")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_bools_become_strings() {
        let mut target = Target::default();
        let args = Value::from_iter([("N", Value::from(4)), ("B", Value::Bool(true))]);
        set_target_field(&mut target, "args", &args).unwrap();
        assert_eq!(target.args["N"].as_deref(), Some("4"));
        assert_eq!(target.args["B"].as_deref(), Some("true"));
    }

    #[test]
    fn null_map_values_are_kept_as_unset() {
        let mut target = Target::default();
        let args = Value::from_iter([("A", Value::Null)]);
        set_target_field(&mut target, "args", &args).unwrap();
        assert_eq!(target.args["A"], None);
    }

    #[test]
    fn outputs_accept_strings_and_objects() {
        let mut target = Target::default();
        let value = Value::from(vec![
            Value::from("type=local,dest=out"),
            Value::from_iter([("type", "tar"), ("dest", "x.tar")]),
            Value::from(""),
        ]);
        set_target_field(&mut target, "output", &value).unwrap();
        let kinds: Vec<&str> = target
            .output
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| o.kind.as_str())
            .collect();
        assert_eq!(kinds, ["local", "tar"]);
    }

    #[test]
    fn wrong_types_are_reported() {
        let mut target = Target::default();
        let error =
            set_target_field(&mut target, "tags", &Value::from_iter([("a", "b")])).unwrap_err();
        assert!(error.contains("list of strings"), "{error}");
        assert!(set_target_field(&mut target, "pull", &Value::from("maybe")).is_err());
        assert!(set_target_field(&mut target, "bogus", &Value::Null).is_err());
    }

    #[test]
    fn resources_take_known_keys() {
        let mut target = Target::default();
        let value = Value::from_iter([
            ("memory", Value::from("1g")),
            ("cpu-shares", Value::from(512)),
        ]);
        set_target_field(&mut target, "resources", &value).unwrap();
        let resources = target.resources.unwrap();
        assert_eq!(resources.memory.as_deref(), Some("1g"));
        assert_eq!(resources.cpu_shares, Some(512));
    }
}
