//! The `moby.buildkit.v1.Control` calls bake makes: `ListWorkers`, `Info`, `Solve`, `Status`
//! and `Session`, as plain tonic client calls on hand-written messages. Part of `remote`.

use http::uri::PathAndQuery;
use tonic::client::Grpc;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};
use tonic_prost::ProstCodec;

use crate::remote::proto::{
    BuildkitVersion, BytesMessage, InfoRequest, InfoResponse, ListWorkersRequest,
    ListWorkersResponse, SolveRequest, SolveResponse, StatusRequest, StatusResponse, WorkerRecord,
};

/// A connected control-API client; cheap to clone (the channel is shared).
#[derive(Clone)]
pub(crate) struct Control {
    grpc: Grpc<Channel>,
}

fn path(method: &'static str) -> PathAndQuery {
    PathAndQuery::from_static(method)
}

impl Control {
    /// Wraps a channel.
    pub(crate) fn new(channel: Channel) -> Self {
        Self {
            grpc: Grpc::new(channel),
        }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }

    /// The daemon's workers (platforms, labels).
    pub(crate) async fn list_workers(&mut self) -> Result<Vec<WorkerRecord>, Status> {
        self.ready().await?;
        let response: tonic::Response<ListWorkersResponse> = self
            .grpc
            .unary(
                Request::new(ListWorkersRequest::default()),
                path("/moby.buildkit.v1.Control/ListWorkers"),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner().record)
    }

    /// The daemon's BuildKit version; `None` for daemons older than the `Info` call
    /// (BuildKit v0.11), which answer `Unimplemented`.
    pub(crate) async fn info(&mut self) -> Result<Option<BuildkitVersion>, Status> {
        self.ready().await?;
        let response: Result<tonic::Response<InfoResponse>, Status> = self
            .grpc
            .unary(
                Request::new(InfoRequest {}),
                path("/moby.buildkit.v1.Control/Info"),
                ProstCodec::default(),
            )
            .await;
        match response {
            Ok(response) => Ok(response.into_inner().buildkit_version),
            Err(status) if status.code() == Code::Unimplemented => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// Runs one solve to its end.
    pub(crate) async fn solve(&mut self, request: SolveRequest) -> Result<SolveResponse, Status> {
        self.ready().await?;
        let response: tonic::Response<SolveResponse> = self
            .grpc
            .unary(
                Request::new(request),
                path("/moby.buildkit.v1.Control/Solve"),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// The progress of the solve named `reference`, until it ends.
    pub(crate) async fn status(
        &mut self,
        reference: &str,
    ) -> Result<Streaming<StatusResponse>, Status> {
        self.ready().await?;
        let response = self
            .grpc
            .server_streaming(
                Request::new(StatusRequest {
                    r#ref: reference.to_owned(),
                }),
                path("/moby.buildkit.v1.Control/Status"),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// Opens the session tunnel: the daemon's side of an HTTP/2 connection carried in
    /// `BytesMessage`s, with the session's identity in `headers`.
    pub(crate) async fn session(
        &mut self,
        outgoing: impl tokio_stream::Stream<Item = BytesMessage> + Send + 'static,
        headers: &[(String, String)],
    ) -> Result<Streaming<BytesMessage>, Status> {
        self.ready().await?;
        let mut request = Request::new(outgoing);
        for (name, value) in headers {
            let name = tonic::metadata::MetadataKey::from_bytes(name.to_lowercase().as_bytes())
                .map_err(|e| Status::internal(e.to_string()))?;
            let value = value
                .parse()
                .map_err(|_| Status::internal(format!("invalid session header value `{value}`")))?;
            request.metadata_mut().append(name, value);
        }
        let response = self
            .grpc
            .streaming(
                request,
                path("/moby.buildkit.v1.Control/Session"),
                ProstCodec::default(),
            )
            .await?;
        Ok(response.into_inner())
    }
}
