//! The solver against a fake `OpExec` that records calls, sleeps, fails, panics or cancels on
//! demand: dedup across targets, parallelism bounds, cache hits, content-based keys,
//! `no-cache`, failures, cancellation and deep graphs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bake::digest::Digest;
use bake::graph::{
    Definition, ENCODING_VERSION, Edge, Op, SourceLocation, SourceOp, Vertex, VertexMeta,
    vertex_digest,
};
use bake::progress::{Event, Recorder, Stream};
use bake::solver::{
    CacheMap, CancelToken, Context, Dep, Error, Failure, MemoryStore, OpExec, SolveOptions, Solver,
};

/// Error of the fake op.
#[derive(Debug, thiserror::Error)]
#[error("fake op `{0}` failed")]
struct FakeError(String);

/// An op executor driven by each vertex's source attributes:
/// `sleep` (milliseconds), `fail`, `panic`, `cancel`, `outputs` (count), `log`,
/// `selected` (the content a `content`-keyed dependent reads) and `content` (key inputs by
/// content). Its results are strings naming the vertex and its inputs.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    hashed: AtomicUsize,
}

impl Fake {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self, name: &str) -> usize {
        self.calls().iter().filter(|call| *call == name).count()
    }
}

fn attrs(vertex: &Vertex) -> &BTreeMap<String, String> {
    match &*vertex.op {
        Op::Source(source) => &source.attrs,
        _ => panic!("the fake only builds source ops"),
    }
}

impl OpExec for Fake {
    type Ref = String;
    type Error = FakeError;

    fn cache_map(&self, vertex: &Vertex, _: &Context<'_>) -> Result<CacheMap, FakeError> {
        let mut map = CacheMap::of_vertex(vertex);
        if attrs(vertex).contains_key("content") {
            map.deps = vec![
                Dep {
                    selector: Some(Digest::of(b"/selected")),
                    content: true,
                };
                vertex.inputs.len()
            ];
        }
        Ok(map)
    }

    fn content_digest(
        &self,
        _: &Vertex,
        _: usize,
        input: &String,
        _: &Context<'_>,
    ) -> Result<Option<Digest>, FakeError> {
        self.hashed.fetch_add(1, Ordering::SeqCst);
        // The fake's results start with the selected content, then `|`.
        let selected = input.split('|').next().unwrap_or_default();
        Ok(Some(Digest::of(selected.as_bytes())))
    }

    fn exec(
        &self,
        vertex: &Vertex,
        inputs: Vec<String>,
        context: &Context<'_>,
    ) -> Result<Vec<String>, FakeError> {
        let name = vertex.meta.name.clone();
        let attrs = attrs(vertex);
        self.calls.lock().unwrap().push(name.clone());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        if let Some(line) = attrs.get("log") {
            context.log(Stream::Stdout, line.clone());
        }
        if let Some(ms) = attrs.get("sleep") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
        }
        if attrs.contains_key("cancel") {
            context.cancel_token().cancel();
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        assert!(!attrs.contains_key("panic"), "fake panic in `{name}`");
        if attrs.contains_key("fail") {
            return Err(FakeError(name));
        }
        let selected = attrs.get("selected").cloned().unwrap_or_default();
        let result = format!("{selected}|{name}({})", inputs.join(","));
        let outputs = attrs.get("outputs").map_or(1, |n| n.parse().unwrap());
        Ok(vec![result; outputs])
    }
}

/// Builds hand-made graphs: vertices are source ops named by `meta.name`, with attributes
/// that drive the fake.
#[derive(Default)]
struct Graph {
    vertices: Vec<Vertex>,
}

