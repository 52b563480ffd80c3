//! The handful of BuildKit protobuf messages bake sends and receives, written by hand with
//! `prost` derives from the field numbers of BuildKit's `.proto` files, so the build needs no
//! `protoc`. Part of `remote`.
//!
//! Sources: `api/services/control/control.proto`, `api/types/worker.proto`,
//! `solver/pb/ops.proto` (Platform, Definition), fsutil's `types/wire.proto` and
//! `types/stat.proto`, `session/auth/auth.proto`, `session/secrets/secrets.proto`,
//! `session/sshforward/ssh.proto`, and gRPC's `health/v1/health.proto`.
//! Fields bake never reads are left out: protobuf skips unknown fields.

use std::collections::BTreeMap;

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct Timestamp {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

impl Timestamp {
    /// Nanoseconds since the epoch.
    pub(crate) fn nanos(&self) -> i128 {
        i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// `pb.Platform`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Platform {
    #[prost(string, tag = "1")]
    pub(crate) architecture: String,
    #[prost(string, tag = "2")]
    pub(crate) os: String,
    #[prost(string, tag = "3")]
    pub(crate) variant: String,
}

/// `pb.Definition`: serialized LLB ops (only sent empty: the front end runs on the daemon).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Definition {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub(crate) def: Vec<Vec<u8>>,
}

/// `moby.buildkit.v1.CacheOptionsEntry`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CacheOptionsEntry {
    #[prost(string, tag = "1")]
    pub(crate) r#type: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub(crate) attrs: BTreeMap<String, String>,
}

/// `moby.buildkit.v1.CacheOptions`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CacheOptions {
    #[prost(message, repeated, tag = "4")]
    pub(crate) exports: Vec<CacheOptionsEntry>,
    #[prost(message, repeated, tag = "5")]
    pub(crate) imports: Vec<CacheOptionsEntry>,
}

/// `moby.buildkit.v1.SolveRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SolveRequest {
    #[prost(string, tag = "1")]
    pub(crate) r#ref: String,
    #[prost(message, optional, tag = "2")]
    pub(crate) definition: Option<Definition>,
    /// The single exporter every BuildKit version reads (`ExporterDeprecated` since v0.13).
    #[prost(string, tag = "3")]
    pub(crate) exporter: String,
    #[prost(btree_map = "string, string", tag = "4")]
    pub(crate) exporter_attrs: BTreeMap<String, String>,
    #[prost(string, tag = "5")]
    pub(crate) session: String,
    #[prost(string, tag = "6")]
    pub(crate) frontend: String,
    #[prost(btree_map = "string, string", tag = "7")]
    pub(crate) frontend_attrs: BTreeMap<String, String>,
    #[prost(message, optional, tag = "8")]
    pub(crate) cache: Option<CacheOptions>,
    #[prost(string, repeated, tag = "9")]
    pub(crate) entitlements: Vec<String>,
}

/// `moby.buildkit.v1.SolveResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SolveResponse {
    #[prost(btree_map = "string, string", tag = "1")]
    pub(crate) exporter_response: BTreeMap<String, String>,
}

/// `moby.buildkit.v1.StatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StatusRequest {
    #[prost(string, tag = "1")]
    pub(crate) r#ref: String,
}

/// `moby.buildkit.v1.Vertex`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Vertex {
    #[prost(string, tag = "1")]
    pub(crate) digest: String,
    #[prost(string, tag = "3")]
    pub(crate) name: String,
    #[prost(bool, tag = "4")]
    pub(crate) cached: bool,
    #[prost(message, optional, tag = "5")]
    pub(crate) started: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub(crate) completed: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub(crate) error: String,
}

/// `moby.buildkit.v1.VertexLog`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct VertexLog {
    #[prost(string, tag = "1")]
    pub(crate) vertex: String,
    #[prost(int64, tag = "3")]
    pub(crate) stream: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) msg: Vec<u8>,
}

/// `moby.buildkit.v1.VertexStatus`: a counter of a vertex's work (bytes sent, a layer).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct VertexStatus {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(string, tag = "2")]
    pub(crate) vertex: String,
    #[prost(int64, tag = "4")]
    pub(crate) current: i64,
    #[prost(int64, tag = "5")]
    pub(crate) total: i64,
    #[prost(message, optional, tag = "7")]
    pub(crate) started: Option<Timestamp>,
    #[prost(message, optional, tag = "8")]
    pub(crate) completed: Option<Timestamp>,
}

/// `moby.buildkit.v1.StatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StatusResponse {
    #[prost(message, repeated, tag = "1")]
    pub(crate) vertexes: Vec<Vertex>,
    #[prost(message, repeated, tag = "2")]
    pub(crate) statuses: Vec<VertexStatus>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) logs: Vec<VertexLog>,
}

/// `moby.buildkit.v1.BytesMessage`: one chunk of a tunnelled byte stream.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BytesMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) data: Vec<u8>,
}

