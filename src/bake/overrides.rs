//! `--set <pattern>.<key>[.<sub>]=<value>` (and `+=`): parsing, matching target-name
//! patterns, and applying the overrides to a target during resolution.

use std::collections::BTreeMap;

use crate::bake::error::Diagnostic;
use crate::bake::model::{Resources, Target};
use crate::buildflags::{self, Attest, CacheEntry, ExportEntry, Secret, Ssh};

/// Keys whose values accumulate into a list when given several times.
const LIST_KEYS: &[&str] = &[
    "output",
    "cache-to",
    "cache-from",
    "tags",
    "platform",
    "secrets",
    "ssh",
    "attest",
    "entitlements",
    "annotations",
    "no-cache-filter",
    "ulimits",
    "policy",
];

/// Every key `--set` accepts (the part after the target pattern, before any `.<sub>`).
const KEYS: &[&str] = &[
    "args",
    "labels",
    "contexts",
    "extra-hosts",
    "resources",
    "secret",
    "context",
    "dockerfile",
    "target",
    "call",
    "network",
    "shm-size",
    "tags",
    "platform",
    "output",
    "cache-from",
    "cache-to",
    "secrets",
    "ssh",
    "policy",
    "no-cache-filter",
    "ulimits",
    "annotations",
    "attest",
    "entitlements",
    "no-cache",
    "pull",
    "push",
    "load",
];

/// One override for one key of one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Override {
    /// The value for scalar and map keys.
    pub(crate) value: String,
    /// The accumulated values for list keys.
    pub(crate) list: Vec<String>,
    /// Whether list values append (`+=`) instead of replacing.
    pub(crate) append: bool,
}

/// Overrides per target name, keys in the order they were first given.
pub(crate) type Overrides = BTreeMap<String, Vec<(String, Override)>>;

fn invalid(input: &str, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new("bake::set", message)
        .label(input.to_owned())
        .help("write overrides as `--set <target>.<key>=<value>`, e.g. `--set app.args.VERSION=1`")
}

/// Matches a target name against a `--set` pattern (Go `path.Match` syntax: `*`, `?`,
/// `[...]`, `[^...]`, `\` escapes).
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    // Compat: buildx matches with Go's path.Match; translate to globset's syntax, where
    // `[!..]` negates and `{}` alternates (Go has neither).
    let mut translated = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '[' if !in_class => {
                in_class = true;
                translated.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    translated.push('!');
                }
            }
            ']' if in_class => {
                in_class = false;
                translated.push(']');
            }
            '{' | '}' => {
                translated.push('[');
                translated.push(c);
                translated.push(']');
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    translated.push('[');
                    translated.push(next);
                    translated.push(']');
                }
            }
            other => translated.push(other),
        }
    }
    globset::GlobBuilder::new(&translated)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher().is_match(name))
        .unwrap_or(false)
}

