//! The state shared by the stage walk and the instruction lowerings: the conversion
//! [`Context`], each stage's resolved `FROM` and evolving [`StageState`], and the
//! [`Dispatcher`] that lowers stages on demand (its methods live in `dispatch`).

use std::collections::BTreeSet;

use crate::diag::{self, SourceFile};
use crate::frontend::dockerfile::check::Linter;
use crate::frontend::dockerfile::error::Error;
use crate::frontend::dockerfile::instructions::{Parsed, Stage};
use crate::frontend::dockerfile::options::{ConvertOptions, NamedContext};
use crate::frontend::dockerfile::{parser, shell};
use crate::graph::{SourceLocation, State};
use crate::oci;
use crate::platform::Platform;

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    Scratch,
    Image(String),
    Stage(usize),
    Named(NamedContext),
    /// The stage's own name is a named context: the stage is replaced, its instructions skipped.
    Replaced(NamedContext),
}

/// Everything the per-stage walk needs to know.
pub(crate) struct Context<'a> {
    pub(crate) file: &'a SourceFile,
    pub(crate) escape: char,
    pub(crate) options: &'a ConvertOptions,
    pub(crate) parsed: &'a Parsed,
    pub(crate) global_args: Vec<(String, String)>,
    pub(crate) target_platform: Platform,
    pub(crate) stage_names: Vec<Option<String>>,
}

impl Context<'_> {
    pub(crate) fn location(&self, node: &parser::Node) -> SourceLocation {
        SourceLocation {
            file: self.file.name.clone(),
            start_line: node.start_line,
            end_line: node.end_line,
            span: [node.span.start, node.span.end],
        }
    }

    pub(crate) fn error(&self, message: String, node: &parser::Node) -> Error {
        Error::Convert {
            message,
            help: None,
            src: self.file.named(),
            span: Some(diag::span(node.span.clone())),
        }
    }

    /// Returns the index of the stage called `name` (case-insensitive).
    /// Whether the steps of stage `index` ignore the cache (`no-cache-filter`).
    // Compat: dockerfile2llb matches the filter against stage names (and stage indexes).
    pub(crate) fn ignores_cache(&self, index: usize) -> bool {
        self.options.no_cache_filter.iter().any(|entry| {
            let entry = entry.to_lowercase();
            entry == index.to_string()
                || self
                    .stage_names
                    .get(index)
                    .is_some_and(|n| n.as_deref() == Some(entry.as_str()))
        })
    }

    pub(crate) fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_lowercase();
        self.stage_names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
    }
}

/// A stage's `FROM`, evaluated.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedStage {
    pub(crate) base: Base,
    /// The base as the `FROM` line names it, with its variables expanded (for progress names).
    pub(crate) base_name: String,
    pub(crate) platform: Option<Platform>,
    pub(crate) display_name: String,
}

/// The evolving state of one stage while its instructions are lowered.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub(crate) state: State,
    pub(crate) image: oci::Image,
    pub(crate) platform: Platform,
    /// Declared ARGs with a value, in declaration order.
    pub(crate) args: Vec<(String, String)>,
    /// Every declared ARG name, with or without a value.
    pub(crate) declared: BTreeSet<String>,
    pub(crate) workdir_set: bool,
    pub(crate) cmd_set: bool,
    pub(crate) seen_cmd: Option<(usize, usize)>,
    pub(crate) seen_entrypoint: Option<(usize, usize)>,
    pub(crate) seen_healthcheck: Option<(usize, usize)>,
    pub(crate) display_name: String,
    pub(crate) step: usize,
    pub(crate) total: usize,
    /// The stage is in `no-cache-filter`: its steps run again.
    pub(crate) ignore_cache: bool,
}

impl StageState {
    /// Variables for expansion: ARG values, overridden by ENV (borrowed, never copied).
    pub(crate) fn vars(&self) -> StageVars<'_> {
        StageVars {
            env: &self.image.config.env,
            args: &self.args,
        }
    }

    /// Returns the next progress name prefix, e.g. `[build 2/4]`.
    pub(crate) fn next_step(&mut self) -> String {
        self.step += 1;
        let total = self.total.max(self.step);
        match self.display_name.as_str() {
            "" => format!("[{}/{total}]", self.step),
            name => format!("[{name} {}/{total}]", self.step),
        }
    }
}

/// The variables visible to one instruction: the image's `ENV` entries win over ARGs.
pub(crate) struct StageVars<'a> {
    env: &'a [String],
    args: &'a [(String, String)],
}

impl StageVars<'_> {
    /// Returns every variable name (for "did you mean" suggestions).
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        let env = self
            .env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k));
        env.chain(self.args.iter().map(|(k, _)| k.as_str()))
    }
}

impl shell::Vars for StageVars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        // An entry is `KEY=value` (split at the first `=`) or a bare `KEY`; compare bytes
        // rather than splitting every entry, as this runs for every variable reference.
        let from_env = if name.contains('=') {
            None
        } else {
            self.env.iter().rev().find_map(|entry| {
                let rest = entry.strip_prefix(name)?;
                match rest.as_bytes().first() {
                    Some(b'=') => Some(&rest[1..]),
                    None => Some(""),
                    Some(_) => None,
                }
            })
        };
        from_env.or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        })
    }
}

/// How far one stage's lowering has got.
pub(crate) enum Slot {
    Pending,
    InProgress,
    Done(Box<StageState>),
}

/// Lowers stages on demand.
pub(crate) struct Dispatcher<'c, 'a> {
    pub(crate) context: &'c Context<'a>,
    pub(crate) resolved: Vec<ResolvedStage>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) linter: &'c mut Linter,
    /// The main build context source, created once and shared by every `COPY`.
    pub(crate) local_context: Option<State>,
}

/// Returns the stage's display name: its name, or `stage-N`.
pub(crate) fn stage_display_name(stage: &Stage, index: usize) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{index}"))
}