/// `moby.buildkit.v1.ListWorkersRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ListWorkersRequest {
    #[prost(string, repeated, tag = "1")]
    pub(crate) filter: Vec<String>,
}

/// `moby.buildkit.v1.types.BuildkitVersion`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct BuildkitVersion {
    #[prost(string, tag = "1")]
    pub(crate) package: String,
    #[prost(string, tag = "2")]
    pub(crate) version: String,
    #[prost(string, tag = "3")]
    pub(crate) revision: String,
}

/// `moby.buildkit.v1.types.WorkerRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct WorkerRecord {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub(crate) labels: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "3")]
    pub(crate) platforms: Vec<Platform>,
    #[prost(message, optional, tag = "5")]
    pub(crate) buildkit_version: Option<BuildkitVersion>,
}

/// `moby.buildkit.v1.ListWorkersResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ListWorkersResponse {
    #[prost(message, repeated, tag = "1")]
    pub(crate) record: Vec<WorkerRecord>,
}

/// `moby.buildkit.v1.InfoRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct InfoRequest {}

/// `moby.buildkit.v1.InfoResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct InfoResponse {
    #[prost(message, optional, tag = "1")]
    pub(crate) buildkit_version: Option<BuildkitVersion>,
}

/// fsutil `types.Stat`: one path of a synced tree.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Stat {
    #[prost(string, tag = "1")]
    pub(crate) path: String,
    /// Go's `os.FileMode` bits, not `st_mode` (see `filesync::go_mode`).
    #[prost(uint32, tag = "2")]
    pub(crate) mode: u32,
    #[prost(uint32, tag = "3")]
    pub(crate) uid: u32,
    #[prost(uint32, tag = "4")]
    pub(crate) gid: u32,
    #[prost(int64, tag = "5")]
    pub(crate) size: i64,
    /// Nanoseconds since the epoch.
    #[prost(int64, tag = "6")]
    pub(crate) mod_time: i64,
    #[prost(string, tag = "7")]
    pub(crate) linkname: String,
    #[prost(int64, tag = "8")]
    pub(crate) devmajor: i64,
    #[prost(int64, tag = "9")]
    pub(crate) devminor: i64,
}

/// fsutil `types.Packet` types.
pub(crate) mod packet {
    /// A path's stat; an empty one ends the listing.
    pub(crate) const STAT: i32 = 0;
    /// The receiver asks for a file's content by its index in the listing.
    pub(crate) const REQ: i32 = 1;
    /// File content; an empty one ends the file.
    pub(crate) const DATA: i32 = 2;
    /// The transfer is over.
    pub(crate) const FIN: i32 = 3;
    /// The other side failed; `data` says why.
    pub(crate) const ERR: i32 = 4;
}

/// fsutil `types.Packet`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Packet {
    #[prost(int32, tag = "1")]
    pub(crate) r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub(crate) stat: Option<Stat>,
    #[prost(uint32, tag = "3")]
    pub(crate) id: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) data: Vec<u8>,
}

/// `moby.filesync.v1.CredentialsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CredentialsRequest {
    #[prost(string, tag = "1")]
    pub(crate) host: String,
}

/// `moby.filesync.v1.CredentialsResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CredentialsResponse {
    #[prost(string, tag = "1")]
    pub(crate) username: String,
    #[prost(string, tag = "2")]
    pub(crate) secret: String,
}

/// `moby.buildkit.secrets.v1.GetSecretRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GetSecretRequest {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    #[prost(btree_map = "string, string", tag = "2")]
    pub(crate) annotations: BTreeMap<String, String>,
}

/// `moby.buildkit.secrets.v1.GetSecretResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GetSecretResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) data: Vec<u8>,
}

/// `moby.sshforward.v1.CheckAgentRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CheckAgentRequest {
    #[prost(string, tag = "1")]
    pub(crate) id: String,
}

/// `moby.sshforward.v1.CheckAgentResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CheckAgentResponse {}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub(crate) service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; status 1 is `SERVING`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub(crate) status: i32,
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn packet_encodes_with_fsutil_field_numbers() {
        let packet = Packet {
            r#type: packet::REQ,
            stat: None,
            id: 7,
            data: Vec::new(),
        };
        // field 1 varint 1, field 3 varint 7
        assert_eq!(packet.encode_to_vec(), vec![0x08, 0x01, 0x18, 0x07]);
    }

    #[test]
    fn solve_request_maps_are_sorted_and_numbered() {
        let mut request = SolveRequest {
            frontend: "dockerfile.v0".into(),
            ..SolveRequest::default()
        };
        request
            .frontend_attrs
            .insert("filename".into(), "Dockerfile".into());
        let bytes = request.encode_to_vec();
        // field 6 (frontend), length-delimited
        assert_eq!(bytes[0], 6 << 3 | 2);
        let back = SolveRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, request);
    }
}
