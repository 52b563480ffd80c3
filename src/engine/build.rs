//! `bake` building, in three stages with their own inputs and outputs, as cargo's
//! `compile` → `BuildRunner`: [`lower`](crate::engine::lower) turns every build request into
//! one combined graph, [`solve`] runs it through the ops worker, and
//! [`export`](crate::engine::export) sends each target's result to its outputs. Part of
//! `engine`.
//!
//! One solve for all targets (as BuildKit's bake does): a vertex two targets share runs
//! once, independent targets run in parallel, and `target:` links are edges inside the graph
//! rather than builds in sequence. One cache in the state root, keyed by content, serves
//! later runs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cache::local::LocalCache;
use crate::content::Store;
use crate::engine::error::{Error, StepFailed};
use crate::engine::export::{self, ExportInputs};
use crate::engine::lower::{self, Lowered};
use crate::executor::Runtime;
use crate::exporter::ExportContext;
use crate::ops::worker::{Ref, SnapshotterKind, Worker};
use crate::plan;
use crate::progress::Sink;
use crate::solver::{CancelToken, SolveOptions, Solver};

/// How to build. The runtime and the snapshotter come in from the caller, so tests and
/// other front doors choose them (cargo's `compile_with_exec`).
pub struct BuildOptions {
    /// The state root (snapshots, content store, cache mounts).
    pub root: PathBuf,
    /// Runs RUN steps (runc or crun, see [`runc`]).
    pub runtime: Box<dyn Runtime>,
    /// Which snapshotter the worker uses.
    pub snapshotter: SnapshotterKind,
    /// Vertices worked on at once.
    pub max_parallelism: usize,
    /// `SOURCE_DATE_EPOCH`, for reproducible exports.
    pub source_date_epoch: Option<u64>,
    /// Set to stop the build (Ctrl-C): nothing new starts and running steps are killed.
    pub cancel: Arc<AtomicBool>,
    /// buildkitd.toml's `[registry."host"]` settings (mirrors, plain HTTP, TLS).
    pub registries: BTreeMap<String, crate::config::Registry>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("root", &self.root)
            .field("snapshotter", &self.snapshotter)
            .field("max_parallelism", &self.max_parallelism)
            .field("source_date_epoch", &self.source_date_epoch)
            .finish_non_exhaustive()
    }
}

/// The runc-compatible runtime at `binary`, with its state and bundles under `root`, killed
/// when `cancel` is set.
pub fn runc(
    root: &std::path::Path,
    binary: &std::path::Path,
    cancel: Arc<AtomicBool>,
) -> Box<dyn Runtime> {
    Box::new(
        crate::executor::Runc::new(binary, root.join("runtime"))
            .with_bundle_root(root.join("bundles"))
            .with_cancel(cancel),
    )
}

/// The worker's snapshotter for buildkitd.toml's `snapshotter` key.
pub fn snapshotter(configured: &crate::config::Snapshotter) -> SnapshotterKind {
    match configured {
        crate::config::Snapshotter::Native | crate::config::Snapshotter::Unsupported(_) => {
            SnapshotterKind::Native
        }
        crate::config::Snapshotter::Overlayfs => SnapshotterKind::Overlayfs,
        crate::config::Snapshotter::Auto => SnapshotterKind::Auto,
    }
}

/// What one target's build produced.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// The target.
    pub target: String,
    /// The exporter responses (buildx's `--metadata-file` keys), merged.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Whether the target had no output (buildx warns that the result stays in the cache).
    pub cache_only: bool,
}

/// What the solve stage produced.
pub(crate) struct Solved {
    /// The result of each lowered request's root, in request order.
    pub(crate) outputs: Vec<Option<Ref>>,
    /// The solver and its worker, kept until the export ends: the worker's snapshotter keeps
    /// overlay snapshots mounted while it lives, and the results are read from them.
    _solver: Solver<Worker, LocalCache>,
}

/// Builds every request whose method is `build` in one solve and runs their exporters;
/// an output to `-` is written to `stdout`.
pub fn build(
    plan: &plan::Plan,
    options: BuildOptions,
    sink: &dyn Sink,
    stdout: &mut dyn Write,
) -> Result<Vec<BuildReport>, Error> {
    export::validate_outputs(plan)?;
    let BuildOptions {
        root,
        runtime,
        snapshotter,
        max_parallelism,
        source_date_epoch,
        cancel,
        registries,
    } = options;
    let state = |source: Box<dyn std::error::Error + Send + Sync>| Error::State {
        root: root.clone(),
        source,
    };
    // Held for the whole build: garbage collection never runs under a build.
    let _lock = crate::cache::gc::BuildLock::shared(&root).map_err(|e| state(e.into()))?;
    let store = Store::open(&root).map_err(|e| state(e.into()))?;
    let registry = registry_options(&registries);
    // One puller for the whole build: a base two targets share is resolved and pulled once.
    let images = Arc::new(
        crate::source::image::Puller::new(
            registry.clone(),
            &root,
            plan.requests.iter().any(|r| r.pull),
        )
        .map_err(|e| state(e.into()))?,
    );
    let lowered = lower::lower(plan, &images)?;
    let settings = WorkerSettings {
        root: &root,
        runtime,
        snapshotter,
        max_parallelism,
        cancel,
    };
    let solved = solve(&lowered, settings, images.clone(), sink)?;
    let inputs = ExportInputs {
        root: &root,
        store: &store,
        registry: &registry,
        context: ExportContext {
            source_date_epoch,
            now: now(),
        },
    };
    export::export(&lowered, &solved, &inputs, stdout)
}

/// What the solve stage takes from the build options.
struct WorkerSettings<'a> {
    root: &'a std::path::Path,
    runtime: Box<dyn Runtime>,
    snapshotter: SnapshotterKind,
    max_parallelism: usize,
    cancel: Arc<AtomicBool>,
}

/// The second stage: runs the combined graph through the ops worker.
fn solve(
    lowered: &Lowered<'_>,
    settings: WorkerSettings<'_>,
    images: Arc<crate::source::image::Puller>,
    sink: &dyn Sink,
) -> Result<Solved, Error> {
    let requests: Vec<&plan::BuildRequest> = lowered.requests.iter().map(|l| l.request).collect();
    let (secrets, ssh) = crate::engine::session::session(&requests)?;
    let worker = Worker::new(settings.root, settings.runtime, lowered.locals.clone())
        .with_secrets(secrets)
        .with_ssh(ssh)
        .with_images(images)
        .with_snapshotter(settings.snapshotter);
    let cache = LocalCache::open(settings.root, worker.snapshots()).map_err(|e| Error::State {
        root: settings.root.to_path_buf(),
        source: Box::new(e),
    })?;
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
    let result = solver
        .solve(&roots, sink)
        .map_err(|error| step_error(lowered, error))?;
    Ok(Solved {
        outputs: result.outputs,
        _solver: solver,
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

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The registry client settings from buildkitd.toml's `[registry."host"]` tables.
fn registry_options(
    registries: &BTreeMap<String, crate::config::Registry>,
) -> crate::registry::ClientOptions {
    crate::registry::ClientOptions {
        hosts: registries
            .iter()
            .map(|(host, settings)| {
                (
                    host.clone(),
                    crate::registry::HostOptions {
                        mirrors: settings.mirrors.clone(),
                        http: settings.http.unwrap_or(false),
                        insecure: settings.insecure.unwrap_or(false),
                        ca: settings.ca.clone(),
                    },
                )
            })
            .collect(),
        ..crate::registry::ClientOptions::default()
    }
}
