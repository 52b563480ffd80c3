//! The documents that make one Compose project: each given file parsed and interpolated,
//! its services' `extends` applied and the files it `include`s imported, with the extra files
//! read relative to the working directory and kept for diagnostics.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::bake::error::{Diagnostic, Error};
use crate::diag::SourceFile;

use crate::bake::compose::interpolate::interpolate;
use crate::bake::compose::merge::merge_top;
use crate::bake::compose::paths;
use crate::bake::compose::yaml::{self, CODE, Node, Value, error};

/// Reads and remembers Compose files; `files` grows as `include` and `extends` read more.
pub(super) struct Loader {
    /// Every file read so far: the given ones first, in order.
    pub(super) files: Vec<SourceFile>,
    /// Where relative paths start (the project directory).
    working_dir: PathBuf,
    /// The home directory a leading `~` in a path expands to.
    pub(super) home: Option<String>,
}

impl Loader {
    /// A loader over the given files, reading others relative to `working_dir`.
    pub(super) fn new(files: &[SourceFile], working_dir: PathBuf, home: Option<String>) -> Self {
        Self {
            files: files.to_vec(),
            working_dir,
            home,
        }
    }

    /// Where relative paths start.
    pub(super) fn working_dir(&self) -> &std::path::Path {
        &self.working_dir
    }

    /// Reads `path` (relative to the working directory) once; returns its index in `files`.
    pub(super) fn read(&mut self, path: &str) -> Result<usize, String> {
        if let Some(index) = self.files.iter().position(|f| f.name == path) {
            return Ok(index);
        }
        let text = std::fs::read_to_string(self.working_dir.join(path))
            .map_err(|err| format!("cannot read `{path}`: {err}"))?;
        self.files.push(SourceFile::new(path, text));
        Ok(self.files.len() - 1)
    }

