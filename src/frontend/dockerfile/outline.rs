//! `--call=targets` and `--call=outline`: the stages of a Dockerfile and the build args,
//! secrets and SSH sockets a target uses, shaped like BuildKit's subrequest JSON.
//!
//! Compat: buildkit frontend/subrequests/targets and outline (field names and omitempty).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::diag::SourceFile;
use crate::frontend::dockerfile::check::{Linter, Location};
use crate::frontend::dockerfile::error::{Error, Result};
use crate::frontend::dockerfile::instructions::{
    Instruction, MountType, Parsed, parse_instructions,
};
use crate::frontend::dockerfile::options::ConvertOptions;
use crate::frontend::dockerfile::{parser, shell};

/// The stages of a Dockerfile (`--call=targets`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// Stages in file order.
    pub targets: Vec<TargetInfo>,
}

/// One stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetInfo {
    /// Stage name (empty when unnamed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// True for the last stage.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// Description from the comment above `FROM`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Base image or stage, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    /// `--platform`, as written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// The `FROM` lines.
    pub location: Location,
}

/// What a target needs (`--call=outline`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// Target stage name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Target description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Build args the target uses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OutlineArg>,
    /// Secrets mounted by `RUN --mount=type=secret`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<OutlineMount>,
    /// SSH sockets mounted by `RUN --mount=type=ssh`.
    #[serde(rename = "ssh", skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<OutlineMount>,
}

/// One build arg of an [`Outline`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    /// Name.
    pub name: String,
    /// Description from the comment above `ARG`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Default value (or the `--build-arg` value).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// The `ARG` line.
    pub location: Location,
}

/// A secret or SSH mount of an [`Outline`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutlineMount {
    /// Secret or SSH id.
    pub name: String,
    /// `required=true`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The `RUN` line.
    pub location: Location,
}

fn parse(file: &SourceFile) -> Result<Parsed> {
    let dockerfile = parser::parse(file)?;
    parse_instructions(dockerfile, &mut Linter::disabled())
}

/// Lists the stages of a Dockerfile.
///
/// # Errors
/// Returns a diagnostic when the file cannot be parsed.
pub fn targets(file: &SourceFile) -> Result<Targets> {
    let parsed = parse(file)?;
    let last = parsed.stages.len().saturating_sub(1);
    let targets = parsed
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| TargetInfo {
            name: stage.name.clone().unwrap_or_default(),
            default: index == last,
            description: stage.description.clone(),
            base: stage.base.clone(),
            platform: stage.platform.clone().unwrap_or_default(),
            location: Location::lines(stage.node.start_line, stage.node.end_line),
        })
        .collect();
    Ok(Targets { targets })
}

/// Describes the build args, secrets and SSH sockets the target stage uses.
///
/// # Errors
/// Returns a diagnostic when the file cannot be parsed or the target does not exist.
pub fn outline(file: &SourceFile, options: &ConvertOptions) -> Result<Outline> {
    let parsed = parse(file)?;
    let Some(last) = parsed.stages.len().checked_sub(1) else {
        return Ok(Outline::default());
    };
    let target = match &options.target {
        None => last,
        Some(name) => parsed
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(name.to_lowercase().as_str()))
            .ok_or_else(|| Error::UnknownTarget {
                target: name.clone(),
                help: None,
                src: file.named(),
            })?,
    };
    let reachable = reachable_stages(&parsed, target);
    let mut outline = Outline {
        name: parsed.stages[target].name.clone().unwrap_or_default(),
        description: parsed.stages[target].description.clone(),
        ..Outline::default()
    };
    let mut seen = BTreeSet::new();
    let mut used_in_from = BTreeSet::new();
    for index in &reachable {
        let stage = &parsed.stages[*index];
        for word in [Some(&stage.base), stage.platform.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Ok(expansion) =
                shell::expand(word, &Vec::<(String, String)>::new(), parsed.escape)
            {
                used_in_from.extend(expansion.unmatched);
            }
        }
    }
    for command in &parsed.meta_args {
        let Instruction::Arg(declarations) = &command.instruction else {
            continue;
        };
        for declaration in declarations
            .iter()
            .filter(|d| used_in_from.contains(&d.name))
        {
            push_arg(&mut outline, &mut seen, options, declaration, &command.node);
        }
    }
    for index in &reachable {
        collect_stage(&mut outline, &mut seen, options, &parsed.stages[*index]);
    }
    Ok(outline)
}