/// Whether a requested name is a glob pattern rather than a plain name.
pub(crate) fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Parses every `--set` value and attaches it to the matching targets.
// Compat: buildx Config.newOverrides (bake/bake.go).
pub(crate) fn parse(
    sets: &[String],
    target_names: &[&str],
    env: &BTreeMap<String, String>,
) -> Result<Overrides, Diagnostic> {
    let mut out = Overrides::new();
    for input in sets {
        let (left, value) = match input.split_once('=') {
            Some((left, value)) => (left, Some(value)),
            None => (input.as_str(), None),
        };
        let (left, append) = match left.strip_suffix('+') {
            Some(left) => (left, true),
            None => (left, false),
        };
        let parts: Vec<&str> = left.splitn(3, '.').collect();
        if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
            return Err(invalid(
                input,
                format!("invalid override `{input}`: expected `target.key=value`"),
            ));
        }
        let (pattern, key) = (parts[0], parts[1]);
        if key == "inherits" {
            return Err(invalid(
                input,
                "`inherits` cannot be overridden with `--set`",
            ));
        }
        if !KEYS.contains(&key) {
            return Err(invalid(
                input,
                format!("unknown key `{key}` in `--set {input}`"),
            ));
        }
        let sub = parts.get(2).copied();
        let needs_sub = matches!(
            key,
            "args" | "labels" | "contexts" | "extra-hosts" | "resources" | "secret"
        );
        if needs_sub && sub.is_none_or(str::is_empty) {
            return Err(invalid(
                input,
                format!("`{key}` needs a name: `{pattern}.{key}.<name>=<value>`"),
            ));
        }
        if !needs_sub && sub.is_some() {
            return Err(invalid(
                input,
                format!("`{key}` takes no sub-key: `{pattern}.{key}=<value>`"),
            ));
        }
        if append && !LIST_KEYS.contains(&key) {
            return Err(invalid(
                input,
                format!("`+=` only works with list keys, not `{key}`"),
            ));
        }
        let value = match value {
            Some(value) => value.to_owned(),
            // `--set t.args.NAME` takes the value from the environment, or is skipped.
            None if key == "args" => match sub.and_then(|name| env.get(name)) {
                Some(value) => value.clone(),
                None => continue,
            },
            None => {
                return Err(invalid(
                    input,
                    format!("invalid override `{input}`: expected `target.key=value`"),
                ));
            }
        };
        let names: Vec<&str> = if target_names.contains(&pattern) {
            vec![pattern]
        } else {
            target_names
                .iter()
                .copied()
                .filter(|name| pattern_matches(pattern, name))
                .collect()
        };
        if names.is_empty() {
            return Err(Diagnostic::new(
                "bake::set",
                format!("could not find any target matching `{pattern}` in `--set {input}`"),
            )
            .help("`--set` patterns match target names (not groups); quote globs like `'app-*'`"));
        }
        let full_key = match sub {
            Some(sub) => format!("{key}.{sub}"),
            None => key.to_owned(),
        };
        for name in names {
            let entries = out.entry(name.to_owned()).or_default();
            let position = match entries.iter().position(|(k, _)| *k == full_key) {
                Some(position) => position,
                None => {
                    entries.push((full_key.clone(), Override::default()));
                    entries.len() - 1
                }
            };
            let entry = &mut entries[position].1;
            if LIST_KEYS.contains(&key) {
                entry.append = append;
                if !value.is_empty() {
                    entry.list.push(value.clone());
                }
            } else {
                entry.value.clone_from(&value);
            }
        }
    }
    Ok(out)
}

fn flag_error(key: &str, error: buildflags::Error) -> Diagnostic {
    Diagnostic::new(
        "bake::set",
        format!("invalid `--set` value for `{key}`: {error}"),
    )
}

fn bool_value(key: &str, value: &str) -> Result<bool, Diagnostic> {
    buildflags::parse_bool(value).ok_or_else(|| {
        Diagnostic::new(
            "bake::set",
            format!("invalid value `{value}` for boolean key `{key}`"),
        )
        .help("use `true` or `false`")
    })
}

fn set_list<T>(slot: &mut Option<Vec<T>>, items: Vec<T>, append: bool) {
    match (slot.as_mut(), append) {
        (Some(existing), true) => existing.extend(items),
        _ => *slot = Some(items),
    }
}

