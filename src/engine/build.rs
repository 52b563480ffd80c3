//! `bake` building: every build request is lowered by the Dockerfile front end, solved
//! through the ops worker, and exported. Part of `engine`.
//!
//! Each target gets its own solve (and worker), because every target's main context is
//! `local://context`; one cache in the state root, keyed by content, is shared by all of
//! them and by later runs, so a stage two targets have in common runs once and an unchanged
//! rebuild runs nothing.
// Diverges: BuildKit solves all targets in one request and tells contexts apart by session;
// one solve per target keeps contexts apart until sources carry their own identity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cache::local::LocalCache;
use crate::content::Store;
use crate::exporter::{self, BuildOutput, ExportContext, PlatformOutput};
use crate::ops::worker::{LocalInput, Snapshot, Worker};
use crate::plan::{self, BuildRequest, Call, Dockerfile};
use crate::progress::Sink;
use crate::solver::{SolveOptions, Solver};

use super::{Error, Result, convert_options_with, dockerfile};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The state root (snapshots, content store, cache mounts).
    pub root: PathBuf,
    /// The OCI runtime binary (`runc` or `crun`).
    pub runtime: PathBuf,
    /// Vertices worked on at once.
    pub max_parallelism: usize,
    /// `SOURCE_DATE_EPOCH`, for reproducible exports.
    pub source_date_epoch: Option<u64>,
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

