//! [`Solver::solve`]: the scheduler loop on the calling thread and the per-vertex work done on
//! the pool threads (cache key, cache lookup, exec, save, progress events).

use std::collections::{BTreeMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use crate::digest::Digest;
use crate::progress::{Event, Sink};
use crate::solver::exec::{Context, OpExec};
use crate::solver::key::{InputKey, cache_key};
use crate::solver::nodes::{Node, Nodes};
use crate::solver::store::CacheStore;
use crate::solver::{Error, Failure, Request, Result, SolveResult, Solver};

/// A vertex whose inputs are done: the node and, per input edge, the input's key and result.
struct Job<R> {
    node: usize,
    inputs: Vec<(Digest, R)>,
}

/// What a pool thread reports back for one job.
struct Outcome<R, E> {
    node: usize,
    result: std::result::Result<Finished<R>, Failure<E>>,
}

struct Finished<R> {
    key: Digest,
    /// The definition key that names `key` (for a vertex that hashes input content).
    alias: Option<Digest>,
    refs: Vec<R>,
    cached: bool,
}

impl<X, S> Solver<X, S>
where
    X: OpExec,
    S: CacheStore<Ref = X::Ref>,
{
    /// Solves every request in one pass: shared vertices run once, independent ones in
    /// parallel, cached ones not at all. Returns each request's root result.
    ///
    /// # Errors
    ///
    /// [`Error::Vertex`] for the first vertex that failed (after running vertices finished),
    /// [`Error::Cancelled`], or a malformed graph ([`Error::UnknownVertex`], [`Error::Cycle`]).
    pub fn solve(
        &self,
        requests: &[Request<'_>],
        sink: &dyn Sink,
    ) -> Result<SolveResult<X::Ref>, X::Error> {
        let nodes = Nodes::build(requests)?;
        let workers = self.options.max_parallelism.max(1).min(nodes.nodes.len());
        let (job_sender, job_receiver) = channel::<Job<X::Ref>>();
        let job_receiver = Mutex::new(job_receiver);
        let (outcome_sender, outcome_receiver) = channel();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let outcomes = outcome_sender.clone();
                let (jobs, nodes) = (&job_receiver, &nodes.nodes);
                scope.spawn(move || self.work(jobs, &outcomes, nodes, sink));
            }
            drop(outcome_sender);
            // Dropping the job sender when the loop returns lets the pool threads exit.
            self.schedule(&nodes, workers, job_sender, &outcome_receiver)
        })
    }

    /// The scheduler loop: dispatches ready vertices while nothing failed, collects outcomes,
    /// and returns once nothing is running.
    fn schedule(
        &self,
        nodes: &Nodes<'_>,
        workers: usize,
        jobs: Sender<Job<X::Ref>>,
        outcomes: &Receiver<Outcome<X::Ref, X::Error>>,
    ) -> Result<SolveResult<X::Ref>, X::Error> {
        let count = nodes.nodes.len();
        let mut pending: Vec<usize> = nodes.nodes.iter().map(|n| n.inputs.len()).collect();
        let mut ready: VecDeque<usize> = (0..count).filter(|&n| pending[n] == 0).collect();
        let mut keys: Vec<Option<Digest>> = vec![None; count];
        let mut aliases: BTreeMap<Digest, Digest> = BTreeMap::new();
        let mut refs: Vec<Option<Vec<X::Ref>>> = vec![None; count];
        // Uses left of each node's results; they are dropped when no dependent or root needs
        // them, so a long chain does not hold every intermediate result.
        let mut uses: Vec<usize> = nodes.dependents.iter().map(Vec::len).collect();
        for &(node, _) in nodes.roots.iter().flatten() {
            uses[node] += 1;
        }
        let (mut running, mut done, mut executed, mut cached) = (0, 0, 0, 0);
        let mut failure: Option<Error<X::Error>> = None;
        loop {
            while failure.is_none() && running < workers {
                if self.options.cancel.is_cancelled() {
                    failure = Some(Error::Cancelled);
                    break;
                }
                let Some(node) = ready.pop_front() else { break };
                let mut inputs = Vec::with_capacity(nodes.nodes[node].inputs.len());
                for &(input, output) in &nodes.nodes[node].inputs {
                    let key = keys[input].expect("an input is done before its dependents start");
                    let results = refs[input].as_ref().expect("results kept while used");
                    inputs.push((key, results[output].clone()));
                    uses[input] -= 1;
                    if uses[input] == 0 {
                        refs[input] = None;
                    }
                }
                if jobs.send(Job { node, inputs }).is_err() {
                    break;
                }
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Ok(outcome) = outcomes.recv() else { break };
            running -= 1;
            match outcome.result {
                Ok(finished) => {
                    done += 1;
                    if finished.cached {
                        cached += 1;
                    } else {
                        executed += 1;
                    }
                    keys[outcome.node] = Some(finished.key);
                    if let Some(fast) = finished.alias {
                        aliases.insert(fast, finished.key);
                    }
                    refs[outcome.node] = Some(finished.refs);
                    for &dependent in &nodes.dependents[outcome.node] {
                        pending[dependent] -= 1;
                        if pending[dependent] == 0 {
                            ready.push_back(dependent);
                        }
                    }
                }
                Err(source) if !matches!(failure, Some(Error::Vertex { .. })) => {
                    let vertex = nodes.nodes[outcome.node].vertex;
                    failure = Some(Error::Vertex {
                        vertex: vertex.digest,
                        name: vertex.meta.name.clone(),
                        location: vertex.meta.location.clone().map(Box::new),
                        source,
                    });
                }
                Err(_) => {}
            }
        }
        drop(jobs);
        if let Some(error) = failure {
            return Err(error);
        }
        if done < count {
            let stuck = (0..count).find(|&n| keys[n].is_none()).unwrap_or_default();
            return Err(Error::Cycle {
                vertex: nodes.nodes[stuck].vertex.digest,
            });
        }
        let outputs = nodes
            .roots
            .iter()
            .map(|root| root.and_then(|(node, output)| refs[node].as_ref()?.get(output).cloned()))
            .collect();
        let keys: BTreeMap<Digest, Digest> = nodes
            .nodes
            .iter()
            .zip(&keys)
            .filter_map(|(node, key)| Some((node.vertex.digest, (*key)?)))
            .collect();
        Ok(SolveResult {
            outputs,
            keys,
            aliases,
            executed,
            cached,
        })
    }

    /// A pool thread: takes jobs until the scheduler drops the sender.
    fn work(
        &self,
        jobs: &Mutex<Receiver<Job<X::Ref>>>,
        outcomes: &Sender<Outcome<X::Ref, X::Error>>,
        nodes: &[Node<'_>],
        sink: &dyn Sink,
    ) {
        loop {
            let job = match jobs.lock() {
                Ok(receiver) => receiver.recv(),
                Err(_) => return,
            };
            let Ok(job) = job else { return };
            let node = job.node;
            // Every job must report an outcome: the scheduler counts running jobs and waits
            // for each, so a pool thread lost to a panic outside the op (a progress sink
            // failing to write) would leave the solve waiting forever.
            let result = catch_unwind(AssertUnwindSafe(|| {
                self.run(&nodes[node], job.inputs, sink)
            }))
            .unwrap_or_else(|payload| Err(Failure::Panicked(panic_message(payload.as_ref()))));
            if outcomes.send(Outcome { node, result }).is_err() {
                return;
            }
        }
    }

    /// Works one vertex and reports its progress: started, then cached, done or error.
    fn run(
        &self,
        node: &Node<'_>,
        inputs: Vec<(Digest, X::Ref)>,
        sink: &dyn Sink,
    ) -> std::result::Result<Finished<X::Ref>, Failure<X::Error>> {
        let vertex = node.vertex.digest.to_string();
        sink.event(Event::Started {
            vertex: vertex.clone(),
            name: node.vertex.meta.name.clone(),
        });
        let started = Instant::now();
        let context = Context::new(&node.vertex.digest, sink, &self.options.cancel);
        let result = catch_unwind(AssertUnwindSafe(|| self.resolve(node, inputs, &context)))
            .unwrap_or_else(|payload| Err(Failure::Panicked(panic_message(payload.as_ref()))));
        let duration = started.elapsed();
        sink.event(match &result {
            Ok(finished) if finished.cached => Event::Cached { vertex },
            Ok(_) => Event::Done { vertex, duration },
            // Compat: BuildKit shows a step stopped by a cancelled build as CANCELED, not as
            // the error its killed process returned.
            Err(_) if self.options.cancel.is_cancelled() => Event::Cancelled { vertex, duration },
            Err(failure) => Event::Error {
                vertex,
                message: failure.to_string(),
                duration,
            },
        });
        result
    }

    /// Computes the vertex's cache key, then loads its results or runs it and saves them.
    fn resolve(
        &self,
        node: &Node<'_>,
        inputs: Vec<(Digest, X::Ref)>,
        context: &Context<'_>,
    ) -> std::result::Result<Finished<X::Ref>, Failure<X::Error>> {
        let vertex = node.vertex;
        let map = self.exec.cache_map(vertex, context).map_err(Failure::Op)?;
        let use_cache = !(self.options.no_cache || node.ignore_cache);
        // Compat: BuildKit's "cache-fast" keys: a vertex that hashes input content is first
        // looked up by its definition key (the inputs' own keys), which names the key it had
        // when those inputs were last hashed. A hit skips the hashing, so a result imported
        // from a build cache is not fetched only to hash a stage a `COPY --from` reads.
        let fast = map
            .deps
            .iter()
            .take(inputs.len())
            .any(|dep| dep.content)
            .then(|| {
                let keys: Vec<InputKey> = inputs
                    .iter()
                    .zip(&node.inputs)
                    .enumerate()
                    .map(|(index, ((key, _), &(_, output)))| InputKey::Key {
                        key: *key,
                        output,
                        selector: map.deps.get(index).copied().unwrap_or_default().selector,
                    })
                    .collect();
                cache_key(&map, &keys)
            });
        if use_cache
            && let Some(fast) = fast
            && let Some(key) = self.store.alias(&fast).map_err(store_failure)?
            && let Some(refs) = self
                .store
                .load(&key)
                .map_err(store_failure)?
                .filter(|refs| refs.len() >= node.outputs_used)
        {
            return Ok(Finished {
                key,
                alias: Some(fast),
                refs,
                cached: true,
            });
        }
        let mut input_keys = Vec::with_capacity(inputs.len());
        for (index, ((key, input), &(_, output))) in inputs.iter().zip(&node.inputs).enumerate() {
            let dep = map.deps.get(index).copied().unwrap_or_default();
            let content = if dep.content {
                self.exec
                    .content_digest(vertex, index, input, context)
                    .map_err(Failure::Op)?
            } else {
                None
            };
            input_keys.push(match content {
                Some(digest) => InputKey::Content {
                    digest,
                    selector: dep.selector,
                },
                None => InputKey::Key {
                    key: *key,
                    output,
                    selector: dep.selector,
                },
            });
        }
        let key = cache_key(&map, &input_keys);
        if let Some(fast) = fast {
            self.store.save_alias(&fast, &key).map_err(store_failure)?;
        }
        // Compat: buildkit ignore_cache re-runs the vertex but still records its result.
        if use_cache {
            let loaded = self.store.load(&key).map_err(store_failure)?;
            // Results with too few outputs (from an older op version) count as a miss.
            if let Some(refs) = loaded.filter(|refs| refs.len() >= node.outputs_used) {
                return Ok(Finished {
                    key,
                    alias: fast,
                    refs,
                    cached: true,
                });
            }
        }
        let inputs = inputs.into_iter().map(|(_, input)| input).collect();
        let refs = self
            .exec
            .exec(vertex, inputs, context)
            .map_err(Failure::Op)?;
        if refs.len() < node.outputs_used {
            return Err(Failure::MissingOutput {
                returned: refs.len(),
                output: node.outputs_used - 1,
            });
        }
        self.store.save(&key, &refs).map_err(store_failure)?;
        Ok(Finished {
            key,
            alias: fast,
            refs,
            cached: false,
        })
    }
}

fn store_failure<E, F>(error: F) -> Failure<E>
where
    F: std::error::Error + Send + Sync + 'static,
{
    Failure::Store(Box::new(error))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
