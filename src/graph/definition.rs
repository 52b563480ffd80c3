//! Vertices, edges and the serialisable [`Definition`]: the graph a front end hands to the
//! solver, with content digests computed from a versioned canonical encoding.

use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::graph::canonical;
use crate::graph::op::Op;
use crate::graph::state::{Node, State};
use crate::platform::Platform;

/// Version of the canonical encoding that digests are computed over. Bump it whenever the
/// encoded form of an op changes, so old cache keys can never collide with new ones.
pub const ENCODING_VERSION: u32 = 1;

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

/// One vertex of a [`Definition`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// Digest of the canonical encoding of `op`, `inputs` and `platform`.
    pub digest: Digest,
    /// What the vertex does (shared with the [`State`] that built it).
    pub op: Arc<Op>,
    /// Inputs, indexed by the op.
    pub inputs: Vec<Edge>,
    /// Platform the op runs for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Name, location and cache options (not digested).
    pub meta: VertexMeta,
}

/// A whole build graph: vertices in dependency order (inputs first) and the result edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// The [`ENCODING_VERSION`] the digests were made with.
    pub version: u32,
    /// Vertices, each after all of its inputs, without duplicates.
    pub vertices: Vec<Vertex>,
    /// The result; `None` when the result is the empty filesystem.
    pub root: Option<Edge>,
}

#[cfg(any(test, debug_assertions))]
#[derive(Serialize)]
struct Canonical<'a> {
    version: u32,
    op: &'a Op,
    inputs: &'a [Edge],
    platform: Option<&'a Platform>,
}

/// Computes the digest of an op with its inputs and platform.
pub fn vertex_digest(op: &Op, inputs: &[Edge], platform: Option<&Platform>) -> Digest {
    digest_of_inputs(op, inputs.iter().copied(), platform)
}

/// [`vertex_digest`] with the inputs as an iterator, so callers need not collect them.
pub(crate) fn digest_of_inputs(
    op: &Op,
    inputs: impl Iterator<Item = Edge> + Clone,
    platform: Option<&Platform>,
) -> Digest {
    thread_local! {
        // One buffer per thread, reused: encoding a vertex then allocates nothing.
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => digest_with(&mut buffer, op, inputs, platform),
        Err(_) => digest_with(&mut Vec::new(), op, inputs, platform),
    })
}

fn digest_with(
    buffer: &mut Vec<u8>,
    op: &Op,
    inputs: impl Iterator<Item = Edge> + Clone,
    platform: Option<&Platform>,
) -> Digest {
    buffer.clear();
    canonical::encode_vertex(buffer, ENCODING_VERSION, op, inputs.clone(), platform);
    #[cfg(debug_assertions)]
    assert_eq!(
        String::from_utf8_lossy(buffer),
        String::from_utf8_lossy(&serde_encoding(op, &inputs.collect::<Vec<_>>(), platform)),
        "the canonical encoder and serde_json disagree"
    );
    Digest::of(buffer)
}

/// The reference form of the canonical encoding: the compact `serde_json` of the vertex with
/// its proxy variables cleared. [`canonical`] must produce exactly these bytes.
#[cfg(any(test, debug_assertions))]
pub(crate) fn serde_encoding(op: &Op, inputs: &[Edge], platform: Option<&Platform>) -> Vec<u8> {
    let without_proxy;
    let op = match op {
        Op::Exec(exec) if !exec.proxy_env.is_empty() => {
            let mut exec = exec.clone();
            exec.proxy_env.clear();
            without_proxy = Op::Exec(exec);
            &without_proxy
        }
        _ => op,
    };
    let canonical = Canonical {
        version: ENCODING_VERSION,
        op,
        inputs,
        platform,
    };
    serde_json::to_vec(&canonical).unwrap_or_default()
}

impl Definition {
    /// Builds the definition of everything `state` depends on, with `state` as the root.
    pub fn from_state(state: &State) -> Self {
        Self::from_states(std::slice::from_ref(state), state)
    }

    /// Builds one definition holding several states (e.g. every stage for `--call=check`),
    /// rooted at `root`.
    pub fn from_states(states: &[State], root: &State) -> Self {
        let mut builder = Builder::default();
        for state in states.iter().chain(std::iter::once(root)) {
            if let Some(output) = state.output() {
                builder.visit(&output.node);
            }
        }
        let root = root.output().map(|output| Edge {
            vertex: output.node.digest(),
            output: output.index,
        });
        Self {
            version: ENCODING_VERSION,
            vertices: builder.order.iter().map(|node| node.to_vertex()).collect(),
            root,
        }
    }

    /// Returns the vertex with the given digest.
    pub fn vertex(&self, digest: &Digest) -> Option<&Vertex> {
        self.vertices.iter().find(|v| &v.digest == digest)
    }
}

/// Hashes a digest by its first eight bytes: they are already uniformly distributed, so a
/// general-purpose hash over them would only cost time.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (index, byte) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*byte) << (8 * index);
        }
    }
}

type DigestSet = HashSet<Digest, BuildHasherDefault<DigestHasher>>;

#[derive(Default)]
struct Builder {
    seen: DigestSet,
    /// Nodes in dependency order; turned into vertices once their number is known, so the
    /// (large) vertex list is allocated once.
    order: Vec<Arc<Node>>,
}

impl Builder {
    /// Post-order walk without recursion, so long instruction chains cannot overflow the stack.
    fn visit(&mut self, start: &std::sync::Arc<Node>) {
        let mut stack: Vec<(std::sync::Arc<Node>, bool)> = vec![(start.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            let digest = node.digest();
            if self.seen.contains(&digest) {
                continue;
            }
            if expanded {
                self.seen.insert(digest);
                self.order.push(node);
                continue;
            }
            stack.push((node.clone(), true));
            for input in node.inputs.iter().rev() {
                if !self.seen.contains(&input.node.digest()) {
                    stack.push((input.node.clone(), false));
                }
            }
        }
    }
}
