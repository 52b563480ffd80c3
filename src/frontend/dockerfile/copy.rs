//! `COPY` and `ADD`: sources from the build context, another stage, an image, a named
//! context, a URL, a git repository or a heredoc; `--link` as a merge.
//!
//! Compat: buildkit dockerfile2llb/convert.go dispatchCopy.

use std::collections::BTreeMap;

use crate::frontend::dockerfile::check;
use crate::frontend::dockerfile::error::Result;
use crate::frontend::dockerfile::instructions::CopySpec;
use crate::frontend::dockerfile::stage::{Dispatcher, StageState};
use crate::frontend::dockerfile::step::{build_context, join_workdir, step_meta};
use crate::frontend::dockerfile::{go_format, parser, reference, shell};
use crate::graph::{
    CopyAction, FileAction, FileOp, FileOwner, Inputs, Op, SourceOp, State, VertexMeta,
};

/// Returns the state a `--from=` value (or `RUN --mount from=`) refers to: a stage by name
/// or index, a named context, or an image.
pub(crate) fn from_state(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    raw: &str,
    node: &parser::Node,
) -> Result<State> {
    let context = dispatcher.context;
    let from = shell::expand_text(raw, &context.global_args, context.escape)
        .map_err(|e| context.error(e.message, node))?
        .result;
    if let Ok(index) = from.parse::<usize>() {
        if index >= context.parsed.stages.len() {
            return Err(context.error(
                format!(
                    "invalid stage index `{index}`: the Dockerfile has {} stages",
                    context.parsed.stages.len()
                ),
                node,
            ));
        }
        return Ok(dispatcher.ensure(index, node)?.state.clone());
    }
    if let Some(index) = context.stage_index(&from) {
        return Ok(dispatcher.ensure(index, node)?.state.clone());
    }
    let meta = VertexMeta {
        name: format!("[internal] load {from}"),
        location: Some(context.location(node)),
        ignore_cache: false,
    };
    if let Some(named) = context.options.named_contexts.get(&from) {
        return Ok(dispatcher
            .named_state(named, &state.platform, meta, node)?
            .0);
    }
    let Some(normalized) = reference::normalize(&from) else {
        return Err(context.error(
            format!(
                "invalid `--from` value `{from}`: not a stage, named context or image reference"
            ),
            node,
        ));
    };
    Ok(State::image(&normalized, &state.platform, meta))
}

fn parse_owner(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    spec: &CopySpec,
    node: &parser::Node,
) -> Result<(FileOwner, Option<String>)> {
    let mut owner = FileOwner::default();
    if let Some(chown) = &spec.chown {
        let chown = dispatcher.expand(state, chown, node)?.result;
        let (user, group) = match chown.split_once(':') {
            Some((user, group)) => (user.to_owned(), Some(group.to_owned())),
            None => (chown.clone(), None),
        };
        owner.user = Some(user);
        owner.group = group;
    }
    let mut mode_str = None;
    if let Some(chmod) = &spec.chmod {
        let chmod = dispatcher.expand(state, chmod, node)?.result;
        match u32::from_str_radix(&chmod, 8) {
            Ok(mode) if mode <= 0o7777 => owner.mode = Some(mode),
            Ok(_) => {
                return Err(dispatcher
                    .context
                    .error(format!("invalid `--chmod` value `{chmod}`"), node));
            }
            Err(_) if is_symbolic_mode(&chmod) => mode_str = Some(chmod),
            Err(_) => return Err(dispatcher.context.error(
                format!(
                    "invalid `--chmod` value `{chmod}`: expected octal (`755`) or symbolic (`u+x`)"
                ),
                node,
            )),
        }
    }
    Ok((owner, mode_str))
}

fn is_symbolic_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.split(',').all(|clause| {
            let who_end = clause.find(['+', '-', '=']).unwrap_or(clause.len());
            clause[..who_end].chars().all(|c| "ugoa".contains(c))
                && who_end < clause.len()
                && clause[who_end + 1..].chars().all(|c| "rwxXst".contains(c))
        })
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

fn is_git(source: &str) -> bool {
    crate::graph::git::is_git_url(source)
}

