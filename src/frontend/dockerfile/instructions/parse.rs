//! Per-instruction argument parsing: one `parse_<instruction>` per keyword.

use crate::diag;
use crate::frontend::dockerfile::check::{self, Linter};
use crate::frontend::dockerfile::error::{Error, Result, suggest};
use crate::frontend::dockerfile::instructions::flags::{
    Context, FlagKind, invalid_flag, parse_mount,
};
use crate::frontend::dockerfile::instructions::types::{
    ArgDecl, Command, CommandLine, CopySpec, HealthSpec, INSTRUCTIONS, Instruction, KeyValue,
    Parsed, RunSpec, Stage,
};
use crate::frontend::dockerfile::parser::{Dockerfile, Node, raw_words};

/// Groups nodes into stages and types every instruction, reporting parse-time lint rules.
///
/// # Errors
/// Returns the first unknown instruction or flag, malformed argument list, or an instruction
/// other than `ARG` before the first `FROM`.
pub fn parse_instructions(dockerfile: Dockerfile, lint: &mut Linter) -> Result<Parsed> {
    let Dockerfile {
        file,
        escape,
        nodes,
        ..
    } = dockerfile;
    let context = Context {
        file: &file,
        escape,
    };
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in nodes {
        if node.keyword == "from" {
            stages.push(parse_from(&context, node, lint)?);
            continue;
        }
        let instruction = parse_instruction(&context, &node, lint)?;
        let is_arg = node.keyword == "arg";
        let command = Command { instruction, node };
        match stages.last_mut() {
            Some(stage) => stage.commands.push(command),
            None if is_arg => meta_args.push(command),
            None => {
                let node = &command.node;
                return Err(context.error(
                    format!(
                        "no build stage in current context: `{}` before the first `FROM`",
                        node.original_keyword
                    ),
                    node.keyword_span.clone(),
                ));
            }
        }
    }
    Ok(Parsed {
        file: file.clone(),
        escape,
        meta_args,
        stages,
    })
}

/// Types one instruction node (also used for `ONBUILD` triggers).
pub(crate) fn parse_instruction(
    context: &Context<'_>,
    node: &Node,
    lint: &mut Linter,
) -> Result<Instruction> {
    let lines = (node.start_line, node.end_line);
    match node.keyword.as_str() {
        "add" | "copy" => parse_copy(context, node),
        "arg" => parse_arg(context, node, lint),
        "cmd" => Ok(Instruction::Cmd(parse_command_line(context, node)?)),
        "entrypoint" => Ok(Instruction::Entrypoint(parse_command_line(context, node)?)),
        "env" | "label" => parse_key_values(context, node, lint),
        "expose" => {
            context.flags(node, &[])?;
            Ok(Instruction::Expose(require_words(context, node)?))
        }
        "healthcheck" => parse_healthcheck(context, node),
        "maintainer" => {
            context.flags(node, &[])?;
            lint.run(
                &check::MAINTAINER_DEPRECATED,
                lines,
                "Maintainer instruction is deprecated in favor of using label".to_owned(),
            );
            Ok(Instruction::Maintainer(require_args(context, node)?))
        }
        "onbuild" => parse_onbuild(context, node, lint),
        "run" => parse_run(context, node),
        "shell" => parse_shell(context, node),
        "stopsignal" => single(context, node).map(Instruction::StopSignal),
        "user" => single(context, node).map(Instruction::User),
        "volume" => {
            context.flags(node, &[])?;
            let volumes = match parse_json_array(&node.args) {
                Some(list) => list,
                None => require_words(context, node)?,
            };
            Ok(Instruction::Volume(volumes))
        }
        "workdir" => single(context, node).map(Instruction::Workdir),
        _ => Err(unknown_instruction(context, node)),
    }
}

fn unknown_instruction(context: &Context<'_>, node: &Node) -> Error {
    let upper: Vec<String> = INSTRUCTIONS.iter().map(|i| i.to_uppercase()).collect();
    Error::UnknownInstruction {
        name: node.original_keyword.clone(),
        help: suggest(
            &node.original_keyword,
            upper.iter().map(String::as_str),
            false,
        )
        .map(|close| format!("did you mean `{close}`?")),
        src: context.file.named(),
        span: diag::span(node.keyword_span.clone()),
    }
}

