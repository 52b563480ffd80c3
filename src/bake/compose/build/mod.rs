//! From the merged Compose tree to bake targets: one per service with a `build` section,
//! every `build` key and the `x-bake` extension mapped as buildx does.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::model::{Group, NullableMap, Target};
use crate::buildflags::{CacheEntry, ExportEntry, Secret, Ssh};
use crate::diag::SourceFile;

use crate::bake::compose::yaml::{CODE, Node, Value, error, key_error, keyed_entries};
use crate::bake::resolve::clean_context;

mod environment;
mod fields;

/// What a set of Compose files defines: targets in service order and the `default` group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Composed {
    /// One target per service with a `build` section.
    pub(crate) targets: Vec<Target>,
    /// The `default` group listing every target (absent when no service is defined).
    pub(crate) groups: Vec<Group>,
}

/// Turns the merged document into targets and the `default` group.
// Compat: buildx bake/compose.go ParseCompose.
pub(super) fn decode(
    root: &Node,
    files: &[SourceFile],
    env: &BTreeMap<String, String>,
    working_dir: &Path,
) -> std::result::Result<Composed, Error> {
    let services = root.get("services").filter(|n| !n.is_null());
    let secrets = root.get("secrets").filter(|n| !n.is_null());
    if services.is_none() && secrets.is_none() {
        let diagnostic = Diagnostic::new(CODE, "empty compose file");
        let diagnostic = match files.first() {
            Some(file) => diagnostic.at(file, None),
            None => diagnostic,
        };
        return Err(diagnostic
            .help("add a `services` section with at least one `build`")
            .into());
    }
    if let Some(secrets) = secrets
        && secrets.entries().is_none()
    {
        return Err(error(files, secrets, "`secrets` must be a mapping").into());
    }
    let mut composed = Composed::default();
    let Some(services) = services else {
        return Ok(composed);
    };
    let Some(entries) = services.entries() else {
        return Err(error(files, services, "`services` must be a mapping").into());
    };
    let cx = Cx {
        files,
        env,
        working_dir,
        secrets,
    };
    let mut group = Group {
        name: "default".to_owned(),
        ..Group::default()
    };
    let mut problems = Vec::new();
    // Compat: buildx loads the project with every profile enabled (`Profiles: ["*"]`), so
    // `profiles` and `COMPOSE_PROFILES` never skip a service.
    for (key, service) in entries {
        let Some(build) = service.get("build").filter(|b| !b.is_null()) else {
            if let Err(diagnostic) = cx.check_env_files(service) {
                problems.push(*diagnostic);
            }
            continue;
        };
        if service.entries().is_none() {
            problems.push(error(
                files,
                service,
                format!("service `{}` must be a mapping", key.name),
            ));
            continue;
        }
        // Compat: buildx sanitizeTargetName / validateTargetName.
        let name = key.name.replace('.', "_");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            problems.push(
                key_error(
                    files,
                    service.file,
                    key,
                    format!("invalid service name `{name}`: only `[a-zA-Z0-9_-]+` are allowed"),
                )
                .help("rename the service"),
            );
            continue;
        }
        match cx.target(&name, service, build) {
            Ok(target) => {
                group.targets.push(name);
                composed.targets.push(target);
            }
            Err(diagnostic) => problems.push(*diagnostic),
        }
    }
    if !problems.is_empty() {
        return Err(Error {
            diagnostics: problems,
        });
    }
    if !entries.is_empty() {
        composed.groups.push(group);
    }
    Ok(composed)
}

struct Cx<'a> {
    files: &'a [SourceFile],
    env: &'a BTreeMap<String, String>,
    working_dir: &'a Path,
    secrets: Option<&'a Node>,
}

// Boxed: a `Diagnostic` is large and these results travel through every helper.
type Result<T> = std::result::Result<T, Box<Diagnostic>>;