/// Lowers `COPY`/`ADD`.
pub(crate) fn convert_copy(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    spec: &CopySpec,
    node: &parser::Node,
) -> Result<String> {
    let is_add = node.keyword == "add";
    let (owner, mode_str) = parse_owner(dispatcher, state, spec, node)?;
    let dest_raw = dispatcher.expand(state, &spec.dest, node)?.result;
    let workdir = state
        .image
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".to_owned());
    let mut dest = join_workdir(&workdir, &dest_raw);
    if (dest_raw.ends_with('/') || dest_raw == "." || dest_raw.is_empty()) && !dest.ends_with('/') {
        dest.push('/');
    }
    let excludes = spec
        .excludes
        .iter()
        .map(|e| dispatcher.expand(state, e, node).map(|x| x.result))
        .collect::<Result<Vec<_>>>()?;
    let from = match &spec.from {
        Some(from) => Some(from_state(dispatcher, state, from, node)?),
        None => None,
    };
    let mut inputs = Inputs::default();
    let link = spec.link;
    let base = if link { None } else { inputs.add(&state.state) };
    let mut actions = Vec::new();
    let mut message = node.keyword.to_uppercase();
    // Compat: buildkit dispatchCopy writes `--parents` first, then `--chown`, `--chmod`.
    if spec.parents {
        message.push_str(" --parents");
    }
    for (flag, value) in [("chown", &spec.chown), ("chmod", &spec.chmod)] {
        if let Some(value) = value {
            message.push_str(&format!(" --{flag}={value}"));
        }
    }
    let meta = step_meta(dispatcher, state, node);
    for raw in &spec.sources {
        let place = Place {
            from: from.as_ref(),
            is_add,
            step: &meta.name,
        };
        let resolved = copy_source(dispatcher, state, spec, raw, &place, node)?;
        message.push(' ');
        message.push_str(&resolved.written);
        let source = inputs.add(&resolved.state);
        let (src, unpack) = (resolved.path, resolved.unpack);
        actions.push(FileAction::Copy(CopyAction {
            source,
            src,
            dest: dest.clone(),
            owner: owner.clone(),
            mode_str: mode_str.clone(),
            follow_symlinks: true,
            dir_copy_contents: true,
            create_dest_path: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            attempt_unpack: unpack,
            parents: spec.parents,
            exclude_patterns: excludes.clone(),
        }));
    }
    message.push_str(&format!(" {dest_raw} # buildkit"));
    let op = Op::File(FileOp { base, actions });
    let layer = State::with_op(op, inputs, Some(state.platform.clone()), meta.clone());
    state.state = if link {
        State::merge(&[state.state.clone(), layer], meta)
    } else {
        layer
    };
    Ok(message)
}

/// One resolved copy source.
struct Source {
    /// The state copied from.
    state: State,
    /// The path inside it.
    path: String,
    /// Unpack archives (`ADD` of a local tar, or `--unpack`).
    unpack: bool,
    /// The source as the history entry shows it.
    written: String,
}

/// Where a copy source is read: the `--from` state, whether the step is `ADD`, and the
/// step's name.
struct Place<'a> {
    from: Option<&'a State>,
    is_add: bool,
    step: &'a str,
}

/// Resolves one source word of `COPY`/`ADD`.
fn copy_source(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    spec: &CopySpec,
    raw: &str,
    place: &Place<'_>,
    node: &parser::Node,
) -> Result<Source> {
    let (from, is_add) = (place.from, place.is_add);
    let heredoc = raw.strip_prefix("<<").and_then(|name| {
        let name = name.trim_start_matches('-').trim_matches(['"', '\'']);
        spec.heredocs.iter().find(|h| h.name == name)
    });
    if let Some(heredoc) = heredoc {
        let (state, path) = heredoc_source(dispatcher, state, heredoc, node)?;
        return Ok(Source {
            state,
            path,
            unpack: false,
            written: raw.to_owned(),
        });
    }
    let source = dispatcher.expand(state, raw, node)?.result;
    if let Some(from) = from {
        return Ok(Source {
            state: from.clone(),
            path: source.clone(),
            unpack: false,
            written: source,
        });
    }
    // Compat: BuildKit names a git or HTTP source after the ADD that reads it.
    let meta = VertexMeta {
        name: place.step.to_owned(),
        location: Some(dispatcher.context.location(node)),
        ignore_cache: false,
    };
    if is_add && (is_git(&source) || is_url(&source)) {
        return remote_source(spec, source, meta)
            .map_err(|message| dispatcher.context.error(message, node));
    }
    check_ignored_source(dispatcher, &source, is_add, node);
    // Compat: buildkit dispatchCopy rejects --checksum for local sources.
    if spec.checksum.is_some() {
        let message = format!("checksum can't be specified for local source `{source}`");
        return Err(dispatcher.context.error(message, node));
    }
    let context = build_context(dispatcher, state, node)?;
    let unpack = is_add && spec.unpack.unwrap_or(true);
    Ok(Source {
        state: context,
        path: source.clone(),
        unpack,
        written: source,
    })
}

