//! `RUN`: the command line (shell, exec, heredoc), its environment and every `--mount` type,
//! `--network`, `--security` and `--device`.
//!
//! Compat: buildkit dockerfile2llb/convert.go dispatchRun and convert_runmount.go.

use crate::frontend::dockerfile::copy::from_state;
use crate::frontend::dockerfile::error::Result;
use crate::frontend::dockerfile::instructions::{CommandLine, MountSpec, MountType, RunSpec};
use crate::frontend::dockerfile::options::PROXY_ARGS;
use crate::frontend::dockerfile::parser;
use crate::frontend::dockerfile::stage::{Dispatcher, StageState};
use crate::frontend::dockerfile::step::{build_context, join_workdir, step_meta, with_shell};
use crate::graph::{
    CacheSharing, ExecMeta, ExecOp, FileAction, FileOp, FileOwner, Inputs, Mount, MountKind,
    NetworkMode, Op, SecretEnv, SecurityMode, State, VertexMeta,
};

/// Lowers `RUN`.
pub(crate) fn convert_run(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &mut StageState,
    spec: &RunSpec,
    node: &parser::Node,
) -> Result<String> {
    let mut inputs = Inputs::default();
    let root = inputs.add(&state.state);
    let mut mounts = vec![Mount {
        input: root,
        selector: String::new(),
        dest: "/".to_owned(),
        output: Some(0),
        readonly: false,
        kind: MountKind::Bind,
    }];
    let args = command_args(dispatcher, state, spec, node, &mut inputs, &mut mounts)?;
    let mut secret_env = Vec::new();
    let mut ssh_count = 0;
    for spec_mount in &spec.mounts {
        let (mount, env) = convert_mount(
            dispatcher,
            state,
            spec_mount,
            node,
            &mut inputs,
            &mut ssh_count,
        )?;
        // Compat: a secret with `env=` and no `target=` is exposed only as a variable.
        let env_only = env.is_some() && !spec_mount.options.contains_key("target");
        if !env_only {
            mounts.push(mount);
        }
        secret_env.extend(env);
    }
    // ARGs become environment variables of the process unless ENV already sets them.
    let mut env = Vec::with_capacity(state.image.config.env.len() + state.args.len());
    env.extend_from_slice(&state.image.config.env);
    for (key, value) in &state.args {
        let set_by_env = state.image.config.env.iter().any(|entry| {
            entry.len() > key.len()
                && entry.starts_with(key.as_str())
                && entry.as_bytes()[key.len()] == b'='
        });
        if !set_by_env {
            env.push(format!("{key}={value}"));
        }
    }
    let mut message = String::from("RUN ");
    if !state.args.is_empty() {
        // `|<count> K=v K=v ` as BuildKit writes it, built in place.
        message.push('|');
        message.push_str(&state.args.len().to_string());
        for (key, value) in &state.args {
            message.push(' ');
            message.push_str(key);
            message.push('=');
            message.push_str(value);
        }
        message.push(' ');
    }
    message.push_str(&args.join(" "));
    message.push_str(" # buildkit");
    let meta = ExecMeta {
        args,
        env,
        cwd: state
            .image
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".to_owned()),
        user: state.image.config.user.clone().unwrap_or_default(),
        extra_hosts: dispatcher.context.options.extra_hosts.clone(),
        devices: spec.devices.clone(),
        shm_size: dispatcher.context.options.shm_size,
        ulimits: dispatcher.context.options.ulimits.clone(),
    };
    // Compat: BuildKit's `force-network-mode` sets the stage's default network; a step's own
    // `--network` (other than `default`) replaces it.
    let network = match spec.network.as_deref() {
        Some("host") => NetworkMode::Host,
        Some("none") => NetworkMode::None,
        _ => dispatcher.context.options.network,
    };
    let security = if spec.security.as_deref() == Some("insecure") {
        SecurityMode::Insecure
    } else {
        SecurityMode::Sandbox
    };
    let vertex_meta = step_meta(dispatcher, state, node);
    let proxy_env = dispatcher
        .context
        .options
        .build_args
        .iter()
        .filter(|(key, _)| PROXY_ARGS.contains(&key.as_str()) && !state.declared.contains(*key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let op = Op::Exec(ExecOp {
        meta,
        mounts,
        network,
        security,
        secret_env,
        proxy_env,
        resources: dispatcher.context.options.resources.clone(),
    });
    state.state = State::with_op(op, inputs, Some(state.platform.clone()), vertex_meta);
    Ok(message)
}

/// Builds argv: shell/exec form, with heredocs appended for the shell or run as a script.
// Compat: buildkit dispatchRun heredoc handling (a lone heredoc with a shebang becomes a file
// mounted under /dev/pipes and executed).
fn command_args(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    spec: &RunSpec,
    node: &parser::Node,
    inputs: &mut Inputs,
    mounts: &mut Vec<Mount>,
) -> Result<Vec<String>> {
    let CommandLine::Shell(text) = &spec.command else {
        return Ok(with_shell(&state.image, &spec.command));
    };
    let Some(first) = spec.heredocs.first() else {
        return Ok(with_shell(&state.image, &spec.command));
    };
    let content = |heredoc: &parser::Heredoc| -> String {
        if heredoc.chomp {
            heredoc
                .content
                .lines()
                .map(|l| format!("{}\n", l.trim_start_matches('\t')))
                .collect()
        } else {
            heredoc.content.clone()
        }
    };
    let lone =
        spec.heredocs.len() == 1 && text.split_whitespace().count() == 1 && text.starts_with("<<");
    if !lone {
        let mut script = text.clone();
        for heredoc in &spec.heredocs {
            script.push('\n');
            script.push_str(&heredoc.content);
            script.push_str(&heredoc.name);
        }
        return Ok(with_shell(&state.image, &CommandLine::Shell(script)));
    }
    let body = content(first);
    if !body.starts_with("#!") {
        return Ok(with_shell(&state.image, &CommandLine::Shell(body)));
    }
    let path = format!("/{}", first.name);
    let op = Op::File(FileOp {
        base: None,
        actions: vec![FileAction::Mkfile {
            path: path.clone(),
            owner: FileOwner {
                mode: Some(0o755),
                ..FileOwner::default()
            },
            data: body,
        }],
    });
    let meta = VertexMeta {
        name: format!("[internal] preparing inline document {}", first.name),
        location: Some(dispatcher.context.location(node)),
        ignore_cache: false,
    };
    let script = State::with_op(op, Inputs::default(), None, meta);
    mounts.push(Mount {
        input: inputs.add(&script),
        selector: path,
        dest: format!("/dev/pipes/{}", first.name),
        output: None,
        readonly: true,
        kind: MountKind::Bind,
    });
    Ok(vec![format!("/dev/pipes/{}", first.name)])
}

fn option(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    mount: &MountSpec,
    key: &str,
    node: &parser::Node,
) -> Result<Option<String>> {
    match mount.options.get(key) {
        // `from` is resolved against the global args by `from_state`.
        Some(value) if key == "from" => Ok(Some(value.clone())),
        Some(value) => Ok(Some(dispatcher.expand(state, value, node)?.result)),
        None => Ok(None),
    }
}

fn owner(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    mount: &MountSpec,
    node: &parser::Node,
    default_mode: u32,
) -> Result<FileOwner> {
    let mode = match option(dispatcher, state, mount, "mode", node)? {
        Some(text) => Some(u32::from_str_radix(&text, 8).map_err(|_| {
            dispatcher
                .context
                .error(format!("invalid mount mode `{text}`"), node)
        })?),
        None => Some(default_mode),
    };
    Ok(FileOwner {
        user: option(dispatcher, state, mount, "uid", node)?,
        group: option(dispatcher, state, mount, "gid", node)?,
        mode,
    })
}

fn is_true(value: Option<&String>) -> bool {
    value.is_some_and(|v| v == "true")
}

/// One `--mount` being lowered: the spec plus what every mount type needs.
struct MountRequest<'m> {
    mount: &'m MountSpec,
    node: &'m parser::Node,
    dest: Option<String>,
    source: String,
    required: bool,
}

fn convert_mount(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    mount: &MountSpec,
    node: &parser::Node,
    inputs: &mut Inputs,
    ssh_count: &mut usize,
) -> Result<(Mount, Option<SecretEnv>)> {
    let target = option(dispatcher, state, mount, "target", node)?;
    let workdir = state
        .image
        .config
        .working_dir
        .clone()
        .unwrap_or_else(|| "/".to_owned());
    let request = MountRequest {
        mount,
        node,
        dest: target.as_deref().map(|t| join_workdir(&workdir, t)),
        source: option(dispatcher, state, mount, "source", node)?.unwrap_or_default(),
        required: is_true(mount.options.get("required")),
    };
    let readonly_default = !matches!(mount.kind, MountType::Cache | MountType::Tmpfs);
    let readonly = mount
        .options
        .get("readonly")
        .map_or(readonly_default, |v| v == "true");
    let mut env = None;
    let (input, kind, dest) = match mount.kind {
        MountType::Bind => {
            let from = match option(dispatcher, state, mount, "from", node)? {
                Some(from) => from_state(dispatcher, state, &from, node)?,
                None => build_context(dispatcher, state, node)?,
            };
            (
                inputs.add(&from),
                MountKind::Bind,
                request.dest.clone().unwrap_or_default(),
            )
        }
        MountType::Cache => cache_mount(dispatcher, state, &request, inputs)?,
        MountType::Tmpfs => {
            let size = match option(dispatcher, state, mount, "size", node)? {
                Some(text) => parse_size(&text).ok_or_else(|| {
                    dispatcher
                        .context
                        .error(format!("invalid tmpfs size `{text}`"), node)
                })?,
                None => 0,
            };
            (
                None,
                MountKind::Tmpfs { size },
                request.dest.clone().unwrap_or_default(),
            )
        }
        MountType::Secret => {
            let (kind, dest, secret_env) = secret_mount(dispatcher, state, &request)?;
            env = secret_env;
            (None, kind, dest)
        }
        MountType::Ssh => {
            let id = option(dispatcher, state, mount, "id", node)?
                .unwrap_or_else(|| "default".to_owned());
            *ssh_count += 1;
            let dest = request
                .dest
                .clone()
                .unwrap_or_else(|| format!("/run/buildkit/ssh_agent.{}", *ssh_count - 1));
            let owner = owner(dispatcher, state, mount, node, 0o600)?;
            (
                None,
                MountKind::Ssh {
                    id,
                    owner,
                    required: request.required,
                },
                dest,
            )
        }
    };
    let selector = match mount.kind {
        MountType::Bind | MountType::Cache => request.source,
        _ => String::new(),
    };
    Ok((
        Mount {
            input,
            selector,
            dest,
            output: None,
            readonly,
            kind,
        },
        env,
    ))
}

fn cache_mount(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    request: &MountRequest<'_>,
    inputs: &mut Inputs,
) -> Result<(Option<usize>, MountKind, String)> {
    let (mount, node) = (request.mount, request.node);
    let dest = request.dest.clone().unwrap_or_default();
    let id = option(dispatcher, state, mount, "id", node)?.unwrap_or_else(|| dest.clone());
    let sharing = match option(dispatcher, state, mount, "sharing", node)?.as_deref() {
        None | Some("shared") => CacheSharing::Shared,
        Some("private") => CacheSharing::Private,
        Some("locked") => CacheSharing::Locked,
        Some(other) => {
            let message = format!(
                "unsupported cache sharing `{other}` (expected `shared`, `private` or `locked`)"
            );
            return Err(dispatcher.context.error(message, node));
        }
    };
    let from = match option(dispatcher, state, mount, "from", node)? {
        Some(from) => inputs.add(&from_state(dispatcher, state, &from, node)?),
        None => None,
    };
    let owner = owner(dispatcher, state, mount, node, 0o755)?;
    Ok((from, MountKind::Cache { id, sharing, owner }, dest))
}

/// A secret's id defaults to `source`, then the target's file name, then the `env` name.
fn secret_mount(
    dispatcher: &mut Dispatcher<'_, '_>,
    state: &StageState,
    request: &MountRequest<'_>,
) -> Result<(MountKind, String, Option<SecretEnv>)> {
    let (mount, node) = (request.mount, request.node);
    let id = option(dispatcher, state, mount, "id", node)?
        .or_else(|| (!request.source.is_empty()).then(|| request.source.clone()))
        .or_else(|| {
            request
                .dest
                .as_deref()
                .and_then(|d| d.rsplit('/').next())
                .map(str::to_owned)
        })
        .or_else(|| mount.options.get("env").cloned())
        .unwrap_or_default();
    let env = option(dispatcher, state, mount, "env", node)?.map(|name| SecretEnv {
        id: id.clone(),
        name,
        required: request.required,
    });
    let dest = request
        .dest
        .clone()
        .unwrap_or_else(|| format!("/run/secrets/{id}"));
    let owner = owner(dispatcher, state, mount, node, 0o400)?;
    Ok((
        MountKind::Secret {
            id,
            owner,
            required: request.required,
        },
        dest,
        env,
    ))
}

/// Parses `64m`, `1g`, `1024` (bytes) like go-units RAMInBytes.
fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let number: f64 = lower[..digits_end].parse().ok()?;
    let scale: u64 = match lower[digits_end..].trim_end_matches(['b', 'i']) {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    Some((number * scale as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
    }
}