impl Cx<'_> {
    fn err(&self, node: &Node, message: impl Into<String>) -> Box<Diagnostic> {
        Box::new(error(self.files, node, message))
    }

    /// A scalar as text; `null` and empty strings are "not set".
    fn string(&self, node: &Node, what: &str) -> Result<Option<String>> {
        if node.is_null() {
            return Ok(None);
        }
        match node.scalar_text() {
            Some(text) if text.is_empty() => Ok(None),
            Some(text) => Ok(Some(text)),
            None => Err(self.err(
                node,
                format!("`{what}` must be a string, not {}", node.kind()),
            )),
        }
    }

    /// A list of scalars.
    fn list(&self, node: &Node, what: &str) -> Result<Vec<String>> {
        match &node.value {
            Value::Null => Ok(Vec::new()),
            Value::Seq(items) => items
                .iter()
                .map(|item| {
                    item.scalar_text().ok_or_else(|| {
                        self.err(
                            item,
                            format!("`{what}` items must be strings, not {}", item.kind()),
                        )
                    })
                })
                .collect(),
            _ => Err(self.err(
                node,
                format!("`{what}` must be a list, not {}", node.kind()),
            )),
        }
    }

    /// An `x-bake` list: a list, or one whitespace-separated string.
    // Compat: buildx bake/compose.go stringArray.UnmarshalYAML.
    fn fields(&self, node: &Node, what: &str) -> Result<Vec<String>> {
        match node.scalar_text() {
            Some(text) => Ok(text.split_whitespace().map(str::to_owned).collect()),
            None => self.list(node, what),
        }
    }

    /// A boolean, also from a string after interpolation (compose-go casts those).
    fn boolean(&self, node: &Node, what: &str) -> Result<Option<bool>> {
        match &node.value {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::Str(s) => match s.to_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(Some(true)),
                "n" | "no" | "false" | "off" => Ok(Some(false)),
                _ => Err(self.err(node, format!("`{what}` must be a boolean, not `{s}`"))),
            },
            _ => Err(self.err(
                node,
                format!("`{what}` must be a boolean, not {}", node.kind()),
            )),
        }
    }

    /// A mapping or a `KEY=VALUE` list; `null` values (and bare `KEY`) are `None`.
    fn keyed(
        &self,
        node: &Node,
        what: &str,
        separators: &[char],
    ) -> Result<Vec<(String, Option<String>)>> {
        if node.is_null() {
            return Ok(Vec::new());
        }
        let entries = keyed_entries(node, separators).ok_or_else(|| {
            self.err(
                node,
                format!("`{what}` must be a mapping or a list, not {}", node.kind()),
            )
        })?;
        entries
            .into_iter()
            .map(|(key, value)| {
                if value.is_null() {
                    return Ok((key.name, None));
                }
                let text = value.scalar_text().ok_or_else(|| {
                    self.err(
                        &value,
                        format!(
                            "`{what}.{}` must be a string, not {}",
                            key.name,
                            value.kind()
                        ),
                    )
                })?;
                Ok((key.name, Some(text)))
            })
            .collect()
    }

    fn target(&self, name: &str, service: &Node, build: &Node) -> Result<Target> {
        let mut target = Target {
            name: name.to_owned(),
            ..Target::default()
        };
        let mut raw_args = Vec::new();
        let mut x_bake = None;
        match &build.value {
            Value::Str(context) => target.context = Some(context.clone()).filter(|c| !c.is_empty()),
            Value::Map(entries) => {
                for (key, value) in entries {
                    let what = key.name.as_str();
                    match what {
                        "context" => target.context = self.string(value, what)?,
                        "dockerfile" => target.dockerfile = self.string(value, what)?,
                        "dockerfile_inline" => {
                            target.dockerfile_inline = self.string(value, what)?
                        }
                        "args" => raw_args = self.keyed(value, what, &['='])?,
                        "labels" => {
                            // Compose has no null labels: a bare `KEY` is an empty label.
                            target.labels = self
                                .keyed(value, what, &['='])?
                                .into_iter()
                                .map(|(k, v)| (k, Some(v.unwrap_or_default())))
                                .collect();
                        }
                        "tags" => target.tags = non_empty(self.list(value, what)?),
                        "platforms" => target.platforms = non_empty(self.list(value, what)?),
                        "cache_from" => target.cache_from = self.caches(value, what)?,
                        "cache_to" => target.cache_to = non_empty(self.caches(value, what)?),
                        "target" => target.target = self.string(value, what)?,
                        "network" => target.network = self.string(value, what)?,
                        "shm_size" => target.shm_size = self.shm_size(value)?,
                        "ulimits" => target.ulimits = self.ulimits(value)?,
                        "extra_hosts" => target.extra_hosts = self.extra_hosts(value)?,
                        "ssh" => target.ssh = self.ssh(value)?,
                        "secrets" => target.secret = self.secrets(name, value)?,
                        "additional_contexts" => {
                            target.contexts = named_contexts(self.keyed(value, what, &['='])?);
                        }
                        "sbom" | "provenance" => {
                            if let Some(attest) = self.attest(value, what)? {
                                target.attest.push(attest);
                            }
                        }
                        "no_cache" => target.no_cache = self.boolean(value, what)?.filter(|b| *b),
                        "pull" => target.pull = self.boolean(value, what)?.filter(|b| *b),
                        "x-bake" => x_bake = Some(value),
                        // Other Compose keys (isolation, privileged, ...) have no bake meaning.
                        _ => {}
                    }
                }
            }
            _ => {
                return Err(self.err(
                    build,
                    format!(
                        "`build` must be a string or a mapping, not {}",
                        build.kind()
                    ),
                ));
            }
        }
        target.context = Some(clean_context(target.context.as_deref().unwrap_or(".")));
        target.args = self.resolve_args(service, raw_args)?;
        if let Some(x_bake) = x_bake {
            self.x_bake(&mut target, x_bake)?;
        }
        if target.tags.as_ref().is_none_or(Vec::is_empty)
            && let Some(image) = service.get("image")
            && let Some(image) = self.string(image, "image")?
        {
            target.tags = Some(vec![image]);
        }
        Ok(target)
    }

    /// Resolves args without a value from the service environment (`env_file` and
    /// `environment`), then the project environment; those still without one are dropped.
    // Compat: buildx ParseCompose (Args.Resolve + flatten).
    fn resolve_args(
        &self,
        service: &Node,
        raw: Vec<(String, Option<String>)>,
    ) -> Result<NullableMap> {
        if raw.iter().all(|(_, value)| value.is_some()) {
            // compose-go still reads the env files; a missing required one is an error.
            self.check_env_files(service)?;
        }
        let environment = if raw.iter().any(|(_, value)| value.is_none()) {
            self.environment(service)?
        } else {
            Vec::new()
        };
        Ok(raw
            .into_iter()
            .filter_map(|(key, value)| {
                let value = value.or_else(|| {
                    environment
                        .iter()
                        .find(|(k, v)| k == &key && v.is_some())
                        .and_then(|(_, v)| v.clone())
                        .or_else(|| self.env.get(&key).cloned())
                })?;
                Some((key, Some(value)))
            })
            .collect())
    }
    // Compat: buildx Target.composeExtTarget.
    /// Applies `x-bake` on top of what `build` produced.
    fn x_bake(&self, target: &mut Target, node: &Node) -> Result<()> {
        let Some(entries) = node.entries() else {
            if node.is_null() {
                return Ok(());
            }
            return Err(self.err(
                node,
                format!("`x-bake` must be a mapping, not {}", node.kind()),
            ));
        };
        for (key, value) in entries {
            let what = key.name.as_str();
            let parse_err = |err: crate::buildflags::Error| {
                self.err(value, format!("invalid `x-bake.{what}`: {err}"))
            };
            match what {
                "tags" => append_unique(
                    target.tags.get_or_insert_default(),
                    self.fields(value, what)?,
                ),
                "platforms" => {
                    append_unique(
                        target.platforms.get_or_insert_default(),
                        self.fields(value, what)?,
                    );
                }
                "no-cache-filter" => {
                    append_unique(&mut target.no_cache_filter, self.fields(value, what)?)
                }
                "cache-from" => {
                    for text in self.fields(value, what)? {
                        let entries = CacheEntry::parse_list(&text).map_err(parse_err)?;
                        push_unique(&mut target.cache_from, entries);
                    }
                }
                "cache-to" => {
                    for text in self.fields(value, what)? {
                        let entries = CacheEntry::parse_list(&text).map_err(parse_err)?;
                        push_unique(target.cache_to.get_or_insert_default(), entries);
                    }
                }
                "output" => {
                    for text in self.fields(value, what)? {
                        let entry = ExportEntry::parse(&text).map_err(parse_err)?;
                        push_unique(target.output.get_or_insert_default(), vec![entry]);
                    }
                }
                "secret" => {
                    for text in self.fields(value, what)? {
                        let secret = Secret::parse(&text).map_err(parse_err)?;
                        // Compat: buildflags Secrets.Merge replaces by id, in place.
                        match target.secret.iter_mut().find(|s| s.id == secret.id) {
                            Some(existing) => *existing = secret,
                            None => target.secret.push(secret),
                        }
                    }
                }
                "ssh" => {
                    for text in self.fields(value, what)? {
                        let ssh = Ssh::parse(&text);
                        match target.ssh.iter_mut().find(|s| s.id == ssh.id) {
                            Some(existing) => *existing = ssh,
                            None => target.ssh.push(ssh),
                        }
                    }
                    sort_ssh(&mut target.ssh);
                }
                "pull" => {
                    if let Some(pull) = self.boolean(value, what)? {
                        target.pull = Some(pull);
                    }
                }
                "no-cache" => {
                    if let Some(no_cache) = self.boolean(value, what)? {
                        target.no_cache = Some(no_cache);
                    }
                }
                "contexts" => {
                    let entries = value.entries().ok_or_else(|| {
                        self.err(
                            value,
                            format!("`x-bake.contexts` must be a mapping, not {}", value.kind()),
                        )
                    })?;
                    let mut pairs = Vec::new();
                    for (name, item) in entries {
                        pairs.push((name.name.clone(), self.string(item, what)?));
                    }
                    // Compat: buildx dedupMap keeps contexts `build` already set.
                    for (name, value) in named_contexts(pairs) {
                        target.contexts.entry(name).or_insert(value);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn non_empty<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

fn append_unique(list: &mut Vec<String>, more: Vec<String>) {
    for item in more {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, more: Vec<T>) {
    for item in more {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

fn unbracket(ip: &str) -> String {
    ip.strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip)
        .to_owned()
}

// Compat: buildx buildflags SSH.Less (id, then paths).
fn sort_ssh(list: &mut [Ssh]) {
    list.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.paths.cmp(&b.paths)));
}

/// `service:x` (and `target:x`) link another target, with the name sanitised.
// Compat: buildx composeToBuildkitNamedContexts.
fn named_contexts(pairs: Vec<(String, Option<String>)>) -> NullableMap {
    pairs
        .into_iter()
        .map(|(name, value)| {
            let value = value.unwrap_or_default();
            let linked = value
                .strip_prefix("service:")
                .or_else(|| value.strip_prefix("target:"))
                .map(|t| format!("target:{}", t.replace('.', "_")));
            (name, Some(linked.unwrap_or(value)))
        })
        .collect()
}
