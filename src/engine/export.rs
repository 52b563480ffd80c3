//! The last build stage: each target's result (every platform it was built for) goes to its
//! outputs. Outputs are checked before the solve starts, so a bad `output` never costs a
//! build. Part of `engine`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::content::Store;
use crate::engine::error::Error;
use crate::engine::lower::Lowered;
use crate::engine::solve::Solved;
use crate::exporter::{self, BuildOutput, ExportContext, PlatformOutput};
use crate::plan::Plan;

/// What one target's build produced.
#[derive(Debug, Clone, Default)]
pub struct BuildReport {
    /// The target.
    pub target: String,
    /// The exporter responses (buildx's `--metadata-file` keys), merged.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Whether the target had no output (buildx warns that the result stays in the cache).
    pub cache_only: bool,
    /// Warnings for the user: a `cache-from` that could not be read, a `cache-to` that
    /// failed with `ignore-error=true`.
    pub warnings: Vec<String>,
}

/// Checks every output of the requests that build, before anything runs; the attributes
/// too when bake's own exporters act on them (`attributes`).
pub(crate) fn validate_outputs(plan: &Plan, attributes: bool) -> Result<(), Error> {
    for request in &plan.requests {
        if request.call != crate::plan::Call::Build {
            continue;
        }
        let platforms: Vec<String> = plan
            .requests
            .iter()
            .filter(|r| r.target == request.target && r.call == crate::plan::Call::Build)
            .filter_map(|r| r.platform.as_ref().map(ToString::to_string))
            .collect();
        for entry in &request.outputs {
            let checked = if attributes {
                exporter::validate(entry)
            } else {
                exporter::validate_kind(entry)
            };
            let kind = checked.map_err(|source| Error::Output {
                target: request.target.clone(),
                kind: entry.kind.clone(),
                source: Box::new(source),
            })?;
            if kind == exporter::Kind::Docker && platforms.len() > 1 {
                return Err(if entry.destination.is_empty() {
                    Error::LoadPlatforms {
                        target: request.target.clone(),
                        platforms: platforms.join(", "),
                    }
                } else {
                    Error::DockerPlatforms {
                        target: request.target.clone(),
                        platforms: platforms.join(", "),
                        dest: entry.destination.clone(),
                    }
                });
            }
        }
    }
    Ok(())
}