fn require_args(context: &Context<'_>, node: &Node) -> Result<String> {
    if node.args.is_empty() {
        return Err(context.error(
            format!(
                "`{}` requires at least one argument",
                node.keyword.to_uppercase()
            ),
            node.span.clone(),
        ));
    }
    Ok(node.args.clone())
}

fn require_words(context: &Context<'_>, node: &Node) -> Result<Vec<String>> {
    require_args(context, node)?;
    Ok(node.args.split_whitespace().map(str::to_owned).collect())
}

fn single(context: &Context<'_>, node: &Node) -> Result<String> {
    context.flags(node, &[])?;
    let args = require_args(context, node)?;
    if node.keyword != "user" && node.keyword != "workdir" && args.split_whitespace().count() > 1 {
        return Err(context.error(
            format!(
                "`{}` requires exactly one argument",
                node.keyword.to_uppercase()
            ),
            node.args_span.clone(),
        ));
    }
    Ok(args)
}

/// Parses `["a","b"]`; `None` when the text is not a JSON array of strings.
pub(crate) fn parse_json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(text).ok()
}

fn parse_command_line(context: &Context<'_>, node: &Node) -> Result<CommandLine> {
    context.flags(node, &[])?;
    Ok(command_line(&node.args))
}

fn command_line(args: &str) -> CommandLine {
    match parse_json_array(args) {
        Some(list) => CommandLine::Exec(list),
        None => CommandLine::Shell(args.to_owned()),
    }
}

fn parse_from(context: &Context<'_>, owned: Node, lint: &mut Linter) -> Result<Stage> {
    let node = &owned;
    let flags = context.flags(node, &[("platform", FlagKind::Value)])?;
    let words: Vec<&str> = node.args.split_whitespace().collect();
    let lines = (node.start_line, node.end_line);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            if !is_valid_stage_name(name) {
                return Err(context.error(
                    format!("invalid name for build stage: `{name}`, name can't start with a number or contain symbols"),
                    node.args_span.clone(),
                ));
            }
            if *name != name.to_lowercase() {
                lint.run(
                    &check::STAGE_NAME_CASING,
                    lines,
                    format!("Stage name '{name}' should be lowercase"),
                );
            }
            if !from_as_casing_matches(&node.original_keyword, as_word) {
                lint.run(
                    &check::FROM_AS_CASING,
                    lines,
                    format!(
                        "'{as_word}' and '{}' keywords' casing do not match",
                        node.original_keyword
                    ),
                );
            }
            Some(name.to_lowercase())
        }
        _ => {
            return Err(context.error(
                "`FROM` requires either one or three arguments (`FROM image [AS name]`)",
                node.span.clone(),
            ));
        }
    };
    if let Some(name) = &name {
        check_description(lint, node, "build stage", name);
    }
    let description = description_of(&node.comments, name.as_deref().unwrap_or_default());
    let base = words.first().map(|w| (*w).to_owned()).unwrap_or_default();
    Ok(Stage {
        name,
        base,
        platform: flags.value("platform"),
        node: owned,
        description,
        commands: Vec::new(),
    })
}

// Compat: buildkit instructions.doesFromCaseMatchAsCase (compares the keyword as written).
fn from_as_casing_matches(from: &str, as_word: &str) -> bool {
    let lower = from == from.to_lowercase();
    let upper = from == from.to_uppercase();
    match (lower, upper) {
        (true, _) => as_word == as_word.to_lowercase(),
        (_, true) => as_word == as_word.to_uppercase(),
        _ => true,
    }
}

