//! The session BuildKit calls back into during a solve: bake serves HTTP/2 gRPC over a
//! connection the daemon opened towards it (the engine's upgraded `/session`, or the
//! control API's `Session` tunnel), with file sync of the local directories, file receive
//! for exports, the target's secrets and SSH agents, registry credentials from the Docker
//! config and the health check. Part of `remote`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::Write as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::server::Grpc;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::plan::BuildRequest;
use crate::registry::DockerConfig;
use crate::remote::error::Error;
use crate::remote::filesync::{self, Selection};
use crate::remote::proto::{
    BytesMessage, CheckAgentRequest, CheckAgentResponse, CredentialsRequest, GetSecretRequest,
    GetSecretResponse, HealthCheckRequest, HealthCheckResponse, Packet,
};
use crate::remote::secrets::Secrets;
use crate::remote::sshforward::{self, Agents};
use crate::remote::transport::Io;

const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";
const FILE_SEND: &str = "/moby.filesync.v1.FileSend/DiffCopy";
const CREDENTIALS: &str = "/moby.filesync.v1.Auth/Credentials";
const FETCH_TOKEN: &str = "/moby.filesync.v1.Auth/FetchToken";
const GET_TOKEN_AUTHORITY: &str = "/moby.filesync.v1.Auth/GetTokenAuthority";
const VERIFY_TOKEN_AUTHORITY: &str = "/moby.filesync.v1.Auth/VerifyTokenAuthority";
const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
const CHECK_AGENT: &str = "/moby.sshforward.v1.SSH/CheckAgent";
const FORWARD_AGENT: &str = "/moby.sshforward.v1.SSH/ForwardAgent";
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// The name prefix of staged exports (beside their destination), which a context sync never
/// sends.
pub(crate) const STAGED_PREFIX: &str = ".bake-export-";

/// What a target's sessions provide besides files: its secrets and SSH agents, and the
/// registry credentials (buildx's session attachables).
#[derive(Debug)]
pub(crate) struct Attachables {
    /// The target's secrets.
    pub(crate) secrets: Secrets,
    /// The target's SSH agents.
    pub(crate) agents: Agents,
    /// Where registry credentials come from.
    pub(crate) auth: Arc<DockerConfig>,
}

impl Attachables {
    /// Checks and resolves what `request` names, before anything is sent to the daemon.
    pub(crate) fn resolve(request: &BuildRequest, auth: Arc<DockerConfig>) -> Result<Self, Error> {
        let fail = |error: crate::buildflags::Unavailable| Error::Session {
            target: request.target.clone(),
            message: error.to_string(),
        };
        Ok(Self {
            secrets: Secrets::resolve(&request.secrets).map_err(fail)?,
            agents: Agents::resolve(&request.ssh).map_err(fail)?,
            auth,
        })
    }
}

/// Where an export the daemon sends back is written.
#[derive(Debug, Clone)]
pub(crate) enum ExportTarget {
    /// A directory tree (`type=local`), received with fsutil's protocol.
    Directory(PathBuf),
    /// One byte stream (`type=tar`, `oci`, `docker`).
    File(PathBuf),
}

/// One solve's session: its identity and what it serves.
#[derive(Debug)]
pub(crate) struct Session {
    /// The session id the solve request names.
    pub(crate) id: String,
    /// Directories served by name (`context`, `dockerfile`, named local contexts).
    pub(crate) directories: BTreeMap<String, PathBuf>,
    /// Where an export goes, if the solve exports to the client.
    pub(crate) export: Option<ExportTarget>,
    /// Paths this build creates (outputs and their new parent directories): never sent,
    /// even when they lie inside a served directory, since they did not exist when the
    /// build started.
    pub(crate) hidden: Vec<PathBuf>,
    /// Secrets, SSH agents and registry credentials.
    pub(crate) attachables: Arc<Attachables>,
}

type ResponseStream<T> = ReceiverStream<Result<T, Status>>;

