//! The session's SSH agents (`moby.sshforward.v1.SSH`): `CheckAgent` says whether an id is
//! forwarded, and `ForwardAgent` relays one agent connection of a `RUN --mount=type=ssh`
//! step to the host agent's unix socket, a request and its answer at a time. Only listing
//! keys and signing pass; adding, removing, locking and extensions are refused, as buildx's
//! read-only agent does. Part of `remote`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;
use tonic::{Status, Streaming};

use crate::buildflags::{DEFAULT_SSH_ID, Ssh, Unavailable};
use crate::remote::proto::BytesMessage;

/// The gRPC metadata key that names the agent a `ForwardAgent` stream is for.
// Compat: buildkit sshforward.KeySSHID.
const ID_KEY: &str = "buildkit.ssh.id";

/// The largest agent message relayed; OpenSSH's agent refuses larger ones too.
const MAX_MESSAGE: usize = 256 * 1024;

/// `SSH_AGENTC_REQUEST_IDENTITIES`, `SSH_AGENTC_SIGN_REQUEST`: what a build may ask.
const ALLOWED: [u8; 2] = [11, 13];

/// `SSH_AGENT_FAILURE` as a whole message: the answer to anything else.
const FAILURE: [u8; 5] = [0, 0, 0, 1, 5];

/// A target's agent sockets by id.
#[derive(Debug, Default)]
pub(crate) struct Agents(BTreeMap<String, PathBuf>);

impl Agents {
    /// Resolves every `ssh` entry to its socket, so a missing agent fails before anything
    /// is sent.
    pub(crate) fn resolve(entries: &[Ssh]) -> Result<Self, Unavailable> {
        let mut out = BTreeMap::new();
        for entry in entries {
            out.insert(entry.id_or_default().to_owned(), entry.agent_socket()?);
        }
        Ok(Self(out))
    }

    /// Whether there is anything to serve (the methods are announced only then).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The socket for `id` (empty means `default`).
    // Compat: buildkit sshprovider socketProvider.CheckAgent ("unset ssh forward key").
    pub(crate) fn socket(&self, id: &str) -> Result<PathBuf, Status> {
        let id = if id.is_empty() { DEFAULT_SSH_ID } else { id };
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("unset ssh forward key `{id}`")))
    }
}

/// The agent id a `ForwardAgent` stream names in its metadata, `default` without one.
pub(crate) fn stream_id(metadata: &MetadataMap) -> String {
    metadata
        .get(ID_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_SSH_ID)
        .to_owned()
}

/// Relays the daemon's stream to the agent at `socket` until either side closes; each
/// complete request is answered before the next is read.
pub(crate) async fn forward(
    socket: PathBuf,
    mut incoming: Streaming<BytesMessage>,
    sender: mpsc::Sender<Result<BytesMessage, Status>>,
) {
    let mut agent = match UnixStream::connect(&socket).await {
        Ok(agent) => agent,
        Err(error) => {
            let message = format!("failed to connect to `{}`: {error}", socket.display());
            let _ = sender.send(Err(Status::unavailable(message))).await;
            return;
        }
    };
    let mut pending = Vec::new();
    loop {
        while let Some(request) = take_message(&mut pending) {
            let answer = match request {
                Ok(request) if ALLOWED.contains(&request[4]) => {
                    match exchange(&mut agent, &request).await {
                        Ok(answer) => answer,
                        Err(error) => {
                            let _ = sender.send(Err(Status::unavailable(error))).await;
                            return;
                        }
                    }
                }
                Ok(_) => FAILURE.to_vec(),
                Err(error) => {
                    let _ = sender.send(Err(Status::invalid_argument(error))).await;
                    return;
                }
            };
            if sender
                .send(Ok(BytesMessage { data: answer }))
                .await
                .is_err()
            {
                return;
            }
        }
        match incoming.message().await {
            Ok(Some(message)) => pending.extend_from_slice(&message.data),
            Ok(None) | Err(_) => return,
        }
    }
}

/// Takes one whole agent message (length prefix included) off the front of `pending`.
fn take_message(pending: &mut Vec<u8>) -> Option<Result<Vec<u8>, String>> {
    let prefix: [u8; 4] = pending.get(..4)?.try_into().ok()?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length == 0 || length > MAX_MESSAGE {
        return Some(Err(format!("agent message of {length} bytes")));
    }
    if pending.len() < 4 + length {
        return None;
    }
    Some(Ok(pending.drain(..4 + length).collect()))
}

/// Sends one request to the agent and reads its whole answer.
async fn exchange(agent: &mut UnixStream, request: &[u8]) -> Result<Vec<u8>, String> {
    let failed = |e: std::io::Error| format!("the SSH agent: {e}");
    agent.write_all(request).await.map_err(failed)?;
    let mut prefix = [0u8; 4];
    agent.read_exact(&mut prefix).await.map_err(failed)?;
    let length = u32::from_be_bytes(prefix) as usize;
    if length > MAX_MESSAGE {
        return Err(format!("the SSH agent answered {length} bytes"));
    }
    let mut answer = vec![0u8; 4 + length];
    answer[..4].copy_from_slice(&prefix);
    agent.read_exact(&mut answer[4..]).await.map_err(failed)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_comes_from_the_metadata_key_or_defaults() {
        let mut metadata = MetadataMap::new();
        assert_eq!(stream_id(&metadata), "default");
        metadata.insert(ID_KEY, "github".parse().unwrap());
        assert_eq!(stream_id(&metadata), "github");
        metadata.insert(ID_KEY, "".parse().unwrap());
        assert_eq!(stream_id(&metadata), "default");
    }

    #[test]
    fn messages_are_cut_at_their_length_prefix() {
        let mut pending = vec![0, 0, 0, 1, 11, 0, 0, 0, 2, 13];
        assert_eq!(take_message(&mut pending), Some(Ok(vec![0, 0, 0, 1, 11])));
        assert_eq!(take_message(&mut pending), None);
        pending.push(9);
        assert_eq!(
            take_message(&mut pending),
            Some(Ok(vec![0, 0, 0, 2, 13, 9]))
        );
        assert!(pending.is_empty());
        let mut huge = vec![0xff, 0, 0, 0];
        assert!(matches!(take_message(&mut huge), Some(Err(_))));
    }

    #[test]
    fn unknown_id_is_not_found() {
        let agents = Agents::default();
        let status = agents.socket("").unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().contains("`default`"));
    }
}