fn is_valid_stage_name(name: &str) -> bool {
    let lower = name.to_lowercase();
    let mut chars = lower.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Returns the text after `# <name> ` in the comment directly above a definition.
fn description_of(comments: &[String], name: &str) -> String {
    match comments.last() {
        Some(last) if !name.is_empty() => last
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Reports a comment directly above a definition that does not start with the defined name.
// Compat: buildkit instructions.validateDefinitionDescription (experimental rule).
fn check_description(lint: &mut Linter, node: &Node, instruction: &str, name: &str) {
    let Some(last) = node.comments.last() else {
        return;
    };
    let first_word = last.split_whitespace().next().unwrap_or_default();
    if first_word != name && !last.trim().is_empty() {
        lint.run(
            &check::INVALID_DEFINITION_DESCRIPTION,
            (node.start_line, node.end_line),
            format!("Comment for {instruction} should follow the format: `# {name} <description>`"),
        );
    }
}

fn parse_arg(context: &Context<'_>, node: &Node, lint: &mut Linter) -> Result<Instruction> {
    context.flags(node, &[])?;
    let words = raw_words(&require_args(context, node)?, context.escape);
    let words_count = words.len();
    let mut declarations = Vec::new();
    for word in words {
        let (name, default) = match word.split_once('=') {
            Some((name, default)) => (name.to_owned(), Some(default.to_owned())),
            None => (word.clone(), None),
        };
        if name.is_empty() {
            return Err(context.error("`ARG` names can not be blank", node.args_span.clone()));
        }
        if words_count == 1 {
            check_description(lint, node, "argument", &name);
        }
        let description = description_of(&node.comments, &name);
        declarations.push(ArgDecl {
            name,
            default,
            description,
        });
    }
    Ok(Instruction::Arg(declarations))
}

// Compat: buildkit parser parseNameVal (ENV/LABEL): all `k=v` words, or the legacy `k v` form.
fn parse_key_values(context: &Context<'_>, node: &Node, lint: &mut Linter) -> Result<Instruction> {
    context.flags(node, &[])?;
    let upper = node.keyword.to_uppercase();
    let args = require_args(context, node)?;
    let words = raw_words(&args, context.escape);
    let mut pairs = Vec::new();
    if words.first().is_some_and(|w| !w.contains('=')) {
        let key = words.first().cloned().unwrap_or_default();
        let value = args[key.len()..].trim_start().to_owned();
        if value.is_empty() && node.keyword == "env" {
            return Err(context.error(
                format!("`{upper}` must have two arguments"),
                node.args_span.clone(),
            ));
        }
        lint.run(
            &check::LEGACY_KEY_VALUE_FORMAT,
            (node.start_line, node.end_line),
            format!("\"{upper} key=value\" should be used instead of legacy \"{upper} key value\" format"),
        );
        pairs.push(KeyValue { key, value });
    } else {
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(context.error(
                    format!(
                        "syntax error - can't find = in `{word}`. Must be of the form: name=value"
                    ),
                    node.args_span.clone(),
                ));
            };
            if key.is_empty() {
                return Err(context.error(
                    format!("`{upper}` names can not be blank"),
                    node.args_span.clone(),
                ));
            }
            pairs.push(KeyValue {
                key: key.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    Ok(if node.keyword == "env" {
        Instruction::Env(pairs)
    } else {
        Instruction::Label(pairs)
    })
}

fn parse_copy(context: &Context<'_>, node: &Node) -> Result<Instruction> {
    let is_add = node.keyword == "add";
    let mut allowed = vec![
        ("chown", FlagKind::Value),
        ("chmod", FlagKind::Value),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::List),
    ];
    if is_add {
        allowed.extend([
            ("checksum", FlagKind::Value),
            ("keep-git-dir", FlagKind::Bool),
            ("unpack", FlagKind::Bool),
        ]);
    } else {
        allowed.extend([("from", FlagKind::Value), ("parents", FlagKind::Bool)]);
    }
    let flags = context.flags(node, &allowed)?;
    let mut words = parse_json_array(&node.args)
        .unwrap_or_else(|| node.args.split_whitespace().map(str::to_owned).collect());
    if words.len() < 2 {
        return Err(context.error(
            format!(
                "`{}` requires at least two arguments, but only {} provided",
                node.keyword.to_uppercase(),
                words.len()
            ),
            node.span.clone(),
        ));
    }
    let dest = words.pop().unwrap_or_default();
    let spec = CopySpec {
        sources: words,
        dest,
        from: flags.value("from"),
        chown: flags.value("chown"),
        chmod: flags.value("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        excludes: flags.list("exclude"),
        checksum: flags.value("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.value("unpack").map(|v| v == "true"),
        heredocs: node.heredocs.clone(),
    };
    Ok(if is_add {
        Instruction::Add(spec)
    } else {
        Instruction::Copy(spec)
    })
}

fn parse_run(context: &Context<'_>, node: &Node) -> Result<Instruction> {
    let flags = context.flags(
        node,
        &[
            ("mount", FlagKind::List),
            ("network", FlagKind::Value),
            ("security", FlagKind::Value),
            ("device", FlagKind::List),
        ],
    )?;
    if node.args.is_empty() && node.heredocs.is_empty() {
        return Err(context.error("`RUN` requires at least one argument", node.span.clone()));
    }
    let mut mounts = Vec::new();
    for flag in node.flags.iter().filter(|f| f.name == "mount") {
        mounts.push(parse_mount(
            context,
            flag.value.as_deref().unwrap_or_default(),
            flag.span.clone(),
        )?);
    }
    let network = flags.value("network");
    if let Some(value) = &network
        && !matches!(value.as_str(), "default" | "none" | "host")
    {
        return Err(invalid_flag(
            context,
            node,
            "network",
            format!("unknown network mode `{value}` (expected `default`, `none` or `host`)"),
        ));
    }
    let security = flags.value("security");
    if let Some(value) = &security
        && !matches!(value.as_str(), "sandbox" | "insecure")
    {
        return Err(invalid_flag(
            context,
            node,
            "security",
            format!("unknown security mode `{value}` (expected `sandbox` or `insecure`)"),
        ));
    }
    Ok(Instruction::Run(RunSpec {
        command: command_line(&node.args),
        mounts,
        network,
        security,
        devices: flags.list("device"),
        heredocs: node.heredocs.clone(),
    }))
}

fn parse_healthcheck(context: &Context<'_>, node: &Node) -> Result<Instruction> {
    let flags = context.flags(
        node,
        &[
            ("interval", FlagKind::Value),
            ("timeout", FlagKind::Value),
            ("start-period", FlagKind::Value),
            ("start-interval", FlagKind::Value),
            ("retries", FlagKind::Value),
        ],
    )?;
    let args = require_args(context, node)?;
    let (word, rest) = args
        .split_once(char::is_whitespace)
        .unwrap_or((args.as_str(), ""));
    match word.to_uppercase().as_str() {
        "NONE" if rest.trim().is_empty() && node.flags.is_empty() => {
            Ok(Instruction::Healthcheck(HealthSpec::None))
        }
        "NONE" => Err(context.error(
            "`HEALTHCHECK NONE` takes no other arguments",
            node.args_span.clone(),
        )),
        "CMD" if !rest.trim().is_empty() => {
            let flags = flags
                .values
                .iter()
                .filter_map(|(k, (v, _))| Some(((*k).to_owned(), v.last()?.clone())))
                .collect();
            Ok(Instruction::Healthcheck(HealthSpec::Cmd {
                command: command_line(rest.trim()),
                flags,
            }))
        }
        "CMD" => Err(context.error(
            "missing command after `HEALTHCHECK CMD`",
            node.args_span.clone(),
        )),
        other => Err(context.error(
            format!("unknown type `{other}` in `HEALTHCHECK` (try `CMD`)"),
            node.args_span.clone(),
        )),
    }
}

fn parse_shell(context: &Context<'_>, node: &Node) -> Result<Instruction> {
    context.flags(node, &[])?;
    match parse_json_array(&node.args) {
        Some(list) if !list.is_empty() => Ok(Instruction::Shell(list)),
        _ => Err(context.error(
            "`SHELL` requires the arguments to be in JSON form",
            node.args_span.clone(),
        )),
    }
}

fn parse_onbuild(context: &Context<'_>, node: &Node, lint: &mut Linter) -> Result<Instruction> {
    context.flags(node, &[])?;
    let trigger = require_args(context, node)?;
    let keyword = trigger
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if matches!(keyword.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(context.error(
            format!(
                "`{}` isn't allowed as an `ONBUILD` trigger",
                keyword.to_uppercase()
            ),
            node.args_span.clone(),
        ));
    }
    if !INSTRUCTIONS.contains(&keyword.as_str()) {
        return Err(context.error(
            format!("unknown instruction `{keyword}` in `ONBUILD`"),
            node.args_span.clone(),
        ));
    }
    // Validate the trigger now (flags, arguments), but store it as text like the image does.
    let _ = lint;
    Ok(Instruction::Onbuild(trigger))
}