impl Graph {
    fn add(&mut self, name: &str, inputs: &[Edge], attrs: &[(&str, &str)]) -> Edge {
        let op = Op::Source(SourceOp {
            identifier: format!("fake://{name}"),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
        let digest = vertex_digest(&op, inputs, None);
        if !self.vertices.iter().any(|v| v.digest == digest) {
            self.vertices.push(Vertex {
                digest,
                op: Arc::new(op),
                inputs: inputs.to_vec(),
                platform: None,
                meta: VertexMeta {
                    name: name.to_owned(),
                    ..VertexMeta::default()
                },
            });
        }
        Edge {
            vertex: digest,
            output: 0,
        }
    }

    fn definition(&self, root: Edge) -> Definition {
        Definition {
            version: ENCODING_VERSION,
            vertices: self.vertices.clone(),
            root: Some(root),
        }
    }
}

fn solver(limit: usize) -> Solver<Fake, MemoryStore<String>> {
    solver_with(limit, MemoryStore::default())
}

fn solver_with(limit: usize, store: MemoryStore<String>) -> Solver<Fake, MemoryStore<String>> {
    Solver::new(Fake::default(), store).with_options(SolveOptions {
        max_parallelism: limit,
        ..SolveOptions::default()
    })
}

fn solve_one(
    solver: &Solver<Fake, MemoryStore<String>>,
    definition: &Definition,
) -> (
    Result<bake::solver::SolveResult<String>, Error<FakeError>>,
    Vec<Event>,
) {
    let recorder = Recorder::default();
    let result = solver.solve(&[(definition, definition.root)], &recorder);
    (result, recorder.events())
}

#[test]
fn shared_vertex_across_two_targets_runs_once() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let web = graph.add("web", &[base], &[]);
    let api = graph.add("api", &[base], &[]);
    let (web_definition, api_definition) = (graph.definition(web), graph.definition(api));
    let solver = solver(4);
    let result = solver
        .solve(
            &[(&web_definition, Some(web)), (&api_definition, Some(api))],
            &bake::progress::Discard,
        )
        .unwrap();
    assert_eq!(solver.exec().count("base"), 1);
    assert_eq!(result.executed, 3);
    assert_eq!(
        result.outputs,
        [
            Some("|web(|base())".to_owned()),
            Some("|api(|base())".to_owned())
        ]
    );
}

#[test]
fn diamond_runs_each_vertex_once_in_dependency_order() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let left = graph.add("left", &[base], &[]);
    let right = graph.add("right", &[base], &[]);
    let top = graph.add("top", &[left, right], &[]);
    let solver = solver(4);
    let (result, _) = solve_one(&solver, &graph.definition(top));
    let result = result.unwrap();
    let calls = solver.exec().calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls.first().map(String::as_str), Some("base"));
    assert_eq!(calls.last().map(String::as_str), Some("top"));
    assert_eq!(
        result.outputs[0].as_deref(),
        Some("|top(|left(|base()),|right(|base()))")
    );
}

#[test]
fn unused_vertices_never_run() {
    let mut graph = Graph::default();
    let used = graph.add("used", &[], &[]);
    graph.add("unused", &[], &[]);
    let solver = solver(2);
    solve_one(&solver, &graph.definition(used)).0.unwrap();
    assert_eq!(solver.exec().calls(), ["used"]);
}

fn fan(graph: &mut Graph, count: usize, sleep: &str) -> Edge {
    let leaves: Vec<Edge> = (0..count)
        .map(|i| graph.add(&format!("slow{i}"), &[], &[("sleep", sleep)]))
        .collect();
    graph.add("join", &leaves, &[])
}

#[test]
fn parallelism_never_exceeds_the_limit() {
    let mut graph = Graph::default();
    let join = fan(&mut graph, 8, "30");
    let solver = solver(3);
    solve_one(&solver, &graph.definition(join)).0.unwrap();
    assert_eq!(solver.exec().calls().len(), 9);
    let max = solver.exec().max_running.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "max concurrent {max}");
}

#[test]
fn independent_slow_vertices_overlap() {
    let mut graph = Graph::default();
    let join = fan(&mut graph, 2, "300");
    let solver = solver(2);
    solve_one(&solver, &graph.definition(join)).0.unwrap();
    assert_eq!(solver.exec().max_running.load(Ordering::SeqCst), 2);
}

#[test]
fn limit_of_one_runs_one_at_a_time() {
    let mut graph = Graph::default();
    let join = fan(&mut graph, 4, "10");
    let solver = solver(1);
    solve_one(&solver, &graph.definition(join)).0.unwrap();
    assert_eq!(solver.exec().max_running.load(Ordering::SeqCst), 1);
}

