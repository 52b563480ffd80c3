//! One `convert_<instruction>` per Dockerfile instruction: each updates the stage's image
//! config and, for `ADD`/`COPY`/`RUN`/`WORKDIR`, its filesystem state.
//!
//! Compat: buildkit dockerfile2llb/convert.go dispatch* functions.

use crate::frontend::dockerfile::check;
use crate::frontend::dockerfile::error::Result;
use crate::frontend::dockerfile::instructions::{
    ArgDecl, Command, CommandLine, HealthSpec, Instruction, KeyValue,
};
use crate::frontend::dockerfile::stage::{Dispatcher, StageState};
use crate::frontend::dockerfile::step::{join_workdir, step_meta, with_shell};
use crate::frontend::dockerfile::{copy, go_format, parser, run};
use crate::graph::{FileAction, FileOp, FileOwner, Inputs, Op, State};
use crate::oci;

/// Lowers one instruction into the stage and records its history entry.
pub(crate) fn dispatch(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    command: &Command,
) -> Result<()> {
    let node = &command.node;
    let created_by = match &command.instruction {
        Instruction::Add(spec) | Instruction::Copy(spec) => {
            copy::convert_copy(dispatcher, state, spec, node)?
        }
        Instruction::Run(spec) => run::convert_run(dispatcher, state, spec, node)?,
        Instruction::Workdir(path) => convert_workdir(dispatcher, state, path, node)?,
        Instruction::Arg(declarations) => convert_arg(dispatcher, state, declarations, node)?,
        Instruction::Cmd(line) => convert_cmd(dispatcher, state, line, node),
        Instruction::Entrypoint(line) => convert_entrypoint(dispatcher, state, line, node),
        Instruction::Env(pairs) => convert_env(dispatcher, state, pairs, node)?,
        Instruction::Expose(ports) => convert_expose(dispatcher, state, ports, node)?,
        Instruction::Healthcheck(spec) => convert_healthcheck(dispatcher, state, spec, node)?,
        Instruction::Label(pairs) => convert_label(dispatcher, state, pairs, node)?,
        Instruction::Maintainer(name) => convert_maintainer(state, name),
        Instruction::Onbuild(trigger) => convert_onbuild(state, trigger),
        Instruction::Shell(shell) => convert_shell(state, shell),
        Instruction::StopSignal(signal) => convert_stopsignal(dispatcher, state, signal, node)?,
        Instruction::User(user) => convert_user(dispatcher, state, user, node)?,
        Instruction::Volume(volumes) => convert_volume(dispatcher, state, volumes, node)?,
    };
    let layer = matches!(
        command.instruction,
        Instruction::Add(_) | Instruction::Copy(_) | Instruction::Run(_) | Instruction::Workdir(_)
    );
    state.image.history.push(oci::History {
        created_by: Some(created_by),
        comment: Some("buildkit.dockerfile.v0".to_owned()),
        empty_layer: !layer,
        ..oci::History::default()
    });
    Ok(())
}

/// Formats a list the way Go's `%q` formats a `[]string`: `["a" "b"]`.
pub(crate) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| go_format::quote(item)).collect();
    format!("[{}]", quoted.join(" "))
}

fn lines(node: &parser::Node) -> (usize, usize) {
    (node.start_line, node.end_line)
}

fn convert_arg(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    declarations: &[ArgDecl],
    node: &parser::Node,
) -> Result<String> {
    let mut parts = Vec::new();
    for declaration in declarations {
        let name = &declaration.name;
        let default = match &declaration.default {
            Some(default) => Some(dispatcher.expand(state, default, node)?.result),
            None => None,
        };
        if check::is_secret_key(name) {
            dispatcher.linter.run(
                &check::SECRETS_USED_IN_ARG_OR_ENV,
                lines(node),
                format!("Do not use ARG or ENV instructions for sensitive data (ARG \"{name}\")"),
            );
        }
        let global = dispatcher
            .context
            .global_args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let value = dispatcher
            .context
            .options
            .build_args
            .get(name)
            .cloned()
            .or(default)
            .or(global);
        state.declared.insert(name.clone());
        state.args.retain(|(k, _)| k != name);
        match value {
            Some(value) => {
                parts.push(format!("{name}={value}"));
                state.args.push((name.clone(), value));
            }
            None => parts.push(name.clone()),
        }
    }
    Ok(format!("ARG {}", parts.join(" ")))
}

fn convert_env(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    pairs: &[KeyValue],
    node: &parser::Node,
) -> Result<String> {
    let mut expanded = Vec::new();
    for pair in pairs {
        let key = dispatcher.expand(state, &pair.key, node)?.result;
        let value = dispatcher.expand(state, &pair.value, node)?.result;
        expanded.push((key, value));
    }
    let mut message = String::new();
    for (key, value) in &expanded {
        message.push(' ');
        message.push_str(key);
        message.push('=');
        message.push_str(value);
    }
    for (key, value) in expanded {
        if check::is_secret_key(&key) {
            dispatcher.linter.run(
                &check::SECRETS_USED_IN_ARG_OR_ENV,
                lines(node),
                format!("Do not use ARG or ENV instructions for sensitive data (ENV \"{key}\")"),
            );
        }
        state.image.config.set_env(&key, &value);
    }
    Ok(format!("ENV{message}"))
}

