//! Stages → build graph: global ARGs and platform args, stage bases and dependencies, target
//! selection, reachability, and the per-stage walk that [`super::dispatch`] drives.
//!
//! Compat: buildkit dockerfile2llb/convert.go toDispatchState (the order of steps and of the
//! lint rules is BuildKit's).

use std::collections::BTreeSet;

use crate::diag::{self, SourceFile};
use crate::frontend::dockerfile::check::{self, CheckConfig, Linter};
use crate::frontend::dockerfile::dispatch;
use crate::frontend::dockerfile::error::{Error, Result, suggest};
use crate::frontend::dockerfile::instructions::{self, Instruction, Parsed};
use crate::frontend::dockerfile::options::{ConvertOptions, Converted};
use crate::frontend::dockerfile::stage::Context;
use crate::frontend::dockerfile::{parser, reference, shell};
use crate::platform::Platform;

/// Parses and converts a Dockerfile into the graph and image config of its target stage.
///
/// # Errors
/// Returns a diagnostic for syntax errors, unknown instructions or flags, a missing target,
/// stage cycles, bad variables and invalid platforms.
pub fn convert(file: &SourceFile, options: &ConvertOptions) -> Result<Converted> {
    let mut linter = Linter::disabled();
    convert_with_linter(file, options, &mut linter)
}

/// Runs the build checks: the whole conversion with every stage lowered, collecting findings.
///
/// # Errors
/// Returns a diagnostic when the file cannot be parsed; conversion errors after parsing are
/// reported inside the [`check::CheckReport`] instead.
pub fn check(file: &SourceFile, options: &ConvertOptions) -> Result<check::CheckReport> {
    let dockerfile = parser::parse(file)?;
    let text = dockerfile
        .directives
        .check
        .as_ref()
        .map(|d| d.value.clone());
    let text = options
        .build_args
        .get("BUILDKIT_DOCKERFILE_CHECK")
        .cloned()
        .or(text)
        .unwrap_or_default();
    let config = CheckConfig::parse(&text).map_err(|message| Error::Convert {
        message: format!("failed to parse check options: {message}"),
        help: None,
        src: file.named(),
        span: dockerfile
            .directives
            .check
            .as_ref()
            .map(|d| diag::span(d.span.clone())),
    })?;
    let mut linter = Linter::new(config);
    let mut options = options.clone();
    options.all_stages = options.target.is_none();
    let result = convert_with_linter(file, &options, &mut linter);
    let mut report = linter.into_report();
    if let Err(error) = result {
        report.error = Some(check::BuildError {
            message: error.to_string(),
            location: None,
        });
    }
    Ok(report)
}

fn convert_with_linter(
    file: &SourceFile,
    options: &ConvertOptions,
    linter: &mut Linter,
) -> Result<Converted> {
    let dockerfile = parser::parse(file)?;
    check_syntax_directive(&dockerfile, options)?;
    for line in &dockerfile.empty_continuations {
        linter.run(
            &check::NO_EMPTY_CONTINUATION,
            (*line, *line),
            "Empty continuation line".to_owned(),
        );
    }
    let parsed = instructions::parse_instructions(dockerfile, linter)?;
    if parsed.stages.is_empty() {
        return Err(Error::Convert {
            message: "dockerfile contains no stages to build".to_owned(),
            help: Some("add a `FROM` instruction".to_owned()),
            src: file.named(),
            span: None,
        });
    }
    validate_stage_names(&parsed, linter);
    validate_command_casing(&parsed, linter);
    let build_platform = options
        .build_platform
        .clone()
        .unwrap_or_else(Platform::host);
    let target_platform = options
        .target_platform
        .clone()
        .unwrap_or_else(|| build_platform.clone());
    let target_index = resolve_target(file, &parsed, options)?;
    let target_name = parsed.stages[target_index].name.clone().unwrap_or_default();
    let defaults = platform_args(&build_platform, &target_platform, &target_name);
    validate_bases_with_defaults(&parsed, &defaults, linter);
    let global_args = meta_args(&parsed, defaults, options)?;
    let mut context = Context {
        file,
        escape: parsed.escape,
        options,
        parsed: &parsed,
        global_args,
        target_platform,
        stage_names: parsed.stages.iter().map(|s| s.name.clone()).collect(),
    };
    let stages = dispatch::resolve_stages(&mut context, linter)?;
    dispatch::run_stages(&context, stages, target_index, linter)
}