#[test]
fn second_solve_is_served_from_the_cache() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let top = graph.add("top", &[base], &[]);
    let definition = graph.definition(top);
    let solver = solver(2);
    let first = solve_one(&solver, &definition).0.unwrap();
    let (second, events) = solve_one(&solver, &definition);
    let second = second.unwrap();
    assert_eq!(solver.exec().calls().len(), 2);
    assert_eq!((second.executed, second.cached), (0, 2));
    assert_eq!(first.outputs, second.outputs);
    assert_eq!(first.keys, second.keys);
    let cached = events
        .iter()
        .filter(|e| matches!(e, Event::Cached { .. }))
        .count();
    assert_eq!(cached, 2);
    assert!(!events.iter().any(|e| matches!(e, Event::Done { .. })));
}

/// `copy` reads only the `selected` content of `context`; `after` runs on top of `copy`.
fn copy_graph(version: &str, selected: &str) -> (Definition, Edge, Edge) {
    let mut graph = Graph::default();
    let context = graph.add(
        "context",
        &[],
        &[("version", version), ("selected", selected)],
    );
    let copy = graph.add("copy", &[context], &[("content", "")]);
    let after = graph.add("after", &[copy], &[]);
    (graph.definition(after), context, copy)
}

#[test]
fn content_keys_ignore_unselected_input_changes() {
    let solver = solver(2);
    let (first, context_1, copy_1) = copy_graph("1", "same");
    let first = solve_one(&solver, &first).0.unwrap();
    let (second, context_2, copy_2) = copy_graph("2", "same");
    let second = solve_one(&solver, &second).0.unwrap();
    assert_ne!(
        first.keys[&context_1.vertex],
        second.keys[&context_2.vertex]
    );
    assert_eq!(first.keys[&copy_1.vertex], second.keys[&copy_2.vertex]);
    // The context re-ran; the copy and everything after it came from the cache.
    assert_eq!(solver.exec().count("context"), 2);
    assert_eq!(solver.exec().count("copy"), 1);
    assert_eq!(solver.exec().count("after"), 1);
    let (third, _, copy_3) = copy_graph("3", "different");
    let third = solve_one(&solver, &third).0.unwrap();
    assert_ne!(first.keys[&copy_1.vertex], third.keys[&copy_3.vertex]);
    assert_eq!(solver.exec().count("copy"), 2);
}

#[test]
fn unchanged_inputs_find_the_content_key_through_the_alias_without_hashing() {
    let solver = solver(2);
    let (graph, _, copy) = copy_graph("1", "same");
    let first = solve_one(&solver, &graph).0.unwrap();
    let hashed = solver.exec().hashed.load(Ordering::SeqCst);
    assert!(hashed >= 1);
    let (fast, key) = first.aliases.iter().next().expect("the copy's alias");
    assert_eq!(*key, first.keys[&copy.vertex]);

    // The same inputs: the alias names the key, nothing is hashed, the copy is a hit.
    let again = solve_one(&solver, &graph).0.unwrap();
    assert_eq!(solver.exec().hashed.load(Ordering::SeqCst), hashed);
    assert_eq!(again.keys[&copy.vertex], first.keys[&copy.vertex]);
    assert_eq!(again.aliases.get(fast), Some(key));
    assert_eq!(again.executed, 0);

    // A changed input misses the alias: its content is hashed, and the same selected
    // content still finds the copy.
    let (changed, _, copy_2) = copy_graph("2", "same");
    let third = solve_one(&solver, &changed).0.unwrap();
    assert!(solver.exec().hashed.load(Ordering::SeqCst) > hashed);
    assert_eq!(third.keys[&copy_2.vertex], first.keys[&copy.vertex]);
    assert_eq!(solver.exec().count("copy"), 1);
}

#[test]
fn no_cache_runs_everything_and_still_saves() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let top = graph.add("top", &[base], &[]);
    let definition = graph.definition(top);
    let store = MemoryStore::default();
    let warm = solver_with(2, store);
    solve_one(&warm, &definition).0.unwrap();
    let store = MemoryStore::default();
    let cold = Solver::new(Fake::default(), store).with_options(SolveOptions {
        no_cache: true,
        ..SolveOptions::default()
    });
    solve_one(&cold, &definition).0.unwrap();
    let again = solve_one(&cold, &definition).0.unwrap();
    assert_eq!(again.executed, 2);
    assert_eq!(cold.exec().calls().len(), 4);
    assert_eq!(cold.store().len(), 2);
}

