//! `bake` building, in three stages with their own inputs and outputs, as cargo's
//! `compile` → `BuildRunner`: `lower` turns every build request into
//! one combined graph, `solve` runs it through the ops worker, and
//! `export` sends each target's result to its outputs. Part of
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

use crate::content::Store;
use crate::engine::error::Error;
use crate::engine::export::{self, BuildReport, ExportInputs};
use crate::engine::{lower, solve};
use crate::executor::Runtime;
use crate::exporter::ExportContext;
use crate::ops::worker::SnapshotterKind;
use crate::plan;
use crate::progress::Sink;

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
    /// The entitlements the worker allows a build to be granted (`insecure-entitlements`).
    pub insecure_entitlements: Vec<String>,
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

/// Builds every request whose method is `build` in one solve and runs their exporters;
/// an output to `-` is written to `stdout`.
pub fn build(
    plan: &plan::Plan,
    options: BuildOptions,
    sink: &dyn Sink,
    stdout: &mut dyn Write,
) -> Result<Vec<BuildReport>, Error> {
    export::validate_outputs(plan, true)?;
    let BuildOptions {
        root,
        runtime,
        snapshotter,
        max_parallelism,
        source_date_epoch,
        cancel,
        registries,
        insecure_entitlements,
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
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let cache_context = crate::engine::cache::open_context(&root, &registry, &cwd);
    crate::engine::cache::validate(plan, &cache_context)?;
    let lowered = lower::lower(plan, &images)?;
    crate::engine::entitlements::check(&lowered, &insecure_entitlements)
        .map_err(Error::Entitlement)?;
    let (imported, import_warnings) = crate::engine::cache::import(plan, &cache_context, sink);
    let settings = solve::WorkerSettings {
        root: &root,
        runtime,
        snapshotter,
        max_parallelism,
        cancel,
    };
    let solved = solve::solve(&lowered, settings, images.clone(), Arc::new(imported), sink)?;
    let inputs = ExportInputs {
        root: &root,
        store: &store,
        registry: &registry,
        context: ExportContext {
            source_date_epoch,
            now: now(),
            state_dir: Some(root.join("exports")),
        },
        sink,
    };
    let mut reports = export::export(&lowered, &solved, &inputs, stdout)?;
    let exports =
        crate::engine::cache::export(&lowered, &solved, &store, &cache_context, now(), sink)?;
    for (target, warning) in import_warnings.into_iter().chain(exports.warnings) {
        if let Some(report) = reports.iter_mut().find(|r| r.target == target) {
            report.warnings.push(warning);
        }
    }
    for (target, key, value) in exports.metadata {
        if let Some(report) = reports.iter_mut().find(|r| r.target == target) {
            report.metadata.insert(key, value);
        }
    }
    Ok(reports)
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