// Compat: buildkit frontend/dockerfile/builder (BUILDKIT_SYNTAX overrides `# syntax=`;
// `dockerfile.v0` forces the built-in front end).
fn check_syntax_directive(dockerfile: &parser::Dockerfile, options: &ConvertOptions) -> Result<()> {
    let directive = dockerfile.directives.syntax.as_ref();
    let (image, span) = match (options.build_args.get("BUILDKIT_SYNTAX"), directive) {
        (Some(value), _) if value == "dockerfile.v0" => return Ok(()),
        (Some(value), directive) => (value.clone(), directive.map(|d| d.span.clone())),
        (None, Some(directive)) => (directive.value.clone(), Some(directive.span.clone())),
        (None, None) => return Ok(()),
    };
    if is_builtin_frontend(&image) {
        return Ok(());
    }
    Err(Error::UnsupportedSyntax {
        image,
        src: dockerfile.file.named(),
        span: span.map(diag::span),
    })
}

/// Returns true for `docker/dockerfile` images we implement: any `1.x`, with or without `-labs`.
fn is_builtin_frontend(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (name, "latest"),
    };
    let repository = repository.trim_start_matches("docker.io/");
    let version = tag.strip_suffix("-labs").unwrap_or(tag);
    repository == "docker/dockerfile"
        && (matches!(version, "latest" | "labs") || version.split('.').next() == Some("1"))
}

fn resolve_target(file: &SourceFile, parsed: &Parsed, options: &ConvertOptions) -> Result<usize> {
    let Some(target) = &options.target else {
        return Ok(parsed.stages.len() - 1);
    };
    let lower = target.to_lowercase();
    if let Some(index) = parsed
        .stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Ok(index);
    }
    let names: Vec<&str> = parsed
        .stages
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    Err(Error::UnknownTarget {
        target: target.clone(),
        help: match suggest(target, names.iter().copied(), false) {
            Some(close) => Some(format!("did you mean `{close}`?")),
            None if names.is_empty() => {
                Some("the Dockerfile has no named stages (`FROM image AS name`)".to_owned())
            }
            None => Some(format!("stages: {}", names.join(", "))),
        },
        src: file.named(),
    })
}

fn lines(node: &parser::Node) -> (usize, usize) {
    (node.start_line, node.end_line)
}

// Compat: buildkit dockerfile2llb validateStageNames.
fn validate_stage_names(parsed: &Parsed, linter: &mut Linter) {
    let mut seen = BTreeSet::new();
    for stage in &parsed.stages {
        let Some(name) = &stage.name else { continue };
        if matches!(name.as_str(), "scratch" | "context") {
            linter.run(
                &check::RESERVED_STAGE_NAME,
                lines(&stage.node),
                format!("Stage name should not use the same name as reserved stage \"{name}\""),
            );
        }
        if !seen.insert(name.clone()) {
            linter.run(
                &check::DUPLICATE_STAGE_NAME,
                lines(&stage.node),
                format!("Duplicate stage name \"{name}\", stage names should be unique"),
            );
        }
    }
}