impl Session {
    /// The headers that announce the session and its methods.
    // Compat: buildkit session.Session.Run (X-Docker-Expose-Session-* headers).
    pub(crate) fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![
            ("X-Docker-Expose-Session-Uuid".to_owned(), self.id.clone()),
            ("X-Docker-Expose-Session-Name".to_owned(), "bake".to_owned()),
            // Compat: buildx uses a key derived from the context directory, so two builds of
            // one directory share the daemon's file-sync cache; the session id is unique.
            (
                "X-Docker-Expose-Session-Sharedkey".to_owned(),
                self.directories
                    .get("context")
                    .map_or_else(|| self.id.clone(), |p| p.display().to_string()),
            ),
        ];
        let mut methods = vec![
            HEALTH,
            CREDENTIALS,
            FETCH_TOKEN,
            GET_TOKEN_AUTHORITY,
            VERIFY_TOKEN_AUTHORITY,
        ];
        if !self.directories.is_empty() {
            methods.push(DIFF_COPY);
        }
        if self.export.is_some() {
            methods.push(FILE_SEND);
        }
        if !self.attachables.secrets.is_empty() {
            methods.push(GET_SECRET);
        }
        if !self.attachables.agents.is_empty() {
            methods.extend([CHECK_AGENT, FORWARD_AGENT]);
        }
        for method in methods {
            headers.push((
                "X-Docker-Expose-Session-Grpc-Method".to_owned(),
                method.to_owned(),
            ));
        }
        headers
    }

    /// Serves the session's gRPC methods over `io` until the daemon closes it.
    pub(crate) async fn serve(self: Arc<Self>, io: impl Io + 'static) {
        let service = hyper::service::service_fn(move |request| {
            let session = self.clone();
            async move { Ok::<_, Infallible>(session.route(request).await) }
        });
        // The connection ends when the daemon drops the session; that is not an error.
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), service)
            .await;
    }

    async fn route(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<tonic::body::Body> {
        match request.uri().path() {
            HEALTH => {
                let service = tower::service_fn(|_: Request<HealthCheckRequest>| async {
                    Ok::<_, Status>(Response::new(HealthCheckResponse { status: 1 }))
                });
                Grpc::new(ProstCodec::default())
                    .unary(service, request)
                    .await
            }
            CREDENTIALS => {
                let auth = self.attachables.auth.clone();
                let service = tower::service_fn(move |request: Request<CredentialsRequest>| {
                    let auth = auth.clone();
                    async move {
                        crate::remote::auth::credentials(auth, request.into_inner().host)
                            .await
                            .map(Response::new)
                    }
                });
                Grpc::new(ProstCodec::default())
                    .unary(service, request)
                    .await
            }
            FETCH_TOKEN | GET_TOKEN_AUTHORITY | VERIFY_TOKEN_AUTHORITY => {
                Status::unimplemented("bake keeps no token authority; use `Credentials`")
                    .into_http()
            }
            GET_SECRET => {
                let attachables = self.attachables.clone();
                let service = tower::service_fn(move |request: Request<GetSecretRequest>| {
                    let attachables = attachables.clone();
                    async move {
                        let id = request.into_inner().id;
                        let data = attachables.secrets.get(&id).await?;
                        Ok::<_, Status>(Response::new(GetSecretResponse { data }))
                    }
                });
                Grpc::new(ProstCodec::default())
                    .unary(service, request)
                    .await
            }
            CHECK_AGENT => {
                let attachables = self.attachables.clone();
                let service = tower::service_fn(move |request: Request<CheckAgentRequest>| {
                    let attachables = attachables.clone();
                    async move {
                        attachables.agents.socket(&request.into_inner().id)?;
                        Ok::<_, Status>(Response::new(CheckAgentResponse {}))
                    }
                });
                Grpc::new(ProstCodec::default())
                    .unary(service, request)
                    .await
            }
            FORWARD_AGENT => {
                let attachables = self.attachables.clone();
                let service =
                    tower::service_fn(move |request: Request<Streaming<BytesMessage>>| {
                        let attachables = attachables.clone();
                        async move { forward_agent(&attachables.agents, request) }
                    });
                Grpc::new(ProstCodec::default())
                    .streaming(service, request)
                    .await
            }
            DIFF_COPY => {
                let session = self.clone();
                let service = tower::service_fn(move |request: Request<Streaming<Packet>>| {
                    let session = session.clone();
                    async move { session.diff_copy(request) }
                });
                Grpc::new(ProstCodec::default())
                    .streaming(service, request)
                    .await
            }
            FILE_SEND => match self.export.clone() {
                Some(ExportTarget::Directory(dest)) => {
                    let service = tower::service_fn(move |request: Request<Streaming<Packet>>| {
                        let dest = dest.clone();
                        async move { receive_dir(dest, request) }
                    });
                    Grpc::new(ProstCodec::default())
                        .streaming(service, request)
                        .await
                }
                Some(ExportTarget::File(path)) => {
                    let service =
                        tower::service_fn(move |request: Request<Streaming<BytesMessage>>| {
                            let path = path.clone();
                            async move { receive_file(path, request).await }
                        });
                    Grpc::new(ProstCodec::default())
                        .streaming(service, request)
                        .await
                }
                None => Status::unimplemented("no export in this session").into_http(),
            },
            other => Status::unimplemented(format!("`{other}` is not served")).into_http(),
        }
    }

    /// Serves the directory named by the request's `dir-name`.
    fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<ResponseStream<Packet>>, Status> {
        let metadata = request.metadata();
        let all = |key: &str| -> Vec<String> {
            metadata
                .get_all(key)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect()
        };
        let name = all("dir-name").into_iter().next().unwrap_or_default();
        let root = self
            .directories
            .get(&name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no access allowed to dir `{name}`")))?;
        let mut exclude_patterns = all("exclude-patterns");
        // Exports waiting to be moved into place sit beside their destination, which may be
        // inside a context: they are bake's, never the build's input.
        exclude_patterns.push(format!("**/{}*", STAGED_PREFIX));
        exclude_patterns.extend(
            self.hidden
                .iter()
                .filter_map(|path| path.strip_prefix(&root).ok())
                .filter(|relative| !relative.as_os_str().is_empty())
                .map(|relative| escape_pattern(&relative.to_string_lossy())),
        );
        let selection = Selection {
            include_patterns: all("include-patterns"),
            exclude_patterns,
            follow_paths: all("followpaths"),
        };
        let incoming = request.into_inner();
        let (sender, receiver) = mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            if let Err(error) = filesync::send_dir(&root, &selection, incoming, &sender) {
                let _ = sender.blocking_send(Err(error));
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// `path` as a pattern that matches only itself (Go's `filepath.Match` metacharacters
/// escaped).
fn escape_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Relays one agent connection to the socket of the id the stream's metadata names.
fn forward_agent(
    agents: &Agents,
    request: Request<Streaming<BytesMessage>>,
) -> Result<Response<ResponseStream<BytesMessage>>, Status> {
    let socket = agents.socket(&sshforward::stream_id(request.metadata()))?;
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(sshforward::forward(socket, request.into_inner(), sender));
    Ok(Response::new(ReceiverStream::new(receiver)))
}

fn receive_dir(
    dest: PathBuf,
    request: Request<Streaming<Packet>>,
) -> Result<Response<ResponseStream<Packet>>, Status> {
    let incoming = request.into_inner();
    let (sender, receiver) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        if let Err(error) = filesync::receive_dir(&dest, incoming, &sender) {
            let _ = sender.blocking_send(Err(error));
        }
    });
    Ok(Response::new(ReceiverStream::new(receiver)))
}

/// Writes a byte-stream export to `path`; the response ends once everything is on disk.
async fn receive_file(
    path: PathBuf,
    request: Request<Streaming<BytesMessage>>,
) -> Result<Response<ResponseStream<BytesMessage>>, Status> {
    let mut incoming = request.into_inner();
    let (sender, receiver) = mpsc::channel(1);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let internal = |e: std::io::Error| Status::internal(e.to_string());
        let result = (|| {
            let mut file = std::fs::File::create(&path).map_err(internal)?;
            while let Some(message) = handle.block_on(incoming.message())? {
                file.write_all(&message.data).map_err(internal)?;
            }
            file.sync_all().map_err(internal)
        })();
        if let Err(error) = result {
            let _ = sender.blocking_send(Err(error));
        }
    });
    Ok(Response::new(ReceiverStream::new(receiver)))
}
