//! Remote inputs on the command line: `bake <git-or-http-url> [targets]` reads its bake files
//! from the URL, targets default to that URL as their context, and git and HTTP contexts are
//! fetched into the state root before the front end runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bake::{self, Diagnostic, Error};
use crate::cli::args::Args;
use crate::diag::SourceFile;
use crate::engine::fetch::{self, Definition};

/// The URL of a remote definition: the first positional argument, when it is a URL.
pub(crate) fn definition_url(args: &Args) -> Option<&str> {
    args.targets
        .first()
        .map(String::as_str)
        .filter(|word| fetch::is_remote_url(word))
}

/// The targets asked for: every positional argument after the definition URL, if any.
pub(crate) fn targets(args: &Args) -> Vec<String> {
    let skip = usize::from(definition_url(args).is_some());
    args.targets.iter().skip(skip).cloned().collect()
}

/// The state root a build would use, read without showing the config file's warnings (the
/// build shows them).
pub(crate) fn state_root(args: &Args) -> PathBuf {
    let config = match &args.config {
        Some(path) => crate::config::load(path, true).map(|l| l.config),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
            match crate::config::default_path(
                rustix::process::geteuid().is_root(),
                xdg.as_deref(),
                home.as_deref(),
            ) {
                Some(path) => crate::config::load(&path, false).map(|l| l.config),
                None => Ok(crate::config::Config::default()),
            }
        }
    };
    crate::engine::settings::state_root(args.root.as_deref(), &config.unwrap_or_default())
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Reads the bake files of the remote definition at `url`: the `-f` names (or the default
/// names) inside the repository or archive, and `cwd://` names from the working directory.
pub(crate) fn read_files(args: &Args, url: &str, cwd: &Path) -> Result<Vec<SourceFile>, Error> {
    let fetched = fetch::definition(url, &state_root(args), &process_env()).map_err(|error| {
        Error::one(
            Diagnostic::new(
                "bake::remote_definition",
                format!(
                    "failed to read the bake definition from `{url}`: {}",
                    chain(&error)
                ),
            )
            .help("check the URL, its ref, and that the server is reachable"),
        )
    })?;
    let read = |path: &Path, name: &str| {
        std::fs::read_to_string(path)
            .map(|text| SourceFile::new(name, text))
            .map_err(|error| {
                Error::one(Diagnostic::new(
                    "bake::read",
                    format!("failed to read `{name}` from `{url}`: {error}"),
                ))
            })
    };
    let dir = match fetched {
        Definition::File(text) => return Ok(vec![SourceFile::new(url, text)]),
        Definition::Tree(dir) => dir,
    };
    if args.files.is_empty() {
        let files: Vec<SourceFile> = bake::files::DEFAULT_NAMES
            .iter()
            .filter(|name| dir.join(name).is_file())
            .map(|name| read(&dir.join(name), name))
            .collect::<Result<_, _>>()?;
        if files.is_empty() {
            return Err(Error::one(
                Diagnostic::new(
                    "bake::no_files",
                    format!("couldn't find a bake definition in `{url}`"),
                )
                .help(format!(
                    "add one of {} to the repository, or name one with `-f`",
                    bake::files::DEFAULT_NAMES.join(", ")
                )),
            ));
        }
        return Ok(files);
    }
    args.files
        .iter()
        .map(|name| match name.strip_prefix("cwd://") {
            Some(local) => read(&cwd.join(local), name),
            None => read(&dir.join(name), name),
        })
        .collect()
}

/// Points the targets of a remote definition at the URL: a context left at `.` (or unset)
/// becomes the URL, as buildx prints and builds it.
// Compat: buildx updateContext (bake/bake.go).
pub(crate) fn default_contexts(resolved: &mut bake::Resolved, url: &str) {
    for target in resolved.targets.values_mut() {
        if target.context.as_deref().is_none_or(|c| c == ".") {
            target.context = Some(url.to_owned());
        }
        for value in target.contexts.values_mut().flatten() {
            if value == "." {
                *value = url.to_owned();
            }
        }
    }
}

/// For a build: a relative context of a target from a git definition names a directory of
/// the repository (`cwd://` ones stay local).
pub(crate) fn subdir_contexts(resolved: &mut bake::Resolved, url: &str) {
    if fetch::git_subdir(url, ".").is_none() {
        return;
    }
    let local = |value: &str| {
        !value.starts_with("cwd://")
            && !value.starts_with('/')
            && !value.starts_with("target:")
            && !value.contains("://")
            && !fetch::is_remote_url(value)
    };
    for target in resolved.targets.values_mut() {
        if let Some(context) = target.context.as_mut()
            && local(context)
        {
            *context = fetch::git_subdir(url, context).unwrap_or_else(|| context.clone());
        }
        for value in target.contexts.values_mut().flatten() {
            if local(value) {
                *value = fetch::git_subdir(url, value).unwrap_or_else(|| value.clone());
            }
        }
    }
}

/// Fetches the plan's git and HTTP inputs into the state root, when it has any.
pub(crate) fn fetch_inputs(
    args: &Args,
    plan: crate::plan::Plan,
) -> miette::Result<crate::plan::Plan> {
    if !fetch::has_remote(&plan) {
        return Ok(plan);
    }
    let from_stdin: Vec<&str> = plan
        .requests
        .iter()
        .filter(|r| matches!(&r.context, crate::plan::Context::Remote(c) if c == fetch::STDIN))
        .map(|r| r.target.as_str())
        .collect();
    if !from_stdin.is_empty() && args.files.iter().any(|f| f == "-") {
        return Err(crate::bake::Error::one(crate::bake::Diagnostic::new(
            "bake::stdin",
            format!(
                "target `{}` reads its context from stdin (`-`), which already holds the bake file (`-f -`)",
                from_stdin[0]
            ),
        ))
        .into());
    }
    Ok(fetch::fetch(&plan, &state_root(args), &process_env())?)
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}
