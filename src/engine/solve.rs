//! The second build stage: the combined graph runs through the ops worker in one solve,
//! and a failed step becomes a diagnostic pointing at its instruction. Part of `engine`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cache::import::Imported;
use crate::cache::layered::Layered;
use crate::cache::local::LocalCache;
use crate::engine::error::{Error, StepFailed};
use crate::engine::lower::Lowered;
use crate::executor::Runtime;
use crate::ops::worker::{Ref, SnapshotterKind, Worker};
use crate::plan;
use crate::progress::Sink;
use crate::solver::{CancelToken, SolveOptions, Solver};

/// What the solve stage produced.
pub(crate) struct Solved {
    /// The result of each lowered request's root, in request order.
    pub(crate) outputs: Vec<Option<Ref>>,
    /// The cache key of every vertex solved, by vertex digest.
    pub(crate) keys: std::collections::BTreeMap<crate::digest::Digest, crate::digest::Digest>,
    /// Definition key → cache key of the vertices that hash input content, for `cache-to`.
    pub(crate) aliases: std::collections::BTreeMap<crate::digest::Digest, crate::digest::Digest>,
    /// The solver and its worker, kept until the export ends: the worker's snapshotter keeps
    /// overlay snapshots mounted while it lives, and the results are read from them. Its
    /// store remembers every result by key, for `cache-to`.
    pub(crate) solver: Solver<Worker, Layered>,
}

/// What the solve stage takes from the build options.
pub(crate) struct WorkerSettings<'a> {
    pub(crate) root: &'a std::path::Path,
    pub(crate) runtime: Box<dyn Runtime>,
    pub(crate) snapshotter: SnapshotterKind,
    pub(crate) max_parallelism: usize,
    pub(crate) cancel: Arc<AtomicBool>,
}

/// The second stage: runs the combined graph through the ops worker.
pub(crate) fn solve(
    lowered: &Lowered<'_>,
    settings: WorkerSettings<'_>,
    images: Arc<crate::source::image::Puller>,
    imported: Arc<Imported>,
    sink: &dyn Sink,
) -> Result<Solved, Error> {
    let requests: Vec<&plan::BuildRequest> = lowered.requests.iter().map(|l| l.request).collect();
    let (secrets, ssh) = crate::engine::session::session(&requests)?;
    let worker = Worker::new(settings.root, settings.runtime, lowered.locals.clone())
        .with_secrets(secrets)
        .with_ssh(ssh)
        .with_images(images)
        .with_snapshotter(settings.snapshotter)
        .with_fetch(imported.clone());
    let worker = if imported.mounts().is_empty() {
        worker
    } else {
        worker.with_mount_seeds(Arc::new(crate::engine::cache_mount::ImportedMounts(
            imported.clone(),
        )))
    };
    let cache = LocalCache::open(settings.root, worker.snapshots()).map_err(|e| Error::State {
        root: settings.root.to_path_buf(),
        source: Box::new(e),
    })?;
    let cache = Layered::new(cache, imported);
    let solver = Solver::new(worker, cache).with_options(SolveOptions {
        max_parallelism: settings.max_parallelism.max(1),
        cancel: CancelToken::from_flag(settings.cancel.clone()),
        ..SolveOptions::default()
    });
    let roots: Vec<_> = lowered
        .requests
        .iter()
        .map(|l| (&lowered.definition, l.root))
        .collect();
    let cancelled = settings.cancel.clone();
    let result = solver.solve(&roots, sink).map_err(|error| {
        // A step killed because the build was cancelled did not fail on its own.
        if cancelled.load(std::sync::atomic::Ordering::SeqCst) {
            Error::Cancelled
        } else {
            step_error(lowered, error)
        }
    })?;
    Ok(Solved {
        outputs: result.outputs,
        keys: result.keys,
        aliases: result.aliases,
        solver,
    })
}

/// The error of a failed solve: a failed step names the targets that hold it and points at
/// its instruction in the Dockerfile.
fn step_error(lowered: &Lowered<'_>, error: crate::engine::error::SolveError) -> Error {
    let crate::solver::Error::Vertex {
        vertex,
        name,
        location,
        source,
    } = error
    else {
        return Error::Solve(Box::new(error));
    };
    let targets = lowered.targets_holding(&vertex);
    // The Dockerfile of the first target that holds the step and has the instruction's file.
    let excerpt = location.as_ref().and_then(|location| {
        lowered
            .requests
            .iter()
            .filter(|l| targets.contains(&l.request.target))
            .map(|l| &l.dockerfile)
            .find(|f| f.name == location.file)
            .map(|file| {
                let end = location.span[1].min(file.text.len());
                let start = location.span[0].min(end);
                (file.named(), crate::diag::span(start..end))
            })
    });
    let (file, span) = excerpt.map_or((None, None), |(f, s)| (Some(f), Some(s)));
    let hint =
        crate::engine::error::hint(&source).or_else(|| copy_hint(lowered, &targets, &source));
    Error::Step(Box::new(StepFailed {
        targets,
        name,
        vertex,
        file,
        span,
        hint,
        source,
    }))
}

/// For a COPY whose source path matched nothing: where the path was looked for.
fn copy_hint(
    lowered: &Lowered<'_>,
    targets: &[String],
    failure: &crate::solver::Failure<crate::ops::worker::Error>,
) -> Option<String> {
    let crate::solver::Failure::Op(crate::ops::worker::Error::File(
        crate::ops::file::Error::NotFound { path },
    )) = failure
    else {
        return None;
    };
    let context = lowered
        .requests
        .iter()
        .find_map(|l| match &l.request.context {
            plan::Context::Local(dir) if targets.contains(&l.request.target) => Some(dir),
            _ => None,
        })?;
    Some(format!(
        "without `--from`, COPY and ADD read from the build context `{}`: check that `{path}` exists there and that `.dockerignore` does not exclude it",
        context.display()
    ))
}
