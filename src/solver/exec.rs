//! The [`OpExec`] trait the solver drives, the [`CacheMap`] an op returns for its cache key,
//! and the per-vertex [`Context`] (log sink and cancellation) handed to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::digest::Digest;
use crate::graph::{Vertex, vertex_digest};
use crate::progress::{Event, Sink, Stream};

/// Runs the ops of a graph for the solver. `ops` implements it once for every `graph::Op`; the
/// solver never looks inside an op or a result.
// Compat: buildkit solver/types.go Op (CacheMap + Exec), generic over the result type.
pub trait OpExec: Send + Sync {
    /// A result of a vertex (a snapshot reference, for instance); opaque to the solver.
    type Ref: Clone + Send + Sync;
    /// Why an op failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Returns the op's own cache-key material and how each input enters the key. The default
    /// uses the op definition and platform without the inputs, and plain input keys.
    ///
    /// # Errors
    ///
    /// When the material cannot be computed (a source cannot be resolved, for instance).
    fn cache_map(&self, vertex: &Vertex, context: &Context<'_>) -> Result<CacheMap, Self::Error> {
        let _ = context;
        Ok(CacheMap::of_vertex(vertex))
    }

    /// Returns the digest of the part of input `index` that the op reads, for inputs whose
    /// [`Dep::content`] is set (a COPY hashes only its source paths). `None` falls back to the
    /// input's cache key, which is what the default does.
    ///
    /// # Errors
    ///
    /// When the input cannot be read.
    fn content_digest(
        &self,
        vertex: &Vertex,
        index: usize,
        input: &Self::Ref,
        context: &Context<'_>,
    ) -> Result<Option<Digest>, Self::Error> {
        let _ = (vertex, index, input, context);
        Ok(None)
    }

    /// Runs the op over its inputs (one result per input edge, in order) and returns one
    /// result per output.
    ///
    /// # Errors
    ///
    /// When the op fails; the solver reports it against the vertex and saves nothing.
    fn exec(
        &self,
        vertex: &Vertex,
        inputs: Vec<Self::Ref>,
        context: &Context<'_>,
    ) -> Result<Vec<Self::Ref>, Self::Error>;
}

/// What an op contributes to its vertex's cache key.
// Compat: buildkit solver/types.go CacheMap (Digest + Deps{Selector, ComputeDigestFunc}).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheMap {
    /// Digest of what the op does, without its inputs.
    pub digest: Digest,
    /// One entry per input edge; missing entries mean [`Dep::default`].
    pub deps: Vec<Dep>,
}

/// How one input enters a cache key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dep {
    /// Digest of the part of the input the op uses (e.g. a mount's sub-path); part of the key.
    pub selector: Option<Digest>,
    /// Key the input by [`OpExec::content_digest`] instead of by its cache key, so a changed
    /// input whose selected content is the same keeps this vertex's key.
    pub content: bool,
}

impl CacheMap {
    /// Returns the default map: the op and platform digested without inputs, plain deps.
    pub fn of_vertex(vertex: &Vertex) -> Self {
        Self {
            digest: vertex_digest(&vertex.op, &[], vertex.platform.as_ref()),
            deps: vec![Dep::default(); vertex.inputs.len()],
        }
    }
}

/// A cancellation flag shared by a solve and whoever may cancel it (Ctrl-C).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Wraps a flag someone else sets (a signal handler), so the solve sees it.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }

    /// The shared flag, for code that cannot see the solver (the executor kills its
    /// containers when it is set).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }

    /// Requests cancellation: no new vertex starts, running ones are asked to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Returns whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What an op sees of the solve while it runs one vertex.
pub struct Context<'a> {
    vertex: String,
    sink: &'a dyn Sink,
    cancel: &'a CancelToken,
}

impl<'a> Context<'a> {
    /// Creates the context for `vertex` (the solver does; ops' unit tests may too).
    pub fn new(vertex: &Digest, sink: &'a dyn Sink, cancel: &'a CancelToken) -> Self {
        Self {
            vertex: vertex.to_string(),
            sink,
            cancel,
        }
    }

    /// Returns the vertex digest as progress names it.
    pub fn vertex(&self) -> &str {
        &self.vertex
    }

    /// Sends a line of the vertex's output to the progress sink.
    pub fn log(&self, stream: Stream, line: impl Into<String>) {
        self.sink.event(Event::Log {
            vertex: self.vertex.clone(),
            stream,
            line: line.into(),
        });
    }

    /// Returns whether the solve was cancelled; long-running ops poll it and stop early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Returns the cancellation token, for ops that hand it to a child-process watcher.
    pub fn cancel_token(&self) -> &CancelToken {
        self.cancel
    }
}
