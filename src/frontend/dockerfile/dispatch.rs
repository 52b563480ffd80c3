//! The stage walk: expands each stage's `FROM`, then lowers stages on demand (a stage is
//! lowered when the target or another lowered stage needs it), detecting cycles, and hands
//! each instruction to its `convert_<instruction>` function.
//!
//! Compat: buildkit dockerfile2llb/convert.go buildDispatchStates, resolveStages,
//! dispatchStages (dependencies are resolved lazily here instead of as lazy LLB states).

use std::collections::BTreeSet;

use crate::frontend::dockerfile::check::{self, Linter};
use crate::frontend::dockerfile::error::{Error, Result, suggest};
use crate::frontend::dockerfile::instructions::{Command, Instruction, parse_instruction};
use crate::frontend::dockerfile::options::{Converted, NamedContext, PROXY_ARGS};
use crate::frontend::dockerfile::stage::{
    Base, Context, Dispatcher, ResolvedStage, Slot, StageState, stage_display_name,
};
use crate::frontend::dockerfile::{commands, parser, reference, shell};
use crate::graph::{Definition, SourceOp, State, VertexMeta};
use crate::oci;
use crate::platform::Platform;

/// Expands every stage's base name and `--platform` (reporting the FROM lint rules), then
/// resolves each base.
// Compat: buildkit buildDispatchStates checks every `FROM` line (its lint rules, blank names,
// platforms) before resolveStages parses any base name, so an invalid name (say from a global
// ARG default) fails only after all `FROM` findings, and before any instruction is lowered.
pub(crate) fn resolve_stages(
    context: &mut Context<'_>,
    linter: &mut Linter,
) -> Result<Vec<ResolvedStage>> {
    let mut expanded = Vec::new();
    for stage in &context.parsed.stages {
        let lines = (stage.node.start_line, stage.node.end_line);
        let globals = &context.global_args;
        let expansion = shell::expand(&stage.base, globals, context.escape)
            .map_err(|e| context.error(e.message, &stage.node))?;
        report_undeclared_from_args(context, &expansion, lines, linter);
        if expansion.result.is_empty() {
            return Err(context.error(
                format!("base name (`{}`) should not be blank", stage.base),
                &stage.node,
            ));
        }
        let platform = match &stage.platform {
            Some(raw) => Some(resolve_platform(context, stage, raw, lines, linter)?),
            None => None,
        };
        expanded.push((expansion.result, platform));
    }
    let mut resolved = Vec::new();
    for (index, (stage, (base, platform))) in context.parsed.stages.iter().zip(expanded).enumerate()
    {
        let base_name = base;
        let base = base_of(context, index, &base_name, stage.name.as_deref()).ok_or_else(|| {
            context.error(
                format!("invalid base image reference `{base_name}`"),
                &stage.node,
            )
        })?;
        // Compat: buildkit drops the stage name from progress names when there is one stage.
        let display_name = if context.parsed.stages.len() == 1 {
            String::new()
        } else {
            stage_display_name(stage, index)
        };
        resolved.push(ResolvedStage {
            base,
            base_name,
            platform,
            display_name,
        });
    }
    Ok(resolved)
}