/// Applies one target's overrides; `push` and `load` go last so they see the final outputs.
// Compat: buildx Target.AddOverrides (bake/bake.go).
pub(crate) fn apply(
    target: &mut Target,
    overrides: &[(String, Override)],
) -> Result<(), Diagnostic> {
    let (late, early): (Vec<_>, Vec<_>) = overrides
        .iter()
        .partition(|(key, _)| key == "push" || key == "load");
    for (key, o) in early.into_iter().chain(late) {
        let (head, sub) = match key.split_once('.') {
            Some((head, sub)) => (head, Some(sub)),
            None => (key.as_str(), None),
        };
        let value = o.value.clone();
        match (head, sub) {
            ("context", _) => target.context = Some(value),
            ("dockerfile", _) => target.dockerfile = Some(value),
            ("target", _) => target.target = Some(value),
            ("call", _) => target.call = Some(value),
            ("network", _) => target.network = Some(value),
            ("shm-size", _) => {
                buildflags::ram_in_bytes(&value).map_err(|e| flag_error(key, e))?;
                target.shm_size = Some(value);
            }
            ("args", Some(name)) => {
                target.args.insert(name.to_owned(), Some(value));
            }
            ("labels", Some(name)) => {
                target.labels.insert(name.to_owned(), Some(value));
            }
            ("contexts", Some(name)) => {
                target.contexts.insert(name.to_owned(), Some(value));
            }
            ("extra-hosts", Some(name)) => {
                target.extra_hosts.insert(name.to_owned(), Some(value));
            }
            ("resources", Some(name)) => {
                let resources = target.resources.get_or_insert_with(Resources::default);
                apply_resource(resources, name, &value)?;
                resources.check().map_err(|e| flag_error(key, e))?;
            }
            ("secret", Some(id)) => apply_secret(target, id, &value)?,
            ("tags", _) => set_list(&mut target.tags, o.list.clone(), o.append),
            ("platform", _) => set_list(&mut target.platforms, o.list.clone(), o.append),
            ("output", _) => {
                let outputs = o
                    .list
                    .iter()
                    .map(|s| ExportEntry::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| flag_error(key, e))?;
                set_list(&mut target.output, outputs, o.append);
            }
            ("cache-to", _) => {
                let caches = parse_caches(key, &o.list)?;
                set_list(&mut target.cache_to, caches, o.append);
            }
            ("cache-from", _) => {
                let caches = parse_caches(key, &o.list)?;
                if o.append {
                    target.cache_from.extend(caches)
                } else {
                    target.cache_from = caches
                }
            }
            ("secrets", _) => {
                let secrets = o
                    .list
                    .iter()
                    .map(|s| Secret::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| flag_error(key, e))?;
                if o.append {
                    target.secret.extend(secrets)
                } else {
                    target.secret = secrets
                }
            }
            ("ssh", _) => {
                let ssh: Vec<Ssh> = o.list.iter().map(|s| Ssh::parse(s)).collect();
                if o.append {
                    target.ssh.extend(ssh)
                } else {
                    target.ssh = ssh
                }
            }
            ("attest", _) => {
                let attest = o
                    .list
                    .iter()
                    .map(|s| Attest::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| flag_error(key, e))?;
                target.attest.extend(attest);
            }
            ("entitlements", _) => target.entitlements.extend(o.list.iter().cloned()),
            ("annotations", _) => target.annotations.extend(o.list.iter().cloned()),
            ("no-cache-filter", _) => {
                if o.append {
                    target.no_cache_filter.extend(o.list.iter().cloned())
                } else {
                    target.no_cache_filter.clone_from(&o.list)
                }
            }
            ("ulimits", _) => {
                for entry in &o.list {
                    buildflags::Ulimit::parse(entry).map_err(|e| flag_error(key, e))?;
                }
                if o.append {
                    target.ulimits.extend(o.list.iter().cloned())
                } else {
                    target.ulimits.clone_from(&o.list)
                }
            }
            ("policy", _) => {
                let mut policies = Vec::new();
                for text in &o.list {
                    let mut attrs = BTreeMap::new();
                    for field in buildflags::split_fields(text).map_err(|e| flag_error(key, e))? {
                        let (k, v) = field.split_once('=').unwrap_or((field.as_str(), "true"));
                        attrs.insert(k.to_lowercase(), v.to_owned());
                    }
                    policies.push(crate::bake::model::Policy { attrs });
                }
                target.policy.extend(policies);
            }
            ("no-cache", _) => target.no_cache = Some(bool_value(key, &value)?),
            ("pull", _) => target.pull = Some(bool_value(key, &value)?),
            ("push", _) => {
                let push = bool_value(key, &value)?;
                set_push(target.output.get_or_insert_with(Vec::new), push);
            }
            ("load", _) => {
                let load = bool_value(key, &value)?;
                set_load(target.output.get_or_insert_with(Vec::new), load);
            }
            _ => return Err(Diagnostic::new("bake::set", format!("unknown key `{key}`"))),
        }
    }
    Ok(())
}

fn parse_caches(key: &str, list: &[String]) -> Result<Vec<CacheEntry>, Diagnostic> {
    let mut out = Vec::new();
    for text in list {
        out.extend(CacheEntry::parse_list(text).map_err(|e| flag_error(key, e))?);
    }
    Ok(out)
}

