//! Benchmark: scheduler overhead of `Solver::solve` with a no-op `OpExec`, on a 20-target
//! fan-in graph (target i depends on every earlier target, all targets in one solve) and on a
//! 5,000-vertex layered graph, cold and fully cached. Run with `cargo bench --bench solver`.

use std::sync::Arc;

use bake::graph::{
    Definition, ENCODING_VERSION, Edge, Op, SourceOp, Vertex, VertexMeta, vertex_digest,
};
use bake::progress::Discard;
use bake::solver::{Context, MemoryStore, OpExec, Solver};

fn main() {
    divan::main();
}

/// Does nothing and returns one empty result.
struct Noop;

impl OpExec for Noop {
    type Ref = ();
    type Error = std::convert::Infallible;

    fn exec(
        &self,
        _: &Vertex,
        _: Vec<()>,
        _: &Context<'_>,
    ) -> Result<Vec<()>, std::convert::Infallible> {
        Ok(vec![()])
    }
}

fn vertex(vertices: &mut Vec<Vertex>, name: String, inputs: Vec<Edge>) -> Edge {
    let op = Op::Source(SourceOp {
        identifier: name,
        attrs: Default::default(),
    });
    let digest = vertex_digest(&op, &inputs, None);
    vertices.push(Vertex {
        digest,
        op: Arc::new(op),
        inputs,
        platform: None,
        meta: VertexMeta::default(),
    });
    Edge {
        vertex: digest,
        output: 0,
    }
}

/// Twenty targets; target i depends on targets 0..i. Each target's definition holds its own
/// copy of the vertices it needs, as the engine will hand them over.
fn fan_in() -> Vec<Definition> {
    let mut vertices = Vec::new();
    let mut roots: Vec<Edge> = Vec::new();
    let mut definitions = Vec::new();
    for target in 0..20 {
        let root = vertex(&mut vertices, format!("target{target}"), roots.clone());
        roots.push(root);
        definitions.push(Definition {
            version: ENCODING_VERSION,
            vertices: vertices.clone(),
            root: Some(root),
        });
    }
    definitions
}

/// 50 layers of 100 vertices, each depending on two vertices of the layer below, and a root
/// depending on the whole top layer: 5,001 vertices.
fn layered() -> Definition {
    let mut vertices = Vec::new();
    let mut below: Vec<Edge> = Vec::new();
    for layer in 0..50 {
        let mut current = Vec::with_capacity(100);
        for index in 0..100 {
            let inputs = if below.is_empty() {
                Vec::new()
            } else {
                vec![below[index], below[(index * 7 + 3) % 100]]
            };
            current.push(vertex(&mut vertices, format!("v{layer}.{index}"), inputs));
        }
        below = current;
    }
    let root = vertex(&mut vertices, "root".into(), below);
    Definition {
        version: ENCODING_VERSION,
        vertices,
        root: Some(root),
    }
}

fn solve(definitions: &[Definition], solver: &Solver<Noop, MemoryStore<()>>) -> usize {
    let requests: Vec<_> = definitions.iter().map(|d| (d, d.root)).collect();
    match solver.solve(&requests, &Discard) {
        Ok(result) => result.executed + result.cached,
        Err(error) => panic!("solve failed: {error}"),
    }
}

#[divan::bench]
fn fan_in_20_targets(bencher: divan::Bencher) {
    let definitions = fan_in();
    bencher
        .with_inputs(|| Solver::new(Noop, MemoryStore::default()))
        .bench_local_refs(|solver| solve(&definitions, solver));
}

#[divan::bench]
fn layered_5000_vertices_cold(bencher: divan::Bencher) {
    let definitions = [layered()];
    bencher
        .with_inputs(|| Solver::new(Noop, MemoryStore::default()))
        .bench_local_refs(|solver| solve(&definitions, solver));
}

#[divan::bench]
fn layered_5000_vertices_cached(bencher: divan::Bencher) {
    let definitions = [layered()];
    let solver = Solver::new(Noop, MemoryStore::default());
    solve(&definitions, &solver);
    bencher.bench_local(|| solve(&definitions, &solver));
}
