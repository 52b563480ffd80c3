//! Vertices and the edges between them: the nodes of a [`Definition`](crate::graph::Definition).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::graph::op::Op;
use crate::platform::Platform;

/// A reference to one output of a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// Digest of the vertex.
    pub vertex: Digest,
    /// Output index (0 for the root filesystem).
    pub output: usize,
}

/// Where in a user's file a vertex comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    /// File name as the user gave it.
    pub file: String,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based, inclusive).
    pub end_line: usize,
    /// Byte range `[start, end)` in the file.
    pub span: [usize; 2],
}

/// Data attached to a vertex that is not part of its digest.
// Compat: buildkit client/llb VertexOptions / pb.OpMetadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexMeta {
    /// Progress name, e.g. `[build 2/4] RUN make`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The instruction that produced the vertex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SourceLocation>,
    /// Always re-run, never use the cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
}

/// One vertex of a [`Definition`](crate::graph::Definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// Digest of the canonical encoding of `op`, `inputs` and `platform`.
    pub digest: Digest,
    /// What the vertex does (shared with the [`State`](crate::graph::State) that built it).
    pub op: Arc<Op>,
    /// Inputs, indexed by the op.
    pub inputs: Vec<Edge>,
    /// Platform the op runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Name, location and cache options (not digested).
    pub meta: VertexMeta,
}