fn apply_resource(resources: &mut Resources, name: &str, value: &str) -> Result<(), Diagnostic> {
    let int = || {
        value.parse::<i64>().map(Some).map_err(|_| {
            Diagnostic::new(
                "bake::set",
                format!("`resources.{name}` must be a whole number, not `{value}`"),
            )
        })
    };
    match name {
        "memory" => resources.memory = Some(value.to_owned()),
        "memory-swap" => resources.memory_swap = Some(value.to_owned()),
        "cpu-shares" => resources.cpu_shares = int()?,
        "cpu-period" => resources.cpu_period = int()?,
        "cpu-quota" => resources.cpu_quota = int()?,
        "cpuset-cpus" => resources.cpuset_cpus = Some(value.to_owned()),
        "cpuset-mems" => resources.cpuset_mems = Some(value.to_owned()),
        other => {
            return Err(Diagnostic::new(
                "bake::set",
                format!("unknown resource `{other}`"),
            ));
        }
    }
    Ok(())
}

fn apply_secret(target: &mut Target, id: &str, value: &str) -> Result<(), Diagnostic> {
    let replacement = Secret::parse(value).map_err(|e| flag_error("secret", e))?;
    if !replacement.id.is_empty() && replacement.id != id {
        return Err(Diagnostic::new(
            "bake::set",
            format!(
                "secret id `{}` does not match `secret.{id}`",
                replacement.id
            ),
        ));
    }
    let Some(secret) = target.secret.iter_mut().find(|s| s.id == id) else {
        return Err(Diagnostic::new(
            "bake::set",
            format!("secret `{id}` must be declared before it can be overridden"),
        )
        .help(format!(
            "add `secret = [\"id={id},...\"]` to the target first"
        )));
    };
    secret.src = replacement.src;
    secret.env = replacement.env;
    Ok(())
}

/// `--push` / `*.push=`: turns pushing on or off in the outputs.
// Compat: buildx setPushOverride (bake/bake.go).
fn set_push(outputs: &mut Vec<ExportEntry>, push: bool) {
    if !push {
        outputs.retain(|o| o.kind != "registry");
        for output in outputs.iter_mut().filter(|o| o.kind == "image") {
            output.attrs.insert("push".to_owned(), "false".to_owned());
        }
        return;
    }
    let only_docker = outputs.iter().all(|o| o.kind == "docker");
    for output in outputs.iter_mut().filter(|o| o.kind == "image") {
        output.attrs.insert("push".to_owned(), "true".to_owned());
    }
    if only_docker {
        outputs.push(ExportEntry {
            kind: "image".to_owned(),
            destination: String::new(),
            attrs: BTreeMap::from([("push".to_owned(), "true".to_owned())]),
        });
    }
}