fn convert_label(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    pairs: &[KeyValue],
    node: &parser::Node,
) -> Result<String> {
    let mut message = String::from("LABEL");
    for pair in pairs {
        let key = dispatcher.expand(state, &pair.key, node)?.result;
        let value = dispatcher.expand(state, &pair.value, node)?.result;
        message.push(' ');
        message.push_str(&key);
        message.push('=');
        message.push_str(&value);
        state.image.config.labels.insert(key, value);
    }
    Ok(message)
}

// Compat: buildkit dockerfile2llb validateUsedOnce.
fn used_once(
    dispatcher: &mut Dispatcher<'_, '_>,
    seen: &mut Option<(usize, usize)>,
    name: &str,
    node: &parser::Node,
) {
    if let Some(previous) = seen.replace(lines(node)) {
        dispatcher.linter.run(&check::MULTIPLE_INSTRUCTIONS_DISALLOWED, previous, format!("Multiple {name} instructions should not be used in the same stage because only the last one will be used"));
    }
}

fn recommend_json(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    line: &CommandLine,
    name: &str,
    node: &parser::Node,
) {
    if matches!(line, CommandLine::Shell(_)) && state.image.config.shell.is_none() {
        dispatcher.linter.run(&check::JSON_ARGS_RECOMMENDED, lines(node), format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"));
    }
}

fn convert_cmd(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    line: &CommandLine,
    node: &parser::Node,
) -> String {
    let mut seen = state.seen_cmd.take();
    used_once(dispatcher, &mut seen, "CMD", node);
    state.seen_cmd = seen;
    recommend_json(dispatcher, state, line, "CMD", node);
    let args = with_shell(&state.image, line);
    let message = format!("CMD {}", go_quoted_list(&args));
    state.image.config.cmd = Some(args);
    state.cmd_set = true;
    message
}

fn convert_entrypoint(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    line: &CommandLine,
    node: &parser::Node,
) -> String {
    let mut seen = state.seen_entrypoint.take();
    used_once(dispatcher, &mut seen, "ENTRYPOINT", node);
    state.seen_entrypoint = seen;
    recommend_json(dispatcher, state, line, "ENTRYPOINT", node);
    let args = with_shell(&state.image, line);
    let message = format!("ENTRYPOINT {}", go_quoted_list(&args));
    state.image.config.entrypoint = Some(args);
    // Setting ENTRYPOINT clears a CMD inherited from the base image.
    if !state.cmd_set {
        state.image.config.cmd = None;
    }
    message
}

fn convert_expose(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    ports: &[String],
    node: &parser::Node,
) -> Result<String> {
    let mut specs = Vec::new();
    for raw in ports {
        let port = dispatcher.expand(state, raw, node)?.result;
        if port.contains(':') {
            dispatcher.linter.run(&check::EXPOSE_INVALID_FORMAT, lines(node), format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"));
        }
        if port != port.to_lowercase() {
            dispatcher.linter.run(
                &check::EXPOSE_PROTO_CASING,
                lines(node),
                format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
            );
        }
        let container = port.rsplit(':').next().unwrap_or(&port).to_lowercase();
        let (range, protocol) = container
            .split_once('/')
            .unwrap_or((container.as_str(), "tcp"));
        let (start, end) = range.split_once('-').unwrap_or((range, range));
        let (Ok(start), Ok(end)) = (start.parse::<u16>(), end.parse::<u16>()) else {
            return Err(dispatcher
                .context
                .error(format!("invalid port `{port}` in `EXPOSE`"), node));
        };
        specs.push(format!("{range}/{protocol}"));
        for number in start..=end.max(start) {
            state
                .image
                .config
                .exposed_ports
                .insert(format!("{number}/{protocol}"), oci::Empty {});
        }
    }
    Ok(format!("EXPOSE [{}]", specs.join(" ")))
}

fn convert_healthcheck(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    spec: &HealthSpec,
    node: &parser::Node,
) -> Result<String> {
    let mut seen = state.seen_healthcheck.take();
    used_once(dispatcher, &mut seen, "HEALTHCHECK", node);
    state.seen_healthcheck = seen;
    let check = match spec {
        HealthSpec::None => oci::Healthcheck {
            test: vec!["NONE".to_owned()],
            ..oci::Healthcheck::default()
        },
        HealthSpec::Cmd { command, flags } => {
            let test = match command {
                CommandLine::Exec(args) => std::iter::once("CMD".to_owned())
                    .chain(args.iter().cloned())
                    .collect(),
                CommandLine::Shell(text) => vec!["CMD-SHELL".to_owned(), text.clone()],
            };
            let duration = |name: &str| -> Result<u64> {
                match flags.get(name) {
                    None => Ok(0),
                    Some(text) => parse_duration(text).ok_or_else(|| {
                        dispatcher
                            .context
                            .error(format!("invalid duration `{text}` for `--{name}`"), node)
                    }),
                }
            };
            let retries = match flags.get("retries") {
                None => 0,
                Some(text) => text.parse().map_err(|_| {
                    dispatcher
                        .context
                        .error(format!("invalid `--retries` value `{text}`"), node)
                })?,
            };
            oci::Healthcheck {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            }
        }
    };
    let message = healthcheck_history(&check);
    state.image.config.healthcheck = Some(check);
    Ok(message)
}

/// The history text of `HEALTHCHECK`: Go's `%q` of the config struct pointer, field by field.
// Compat: buildkit dispatchHealthcheck (`fmt.Sprintf("HEALTHCHECK %q", config)`): `&{`, the
// test as a quoted list, each duration as its quoted `String()`, retries as a quoted rune.
fn healthcheck_history(check: &oci::Healthcheck) -> String {
    let durations = [
        check.interval,
        check.timeout,
        check.start_period,
        check.start_interval,
    ]
    .map(|nanos| format!("\"{}\"", go_format::duration(nanos)));
    format!(
        "HEALTHCHECK &{{{} {} {}}}",
        go_quoted_list(&check.test),
        durations.join(" "),
        go_format::quoted_rune(check.retries)
    )
}

/// Parses Go durations such as `30s`, `1m30s`, `500ms` into nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Some(total as u64)
}

fn convert_maintainer(state: &mut StageState, name: &str) -> String {
    state.image.author = Some(name.to_owned());
    format!("MAINTAINER {name}")
}

fn convert_onbuild(state: &mut StageState, trigger: &str) -> String {
    state
        .image
        .config
        .on_build
        .get_or_insert_with(Vec::new)
        .push(trigger.to_owned());
    format!("ONBUILD {trigger}")
}

fn convert_shell(state: &mut StageState, shell: &[String]) -> String {
    state.image.config.shell = Some(shell.to_vec());
    format!("SHELL [{}]", shell.join(" "))
}

fn convert_stopsignal(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    signal: &str,
    node: &parser::Node,
) -> Result<String> {
    let signal = dispatcher.expand(state, signal, node)?.result;
    let valid = signal.parse::<u32>().is_ok()
        || signal
            .trim_start_matches("SIG")
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-');
    if signal.is_empty() || !valid {
        return Err(dispatcher
            .context
            .error(format!("invalid signal `{signal}`"), node));
    }
    let message = format!("STOPSIGNAL {signal}");
    state.image.config.stop_signal = Some(signal);
    Ok(message)
}

fn convert_user(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    user: &str,
    node: &parser::Node,
) -> Result<String> {
    let user = dispatcher.expand(state, user, node)?.result;
    let message = format!("USER {user}");
    state.image.config.user = Some(user);
    Ok(message)
}

fn convert_volume(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    volumes: &[String],
    node: &parser::Node,
) -> Result<String> {
    let mut expanded = Vec::new();
    for raw in volumes {
        let volume = dispatcher.expand(state, raw, node)?.result;
        if volume.trim().is_empty() {
            return Err(dispatcher.context.error(
                "`VOLUME` specified can not be an empty string".to_owned(),
                node,
            ));
        }
        expanded.push(volume.clone());
        state.image.config.volumes.insert(volume, oci::Empty {});
    }
    Ok(format!("VOLUME [{}]", expanded.join(" ")))
}

fn convert_workdir(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    raw: &str,
    node: &parser::Node,
) -> Result<String> {
    let path = dispatcher.expand(state, raw, node)?.result;
    if !path.starts_with('/') && !state.workdir_set {
        dispatcher.linter.run(
            &check::WORKDIR_RELATIVE_PATH,
            lines(node),
            format!(
                "Relative workdir \"{path}\" can have unexpected results if the base image changes"
            ),
        );
    }
    state.workdir_set = true;
    let current = state
        .image
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".to_owned());
    let workdir = join_workdir(&current, &path);
    state.image.config.working_dir = Some(workdir.clone());
    let message = format!("WORKDIR {workdir}");
    let meta = step_meta(dispatcher, state, node);
    let mut inputs = Inputs::default();
    let base = inputs.add(&state.state);
    let owner = FileOwner {
        user: state.image.config.user.clone().filter(|u| !u.is_empty()),
        group: None,
        mode: Some(0o755),
    };
    let op = Op::File(FileOp {
        base,
        actions: vec![FileAction::Mkdir {
            path: workdir,
            owner,
            make_parents: true,
        }],
    });
    state.state = State::with_op(op, inputs, Some(state.platform.clone()), meta);
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("5"), None);
    }
}