/// Adds one stage's ARGs, secrets and SSH mounts to the outline.
fn collect_stage(
    outline: &mut Outline,
    seen: &mut BTreeSet<String>,
    options: &ConvertOptions,
    stage: &crate::frontend::dockerfile::instructions::Stage,
) {
    for command in &stage.commands {
        let lines = Location::lines(command.node.start_line, command.node.end_line);
        match &command.instruction {
            Instruction::Arg(declarations) => {
                for declaration in declarations {
                    push_arg(outline, seen, options, declaration, &command.node);
                }
            }
            Instruction::Run(run) => {
                for mount in &run.mounts {
                    let required = mount.options.get("required").is_some_and(|v| v == "true");
                    let id = mount.options.get("id").cloned();
                    match mount.kind {
                        MountType::Secret => {
                            let name = id
                                .or_else(|| {
                                    mount
                                        .options
                                        .get("target")
                                        .and_then(|t| t.rsplit('/').next())
                                        .map(str::to_owned)
                                })
                                .unwrap_or_default();
                            outline.secrets.push(OutlineMount {
                                name,
                                required,
                                location: lines.clone(),
                            });
                        }
                        MountType::Ssh => outline.ssh.push(OutlineMount {
                            name: id.unwrap_or_else(|| "default".to_owned()),
                            required,
                            location: lines.clone(),
                        }),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn push_arg(
    outline: &mut Outline,
    seen: &mut BTreeSet<String>,
    options: &ConvertOptions,
    declaration: &crate::frontend::dockerfile::instructions::ArgDecl,
    node: &parser::Node,
) {
    if !seen.insert(declaration.name.clone()) {
        return;
    }
    let value = options
        .build_args
        .get(&declaration.name)
        .cloned()
        .or_else(|| declaration.default.clone())
        .unwrap_or_default();
    outline.args.push(OutlineArg {
        name: declaration.name.clone(),
        description: declaration.description.clone(),
        value,
        location: Location::lines(node.start_line, node.end_line),
    });
}

/// Stages the target depends on through `FROM <stage>` and `--from=<stage>`, in file order.
fn reachable_stages(parsed: &Parsed, target: usize) -> Vec<usize> {
    let index_of = |name: &str| -> Option<usize> {
        name.parse::<usize>()
            .ok()
            .filter(|i| *i < parsed.stages.len())
            .or_else(|| {
                let lower = name.to_lowercase();
                parsed
                    .stages
                    .iter()
                    .position(|s| s.name.as_deref() == Some(lower.as_str()))
            })
    };
    let mut found = BTreeSet::new();
    let mut pending = vec![target];
    while let Some(index) = pending.pop() {
        if !found.insert(index) {
            continue;
        }
        let stage = &parsed.stages[index];
        let mut names: Vec<&str> = vec![stage.base.as_str()];
        for command in &stage.commands {
            match &command.instruction {
                Instruction::Copy(spec) => names.extend(spec.from.as_deref()),
                Instruction::Run(run) => names.extend(
                    run.mounts
                        .iter()
                        .filter_map(|m| m.options.get("from").map(String::as_str)),
                ),
                _ => {}
            }
        }
        pending.extend(
            names
                .into_iter()
                .filter_map(index_of)
                .filter(|i| !found.contains(i)),
        );
    }
    found.into_iter().collect()
}