#[test]
fn ignore_cache_reruns_only_that_vertex() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let middle = graph.add("middle", &[base], &[]);
    let top = graph.add("top", &[middle], &[]);
    let mut definition = graph.definition(top);
    let solver = solver(2);
    solve_one(&solver, &definition).0.unwrap();
    definition.vertices[1].meta.ignore_cache = true;
    let again = solve_one(&solver, &definition).0.unwrap();
    // Same key, so what depends on it is still cached (buildkit "verifies" the vertex).
    assert_eq!((again.executed, again.cached), (1, 2));
    assert_eq!(solver.exec().count("middle"), 2);
}

#[test]
fn failure_stops_new_work_lets_running_work_finish_and_names_the_vertex() {
    let mut graph = Graph::default();
    let slow = graph.add("slow", &[], &[("sleep", "200")]);
    let after_slow = graph.add("after-slow", &[slow], &[]);
    let broken = graph.add("broken", &[], &[("fail", "")]);
    let after_broken = graph.add("after-broken", &[broken], &[]);
    let join = graph.add("join", &[after_slow, after_broken], &[]);
    let mut definition = graph.definition(join);
    let index = definition
        .vertices
        .iter()
        .position(|v| v.digest == broken.vertex)
        .unwrap();
    definition.vertices[index].meta.location = Some(SourceLocation {
        file: "Dockerfile".into(),
        start_line: 3,
        end_line: 3,
        span: [10, 20],
    });
    let solver = solver(2);
    let (result, events) = solve_one(&solver, &definition);
    let error = result.unwrap_err();
    let Error::Vertex {
        vertex,
        name,
        location,
        source,
    } = &error
    else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!((*vertex, name.as_str()), (broken.vertex, "broken"));
    assert_eq!(location.as_ref().unwrap().start_line, 3);
    assert!(matches!(source, Failure::Op(FakeError(_))));
    assert_eq!(
        error.to_string(),
        format!("`broken` failed ({}, Dockerfile:3)", broken.vertex)
    );
    let mut calls = solver.exec().calls();
    calls.sort();
    assert_eq!(calls, ["broken", "slow"]);
    // The running vertex finished and was saved; the failed one was not.
    assert_eq!(solver.store().len(), 1);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Error { vertex, message, .. }
            if *vertex == broken.vertex.to_string() && message.contains("broken")
    )));
}

#[test]
fn panics_and_missing_outputs_are_vertex_failures() {
    let mut graph = Graph::default();
    let panicking = graph.add("panicking", &[], &[("panic", "")]);
    let error = solve_one(&solver(1), &graph.definition(panicking))
        .0
        .unwrap_err();
    assert!(
        matches!(&error, Error::Vertex { source: Failure::Panicked(message), .. } if message.contains("fake panic")),
        "{error:?}"
    );

    let mut graph = Graph::default();
    let none = graph.add("none", &[], &[("outputs", "0")]);
    let error = solve_one(&solver(1), &graph.definition(none))
        .0
        .unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Vertex {
                source: Failure::MissingOutput {
                    returned: 0,
                    output: 0
                },
                ..
            }
        ),
        "{error:?}"
    );
}

/// A sink that panics (as `eprintln!` does on a closed pipe) fails that vertex; the other
/// pool threads and the scheduler do not wait for it forever.
#[test]
fn a_panicking_progress_sink_fails_the_vertex_instead_of_hanging_the_solve() {
    let mut graph = Graph::default();
    let a = graph.add("a", &[], &[("sleep", "50")]);
    let b = graph.add("b", &[], &[("sleep", "200")]);
    let root = graph.add("root", &[a, b], &[]);
    let definition = graph.definition(root);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sink = |event: Event| {
            if matches!(&event, Event::Started { name, .. } if name == "a") {
                panic!("progress sink failed");
            }
        };
        let result = solver(2).solve(&[(&definition, definition.root)], &sink);
        let _ = sender.send(result.map(|_| ()));
    });
    let result = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the solve returned");
    assert!(
        matches!(&result, Err(Error::Vertex { name, source: Failure::Panicked(message), .. })
            if name == "a" && message.contains("progress sink failed")),
        "{result:?}"
    );
}

#[test]
fn cancellation_stops_the_solve() {
    let mut graph = Graph::default();
    let first = graph.add("first", &[], &[("cancel", "")]);
    let second = graph.add("second", &[first], &[]);
    let solver = solver(2);
    let error = solve_one(&solver, &graph.definition(second)).0.unwrap_err();
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert_eq!(solver.exec().calls(), ["first"]);
    // The vertex that was running when the solve was cancelled completed and was saved.
    assert_eq!(solver.store().len(), 1);
}

