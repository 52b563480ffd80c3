//! The generic parallel scheduler: runs every vertex reachable from the requested roots once,
//! in dependency order, up to `max_parallelism` at a time, skipping vertices whose cache key
//! already has results. Stage 4 (layer 3). May import `graph`, `digest`, `progress` and `diag`;
//! never `ops`, `executor`, `source`, `cache` or `exporter`: it is generic over [`OpExec`] and
//! [`CacheStore`], and a result ([`OpExec::Ref`]) is opaque to it.
//!
//! # One solve for every target
//!
//! [`Solver::solve`] takes the definitions of all targets at once. Vertices are merged by
//! digest, so a stage two targets share runs once; only vertices reachable from the requested
//! roots are scheduled, so unused stages never run.
//!
//! # Cache keys
//!
//! Keys are computed bottom-up when a vertex's inputs are done (see [`cache_key`]): the op's
//! [`CacheMap`] digest plus, per input, the input's key and selector or, for
//! [`Dep::content`] inputs, the digest of the selected content. A hit skips `exec` and reports
//! [`Event::Cached`](crate::progress::Event::Cached). A vertex that hashes content is looked up
//! first by its definition key (its inputs' keys), through the alias the store recorded when
//! that content was last hashed ([`CacheStore::alias`]), as BuildKit's cache-fast keys; only
//! on a miss is the content hashed. `no_cache` and a vertex's
//! `meta.ignore_cache` (`--no-cache-filter`) force execution but still save the result, as
//! buildkit does.
//!
//! # Concurrency model
//!
//! A fixed pool of `max_parallelism` std threads (scoped to the solve) does all per-vertex
//! work: cache-map and content digests, cache lookups, `exec`, saves. The calling thread is the
//! scheduler: it owns all bookkeeping, sends ready vertices to the pool over a channel and
//! receives outcomes on another, so there are no locks on the graph. Plain threads rather than
//! tokio or rayon because the work is blocking (a RUN waits on a child process, a COPY on disk
//! I/O, hashing on the CPU): on an async runtime it would all go through `spawn_blocking`
//! anyway, and rayon's pool assumes short CPU tasks and work stealing that would let a blocked
//! task starve others. The pool size is the concurrency limit, so it cannot be exceeded.
//!
//! # Failure and cancellation
//!
//! When a vertex fails, no new vertex starts, the running ones finish (their results are
//! saved: they are valid), and [`Error::Vertex`] names the failing vertex with its progress
//! name and source location. A failed vertex saves nothing, so the store stays consistent.
//! [`CancelToken::cancel`] has the same effect and returns [`Error::Cancelled`]; ops poll
//! [`Context::is_cancelled`] to stop their child processes early.
//!
//! # Differences from buildkit
//!
//! Diverges: buildkit's scheduler looks cache keys up before loading inputs ("partial
//! chains"); here every vertex's result is loaded or built before its dependents run, which is
//! cheap for a local store. Edges with different digests but equal cache keys are not merged.

mod exec;
mod key;
mod nodes;
mod scheduler;
mod store;

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::graph::{Definition, Edge, SourceLocation};

pub use exec::{CacheMap, CancelToken, Context, Dep, OpExec};
pub use key::{CACHE_KEY_VERSION, InputKey, cache_key};
pub use store::{CacheStore, MemoryStore};

/// One target's graph and the edge whose result is wanted (`None`: the empty filesystem).
pub type Request<'a> = (&'a Definition, Option<Edge>);

/// Why a solve failed.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// A vertex failed; nothing more was started.
    #[error("`{name}` failed ({vertex}{})", location_suffix(.location.as_deref()))]
    Vertex {
        /// The failing vertex's digest.
        vertex: Digest,
        /// Its progress name (empty when the front end gave none).
        name: String,
        /// The instruction that produced it (boxed to keep the error small).
        location: Option<Box<SourceLocation>>,
        /// What went wrong.
        #[source]
        source: Failure<E>,
    },
    /// The solve was cancelled before every vertex was done.
    #[error("solve cancelled")]
    Cancelled,
    /// An edge names a vertex that no requested definition holds.
    #[error("edge refers to vertex `{vertex}`, which no definition holds")]
    UnknownVertex {
        /// The missing digest.
        vertex: Digest,
    },
    /// The vertices left over form a cycle (only possible in hand-written definitions).
    #[error("vertex `{vertex}` depends on itself")]
    Cycle {
        /// A vertex on the cycle.
        vertex: Digest,
    },
}

/// What went wrong inside one vertex.
#[derive(Debug, thiserror::Error)]
pub enum Failure<E> {
    /// The op returned an error.
    #[error(transparent)]
    Op(E),
    /// The cache store could not be read or written.
    #[error("cache store failed")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The op returned fewer results than the graph uses.
    #[error("op returned {returned} results, but output {output} is used")]
    MissingOutput {
        /// Results returned.
        returned: usize,
        /// The highest output index an edge uses.
        output: usize,
    },
    /// The op panicked.
    #[error("op panicked: {0}")]
    Panicked(String),
}

fn location_suffix(location: Option<&SourceLocation>) -> String {
    match location {
        Some(location) if location.start_line == location.end_line => {
            format!(", {}:{}", location.file, location.start_line)
        }
        Some(location) => format!(
            ", {}:{}-{}",
            location.file, location.start_line, location.end_line
        ),
        None => String::new(),
    }
}

/// The result of [`Solver::solve`]: std `Result` over [`Error`].
pub type Result<T, E> = std::result::Result<T, Error<E>>;

/// Settings of a [`Solver`].
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// How many vertices may be worked on at once (at least 1).
    // Compat: buildkitd.toml `[worker.oci] max-parallelism`; default: number of CPUs.
    pub max_parallelism: usize,
    /// Ignore the cache for every vertex (`--no-cache`); results are still saved.
    pub no_cache: bool,
    /// Cancels the solve when triggered.
    pub cancel: CancelToken,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            max_parallelism: std::thread::available_parallelism().map_or(1, usize::from),
            no_cache: false,
            cancel: CancelToken::default(),
        }
    }
}

/// What a solve produced.
#[derive(Debug, Clone)]
pub struct SolveResult<R> {
    /// The result of each request's root edge, in request order.
    pub outputs: Vec<Option<R>>,
    /// The cache key of every vertex solved, by vertex digest.
    pub keys: BTreeMap<Digest, Digest>,
    /// Definition key → cache key of every vertex solved that hashes input content (see
    /// [`CacheStore::alias`]).
    pub aliases: BTreeMap<Digest, Digest>,
    /// How many vertices ran.
    pub executed: usize,
    /// How many vertices came from the cache.
    pub cached: usize,
}

/// Runs definitions through an [`OpExec`], with results cached in a [`CacheStore`].
#[derive(Debug)]
pub struct Solver<X, S> {
    exec: X,
    store: S,
    options: SolveOptions,
}

impl<X, S> Solver<X, S>
where
    X: OpExec,
    S: CacheStore<Ref = X::Ref>,
{
    /// Creates a solver with default [`SolveOptions`].
    pub fn new(exec: X, store: S) -> Self {
        Self {
            exec,
            store,
            options: SolveOptions::default(),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: SolveOptions) -> Self {
        self.options = options;
        self
    }

    /// Returns the op executor.
    pub fn exec(&self) -> &X {
        &self.exec
    }

    /// Returns the cache store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Returns the options.
    pub fn options(&self) -> &SolveOptions {
        &self.options
    }
}
