//! The session a build's RUN steps may reach: secret values and SSH agent sockets, read once
//! for the whole solve (buildx's session attachables). Part of `engine`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::error::Error;
use crate::engine::settings::absolute;
use crate::plan::BuildRequest;

type Result<T> = std::result::Result<T, Error>;

/// The secret values and SSH agent sockets the requests name (buildx's session attachables),
/// read once for the whole solve.
// Diverges: buildx gives each target its own session; one solve shares them, so one id with
// different sources in two targets is an error rather than a silent pick.
#[allow(clippy::type_complexity, reason = "two maps by id, used once")]
pub(crate) fn session(
    requests: &[&BuildRequest],
) -> Result<(BTreeMap<String, Vec<u8>>, BTreeMap<String, PathBuf>)> {
    let mut secrets: BTreeMap<String, (Vec<u8>, &str)> = BTreeMap::new();
    let mut ssh: BTreeMap<String, (PathBuf, &str)> = BTreeMap::new();
    for request in requests {
        let fail = |message: String| Error::Session {
            target: request.target.clone(),
            message,
        };
        for secret in &request.secrets {
            let value = secret_value(secret).map_err(fail)?;
            if let Some((other, owner)) = secrets.get(&secret.id)
                && *other != value
            {
                return Err(fail(format!(
                    "secret `{}` has a different value in target `{owner}`; one build shares one value per id",
                    secret.id
                )));
            }
            secrets.insert(secret.id.clone(), (value, &request.target));
        }
        for entry in &request.ssh {
            let socket = ssh_socket(entry).map_err(fail)?;
            if let Some((other, owner)) = ssh.get(&entry.id)
                && *other != socket
            {
                return Err(fail(format!(
                    "SSH id `{}` names another agent in target `{owner}`",
                    entry.id
                )));
            }
            ssh.insert(entry.id.clone(), (socket, &request.target));
        }
    }
    Ok((
        secrets.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        ssh.into_iter().map(|(k, (v, _))| (k, v)).collect(),
    ))
}

/// A secret's value: from `env=`, from `src=`, or (neither given) from the environment
/// variable named like the id if it is set, else the file named like it.
// Compat: buildkit secretsprovider: an id alone means the env variable, then the file.
fn secret_value(secret: &crate::buildflags::Secret) -> std::result::Result<Vec<u8>, String> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| {
                format!(
                    "secret `{}`: environment variable `{name}` is not set",
                    secret.id
                )
            })
    };
    let from_file = |path: &str| {
        std::fs::read(absolute(path))
            .map_err(|e| format!("secret `{}`: failed to read `{path}`: {e}", secret.id))
    };
    if !secret.env.is_empty() {
        from_env(&secret.env)
    } else if !secret.src.is_empty() {
        from_file(&secret.src)
    } else if std::env::var_os(&secret.id).is_some() {
        from_env(&secret.id)
    } else {
        from_file(&secret.id)
    }
}

/// The agent socket an `ssh` entry names: `$SSH_AUTH_SOCK` for an entry without paths, else
/// its first path, which must be a socket.
fn ssh_socket(entry: &crate::buildflags::Ssh) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt as _;
    let path = match entry.paths.first() {
        Some(path) => PathBuf::from(absolute(path)),
        None => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from).ok_or_else(|| {
            format!(
                "SSH `{}`: no agent (SSH_AUTH_SOCK is not set; start ssh-agent or give a socket path)",
                entry.id
            )
        })?,
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(path),
        Ok(_) => Err(format!(
            "SSH `{}`: `{}` is not an agent socket; key files are not supported (load them into ssh-agent and use its socket)",
            entry.id,
            path.display()
        )),
        Err(e) => Err(format!("SSH `{}`: `{}`: {e}", entry.id, path.display())),
    }
}