/// Reports a build-context source that `.dockerignore` excludes (it would not be there).
// Compat: buildkit dockerfile2llb validateCopySourcePath: skipped when the ignore file has
// `!` re-includes; the source is cleaned first and named that way in the message.
fn check_ignored_source(
    dispatcher: &mut Dispatcher<'_, '_>,
    source: &str,
    is_add: bool,
    node: &parser::Node,
) {
    let Some(ignore) = &dispatcher.context.options.dockerignore else {
        return;
    };
    if ignore.has_exclusions() {
        return;
    }
    let cleaned = crate::path::clean(source);
    if !(ignore.excludes)(&cleaned) {
        return;
    }
    let command = if is_add { "Add" } else { "Copy" };
    dispatcher.linter.run(
        &check::COPY_IGNORED_FILE,
        (node.start_line, node.end_line),
        format!(
            "Attempting to {command} file {} that is excluded by .dockerignore",
            go_format::quote(&cleaned)
        ),
    );
}

/// A heredoc becomes a file in a scratch filesystem (expanded unless its delimiter was quoted).
fn heredoc_source(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    heredoc: &parser::Heredoc,
    node: &parser::Node,
) -> Result<(State, String)> {
    let mut content = heredoc.content.clone();
    if heredoc.chomp {
        content = content
            .lines()
            .map(|l| format!("{}\n", l.trim_start_matches('\t')))
            .collect();
    }
    if heredoc.expand {
        content = dispatcher.expand(state, &content, node)?.result;
    }
    let path = format!("/{}", heredoc.name);
    let owner = FileOwner {
        mode: Some(0o644),
        ..FileOwner::default()
    };
    let op = Op::File(FileOp {
        base: None,
        actions: vec![FileAction::Mkfile {
            path: path.clone(),
            owner,
            data: content,
        }],
    });
    let meta = VertexMeta {
        name: format!("[internal] preparing inline document {}", heredoc.name),
        location: Some(dispatcher.context.location(node)),
        ignore_cache: false,
    };
    Ok((State::with_op(op, Inputs::default(), None, meta), path))
}

/// `ADD <git url>` (a git source, copied whole) or `ADD <http url>` (one downloaded file).
// Compat: BuildKit llb.Git: the identifier is `git://host/path#ref:subdir` for every
// protocol, and `git.fullurl` keeps how to reach the host.
fn remote_source(
    spec: &CopySpec,
    source: String,
    meta: VertexMeta,
) -> std::result::Result<Source, String> {
    let mut attrs = BTreeMap::new();
    if is_git(&source) {
        let url = crate::graph::git::GitUrl::parse(&source).map_err(|e| e.to_string())?;
        attrs.insert(crate::graph::git::FULL_URL.to_owned(), url.remote.clone());
        if spec.keep_git_dir {
            attrs.insert(
                crate::graph::git::KEEP_GIT_DIR.to_owned(),
                "true".to_owned(),
            );
        }
        if let Some(checksum) = spec.checksum.as_ref().or(url.checksum.as_ref()) {
            attrs.insert(crate::graph::git::CHECKSUM.to_owned(), checksum.clone());
        }
        let op = SourceOp {
            identifier: format!("git://{}", url.identifier()),
            attrs,
        };
        return Ok(Source {
            state: State::source(op, None, meta),
            path: "/".to_owned(),
            unpack: false,
            written: source,
        });
    }
    if let Some(checksum) = &spec.checksum {
        attrs.insert("http.checksum".to_owned(), checksum.clone());
    }
    // Without a name in the URL the download keeps the one `Content-Disposition` gives it,
    // and the copy takes the source's only file.
    let filename = source
        .split(['?', '#'])
        .next()
        .and_then(|s| s.split_once("://"))
        .and_then(|(_, rest)| rest.split_once('/'))
        .and_then(|(_, path)| path.rsplit('/').next())
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(str::to_owned);
    let path = match &filename {
        Some(name) => {
            attrs.insert("http.filename".to_owned(), name.clone());
            format!("/{name}")
        }
        None => "/".to_owned(),
    };
    let op = SourceOp {
        identifier: source.clone(),
        attrs,
    };
    Ok(Source {
        state: State::source(op, None, meta),
        path,
        unpack: spec.unpack.unwrap_or(false),
        written: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_modes_are_recognised() {
        assert!(is_symbolic_mode("u+x"));
        assert!(is_symbolic_mode("u=rwX,go=rX"));
        assert!(!is_symbolic_mode("abc"));
    }

    #[test]
    fn git_and_http_sources_are_told_apart() {
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
        assert!(is_url("https://example.com/file.tar.gz"));
    }
}