/// `--load` / `*.load=`: adds a `docker` output unless one that loads already exists.
// Compat: buildx setLoadOverride (bake/bake.go).
fn set_load(outputs: &mut Vec<ExportEntry>, load: bool) {
    if !load {
        return;
    }
    let add = outputs.iter().all(|o| match o.kind.as_str() {
        "docker" => !o.destination.is_empty(),
        "image" | "registry" | "oci" => true,
        _ => false,
    });
    if add {
        outputs.push(ExportEntry {
            kind: "docker".to_owned(),
            ..ExportEntry::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn go_path_match_patterns() {
        assert!(pattern_matches("foo*", "foo-1"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("app-?", "app-1"));
        assert!(pattern_matches("[ab]pp", "app"));
        assert!(pattern_matches("[^b]pp", "app"));
        assert!(!pattern_matches("[^a]pp", "app"));
        assert!(!pattern_matches("{a,b}", "a"), "no brace alternation in Go");
        assert!(!pattern_matches("foo*", "bar"));
    }

    #[test]
    fn list_keys_accumulate_and_scalars_replace() {
        let env = BTreeMap::new();
        let o = parse(
            &sets(&["app.tags=a", "app.tags=b", "app.target=x", "app.target=y"]),
            &["app"],
            &env,
        )
        .unwrap();
        let entries = &o["app"];
        assert_eq!(entries[0].1.list, ["a", "b"]);
        assert_eq!(entries[1].1.value, "y");
    }

    #[test]
    fn globs_match_targets_and_no_match_is_an_error() {
        let env = BTreeMap::new();
        let o = parse(&sets(&["foo*.args.A=1"]), &["foo-1", "foo-2", "bar"], &env).unwrap();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["foo-1", "foo-2"]);
        assert!(parse(&sets(&["nope.tags=x"]), &["app"], &env).is_err());
    }

    #[test]
    fn malformed_overrides_are_errors() {
        let env = BTreeMap::new();
        for bad in [
            "app",
            "app.tags",
            "app=1",
            "app.bogus=1",
            "app.inherits=x",
            "app.args=1",
            "app.target+=x",
        ] {
            assert!(parse(&sets(&[bad]), &["app"], &env).is_err(), "{bad}");
        }
    }

    #[test]
    fn args_without_value_come_from_the_environment() {
        let env = BTreeMap::from([("TOKEN".to_owned(), "abc".to_owned())]);
        let o = parse(
            &sets(&["app.args.TOKEN", "app.args.MISSING"]),
            &["app"],
            &env,
        )
        .unwrap();
        assert_eq!(o["app"].len(), 1);
        assert_eq!(o["app"][0].1.value, "abc");
    }

    #[test]
    fn push_adds_an_image_output_or_marks_existing_ones() {
        let mut outputs = Vec::new();
        set_push(&mut outputs, true);
        assert_eq!(outputs[0].kind, "image");
        assert_eq!(outputs[0].attrs["push"], "true");
        let mut outputs = vec![ExportEntry::parse("type=local,dest=out").unwrap()];
        set_push(&mut outputs, true);
        assert_eq!(outputs.len(), 1);
        let mut outputs = vec![
            ExportEntry::parse("type=registry").unwrap(),
            ExportEntry::parse("type=image").unwrap(),
        ];
        set_push(&mut outputs, false);
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].attrs["push"], "false");
    }

    #[test]
    fn load_adds_docker_unless_something_else_exports() {
        let mut outputs = Vec::new();
        set_load(&mut outputs, true);
        assert_eq!(outputs[0].kind, "docker");
        let mut outputs = vec![ExportEntry::parse("type=local,dest=x").unwrap()];
        set_load(&mut outputs, true);
        assert_eq!(outputs.len(), 1);
        let mut outputs = vec![ExportEntry::parse("type=docker").unwrap()];
        set_load(&mut outputs, true);
        assert_eq!(outputs.len(), 1);
    }

    #[test]
    fn apply_sets_every_kind_of_key() {
        let env = BTreeMap::new();
        let o = parse(
            &sets(&[
                "app.args.A=1",
                "app.tags=t1",
                "app.platform=linux/arm64",
                "app.output=type=local,dest=out",
                "app.no-cache=true",
                "app.cache-from=user/cache",
                "app.resources.memory=1g",
            ]),
            &["app"],
            &env,
        )
        .unwrap();
        let mut target = Target::default();
        apply(&mut target, &o["app"]).unwrap();
        assert_eq!(target.args["A"].as_deref(), Some("1"));
        assert_eq!(target.tags, Some(vec!["t1".to_owned()]));
        assert_eq!(target.platforms, Some(vec!["linux/arm64".to_owned()]));
        assert_eq!(target.output.unwrap()[0].destination, "out");
        assert_eq!(target.no_cache, Some(true));
        assert_eq!(target.cache_from[0].attrs["ref"], "user/cache");
        assert_eq!(target.resources.unwrap().memory.as_deref(), Some("1g"));
    }

    #[test]
    fn secret_override_needs_a_declared_secret() {
        let env = BTreeMap::new();
        let o = parse(&sets(&["app.secret.token=env=OTHER"]), &["app"], &env).unwrap();
        let mut target = Target::default();
        assert!(apply(&mut target, &o["app"]).is_err());
        target
            .secret
            .push(Secret::parse("id=token,src=file").unwrap());
        apply(&mut target, &o["app"]).unwrap();
        assert_eq!(target.secret[0].env, "OTHER");
        assert!(target.secret[0].src.is_empty());
    }
}
