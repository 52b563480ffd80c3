//! The session a build's RUN steps may reach: secret values and SSH agent sockets, read once
//! for the whole solve (buildx's session attachables). Part of `engine`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::error::Error;
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
            let value = secret.read().map_err(|e| fail(e.to_string()))?;
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
            let socket = entry.agent_socket().map_err(|e| fail(e.to_string()))?;
            let id = entry.id_or_default().to_owned();
            if let Some((other, owner)) = ssh.get(&id)
                && *other != socket
            {
                return Err(fail(format!(
                    "SSH id `{id}` names another agent in target `{owner}`"
                )));
            }
            ssh.insert(id, (socket, &request.target));
        }
    }
    Ok((
        secrets.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        ssh.into_iter().map(|(k, (v, _))| (k, v)).collect(),
    ))
}
