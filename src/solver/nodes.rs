//! Merges the requested definitions into one table of the vertices reachable from their
//! roots, deduplicated by digest, with inputs and dependents as indices into the table.

use std::collections::HashMap;

use crate::digest::Digest;
use crate::graph::Vertex;
use crate::solver::{Error, Request};

/// One vertex to solve.
pub(crate) struct Node<'a> {
    pub(crate) vertex: &'a Vertex,
    /// `(node index, output)` per input edge, in the vertex's order.
    pub(crate) inputs: Vec<(usize, usize)>,
    /// Set when any definition holding the vertex asked to ignore the cache.
    pub(crate) ignore_cache: bool,
    /// One more than the highest output index any edge (or root) uses.
    pub(crate) outputs_used: usize,
}

/// The vertices of one solve.
pub(crate) struct Nodes<'a> {
    pub(crate) nodes: Vec<Node<'a>>,
    /// For each node, the nodes that take it as an input (once per edge).
    pub(crate) dependents: Vec<Vec<usize>>,
    /// For each request, its root as `(node index, output)`.
    pub(crate) roots: Vec<Option<(usize, usize)>>,
}

impl<'a> Nodes<'a> {
    /// Collects the vertices reachable from the requests' roots. Iterative, so a long chain
    /// cannot overflow the stack.
    pub(crate) fn build<E>(requests: &[Request<'a>]) -> Result<Self, Error<E>> {
        // Same digest, same vertex: the first definition's copy is used, and the cache is
        // ignored if any copy asks for it.
        let mut by_digest: HashMap<Digest, (&'a Vertex, bool)> = HashMap::new();
        for (definition, _) in requests {
            for vertex in &definition.vertices {
                let entry = by_digest
                    .entry(vertex.digest)
                    .or_insert((vertex, vertex.meta.ignore_cache));
                entry.1 |= vertex.meta.ignore_cache;
            }
        }
        let mut builder = Builder {
            by_digest,
            index: HashMap::new(),
            nodes: Vec::new(),
            stack: Vec::new(),
        };
        let mut roots = Vec::with_capacity(requests.len());
        for (_, root) in requests {
            let root = match root {
                Some(edge) => Some((builder.node(edge.vertex, edge.output)?, edge.output)),
                None => None,
            };
            roots.push(root);
            while let Some(node) = builder.stack.pop() {
                let vertex = builder.nodes[node].vertex;
                for edge in &vertex.inputs {
                    let input = builder.node(edge.vertex, edge.output)?;
                    builder.nodes[node].inputs.push((input, edge.output));
                }
            }
        }
        let nodes = builder.nodes;
        let mut dependents = vec![Vec::new(); nodes.len()];
        for (node, entry) in nodes.iter().enumerate() {
            for &(input, _) in &entry.inputs {
                dependents[input].push(node);
            }
        }
        Ok(Self {
            nodes,
            dependents,
            roots,
        })
    }
}

struct Builder<'a> {
    by_digest: HashMap<Digest, (&'a Vertex, bool)>,
    index: HashMap<Digest, usize>,
    nodes: Vec<Node<'a>>,
    /// Nodes whose inputs are not collected yet.
    stack: Vec<usize>,
}

impl<'a> Builder<'a> {
    /// Returns the index of the vertex, adding it (and queueing its inputs) on first sight,
    /// and records that `output` of it is used.
    fn node<E>(&mut self, digest: Digest, output: usize) -> Result<usize, Error<E>> {
        let node = match self.index.get(&digest) {
            Some(&found) => found,
            None => {
                let &(vertex, ignore_cache) = self
                    .by_digest
                    .get(&digest)
                    .ok_or(Error::UnknownVertex { vertex: digest })?;
                self.index.insert(digest, self.nodes.len());
                self.nodes.push(Node {
                    vertex,
                    inputs: Vec::with_capacity(vertex.inputs.len()),
                    ignore_cache,
                    outputs_used: 0,
                });
                self.stack.push(self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        let used = &mut self.nodes[node].outputs_used;
        *used = (*used).max(output + 1);
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::graph::{
        Definition, ENCODING_VERSION, Edge, Op, SourceOp, VertexMeta, vertex_digest,
    };

    fn vertex(name: &str, inputs: &[Edge], ignore_cache: bool) -> Vertex {
        let op = Op::Source(SourceOp {
            identifier: name.into(),
            attrs: Default::default(),
        });
        Vertex {
            digest: vertex_digest(&op, inputs, None),
            op: Arc::new(op),
            inputs: inputs.to_vec(),
            platform: None,
            meta: VertexMeta {
                ignore_cache,
                ..VertexMeta::default()
            },
        }
    }

    fn edge(vertex: &Vertex, output: usize) -> Edge {
        Edge {
            vertex: vertex.digest,
            output,
        }
    }

    fn definition(vertices: Vec<Vertex>, root: Edge) -> Definition {
        Definition {
            version: ENCODING_VERSION,
            vertices,
            root: Some(root),
        }
    }

    #[test]
    fn shared_vertices_merge_and_ignore_cache_if_any_copy_asks() {
        let base = vertex("base", &[], false);
        let base_ignored = vertex("base", &[], true);
        let a = vertex("a", &[edge(&base, 1)], false);
        let b = vertex("b", &[edge(&base, 0)], false);
        let first = definition(vec![base, a.clone()], edge(&a, 0));
        let second = definition(vec![base_ignored, b.clone()], edge(&b, 0));
        let nodes = Nodes::build::<()>(&[(&first, first.root), (&second, second.root)])
            .unwrap_or_else(|_| panic!("valid graph"));
        assert_eq!(nodes.nodes.len(), 3);
        assert_eq!(nodes.roots, [Some((0, 0)), Some((2, 0))]);
        let base = &nodes.nodes[1];
        assert!(base.ignore_cache);
        assert_eq!(base.outputs_used, 2);
        assert_eq!(nodes.dependents[1], [0, 2]);
    }

    #[test]
    fn only_reachable_vertices_are_collected() {
        let used = vertex("used", &[], false);
        let unused = vertex("unused", &[], false);
        let root = edge(&used, 0);
        let graph = definition(vec![unused, used], root);
        let nodes =
            Nodes::build::<()>(&[(&graph, graph.root)]).unwrap_or_else(|_| panic!("valid graph"));
        assert_eq!(nodes.nodes.len(), 1);
        assert_eq!(nodes.nodes[0].vertex.digest, root.vertex);
    }
}
