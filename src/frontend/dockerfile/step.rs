//! Helpers every instruction lowering shares: step names, the build context, working
//! directory paths and shell-form commands.

use crate::frontend::dockerfile::error::Result;
use crate::frontend::dockerfile::instructions::CommandLine;
use crate::frontend::dockerfile::options::NamedContext;
use crate::frontend::dockerfile::parser;
use crate::frontend::dockerfile::stage::{Dispatcher, StageState};
use crate::graph::{State, VertexMeta};
use crate::oci;

/// Returns a vertex meta named after the instruction, with its location.
pub(crate) fn step_meta(
    dispatcher: &Dispatcher<'_, '_>,
    state: &mut StageState,
    node: &parser::Node,
) -> VertexMeta {
    let rest = node
        .original
        .get(node.original_keyword.len()..)
        .unwrap_or_default()
        .trim();
    let mut name = state.next_step();
    name.reserve(node.keyword.len() + rest.len() + 2);
    name.push(' ');
    name.extend(node.keyword.chars().flat_map(char::to_uppercase));
    name.push(' ');
    name.push_str(rest);
    VertexMeta {
        name,
        location: Some(dispatcher.context.location(node)),
        ignore_cache: state.ignore_cache,
    }
}

/// Wraps a shell-form command in the stage's shell.
pub(crate) fn with_shell(image: &oci::Image, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(args) => args.clone(),
        CommandLine::Shell(text) => {
            let mut args = image
                .config
                .shell
                .clone()
                .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()]);
            args.push(text.clone());
            args
        }
    }
}

/// Joins a path onto the working directory (absolute paths win).
pub(crate) fn join_workdir(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{path}", workdir.trim_end_matches('/'))
    };
    clean_path(&joined)
}

/// Cleans `/a/./b/../c` into `/a/c` (always absolute).
pub(crate) fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Returns the build context state (the `context` named context when one is given).
pub(crate) fn build_context(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    node: &parser::Node,
) -> Result<State> {
    let meta = VertexMeta {
        name: "[internal] load build context".to_owned(),
        location: None,
        ignore_cache: false,
    };
    if let Some(named) = dispatcher.context.options.named_contexts.get("context") {
        return Ok(dispatcher
            .named_state(named, &state.platform, meta, node)?
            .0);
    }
    if let Some(local) = &dispatcher.local_context {
        return Ok(local.clone());
    }
    let named = NamedContext::Local {
        name: "context".to_owned(),
    };
    let local = dispatcher
        .named_state(&named, &state.platform, meta, node)?
        .0;
    dispatcher.local_context = Some(local.clone());
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_joins_and_cleans() {
        assert_eq!(join_workdir("/app", "src/../lib"), "/app/lib");
        assert_eq!(join_workdir("/app", "/abs"), "/abs");
        assert_eq!(clean_path("/"), "/");
    }
}