    /// Parses file `index` and interpolates its values with `env`.
    pub(super) fn parse(
        &self,
        index: usize,
        env: &BTreeMap<String, String>,
    ) -> Result<Node, Error> {
        let file = &self.files[index];
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
            return Err(error(&self.files, &node, "top-level object must be a mapping").into());
        }
        let mut problems = Vec::new();
        interpolate_node(&mut node, env, &self.files, &mut problems);
        if !problems.is_empty() {
            return Err(Error {
                diagnostics: problems,
            });
        }
        Ok(node)
    }

    /// File `index` as compose-go loads one file: parsed, interpolated, `extends` applied and
    /// `include`s imported. `dir` is the document's working directory (relative paths in it
    /// stay relative to `dir`; the caller resolves them).
    // Compat: compose-go loader.loadYamlFile (interpolate, ApplyExtends, ApplyInclude).
    pub(super) fn document(
        &mut self,
        index: usize,
        env: &BTreeMap<String, String>,
        dir: &str,
        included: &[String],
    ) -> Result<Node, Error> {
        let mut node = self.parse(index, env)?;
        self.apply_extends(&mut node, env, dir)?;
        let mut included = included.to_vec();
        included.push(self.files[index].name.clone());
        self.apply_include(&mut node, env, dir, &included)?;
        Ok(node)
    }

    /// Imports every `include` entry into `node` and removes the key.
    // Compat: compose-go loader.ApplyInclude.
    fn apply_include(
        &mut self,
        node: &mut Node,
        env: &BTreeMap<String, String>,
        dir: &str,
        included: &[String],
    ) -> Result<(), Error> {
        let Some(include) = take(node, "include") else {
            return Ok(());
        };
        let items = match include.value {
            Value::Null => return Ok(()),
            Value::Seq(items) => items,
            _ => {
                let message = format!("`include` must be a list, not {}", include.kind());
                return Err(error(&self.files, &include, message).into());
            }
        };
        for item in &items {
            let entry = self.include_entry(item)?;
            let Some(first) = entry.paths.first() else {
                return Err(error(&self.files, item, "`include` entry has no `path`").into());
            };
            // Paths of the included project are relative to its directory, then to ours.
            let project = match &entry.project_directory {
                Some(project) => paths::absolute("", project, self.home.as_deref()),
                None => paths::dir(&paths::absolute("", first, self.home.as_deref())),
            };
            let project_dir = paths::absolute(dir, &project, self.home.as_deref());
            let include_env = self.include_env(item, env, dir, &project_dir, &entry.env_files)?;
            let mut model: Option<Node> = None;
            for path in &entry.paths {
                let path = paths::absolute(dir, path, self.home.as_deref());
                if included.contains(&path) {
                    let chain = [included, std::slice::from_ref(&path)]
                        .concat()
                        .join("` includes `");
                    let message = format!("include cycle: `{chain}`");
                    return Err(error(&self.files, item, message).into());
                }
                let index = self
                    .read(&path)
                    .map_err(|message| error(&self.files, item, message))?;
                let document = self.document(index, &include_env, &project_dir, included)?;
                match &mut model {
                    Some(base) => merge_top(base, document),
                    None => model = Some(document),
                }
            }
            if let Some(mut model) = model {
                paths::resolve(&mut model, &project, self.home.as_deref());
                self.import(node, model)?;
            }
        }
        Ok(())
    }

    /// The interpolation environment of an included project: ours, plus the keys its env
    /// files (by default its `.env`) add.
    fn include_env(
        &self,
        item: &Node,
        env: &BTreeMap<String, String>,
        dir: &str,
        project_dir: &str,
        env_files: &[String],
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut files = Vec::new();
        if env_files.is_empty() {
            let dotenv = paths::absolute(project_dir, ".env", None);
            if self.working_dir.join(&dotenv).is_file() {
                files.push(dotenv);
            }
        } else {
            for file in env_files {
                let mut path = paths::absolute(dir, file, self.home.as_deref());
                if self.working_dir.join(&path).is_dir() {
                    path = paths::absolute(&path, ".env", None);
                }
                files.push(path);
            }
        }
        let mut out = env.clone();
        for path in files {
            let text = std::fs::read_to_string(self.working_dir.join(&path))
                .map_err(|err| error(&self.files, item, format!("cannot read `{path}`: {err}")))?;
            let lookup = |key: &str| env.get(key).cloned();
            let pairs = crate::bake::compose::dotenv::parse(&text, &lookup)
                .map_err(|message| error(&self.files, item, format!("`{path}`: {message}")))?;
            for (key, value) in pairs {
                out.entry(key).or_insert(value);
            }
        }
        Ok(out)
    }

    /// Adds the included services and secrets; one already defined here is a conflict.
    // Compat: compose-go loader.importResources.
    fn import(&self, node: &mut Node, model: Node) -> Result<(), Error> {
        let Value::Map(sections) = model.value else {
            return Ok(());
        };
        for (key, section) in sections {
            if !matches!(key.name.as_str(), "services" | "secrets") {
                continue;
            }
            let Value::Map(items) = section.value else {
                continue;
            };
            let Value::Map(root) = &mut node.value else {
                return Ok(());
            };
            let target = match root.iter_mut().find(|(k, _)| k.name == key.name) {
                Some((_, target)) => target,
                None => {
                    let empty = Node {
                        value: Value::Map(Vec::new()),
                        span: key.span.clone(),
                        file: section.file,
                    };
                    root.push((key.clone(), empty));
                    let last = root.len() - 1;
                    &mut root[last].1
                }
            };
            if target.is_null() {
                target.value = Value::Map(Vec::new());
            }
            let Value::Map(existing) = &mut target.value else {
                continue;
            };
            for (name, item) in items {
                if existing.iter().any(|(k, _)| k.name == name.name) {
                    let message = format!(
                        "{} `{}` conflicts with imported resource",
                        key.name, name.name
                    );
                    let diagnostic = yaml::key_error(&self.files, item.file, &name, message);
                    return Err(diagnostic.into());
                }
                existing.push((name, item));
            }
        }
        Ok(())
    }

    fn include_entry(&self, item: &Node) -> Result<IncludeEntry, Error> {
        let strings = |node: &Node, what: &str| -> Result<Vec<String>, Error> {
            match &node.value {
                Value::Str(text) => Ok(vec![text.clone()]),
                Value::Seq(items) => items
                    .iter()
                    .map(|i| {
                        i.scalar_text().ok_or_else(|| {
                            let message = format!("`include.{what}` items must be strings");
                            error(&self.files, i, message).into()
                        })
                    })
                    .collect(),
                _ => {
                    let message = format!("`include.{what}` must be a string or a list");
                    Err(error(&self.files, node, message).into())
                }
            }
        };
        match &item.value {
            Value::Str(path) => Ok(IncludeEntry {
                paths: vec![path.clone()],
                ..IncludeEntry::default()
            }),
            Value::Map(_) => Ok(IncludeEntry {
                paths: match item.get("path") {
                    Some(node) => strings(node, "path")?,
                    None => Vec::new(),
                },
                project_directory: item
                    .get("project_directory")
                    .and_then(Node::scalar_text)
                    .filter(|d| !d.is_empty()),
                env_files: match item.get("env_file") {
                    Some(node) => strings(node, "env_file")?,
                    None => Vec::new(),
                },
            }),
            _ => {
                let message = format!(
                    "`include` items must be a path or a mapping, not {}",
                    item.kind()
                );
                Err(error(&self.files, item, message).into())
            }
        }
    }
}

/// One `include` entry in its long form.
#[derive(Debug, Default)]
struct IncludeEntry {
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Vec<String>,
}

/// Removes `key` from a mapping node and returns its value.
pub(super) fn take(node: &mut Node, key: &str) -> Option<Node> {
    let Value::Map(entries) = &mut node.value else {
        return None;
    };
    let index = entries.iter().position(|(k, _)| k.name == key)?;
    Some(entries.remove(index).1)
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