#[test]
fn cancelled_token_runs_nothing() {
    let mut graph = Graph::default();
    let only = graph.add("only", &[], &[]);
    let cancel = CancelToken::default();
    cancel.cancel();
    let solver = Solver::new(Fake::default(), MemoryStore::default()).with_options(SolveOptions {
        cancel,
        ..SolveOptions::default()
    });
    let error = solve_one(&solver, &graph.definition(only)).0.unwrap_err();
    assert!(matches!(error, Error::Cancelled));
    assert!(solver.exec().calls().is_empty());
}

#[test]
fn long_chain_does_not_overflow_the_stack() {
    let mut graph = Graph::default();
    let mut edge = graph.add("v0", &[], &[]);
    for i in 1..5_000 {
        edge = graph.add(&format!("v{i}"), &[edge], &[]);
    }
    let definition = graph.definition(edge);
    // A small stack, so recursion anywhere in the solver would fail the test.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let solver = solver(2);
            solve_one(&solver, &definition).0.unwrap().executed
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), 5_000);
}

#[test]
fn events_report_logs_and_durations_per_vertex() {
    let mut graph = Graph::default();
    let only = graph.add("only", &[], &[("log", "hello")]);
    let (result, events) = solve_one(&solver(1), &graph.definition(only));
    result.unwrap();
    let vertex = only.vertex.to_string();
    assert!(
        matches!(&events[0], Event::Started { vertex: v, name } if *v == vertex && name == "only")
    );
    assert!(
        matches!(&events[1], Event::Log { line, stream: Stream::Stdout, .. } if line == "hello")
    );
    assert!(matches!(&events[2], Event::Done { .. }));
    assert_eq!(events.len(), 3);
}

#[test]
fn malformed_graphs_are_errors() {
    let mut graph = Graph::default();
    let only = graph.add("only", &[], &[]);
    let definition = graph.definition(only);
    let missing = Edge {
        vertex: Digest::of(b"missing"),
        output: 0,
    };
    let error = solver(1)
        .solve(&[(&definition, Some(missing))], &bake::progress::Discard)
        .unwrap_err();
    assert!(matches!(error, Error::UnknownVertex { vertex } if vertex == missing.vertex));

    // Two vertices naming each other (only a hand-written definition can do this).
    let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
    let looped = |digest, input| Vertex {
        digest,
        op: graph.vertices[0].op.clone(),
        inputs: vec![Edge {
            vertex: input,
            output: 0,
        }],
        platform: None,
        meta: VertexMeta::default(),
    };
    let cyclic = Definition {
        version: ENCODING_VERSION,
        vertices: vec![looped(a, b), looped(b, a)],
        root: Some(Edge {
            vertex: a,
            output: 0,
        }),
    };
    let error = solve_one(&solver(1), &cyclic).0.unwrap_err();
    assert!(matches!(error, Error::Cycle { .. }), "{error:?}");
}

#[test]
fn empty_root_and_no_requests_solve_to_nothing() {
    let definition = Definition {
        version: ENCODING_VERSION,
        vertices: Vec::new(),
        root: None,
    };
    let solver = solver(2);
    let result = solver
        .solve(&[(&definition, None)], &bake::progress::Discard)
        .unwrap();
    assert_eq!(result.outputs, [None]);
    assert!(
        solver
            .solve(&[], &bake::progress::Discard)
            .unwrap()
            .keys
            .is_empty()
    );
}

#[test]
fn cache_keys_are_deterministic_golden_digests() {
    let mut graph = Graph::default();
    let base = graph.add("base", &[], &[]);
    let top = graph.add("top", &[base], &[]);
    let result = solve_one(&solver(2), &graph.definition(top)).0.unwrap();
    // Change only with CACHE_KEY_VERSION (or the graph digest encoding).
    assert_eq!(
        result.keys[&base.vertex].to_string(),
        "sha256:d94083f0e8d1e9cc712b4ceb3ed5fdaf19b75af5ecbc354d6e0dcb7d2ddf0044"
    );
    assert_eq!(
        result.keys[&top.vertex].to_string(),
        "sha256:92165b77f6ddd0c5ca306e3c8b0527715f9256a26f46e0d60fb1405a24a18970"
    );
}
