//! Compose files as bake sees them: YAML read into our own tree, interpolated with the
//! Compose rules, several files merged, and every buildable service turned into a [`Target`]
//! plus a `default` group. Mirrors buildx `bake/compose.go`.
#![allow(dead_code, reason = "wired into bake::load on main")]

mod build;
mod dotenv;
mod extends;
mod interpolate;
mod merge;
mod paths;
mod project;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bake::error::{Diagnostic, Error};
use crate::diag::SourceFile;

use self::build::Composed;
use self::merge::merge_top;
use self::project::Loader;
use self::yaml::{CODE, Node};

/// Whether `text` is a YAML mapping with a top-level `services` key (format sniffing).
pub(crate) fn looks_like_compose(text: &str) -> bool {
    yaml::parse(text, 0).is_ok_and(|node| node.get("services").is_some())
}

/// Parses, interpolates and merges Compose files (in order) into targets and a `default`
/// group. `env` is the interpolation environment; `.env` in `working_dir` adds missing keys,
/// and `include`, `extends.file` and `env_file` paths are read relative to it.
// Compat: buildx bake/compose.go ParseCompose.
pub(crate) fn parse(
    files: &[SourceFile],
    env: &BTreeMap<String, String>,
    working_dir: Option<&Path>,
) -> Result<Composed, Error> {
    let env = load_env(env, working_dir)?;
    let root_dir = working_dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    // Compat: Go's os.UserHomeDir fails on an empty `HOME`, and compose-go then keeps `~`.
    let home = env.get("HOME").filter(|home| !home.is_empty()).cloned();
    let mut loader = Loader::new(files, root_dir, home);
    let mut merged: Option<Node> = None;
    for index in 0..files.len() {
        let node = loader.document(index, &env, "", &[])?;
        match &mut merged {
            Some(base) => merge_top(base, node),
            None => merged = Some(node),
        }
    }
    let Some(mut root) = merged else {
        return Err(Diagnostic::new(CODE, "empty compose file").into());
    };
    paths::resolve(&mut root, "", loader.home.as_deref());
    build::decode(&root, &loader.files, &env, loader.working_dir())
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

#[cfg(test)]
mod tests;
