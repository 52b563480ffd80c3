//! A service's environment as compose-go resolves it: its `env_file`s read in order (later
//! files win), then its `environment` on top. bake uses it for build args given without a
//! value.

use super::{Cx, Result};
use crate::bake::compose::dotenv;
use crate::bake::compose::yaml::{Node, Value};

/// One `env_file` entry: a path, and whether a missing file is an error.
struct EnvFile<'a> {
    path: String,
    required: bool,
    node: &'a Node,
}

impl Cx<'_> {
    /// The service environment: `env_file` values overridden by `environment` entries (an
    /// entry without a value takes the project environment's, or stays unset).
    // Compat: compose-go types.Project.WithServicesEnvironmentResolved.
    pub(super) fn environment(&self, service: &Node) -> Result<Vec<(String, Option<String>)>> {
        let declared: Vec<(String, Option<String>)> = match service.get("environment") {
            Some(node) => self
                .keyed(node, "environment", &['='])?
                .into_iter()
                .map(|(key, value)| {
                    let value = value.or_else(|| self.env.get(&key).cloned());
                    (key, value)
                })
                .collect(),
            None => Vec::new(),
        };
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for file in self.env_files(service)? {
            let full = self.working_dir.join(&file.path);
            if !full.is_file() {
                if file.required {
                    let message = format!("env file `{}` not found", file.path);
                    return Err(self.err(file.node, message));
                }
                continue;
            }
            let text = std::fs::read_to_string(&full).map_err(|err| {
                self.err(file.node, format!("cannot read `{}`: {err}", file.path))
            })?;
            let lookup = |key: &str| {
                out.iter()
                    .find(|(k, v)| k == key && v.is_some())
                    .and_then(|(_, v)| v.clone())
                    .or_else(|| self.env.get(key).cloned())
            };
            let pairs = dotenv::parse(&text, &lookup)
                .map_err(|message| self.err(file.node, format!("`{}`: {message}", file.path)))?;
            for (key, value) in pairs {
                set(&mut out, key, Some(value));
            }
        }
        for (key, value) in declared {
            set(&mut out, key, value);
        }
        Ok(out)
    }

    /// Checks the `env_file`s of a service bake does not build: compose-go reads them all.
    pub(super) fn check_env_files(&self, service: &Node) -> Result<()> {
        for file in self.env_files(service)? {
            if file.required && !self.working_dir.join(&file.path).is_file() {
                let message = format!("env file `{}` not found", file.path);
                return Err(self.err(file.node, message));
            }
        }
        Ok(())
    }

    /// `env_file` as a path, a list of paths, or a list of `{path, required}`.
    fn env_files<'n>(&self, service: &'n Node) -> Result<Vec<EnvFile<'n>>> {
        let Some(node) = service.get("env_file") else {
            return Ok(Vec::new());
        };
        let items = match &node.value {
            Value::Null => return Ok(Vec::new()),
            Value::Seq(items) => items.iter().collect(),
            _ => vec![node],
        };
        let mut out = Vec::new();
        for item in items {
            let (path, required) = match item.get("path") {
                Some(path) => {
                    let required = match item.get("required") {
                        Some(required) => self.boolean(required, "required")?.unwrap_or(true),
                        None => true,
                    };
                    (path, required)
                }
                None => (item, true),
            };
            let Some(path) = self.string(path, "env_file")? else {
                continue;
            };
            out.push(EnvFile {
                path,
                required,
                node: item,
            });
        }
        Ok(out)
    }
}

/// Sets `key`, keeping the place of an earlier entry.
fn set(list: &mut Vec<(String, Option<String>)>, key: String, value: Option<String>) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some((_, old)) => *old = value,
        None => list.push((key, value)),
    }
}