/// One line per output attribute no exporter acts on, naming the target, for the CLI to
/// warn with: nothing accepted is dropped silently.
pub fn ignored_attributes(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for request in plan
        .requests
        .iter()
        .filter(|r| r.call == crate::plan::Call::Build)
    {
        for entry in &request.outputs {
            for key in exporter::unknown_attributes(entry) {
                let line = format!(
                    "output attribute `{key}` of target `{}` (`type={}`) is ignored: bake's exporter does not act on it",
                    request.target, entry.kind
                );
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    for line in crate::engine::cache::ignored_attributes(plan) {
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// What the export stage needs besides the solve's result.
pub(crate) struct ExportInputs<'a> {
    /// The state root (for the empty snapshot of a result with no filesystem).
    pub(crate) root: &'a Path,
    /// The content store.
    pub(crate) store: &'a Store,
    /// Registry settings for pushes.
    pub(crate) registry: &'a crate::registry::ClientOptions,
    /// Timestamps for the exported images.
    pub(crate) context: ExportContext,
    /// Where the export steps are reported.
    pub(crate) sink: &'a dyn crate::progress::Sink,
}

/// Exports target by target; a multi-platform target exports all its platforms at once.
pub(crate) fn export(
    lowered: &Lowered<'_>,
    solved: &Solved,
    inputs: &ExportInputs<'_>,
    stdout: &mut dyn Write,
) -> Result<Vec<BuildReport>, Error> {
    let mut reports: Vec<BuildReport> = Vec::new();
    for (position, first) in lowered.requests.iter().enumerate() {
        let target = &first.request.target;
        if reports.iter().any(|r| &r.target == target) {
            continue;
        }
        let mut platforms = Vec::new();
        let mut requests = Vec::new();
        for (at, lowered_request) in lowered.requests.iter().enumerate().skip(position) {
            if &lowered_request.request.target == target {
                platforms.push(platform_output(lowered, solved, at, inputs)?);
                requests.push(at);
            }
        }
        // Layers imported from a build cache stay there when no output needs them here.
        let lazy = solved.solver.exec().fetcher().filter(|_| {
            !first
                .request
                .outputs
                .iter()
                .any(exporter::Kind::needs_local_blobs)
        });
        let output = BuildOutput {
            platforms,
            lazy: lazy.map(exporter::LazyBlobs),
        };
        let inline = first.request.cache_to.iter().any(|c| c.kind == "inline");
        let mut report = BuildReport {
            target: target.clone(),
            cache_only: first.request.outputs.is_empty(),
            ..BuildReport::default()
        };
        let several = lowered.requests.iter().any(|l| &l.request.target != target);
        for (index, entry) in first.request.outputs.iter().enumerate() {
            let kind = exporter::Kind::of(entry).map_err(|source| Error::Output {
                target: target.clone(),
                kind: entry.kind.clone(),
                source: Box::new(source),
            })?;
            let mut entry = entry.clone();
            // Compat: buildx names image outputs (`image`, `registry`, `oci`, `docker`) after
            // the target's tags when they give no `name=`, so `--push` pushes every tag and
            // `docker load` or `skopeo oci:DIR:TAG` find the image by name.
            if kind.is_image()
                && !entry.attrs.contains_key("name")
                && !first.request.tags.is_empty()
            {
                entry
                    .attrs
                    .insert("name".to_owned(), first.request.tags.join(","));
            }
            if kind != exporter::Kind::CacheOnly
                && !entry.destination.is_empty()
                && entry.destination != "-"
            {
                entry.destination = crate::engine::settings::absolute(&entry.destination);
            }
            // `cacheonly` exports nothing, so it is no step (as in BuildKit).
            let step = (kind != exporter::Kind::CacheOnly)
                .then(|| ExportStep::start(inputs.sink, target, index, several, kind, &entry));
            let with_cache;
            let output = if inline && kind.is_image() {
                with_cache = inline_output(lowered, solved, inputs, &entry, &output, &requests)
                    .map_err(|source| Error::CacheExport {
                        target: target.clone(),
                        destination: "type=inline".to_owned(),
                        source,
                    })?;
                &with_cache
            } else {
                &output
            };
            let response = exporter::export_with_registry(
                inputs.store,
                &entry,
                output,
                &inputs.context,
                inputs.registry,
                stdout,
            );
            if let Some(step) = step {
                step.finish(&response);
            }
            let response = response.map_err(|source| Error::Export {
                target: target.clone(),
                kind: entry.kind.clone(),
                source: Box::new(source),
            })?;
            report.metadata.extend(response.metadata);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// One output's export, shown in the progress as its own step (BuildKit's `exporting to ...`
/// vertices), with where the result went.
struct ExportStep<'a> {
    sink: &'a dyn crate::progress::Sink,
    vertex: String,
    started: std::time::Instant,
}

impl<'a> ExportStep<'a> {
    /// Reports the start of exporting `entry` (output `index` of `target`); `several`: more
    /// than one target builds, so the step names its target.
    fn start(
        sink: &'a dyn crate::progress::Sink,
        target: &str,
        index: usize,
        several: bool,
        kind: exporter::Kind,
        entry: &crate::buildflags::ExportEntry,
    ) -> Self {
        use crate::progress::{Event, Stream};
        // Compat: the names of BuildKit's exporter vertices.
        let what = match kind {
            exporter::Kind::Local => "exporting to client directory",
            exporter::Kind::Tar => "exporting to client tarball",
            exporter::Kind::Oci => "exporting to oci image format",
            exporter::Kind::Docker => "exporting to docker image format",
            exporter::Kind::Image | exporter::Kind::CacheOnly => "exporting to image",
        };
        let name = if several {
            format!("[{target}] {what}")
        } else {
            what.to_owned()
        };
        let vertex = crate::digest::Digest::of_parts([
            b"export\0".as_slice(),
            target.as_bytes(),
            &index.to_le_bytes(),
        ])
        .to_string();
        sink.event(Event::Started {
            vertex: vertex.clone(),
            name,
        });
        let destination = match (kind, entry.destination.as_str()) {
            (exporter::Kind::Docker, "") => Some("loading into the Docker engine".to_owned()),
            (exporter::Kind::Image, _) => entry.attrs.get("name").map(|names| {
                let push = entry
                    .attrs
                    .get("push")
                    .is_some_and(|v| crate::buildflags::parse_bool(v) == Some(true));
                let verb = if push || entry.kind == "registry" {
                    "pushing"
                } else {
                    "naming"
                };
                format!("{verb} to {names}")
            }),
            (_, "" | "-") => Some("writing to stdout".to_owned()),
            (_, path) => Some(format!("writing to {path}")),
        };
        if let Some(line) = destination {
            sink.event(Event::Log {
                vertex: vertex.clone(),
                stream: Stream::Stdout,
                line,
            });
        }
        Self {
            sink,
            vertex,
            started: std::time::Instant::now(),
        }
    }

    /// Reports the end of the export: done, or the error.
    fn finish<T>(self, result: &Result<T, exporter::Error>) {
        use crate::progress::Event;
        let duration = self.started.elapsed();
        self.sink.event(match result {
            Ok(_) => Event::Done {
                vertex: self.vertex,
                duration,
            },
            Err(error) => Event::Error {
                vertex: self.vertex,
                message: error.to_string(),
                duration,
            },
        });
    }
}

/// `output` with the inline cache of each platform (`cache-to type=inline`), naming the
/// layer blobs `entry`'s options make.
fn inline_output(
    lowered: &Lowered<'_>,
    solved: &Solved,
    inputs: &ExportInputs<'_>,
    entry: &crate::buildflags::ExportEntry,
    output: &BuildOutput,
    requests: &[usize],
) -> Result<BuildOutput, Box<dyn std::error::Error + Send + Sync>> {
    let epoch = match entry.attrs.get("source-date-epoch") {
        Some(text) => Some(text.parse::<u64>()?),
        None => inputs.context.source_date_epoch,
    };
    let options = exporter::ImageOptions::parse(&entry.attrs, epoch)?;
    let mut output = output.clone();
    for (platform, &at) in output.platforms.iter_mut().zip(requests) {
        platform.inline_cache = crate::engine::cache::inline_value(
            lowered,
            solved,
            inputs.store,
            at,
            &options,
            inputs.context.now,
        )?;
    }
    Ok(output)
}

/// The result of request `at` as an exporter sees it: its root filesystem and its layers,
/// read from the result's chain of snapshot refs. A result imported from a build cache is
/// lazy: its blobs are fetched only for an output that writes layers, and its tree is built
/// only for one that writes files (`local`, `tar`).
fn platform_output(
    lowered: &Lowered<'_>,
    solved: &Solved,
    at: usize,
    inputs: &ExportInputs<'_>,
) -> Result<PlatformOutput, Error> {
    let request = &lowered.requests[at];
    let target = &request.request.target;
    let layers_error = |source| Error::Layers {
        target: target.clone(),
        source: Box::new(source),
    };
    let empty = || {
        // `FROM scratch` with nothing added: an empty filesystem.
        let empty = inputs.root.join("snapshots").join("empty");
        std::fs::create_dir_all(&empty).map_err(|e| Error::State {
            root: inputs.root.to_path_buf(),
            source: Box::new(e),
        })?;
        Ok::<_, Error>(empty)
    };
    let kinds: Vec<exporter::Kind> = request
        .request
        .outputs
        .iter()
        .filter_map(|entry| exporter::Kind::of(entry).ok())
        .collect();
    let worker = solved.solver.exec();
    let fetch_error = |source: crate::ops::worker::Error| Error::Layers {
        target: target.clone(),
        source: Box::new(crate::engine::layers::Error::Fetch {
            source: Box::new(source),
        }),
    };
    let (rootfs, layers) = match solved.outputs.get(at).cloned().flatten() {
        Some(result) => {
            if request
                .request
                .outputs
                .iter()
                .any(exporter::Kind::needs_local_blobs)
            {
                worker
                    .fetch_blobs(&result, inputs.store)
                    .map_err(fetch_error)?;
            }
            let files = kinds
                .iter()
                .any(|k| matches!(k, exporter::Kind::Local | exporter::Kind::Tar));
            let rootfs = match result.path() {
                Some(_) => crate::engine::layers::rootfs(&result).map_err(layers_error)?,
                None if files => worker.materialise(&result).map_err(fetch_error)?,
                // No exporter reads the tree; the lazy result stays unfetched.
                None => empty()?,
            };
            (
                rootfs,
                crate::engine::layers::layers(&result).map_err(layers_error)?,
            )
        }
        None => (empty()?, Vec::new()),
    };
    Ok(PlatformOutput {
        platform: request.platform.clone(),
        rootfs,
        layers,
        image: request.image.clone(),
        inline_cache: None,
    })
}