// Compat: buildkit dockerfile2llb validateCommandCasing (ties count as upper case).
fn validate_command_casing(parsed: &Parsed, linter: &mut Linter) {
    let nodes = || {
        parsed
            .stages
            .iter()
            .flat_map(|s| std::iter::once(&s.node).chain(s.commands.iter().map(|c| &c.node)))
    };
    let (mut lower, mut upper) = (0, 0);
    for node in nodes() {
        let word = &node.original_keyword;
        if is_lowercase(word) {
            lower += 1;
        } else if is_uppercase(word) {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for node in nodes() {
        let word = &node.original_keyword;
        let casing = if majority_lower && !is_lowercase(word) {
            "lowercase"
        } else if !majority_lower && !is_uppercase(word) {
            "uppercase"
        } else {
            continue;
        };
        linter.run(
            &check::CONSISTENT_INSTRUCTION_CASING,
            lines(node),
            format!("Command '{word}' should match the case of the command majority ({casing})"),
        );
    }
}

/// Returns true when lowercasing `word` leaves it unchanged (without allocating for ASCII,
/// which every instruction keyword is).
fn is_lowercase(word: &str) -> bool {
    if word.is_ascii() {
        !word.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        word == word.to_lowercase()
    }
}

/// Returns true when uppercasing `word` leaves it unchanged.
fn is_uppercase(word: &str) -> bool {
    if word.is_ascii() {
        !word.bytes().any(|b| b.is_ascii_lowercase())
    } else {
        word == word.to_uppercase()
    }
}

/// The automatic platform args and `TARGETSTAGE`.
// Compat: buildkit dockerfile2llb/platform.go defaultArgs.
fn platform_args(build: &Platform, target: &Platform, target_stage: &str) -> Vec<(String, String)> {
    let mut args = Vec::new();
    for (prefix, platform) in [("BUILD", build), ("TARGET", target)] {
        args.push((format!("{prefix}PLATFORM"), platform.to_string()));
        args.push((format!("{prefix}OS"), platform.os.clone()));
        args.push((format!("{prefix}ARCH"), platform.architecture.clone()));
        args.push((
            format!("{prefix}VARIANT"),
            platform.variant.clone().unwrap_or_default(),
        ));
    }
    let stage = if target_stage.is_empty() {
        "default"
    } else {
        target_stage
    };
    args.push(("TARGETSTAGE".to_owned(), stage.to_owned()));
    args
}

fn is_platform_arg(name: &str) -> bool {
    matches!(
        name,
        "BUILDPLATFORM"
            | "BUILDOS"
            | "BUILDARCH"
            | "BUILDVARIANT"
            | "BUILDOSVERSION"
            | "TARGETPLATFORM"
            | "TARGETOS"
            | "TARGETARCH"
            | "TARGETVARIANT"
            | "TARGETOSVERSION"
            | "TARGETSTAGE"
    )
}

/// Warns when global ARG defaults alone give an empty or invalid base name.
// Compat: buildkit dockerfile2llb validateBaseImagesWithDefaultArgs.
fn validate_bases_with_defaults(
    parsed: &Parsed,
    defaults: &[(String, String)],
    linter: &mut Linter,
) {
    // Compat: buildkit abandons this check (without findings) when the defaults fail to expand,
    // and stops at the first base name that fails to expand.
    let mut vars: Vec<(String, String)> = defaults.to_vec();
    for command in &parsed.meta_args {
        let Instruction::Arg(declarations) = &command.instruction else {
            continue;
        };
        for declaration in declarations {
            if let Some(default) = &declaration.default {
                let Ok(expansion) = shell::expand(default, &vars, parsed.escape) else {
                    return;
                };
                vars.push((declaration.name.clone(), expansion.result));
            }
        }
    }
    for stage in &parsed.stages {
        let Ok(expansion) = shell::expand(&stage.base, &vars, parsed.escape) else {
            return;
        };
        let base = expansion.result;
        let lower = base.to_lowercase();
        let is_stage = parsed
            .stages
            .iter()
            .any(|s| s.name.as_deref() == Some(lower.as_str()));
        if base == "scratch" || is_stage {
            continue;
        }
        if reference::normalize(&base).is_none() {
            linter.run(
                &check::INVALID_DEFAULT_ARG_IN_FROM,
                lines(&stage.node),
                format!(
                    "Default value for ARG {} results in empty or invalid base image name",
                    stage.base
                ),
            );
        }
    }
}

/// Evaluates the global ARGs: platform args, then each `ARG` before `FROM` in order.
// Compat: buildkit dockerfile2llb buildMetaArgs.
fn meta_args(
    parsed: &Parsed,
    mut vars: Vec<(String, String)>,
    options: &ConvertOptions,
) -> Result<Vec<(String, String)>> {
    for (name, value) in &options.build_args {
        if is_platform_arg(name) {
            vars.retain(|(k, _)| k != name);
            vars.push((name.clone(), value.clone()));
        }
    }
    for command in &parsed.meta_args {
        let Instruction::Arg(declarations) = &command.instruction else {
            continue;
        };
        for declaration in declarations {
            let value = match (
                options.build_args.get(&declaration.name),
                &declaration.default,
            ) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(default)) => Some(
                    shell::expand(default, &vars, parsed.escape)
                        .map_err(|e| Error::Convert {
                            message: e.message,
                            help: None,
                            src: parsed.file.named(),
                            span: Some(diag::span(command.node.span.clone())),
                        })?
                        .result,
                ),
                (None, None) => None,
            };
            if let Some(value) = value {
                vars.retain(|(k, _)| k != &declaration.name);
                vars.push((declaration.name.clone(), value));
            }
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_frontend_versions_are_recognised() {
        for image in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1.4.3",
            "docker/dockerfile",
            "docker/dockerfile:labs",
        ] {
            assert!(is_builtin_frontend(image), "{image}");
        }
        for image in [
            "docker/dockerfile:0.9",
            "example.com/frontend:1",
            "tonistiigi/dockerfile:1",
        ] {
            assert!(!is_builtin_frontend(image), "{image}");
        }
    }

    #[test]
    fn buildkit_syntax_arg_overrides_the_directive() {
        let file = SourceFile::new("Dockerfile", "# syntax=example.com/x:1\nFROM scratch\n");
        let mut options = ConvertOptions::default();
        assert!(convert(&file, &options).is_err());
        options
            .build_args
            .insert("BUILDKIT_SYNTAX".to_owned(), "dockerfile.v0".to_owned());
        assert!(convert(&file, &options).is_ok());
        let plain = SourceFile::new("Dockerfile", "FROM scratch\n");
        options
            .build_args
            .insert("BUILDKIT_SYNTAX".to_owned(), "example.com/x:1".to_owned());
        assert!(convert(&plain, &options).is_err());
    }
}
