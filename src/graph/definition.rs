//! The serialisable [`Definition`]: the graph a front end hands to the solver, built from a
//! [`State`] by walking its nodes inputs first.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::graph::canonical::ENCODING_VERSION;
use crate::graph::state::{Node, State};
use crate::graph::vertex::{Edge, Vertex};

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
