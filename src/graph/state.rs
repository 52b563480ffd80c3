//! An immutable builder for graphs: a [`State`] is a filesystem (scratch or one output of a
//! vertex), and ops on it return new states. The counterpart of buildkit's `client/llb.State`.

use std::sync::{Arc, OnceLock};

use crate::digest::Digest;
use crate::graph::canonical::digest_of_inputs;
use crate::graph::op::{MergeOp, Op, SourceOp};
use crate::graph::vertex::{Edge, Vertex, VertexMeta};
use crate::platform::Platform;

/// A vertex under construction, shared between the states that use it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) op: Arc<Op>,
    pub(crate) inputs: Vec<Output>,
    pub(crate) platform: Option<Platform>,
    pub(crate) meta: VertexMeta,
    digest: OnceLock<Digest>,
}

impl Node {
    /// Returns the node's digest, computing it (and its inputs', iteratively) once.
    pub(crate) fn digest(&self) -> Digest {
        if let Some(digest) = self.digest.get() {
            return *digest;
        }
        // Usually every input is digested already (states are built bottom-up).
        if self.inputs.iter().all(|i| i.node.digest.get().is_some()) {
            let digest = self.compute_digest();
            let _ = self.digest.set(digest);
            return digest;
        }
        // Compute undigested inputs bottom-up first, so this never recurses deeply.
        let mut pending: Vec<&Node> = vec![self];
        let mut order: Vec<&Node> = Vec::new();
        while let Some(node) = pending.pop() {
            if node.digest.get().is_some() {
                continue;
            }
            order.push(node);
            pending.extend(node.inputs.iter().map(|i| i.node.as_ref()));
        }
        for node in order.into_iter().rev() {
            if node.digest.get().is_none() {
                let _ = node.digest.set(node.compute_digest());
            }
        }
        self.digest
            .get()
            .copied()
            .unwrap_or_else(|| self.compute_digest())
    }

    /// Digests the node from its inputs' digests, without collecting its edges.
    fn compute_digest(&self) -> Digest {
        let edges = self.inputs.iter().map(|input| Edge {
            vertex: input.node.digest(),
            output: input.index,
        });
        digest_of_inputs(&self.op, edges, self.platform.as_ref())
    }

    fn edges(&self) -> Vec<Edge> {
        self.inputs
            .iter()
            .map(|input| Edge {
                vertex: input.node.digest(),
                output: input.index,
            })
            .collect()
    }

    pub(crate) fn to_vertex(&self) -> Vertex {
        Vertex {
            digest: self.digest(),
            op: Arc::clone(&self.op),
            inputs: self.edges(),
            platform: self.platform.clone(),
            meta: self.meta.clone(),
        }
    }
}

impl Drop for Node {
    /// Unlinks long chains iteratively: the default recursive drop of a 10,000-instruction
    /// chain would overflow a test thread's stack.
    fn drop(&mut self) {
        let mut pending: Vec<Output> = std::mem::take(&mut self.inputs);
        while let Some(output) = pending.pop() {
            if let Ok(mut node) = Arc::try_unwrap(output.node) {
                pending.append(&mut node.inputs);
            }
        }
    }
}

/// One output of a node.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) node: Arc<Node>,
    pub(crate) index: usize,
}

/// A filesystem state: empty (scratch) or an output of a vertex. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct State {
    output: Option<Output>,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.edge() == other.edge()
    }
}

/// Collects the distinct inputs of a vertex being built and hands out their indexes.
#[derive(Debug, Default)]
pub struct Inputs {
    outputs: Vec<Output>,
}

impl Inputs {
    /// Adds a state (once) and returns its index, or `None` for scratch.
    pub fn add(&mut self, state: &State) -> Option<usize> {
        let output = state.output.as_ref()?;
        // The same node is the common case and needs no digest.
        if let Some(index) = self
            .outputs
            .iter()
            .position(|o| Arc::ptr_eq(&o.node, &output.node) && o.index == output.index)
        {
            return Some(index);
        }
        let edge = (output.node.digest(), output.index);
        if let Some(index) = self
            .outputs
            .iter()
            .position(|o| (o.node.digest(), o.index) == edge)
        {
            return Some(index);
        }
        self.outputs.push(output.clone());
        Some(self.outputs.len() - 1)
    }
}

impl State {
    /// Returns the empty filesystem.
    pub fn scratch() -> Self {
        Self::default()
    }

    /// Returns true for the empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.output.is_none()
    }

    /// Returns a source vertex's output.
    pub fn source(source: SourceOp, platform: Option<Platform>, meta: VertexMeta) -> Self {
        Self::with_op(Op::Source(source), Inputs::default(), platform, meta)
    }

    /// Returns an image (`docker-image://<reference>`) for a platform.
    pub fn image(reference: &str, platform: &Platform, meta: VertexMeta) -> Self {
        let source = SourceOp {
            identifier: format!("docker-image://{reference}"),
            attrs: Default::default(),
        };
        Self::source(source, Some(platform.clone()), meta)
    }

    /// Returns the result of a new vertex running `op` over `inputs` (output 0).
    pub fn with_op(op: Op, inputs: Inputs, platform: Option<Platform>, meta: VertexMeta) -> Self {
        let node = Node {
            op: Arc::new(op),
            inputs: inputs.outputs,
            platform,
            meta,
            digest: OnceLock::new(),
        };
        Self {
            output: Some(Output {
                node: Arc::new(node),
                index: 0,
            }),
        }
    }

    /// Layers `states` bottom to top; scratch layers are skipped and a single layer is
    /// returned unchanged.
    pub fn merge(states: &[State], meta: VertexMeta) -> Self {
        let layers: Vec<&State> = states.iter().filter(|s| !s.is_scratch()).collect();
        match layers.as_slice() {
            [] => Self::scratch(),
            [only] => (*only).clone(),
            _ => {
                let mut inputs = Inputs::default();
                for layer in &layers {
                    // Merge keeps every layer, even a repeated one, so push without dedup.
                    if let Some(output) = &layer.output {
                        inputs.outputs.push(output.clone());
                    }
                }
                Self::with_op(Op::Merge(MergeOp {}), inputs, None, meta)
            }
        }
    }

    /// Returns the edge this state refers to, or `None` for scratch.
    pub fn edge(&self) -> Option<Edge> {
        self.output.as_ref().map(|output| Edge {
            vertex: output.node.digest(),
            output: output.index,
        })
    }

    pub(crate) fn output(&self) -> Option<&Output> {
        self.output.as_ref()
    }
}
