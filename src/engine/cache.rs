//! Build caches around the solve: `cache-from` entries are read into one index before it
//! (a missing or unreachable cache is a warning, never a failure), and after the outputs
//! each target's `cache-to` entries get its records: the final result's chain
//! (`mode=min`) or every step of its graph (`mode=max`). Layer blobs come from the image
//! exporter's layer writer, so an image and its cache share blobs. Part of `engine`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::cache::backend::{self, Backend, Direction, Location, Mode, OpenContext};
use crate::cache::export::Contents;
use crate::cache::format::{LayerBlob, ManifestOptions, MountBlob, Record};
use crate::cache::import::Imported;
use crate::content::Store;
use crate::digest::Digest;
use crate::engine::cache_mount;
use crate::engine::error::Error;
use crate::engine::lower::Lowered;
use crate::engine::solve::Solved;
use crate::exporter::ImageOptions;
use crate::oci::Descriptor;
use crate::ops::worker::Ref;
use crate::plan::{Call, Plan};
use crate::progress::{Event, Sink, Stream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A warning for one target, printed after the build.
pub(crate) type Warning = (String, String);

/// Checks every cache entry of the requests that build, before anything runs.
pub(crate) fn validate(plan: &Plan, context: &OpenContext<'_>) -> Result<(), Error> {
    for request in plan.requests.iter().filter(|r| r.call == Call::Build) {
        let entries = (request.cache_from.iter().map(|e| (e, Direction::Import)))
            .chain(request.cache_to.iter().map(|e| (e, Direction::Export)));
        for (entry, direction) in entries {
            let attribute = match direction {
                Direction::Import => "cache-from",
                Direction::Export => "cache-to",
            };
            let error = |source: BoxError| Error::Cache {
                target: request.target.clone(),
                attribute,
                kind: entry.kind.clone(),
                source,
            };
            let backend = backend::open(entry, direction, context).map_err(|e| error(e.into()))?;
            ImageOptions::parse(&backend.options.layer_attrs, None).map_err(|e| error(e.into()))?;
        }
    }
    Ok(())
}

/// One line per cache attribute no backend acts on, naming the target, for the CLI to warn
/// with; and one per `type=inline` entry of a target without an image output.
pub(crate) fn ignored_attributes(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for request in plan.requests.iter().filter(|r| r.call == Call::Build) {
        let entries = (request
            .cache_from
            .iter()
            .map(|e| (e, Direction::Import, "cache-from")))
        .chain(
            request
                .cache_to
                .iter()
                .map(|e| (e, Direction::Export, "cache-to")),
        );
        for (entry, direction, attribute) in entries {
            for key in backend::unknown_attributes(entry, direction) {
                out.push(format!(
                    "`{attribute}` attribute `{key}` of target `{}` (`type={}`) is ignored: bake's cache backend does not act on it",
                    request.target, entry.kind
                ));
            }
            let images = request
                .outputs
                .iter()
                .any(|o| crate::exporter::Kind::of(o).is_ok_and(|k| k.is_image()));
            if entry.kind == "inline" && direction == Direction::Export && !images {
                out.push(format!(
                    "`cache-to type=inline` of target `{}` is ignored: the target has no image output to carry it",
                    request.target
                ));
            }
        }
    }
    out.dedup();
    out
}

/// Reads every `cache-from` entry (each once, in request order) into one index, each as a
/// progress step; an entry that cannot be read becomes a warning for the targets using it.
pub(crate) fn import(
    plan: &Plan,
    context: &OpenContext<'_>,
    sink: &dyn Sink,
) -> (Imported, Vec<Warning>) {
    let mut imported = Imported::default();
    let mut warnings = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for request in plan.requests.iter().filter(|r| r.call == Call::Build) {
        for entry in &request.cache_from {
            // Checked before the build: an entry that does not open was already an error.
            let Ok(backend) = backend::open(entry, Direction::Import, context) else {
                continue;
            };
            let Location::Remote { remote, names } = &backend.location else {
                continue;
            };
            let describe = backend.describe();
            if !seen.insert(format!("{describe}#{}", names.join(";"))) {
                continue;
            }
            // Compat: BuildKit's vertex for reading a cache manifest.
            let step = Step::start(sink, &format!("importing cache manifest from {describe}"));
            let before = imported.mounts().len();
            match imported.load_first(remote, names) {
                Ok((name, summary)) => {
                    step.log(&format!(
                        "{} records{} imported from `{name}`{}",
                        summary.records,
                        if summary.mounts > 0 {
                            format!(" and {} cache mounts", summary.mounts)
                        } else {
                            String::new()
                        },
                        if summary.shadowed > 0 {
                            format!(" ({} already found in an earlier cache)", summary.shadowed)
                        } else {
                            String::new()
                        }
                    ));
                    for mount in &imported.mounts()[before..] {
                        step.log(&format!(
                            "cache mount `{}`: layer {} ({} bytes), restored when a step mounts it empty",
                            mount.id, mount.blob.descriptor.digest, mount.blob.descriptor.size
                        ));
                    }
                }
                Err(error) => {
                    let message = format!(
                        "cache-from `{describe}` was not imported: {}",
                        chain(&error)
                    );
                    step.log(&message);
                    warnings.push((request.target.clone(), message));
                }
            }
            step.done();
        }
    }
    (imported, warnings)
}

/// What the cache exports left for the report: warnings, and the `--metadata-file` keys of
/// each target.
#[derive(Default)]
pub(crate) struct Exports {
    /// Warnings by target.
    pub(crate) warnings: Vec<Warning>,
    /// `(target, key, value)`: BuildKit's `cache.manifest` for `local` and `registry` caches.
    pub(crate) metadata: Vec<(String, String, serde_json::Value)>,
}

/// Writes each target's `cache-to` entries (other than `inline`, which its image carries),
/// each as a progress step. Targets that name the same destination (`--set
/// '*.cache-to=…'`) share one cache holding all their records, instead of each overwriting
/// the last. A failed export fails the build unless the entry says `ignore-error=true`,
/// which makes it a warning.
// Diverges: buildx exports each target's cache on its own, so the last target's wins.
pub(crate) fn export(
    lowered: &Lowered<'_>,
    solved: &Solved,
    store: &Store,
    context: &OpenContext<'_>,
    now: u64,
    sink: &dyn Sink,
) -> Result<Exports, Error> {
    let several = lowered
        .requests
        .iter()
        .any(|l| l.request.target != lowered.requests[0].request.target);
    // Destinations in first-use order, each with the targets (and their entries) writing it.
    let mut groups: Vec<(String, Vec<(&str, Backend)>)> = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for first in &lowered.requests {
        let target = first.request.target.as_str();
        if !done.insert(target) {
            continue;
        }
        for entry in &first.request.cache_to {
            let Ok(backend) = backend::open(entry, Direction::Export, context) else {
                continue;
            };
            let Location::Remote { names, .. } = &backend.location else {
                continue;
            };
            let id = format!("{}#{}", backend.describe(), names.join(";"));
            match groups.iter_mut().find(|(key, _)| *key == id) {
                Some((_, members)) => members.push((target, backend)),
                None => groups.push((id, vec![(target, backend)])),
            }
        }
    }
    let created = format_time(now);
    let mut out = Exports::default();
    for (_, members) in &groups {
        let targets: Vec<&str> = members.iter().map(|(t, _)| *t).collect();
        let (_, backend) = &members[0];
        let prefix = if several {
            format!("[{}] ", targets.join(", "))
        } else {
            String::new()
        };
        let result = members
            .iter()
            .try_fold(Prepared::default(), |mut all, (target, backend)| {
                // Compat: BuildKit's vertex name while cache records and blobs are gathered.
                let step = Step::start(sink, &format!("{prefix}preparing build cache for export"));
                let prepared =
                    export_one(lowered, solved, store, backend, target, &all.mounts, step)?;
                all.records.extend(prepared.records);
                for mount in prepared.mounts {
                    if !all.mounts.iter().any(|m| m.id == mount.id) {
                        all.mounts.push(mount);
                    }
                }
                Ok::<_, BoxError>(all)
            })
            .and_then(|mut prepared| {
                prepared.aliases = solved.aliases.clone();
                write(backend, &prepared, store, &prefix, &created, sink)
            });
        match &result {
            // Compat: buildkit's content cache exporters (local, registry) answer the
            // manifest's descriptor as `cache.manifest`, JSON in a string, which buildx writes
            // to the metadata file as it is; its S3 and GitHub Actions exporters answer nothing.
            Ok(manifest) if matches!(backend.kind.as_str(), "local" | "registry") => {
                let value = format!(
                    "{{\"mediaType\":{},\"digest\":\"{}\",\"size\":{}}}",
                    serde_json::Value::String(manifest.media_type.clone()),
                    manifest.digest,
                    manifest.size
                );
                for target in &targets {
                    out.metadata.push((
                        (*target).to_owned(),
                        "cache.manifest".to_owned(),
                        serde_json::Value::String(value.clone()),
                    ));
                }
            }
            _ => {}
        }
        if let Err(source) = result {
            let target = targets[0].to_owned();
            if backend.options.ignore_error {
                out.warnings.push((
                    target.clone(),
                    format!(
                        "cache-to `{}` of target `{target}` failed and is ignored (`ignore-error=true`): {}",
                        backend.describe(),
                        chain(source.as_ref())
                    ),
                ));
            } else {
                return Err(Error::CacheExport {
                    target,
                    destination: backend.describe(),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// What a cache export writes, gathered from the targets that share its destination.
#[derive(Default)]
struct Prepared {
    records: Vec<Record>,
    mounts: Vec<MountBlob>,
    /// Definition key → key of the records' steps that hash content.
    aliases: std::collections::BTreeMap<Digest, Digest>,
}

/// The "exporting cache to …" step: `prepared` goes to `backend`; returns the manifest
/// written.
fn write(
    backend: &Backend,
    prepared: &Prepared,
    store: &Store,
    prefix: &str,
    created: &str,
    sink: &dyn Sink,
) -> Result<Descriptor, BoxError> {
    let Location::Remote { remote, names } = &backend.location else {
        return Err("an inline cache is written with its image".into());
    };
    let where_ = match backend.kind.as_str() {
        "local" => "client directory",
        "s3" => "S3",
        "gha" => "GitHub Actions Cache",
        other => other,
    };
    // Compat: BuildKit's vertex name for a cache export.
    let step = Step::start(sink, &format!("{prefix}exporting cache to {where_}"));
    let options = ManifestOptions {
        image_manifest: backend.options.image_manifest,
        oci_media_types: backend.options.oci_media_types,
        config_only: backend.options.config_only,
    };
    let contents = Contents {
        records: &prepared.records,
        mounts: &prepared.mounts,
        aliases: &prepared.aliases,
    };
    let exported = crate::cache::export::export(
        remote.as_ref(),
        names,
        contents,
        store,
        options,
        created,
        &mut |line| step.log(&line),
    );
    match &exported {
        Ok(exported) => {
            step.log(&format!(
                "wrote {} records, {} layers and {} cache mounts to {} as `{}`: {} blobs new ({} bytes)",
                exported.records,
                exported.layers,
                exported.mounts,
                backend.describe(),
                names.join("`, `"),
                exported.uploaded,
                exported.uploaded_bytes
            ));
            step.done();
        }
        Err(error) => step.fail(&chain(error)),
    }
    exported
        .map(|exported| exported.manifest)
        .map_err(BoxError::from)
}

/// The "preparing build cache for export" `step`: the records of `target` for `backend`,
/// and the cache mounts it picks that `already` lacks.
fn export_one(
    lowered: &Lowered<'_>,
    solved: &Solved,
    store: &Store,
    backend: &Backend,
    target: &str,
    already: &[MountBlob],
    step: Step<'_>,
) -> Result<Prepared, BoxError> {
    let options = ImageOptions::parse(&backend.options.layer_attrs, None)?;
    let requests: Vec<usize> = (0..lowered.requests.len())
        .filter(|&at| lowered.requests[at].request.target == target)
        .collect();
    let records = Records::new(lowered, solved, store, &options);
    let mut out = Vec::new();
    for at in requests {
        match records.of_request(at, backend.options.mode) {
            Ok(found) => out.extend(found),
            Err(error) => {
                step.fail(&chain(error.as_ref()));
                return Err(error);
            }
        }
    }
    step.log(&format!(
        "{} records (mode={})",
        out.len(),
        match backend.options.mode {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    ));
    let archiving = cache_mount::Archiving {
        cache_root: solved.solver.exec().cache_mounts(),
        store,
        options: &options,
    };
    let wanted = &backend.options.cache_mounts;
    let log = |line: &str| step.log(line);
    let mounts = match cache_mount::export(lowered, target, wanted, &archiving, already, &log) {
        Ok(mounts) => mounts,
        Err(error) => {
            step.fail(&chain(error.as_ref()));
            return Err(error);
        }
    };
    step.done();
    Ok(Prepared {
        records: out,
        mounts,
        aliases: std::collections::BTreeMap::new(),
    })
}

/// The inline cache value for request `at`'s image as `options` write it: the records of
/// its final chain.
pub(crate) fn inline_value(
    lowered: &Lowered<'_>,
    solved: &Solved,
    store: &Store,
    at: usize,
    options: &ImageOptions,
    now: u64,
) -> Result<Option<String>, BoxError> {
    let records = Records::new(lowered, solved, store, options).of_request(at, Mode::Min)?;
    if records.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::cache::import::inline_value(
        &records,
        &format_time(now),
    )))
}

/// Computes records of a solve's results with one set of layer options.
struct Records<'a> {
    lowered: &'a Lowered<'a>,
    solved: &'a Solved,
    store: &'a Store,
    options: &'a ImageOptions,
    /// Chains computed so far, by cache key.
    chains: std::cell::RefCell<HashMap<Digest, Vec<LayerBlob>>>,
}

impl<'a> Records<'a> {
    fn new(
        lowered: &'a Lowered<'a>,
        solved: &'a Solved,
        store: &'a Store,
        options: &'a ImageOptions,
    ) -> Self {
        Self {
            lowered,
            solved,
            store,
            options,
            chains: std::cell::RefCell::new(HashMap::new()),
        }
    }

    /// The layer blobs of `result`, bottom first (the blobs of lazy layers are fetched).
    fn chain(&self, result: &Ref) -> Result<Vec<LayerBlob>, BoxError> {
        self.solved.solver.exec().fetch_blobs(result, self.store)?;
        let layers = crate::engine::layers::layers(result)?;
        crate::exporter::layer_blobs(self.store, &layers, self.options)?
            .into_iter()
            .map(|(descriptor, diff_id)| {
                Ok(LayerBlob {
                    descriptor,
                    diff_id: diff_id.parse::<Digest>()?,
                })
            })
            .collect()
    }

    fn chain_of_key(&self, key: &Digest) -> Result<Option<Vec<LayerBlob>>, BoxError> {
        if let Some(chain) = self.chains.borrow().get(key) {
            return Ok(Some(chain.clone()));
        }
        let Some(result) = self
            .solved
            .solver
            .store()
            .result(key)
            .and_then(|refs| refs.into_iter().next())
        else {
            return Ok(None);
        };
        let chain = self.chain(&result)?;
        self.chains.borrow_mut().insert(*key, chain.clone());
        Ok(Some(chain))
    }

    /// The records of lowered request `at`: every vertex of its graph with layers
    /// (`max`), or those whose chain the final result's chain starts with (`min`).
    fn of_request(&self, at: usize, mode: Mode) -> Result<Vec<Record>, BoxError> {
        let request = &self.lowered.requests[at];
        let Some(root) = request.root else {
            return Ok(Vec::new());
        };
        let last = match self.solved.outputs.get(at).cloned().flatten() {
            Some(result) => self.chain(&result)?,
            None => Vec::new(),
        };
        let mut records = Vec::new();
        for vertex in crate::engine::combine::reachable(&self.lowered.definition, &root.vertex) {
            let Some(key) = self.solved.keys.get(&vertex) else {
                continue;
            };
            let Some(chain) = self.chain_of_key(key)? else {
                continue;
            };
            if chain.is_empty() || (mode == Mode::Min && !last.starts_with(&chain)) {
                continue;
            }
            records.push(Record { key: *key, chain });
        }
        Ok(records)
    }
}

fn format_time(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::MAX)
        .to_string()
}

/// An error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// The open-context of the cache backends for a build.
pub(crate) fn open_context<'a>(
    root: &'a Path,
    registry: &'a crate::registry::ClientOptions,
    cwd: &'a Path,
) -> OpenContext<'a> {
    OpenContext {
        root,
        registry,
        cwd,
        env: &process_env,
    }
}

/// The process environment, where the S3 and GitHub Actions backends find credentials.
fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// A cache step in the progress view.
struct Step<'a> {
    sink: &'a dyn Sink,
    vertex: String,
    started: std::time::Instant,
}

impl<'a> Step<'a> {
    fn start(sink: &'a dyn Sink, name: &str) -> Self {
        // Two entries may give steps of the same name; each step is its own vertex.
        static STEPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let vertex = Digest::of_parts([
            b"cache\0".as_slice(),
            name.as_bytes(),
            &serial.to_le_bytes(),
        ])
        .to_string();
        sink.event(Event::Started {
            vertex: vertex.clone(),
            name: name.to_owned(),
        });
        Self {
            sink,
            vertex,
            started: std::time::Instant::now(),
        }
    }

    fn log(&self, line: &str) {
        self.sink.event(Event::Log {
            vertex: self.vertex.clone(),
            stream: Stream::Stdout,
            line: line.to_owned(),
        });
    }

    fn done(self) {
        self.sink.event(Event::Done {
            vertex: self.vertex,
            duration: self.started.elapsed(),
        });
    }

    fn fail(self, message: &str) {
        self.sink.event(Event::Error {
            vertex: self.vertex,
            message: message.to_owned(),
            duration: self.started.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_with_their_causes() {
        let error = crate::cache::remote::RemoteError::new(
            "failed to read `x`",
            std::io::Error::other("disk on fire"),
        );
        assert_eq!(chain(&error), "failed to read `x`: disk on fire");
    }
}