fn locals(request: &BuildRequest) -> BTreeMap<String, LocalInput> {
    let mut locals = BTreeMap::new();
    if let plan::Context::Local(dir) = &request.context {
        let dockerfile = match &request.dockerfile {
            Dockerfile::File(path) => Some(path.clone()),
            _ => None,
        };
        locals.insert(
            "context".to_owned(),
            LocalInput {
                dir: dir.clone(),
                dockerfile,
            },
        );
    }
    for (name, context) in &request.named_contexts {
        if let plan::NamedContext::Local { path } = context {
            locals.insert(
                name.clone(),
                LocalInput {
                    dir: path.clone(),
                    dockerfile: None,
                },
            );
        }
    }
    locals
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds every request whose method is `build` and runs its exporters.
pub fn build(
    plan: &plan::Plan,
    options: &BuildOptions,
    sink: &dyn Sink,
) -> Result<Vec<BuildReport>> {
    let store = Store::open(&options.root).map_err(|e| Error::Build {
        target: String::new(),
        message: e.to_string(),
    })?;
    let mut reports = Vec::new();
    let mut built: BTreeMap<String, Built> = BTreeMap::new();
    for request in ordered(plan)? {
        let (report, result) = build_one(request, options, &store, &built, sink)?;
        built.insert(request.target.clone(), result);
        reports.push(report);
    }
    Ok(reports)
}

/// What a built target leaves for the targets that link to it.
struct Built {
    snapshot: Snapshot,
    image: crate::oci::Image,
    layers: Vec<exporter::Layer>,
}

/// The build requests in an order where every `target:` link comes before its users.
fn ordered(plan: &plan::Plan) -> Result<Vec<&BuildRequest>> {
    let requests: Vec<&BuildRequest> = plan
        .requests
        .iter()
        .filter(|r| r.call == Call::Build)
        .collect();
    let mut done: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    while out.len() < requests.len() {
        let ready = requests.iter().find(|r| {
            !done.contains(&r.target.as_str())
                && r.named_contexts.values().all(|c| match c {
                    plan::NamedContext::Target { name } => done.contains(&name.as_str()),
                    _ => true,
                })
        });
        let Some(request) = ready else {
            return Err(Error::Build {
                target: String::new(),
                message: "the `target:` links form a loop or name a target that is not built"
                    .to_owned(),
            });
        };
        done.push(&request.target);
        out.push(*request);
    }
    Ok(out)
}

fn build_one(
    request: &BuildRequest,
    options: &BuildOptions,
    store: &Store,
    built: &BTreeMap<String, Built>,
    sink: &dyn Sink,
) -> Result<(BuildReport, Built)> {
    let fail = |message: String| Error::Build {
        target: request.target.clone(),
        message,
    };
    let file = dockerfile(request)?;
    let images = std::sync::Arc::new(
        crate::source::image::Puller::from_env(&options.root, request.pull)
            .map_err(|e| fail(e.to_string()))?,
    );
    let resolver = super::Resolver {
        targets: built
            .iter()
            .map(|(name, b)| (name.clone(), b.image.clone()))
            .collect(),
        images: Some(images.clone()),
    };
    let converted =
        crate::frontend::dockerfile::convert(&file, &convert_options_with(request, resolver)?)
            .map_err(Box::new)?;
    let runtime = crate::executor::Runc::new(&options.runtime, options.root.join("runtime"))
        .with_bundle_root(options.root.join("bundles"));
    let worker = Worker::new(&options.root, Box::new(runtime), locals(request))
        .with_targets(
            built
                .iter()
                .map(|(name, b)| (name.clone(), b.snapshot.clone()))
                .collect(),
        )
        .with_images(images);
    let cache = LocalCache::open(&options.root).map_err(|e| fail(e.to_string()))?;
    let solver = Solver::new(worker, cache).with_options(SolveOptions {
        max_parallelism: options.max_parallelism.max(1),
        no_cache: request.no_cache,
        ..SolveOptions::default()
    });
    let root = converted.definition.root;
    let result = solver
        .solve(&[(&converted.definition, root)], sink)
        .map_err(|e| fail(e.to_string()))?;
    let rootfs: PathBuf = match result.outputs.first().cloned().flatten() {
        Some(snapshot) => snapshot.as_ref().clone(),
        None => {
            // `FROM scratch` with nothing added: an empty filesystem.
            let empty = options.root.join("snapshots").join("empty");
            std::fs::create_dir_all(&empty).map_err(|e| fail(e.to_string()))?;
            empty
        }
    };
    let mut report = BuildReport {
        target: request.target.clone(),
        cache_only: request.outputs.is_empty(),
        ..BuildReport::default()
    };
    // Listing layers is cheap (diffs are computed at export), so every target records them
    // for the targets that link to it.
    let index = LocalCache::open(&options.root).map_err(|e| fail(e.to_string()))?;
    let linked: BTreeMap<String, Vec<exporter::Layer>> = built
        .iter()
        .map(|(name, b)| (name.clone(), b.layers.clone()))
        .collect();
    let layers = if converted.definition.root.is_some() {
        super::layers::layers(
            &converted.definition,
            &result.keys,
            &index,
            store,
            &converted.platform,
            &linked,
        )
        .map_err(|e| fail(e.to_string()))?
    } else {
        Vec::new()
    };
    let output = BuildOutput {
        platforms: vec![PlatformOutput {
            platform: converted.platform.clone(),
            rootfs: rootfs.clone(),
            layers: layers.clone(),
            image: converted.image.clone(),
        }],
    };
    let context = ExportContext {
        source_date_epoch: options.source_date_epoch,
        now: now(),
    };
    for entry in &request.outputs {
        if !matches!(
            entry.kind.as_str(),
            "local" | "tar" | "oci" | "docker" | "image" | "registry" | "cacheonly"
        ) {
            return Err(fail(format!(
                "the `{}` exporter needs a registry, which is not supported yet (use `type=oci` or `type=docker` with `dest=`)",
                entry.kind
            )));
        }
        let mut entry = entry.clone();
        if entry.kind != "cacheonly" && !entry.destination.is_empty() && entry.destination != "-" {
            entry.destination = absolute(&entry.destination);
        }
        let response = exporter::export(store, &entry, &output, &context, &mut std::io::stdout())
            .map_err(|e| fail(e.to_string()))?;
        report.metadata.extend(response.metadata);
    }
    let result = Built {
        snapshot: std::sync::Arc::new(rootfs),
        image: converted.image,
        layers,
    };
    Ok((report, result))
}

/// Output paths are relative to the directory bake runs in, as in buildx.
fn absolute(destination: &str) -> String {
    let path = Path::new(destination);
    if path.is_absolute() {
        return destination.to_owned();
    }
    std::env::current_dir().map_or_else(
        |_| destination.to_owned(),
        |cwd| cwd.join(path).display().to_string(),
    )
}