fn report_undeclared_from_args(
    context: &Context<'_>,
    expansion: &shell::Expansion,
    lines: (usize, usize),
    linter: &mut Linter,
) {
    let declared: Vec<&str> = context
        .global_args
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    let declared_meta: BTreeSet<&str> = context
        .parsed
        .meta_args
        .iter()
        .filter_map(|c| match &c.instruction {
            Instruction::Arg(declarations) => Some(declarations.iter().map(|d| d.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    for name in &expansion.unmatched {
        if declared_meta.contains(name.as_str()) {
            continue;
        }
        let detail = match suggest(name, declared.iter().copied(), true) {
            Some(close) => {
                format!("FROM argument '{name}' is not declared (did you mean {close}?)")
            }
            None => format!("FROM argument '{name}' is not declared"),
        };
        linter.run(&check::UNDEFINED_ARG_IN_FROM, lines, detail);
    }
}

fn resolve_platform(
    context: &Context<'_>,
    stage: &crate::frontend::dockerfile::instructions::Stage,
    raw: &str,
    lines: (usize, usize),
    linter: &mut Linter,
) -> Result<Platform> {
    let expansion = shell::expand(raw, &context.global_args, context.escape)
        .map_err(|e| context.error(e.message, &stage.node))?;
    report_undeclared_from_args(context, &expansion, lines, linter);
    if (raw == "$TARGETPLATFORM" || raw == "${TARGETPLATFORM}")
        && expansion.result == context.target_platform.to_string()
    {
        linter.run(&check::REDUNDANT_TARGET_PLATFORM, lines, format!("Setting platform to predefined {raw} in FROM is redundant as this is the default behavior"));
    }
    let name = stage.name.clone().unwrap_or_default();
    if expansion.matched.is_empty()
        && expansion.unmatched.is_empty()
        && let Ok(platform) = expansion.result.parse::<Platform>()
        && !name.contains(&platform.os)
        && !name.contains(&platform.architecture)
    {
        linter.run(
            &check::FROM_PLATFORM_FLAG_CONST_DISALLOWED,
            lines,
            format!(
                "FROM --platform flag should not use constant value \"{}\"",
                expansion.result
            ),
        );
    }
    if expansion.result.is_empty() {
        return Err(context.error(
            format!("empty platform value from expression `{raw}`"),
            &stage.node,
        ));
    }
    expansion
        .result
        .parse()
        .map_err(|e: crate::platform::ParsePlatformError| {
            context.error(
                format!("failed to parse platform `{raw}`: {e}"),
                &stage.node,
            )
        })
}

fn base_of(context: &Context<'_>, index: usize, base: &str, name: Option<&str>) -> Option<Base> {
    if let Some(named) = name.and_then(|n| context.options.named_contexts.get(n)) {
        return Some(Base::Replaced(named.clone()));
    }
    let lower = base.to_lowercase();
    if let Some(stage) = context.stage_names[..index]
        .iter()
        .rposition(|n| n.as_deref() == Some(lower.as_str()))
    {
        return Some(Base::Stage(stage));
    }
    if let Some(named) = context.options.named_contexts.get(base) {
        return Some(Base::Named(named.clone()));
    }
    if lower == "scratch" {
        return Some(Base::Scratch);
    }
    reference::normalize(base).map(Base::Image)
}

/// Lowers the target (or every stage) and returns the target's graph and image.
pub(crate) fn run_stages(
    context: &Context<'_>,
    resolved: Vec<ResolvedStage>,
    target: usize,
    linter: &mut Linter,
) -> Result<Converted> {
    let count = resolved.len();
    let mut dispatcher = Dispatcher {
        context,
        resolved,
        slots: (0..count).map(|_| Slot::Pending).collect(),
        linter,
        local_context: None,
    };
    if context.options.all_stages {
        for index in 0..count {
            dispatcher.ensure(index, &context.parsed.stages[index].node)?;
        }
    }
    let node = &context.parsed.stages[target].node;
    dispatcher.ensure(target, node)?;
    let Some(Slot::Done(stage)) = dispatcher.slots.get(target) else {
        return Err(context.error("target stage was not lowered".to_owned(), node));
    };
    let mut image = stage.image.clone();
    for (key, value) in &context.options.labels {
        image.config.labels.insert(key.clone(), value.clone());
    }
    Ok(Converted {
        definition: Definition::from_state(&stage.state),
        image,
        target: stage_display_name(&context.parsed.stages[target], target),
        platform: stage.platform.clone(),
    })
}

impl Dispatcher<'_, '_> {
    /// Returns the lowered stage `index`, lowering it first if needed.
    pub(crate) fn ensure(&mut self, index: usize, by: &parser::Node) -> Result<&StageState> {
        match self.slots.get(index) {
            Some(Slot::Done(_)) => {}
            Some(Slot::InProgress) => {
                return Err(Error::Cycle {
                    stage: self.resolved[index].display_name.clone(),
                    src: self.context.file.named(),
                    span: crate::diag::span(by.span.clone()),
                });
            }
            Some(Slot::Pending) => {
                self.slots[index] = Slot::InProgress;
                let state = self.dispatch_stage(index)?;
                self.slots[index] = Slot::Done(Box::new(state));
            }
            None => {
                return Err(self
                    .context
                    .error(format!("stage index {index} out of bounds"), by));
            }
        }
        match self.slots.get(index) {
            Some(Slot::Done(state)) => Ok(state),
            _ => Err(self
                .context
                .error(format!("stage index {index} out of bounds"), by)),
        }
    }

    fn dispatch_stage(&mut self, index: usize) -> Result<StageState> {
        let context = self.context;
        let stage = &context.parsed.stages[index];
        let resolved = self.resolved[index].clone();
        let platform = resolved
            .platform
            .clone()
            .unwrap_or_else(|| context.target_platform.clone());
        let mut resolved = resolved;
        if context.options.multi_platform {
            // Compat: buildkit prefixCommand: the stage's platform leads every step name when
            // a build has several platforms.
            let prefixed = match resolved.display_name.as_str() {
                "" => platform.to_string(),
                name => format!("{platform} {name}"),
            };
            resolved.display_name = prefixed;
        }
        let mut state = self.initial_state(index, &resolved, platform)?;
        state.display_name = resolved.display_name.clone();
        state.step = 0;
        // Compat: BuildKit counts the FROM of an image or named-context base in the stage's
        // total, and an image's FROM is step 1; a named context has no FROM step of its own,
        // so its first instruction is `[1/N]` (`FROM base AS build` + COPY + RUN gives
        // `[build 1/3] COPY`, `[build 2/3] RUN` in research/samples/plain-cold.txt).
        state.total = count_steps(&stage.commands)
            + usize::from(matches!(
                resolved.base,
                Base::Image(_) | Base::Named(_) | Base::Replaced(_)
            ));
        if matches!(resolved.base, Base::Image(_)) {
            state.step = 1;
        }
        if state.image.config.env_value("PATH").is_none() && state.platform.os != "windows" {
            state
                .image
                .config
                .env
                .push(format!("PATH={}", oci::DEFAULT_PATH_ENV));
        }
        if matches!(resolved.base, Base::Replaced(_)) {
            return Ok(state);
        }
        let triggers = state.image.config.on_build.take().unwrap_or_default();
        for trigger in triggers {
            self.dispatch_trigger(&mut state, &trigger, &stage.node)?;
        }
        for command in &stage.commands {
            self.dispatch(&mut state, command)?;
        }
        Ok(state)
    }

    fn initial_state(
        &mut self,
        index: usize,
        resolved: &ResolvedStage,
        platform: Platform,
    ) -> Result<StageState> {
        let context = self.context;
        let node = &context.parsed.stages[index].node;
        let meta = VertexMeta {
            name: String::new(),
            location: Some(context.location(node)),
            ignore_cache: false,
        };
        let (state, image, platform) = match &resolved.base {
            Base::Scratch => (State::scratch(), oci::Image::empty(&platform), platform),
            Base::Stage(parent) => {
                let parent = self.ensure(*parent, node)?.clone();
                let platform = resolved.platform.clone().unwrap_or(parent.platform.clone());
                return Ok(StageState {
                    platform,
                    workdir_set: false,
                    cmd_set: false,
                    seen_cmd: None,
                    seen_entrypoint: None,
                    seen_healthcheck: None,
                    ignore_cache: context.ignores_cache(index),
                    ..parent
                });
            }
            Base::Image(reference) => {
                let (image, pinned) = self.resolve_image(reference, &platform, node)?;
                self.check_base_platform(index, reference, &platform, &image);
                let total = count_steps(&context.parsed.stages[index].commands) + 1;
                let meta = VertexMeta {
                    name: match resolved.display_name.as_str() {
                        "" => format!("[1/{total}] FROM {reference}"),
                        name => format!("[{name} 1/{total}] FROM {reference}"),
                    },
                    ..meta
                };
                (State::image(&pinned, &platform, meta), image, platform)
            }
            Base::Named(named) | Base::Replaced(named) => {
                let total = count_steps(&context.parsed.stages[index].commands) + 1;
                // Compat: progress shows the base with its variables expanded (`FROM ${IMG}`
                // reads `FROM base`).
                let base = &resolved.base_name;
                let meta = VertexMeta {
                    name: match resolved.display_name.as_str() {
                        "" => format!("[1/{total}] FROM {base}"),
                        name => format!("[{name} 1/{total}] FROM {base}"),
                    },
                    ..meta
                };
                let (state, image) = self.named_state(named, &platform, meta, node)?;
                (state, image, platform)
            }
        };
        Ok(StageState {
            state,
            image,
            platform,
            args: Vec::new(),
            declared: BTreeSet::new(),
            workdir_set: false,
            cmd_set: false,
            seen_cmd: None,
            seen_entrypoint: None,
            seen_healthcheck: None,
            display_name: String::new(),
            step: 0,
            total: 0,
            ignore_cache: context.ignores_cache(index),
        })
    }

    /// Warns when the resolved base image is for another platform than requested.
    // Compat: buildkit dockerfile2llb validateBaseImagePlatform.
    fn check_base_platform(
        &mut self,
        index: usize,
        reference: &str,
        expected: &Platform,
        image: &oci::Image,
    ) {
        if image.os.is_empty() || image.architecture.is_empty() {
            return;
        }
        let actual = image.platform().normalize();
        if actual.os != expected.os
            || actual.architecture != expected.architecture
            || (actual.variant.is_some() && actual.variant != expected.variant)
        {
            let node = &self.context.parsed.stages[index].node;
            self.linter.run(
                &check::INVALID_BASE_IMAGE_PLATFORM,
                (node.start_line, node.end_line),
                format!("Base image {reference} was pulled with platform \"{actual}\", expected \"{expected}\" for current build"),
            );
        }
    }

    /// Returns the base image's config and the reference to pull (pinned to the resolved
    /// digest when the resolver knows it).
    pub(crate) fn resolve_image(
        &self,
        reference: &str,
        platform: &Platform,
        node: &parser::Node,
    ) -> Result<(oci::Image, String)> {
        let Some(resolver) = &self.context.options.resolver else {
            return Ok((oci::Image::empty(platform), reference.to_owned()));
        };
        match resolver.resolve(reference, platform) {
            Ok(Some(resolved)) => {
                let pinned = match resolved.digest {
                    Some(digest) if !reference.contains('@') => format!("{reference}@{digest}"),
                    _ => reference.to_owned(),
                };
                Ok((resolved.image, pinned))
            }
            Ok(None) => Ok((oci::Image::empty(platform), reference.to_owned())),
            Err(message) => Err(self
                .context
                .error(format!("failed to resolve `{reference}`: {message}"), node)),
        }
    }

    /// Returns the state and image a named context stands for.
    pub(crate) fn named_state(
        &self,
        named: &NamedContext,
        platform: &Platform,
        meta: VertexMeta,
        node: &parser::Node,
    ) -> Result<(State, oci::Image)> {
        let source = |identifier: String| SourceOp {
            identifier,
            attrs: Default::default(),
        };
        Ok(match named {
            NamedContext::Image { reference } => {
                let normalized =
                    reference::normalize(reference).unwrap_or_else(|| reference.clone());
                let (image, pinned) = self.resolve_image(&normalized, platform, node)?;
                (State::image(&pinned, platform, meta), image)
            }
            NamedContext::Local { name } => (
                State::source(source(format!("local://{name}")), None, meta),
                oci::Image::empty(platform),
            ),
            NamedContext::OciLayout { path, reference } => {
                let suffix = reference
                    .as_deref()
                    .map(|r| {
                        if r.starts_with('@') {
                            r.to_owned()
                        } else {
                            format!(":{r}")
                        }
                    })
                    .unwrap_or_default();
                let identifier = format!("oci-layout://{path}{suffix}");
                // The layout's own config (ENV, CMD, WORKDIR, ...) carries into the stage, as
                // BuildKit reads it; the identifier is not re-pinned because a layout tag and a
                // digest cannot both follow the path.
                let (image, _) = self.resolve_image(&identifier, platform, node)?;
                (
                    State::source(source(identifier), Some(platform.clone()), meta),
                    image,
                )
            }
            NamedContext::Target { name } => {
                let identifier = format!("target://{name}");
                // The linked target's image config (ENV, WORKDIR, ...) carries over, as with
                // any base image; the engine answers once that target is built.
                let (image, _) = self.resolve_image(&identifier, platform, node)?;
                (
                    State::source(source(identifier), Some(platform.clone()), meta),
                    image,
                )
            }
        })
    }

    fn dispatch_trigger(
        &mut self,
        state: &mut StageState,
        trigger: &str,
        from: &parser::Node,
    ) -> Result<()> {
        let file = crate::diag::SourceFile::new(
            format!("{} (ONBUILD)", self.context.file.name),
            trigger.to_owned(),
        );
        let parsed = parser::parse(&file)?;
        let instruction_context = crate::frontend::dockerfile::instructions::Context {
            file: &file,
            escape: self.context.escape,
        };
        for node in &parsed.nodes {
            let instruction = parse_instruction(&instruction_context, node, self.linter)?;
            // Triggers run at the FROM line of the stage that inherits them.
            let node = parser::Node {
                start_line: from.start_line,
                end_line: from.end_line,
                span: from.span.clone(),
                ..node.clone()
            };
            self.dispatch(state, &Command { instruction, node })?;
        }
        Ok(())
    }

    fn dispatch(&mut self, state: &mut StageState, command: &Command) -> Result<()> {
        commands::dispatch(self, state, command)
    }

    /// Expands one word with the stage's variables, reporting undefined ones.
    pub(crate) fn expand(
        &mut self,
        state: &StageState,
        word: &str,
        node: &parser::Node,
    ) -> Result<shell::Expansion> {
        let vars = state.vars();
        let expansion = shell::expand_text(word, &vars, self.context.escape)
            .map_err(|e| self.context.error(e.message, node))?;
        for name in &expansion.unmatched {
            if state.declared.contains(name) || PROXY_ARGS.contains(&name.as_str()) {
                continue;
            }
            let detail = match suggest(name, vars.names(), true) {
                Some(close) => {
                    format!("Usage of undefined variable '${name}' (did you mean ${close}?)")
                }
                None => format!("Usage of undefined variable '${name}'"),
            };
            self.linter.run(
                &check::UNDEFINED_VAR,
                (node.start_line, node.end_line),
                detail,
            );
        }
        Ok(expansion)
    }
}

fn count_steps(commands: &[Command]) -> usize {
    commands
        .iter()
        .filter(|c| {
            matches!(
                c.instruction,
                Instruction::Add(_)
                    | Instruction::Copy(_)
                    | Instruction::Run(_)
                    | Instruction::Workdir(_)
            )
        })
        .count()
}
