//! `bake` building: every build request is lowered by the Dockerfile front end, all of them
//! are combined into one graph and solved at once through the ops worker, then each target
//! is exported. Part of `engine`.
//!
//! One solve for all targets (as BuildKit's bake does): a vertex two targets share runs
//! once, independent targets run in parallel, and `target:` links are edges inside the graph
//! rather than builds in sequence. One cache in the state root, keyed by content, serves
//! later runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cache::local::LocalCache;
use crate::content::Store;
use crate::exporter::{self, BuildOutput, ExportContext, PlatformOutput};
use crate::graph::Edge;
use crate::ops::worker::{LocalInput, SnapshotterKind, Worker};
use crate::plan::{self, BuildRequest, Call, Dockerfile};
use crate::progress::Sink;
use crate::solver::{CancelToken, SolveOptions, Solver};

use super::combine::{self, Combiner, LocalName};
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
    /// Set to stop the build (Ctrl-C): nothing new starts and running steps are killed.
    pub cancel: Arc<AtomicBool>,
    /// The snapshotter buildkitd.toml asks for (`auto` when unset).
    pub snapshotter: crate::config::Snapshotter,
    /// buildkitd.toml's `[registry."host"]` settings (mirrors, plain HTTP, TLS).
    pub registries: BTreeMap<String, crate::config::Registry>,
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

/// The local directories a request reads, by the names its front end gives them.
fn locals(request: &BuildRequest) -> Vec<LocalName> {
    let mut locals = Vec::new();
    if let plan::Context::Local(dir) = &request.context {
        // `<Dockerfile>.dockerignore` wins over `.dockerignore`, so it is part of the
        // context's identity only when it exists.
        let ignore_for = match &request.dockerfile {
            Dockerfile::File(path) if dockerfile_ignore(path).is_file() => Some(path.clone()),
            _ => None,
        };
        locals.push(LocalName {
            name: "context".to_owned(),
            dir: dir.clone(),
            ignore_for,
        });
    }
    for (name, context) in &request.named_contexts {
        if let plan::NamedContext::Local { path } = context {
            locals.push(LocalName {
                name: name.clone(),
                dir: path.clone(),
                ignore_for: None,
            });
        }
    }
    locals
}

fn dockerfile_ignore(dockerfile: &Path) -> PathBuf {
    let mut name = dockerfile.as_os_str().to_owned();
    name.push(".dockerignore");
    PathBuf::from(name)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds every request whose method is `build` in one solve and runs their exporters.
pub fn build(
    plan: &plan::Plan,
    options: &BuildOptions,
    sink: &dyn Sink,
) -> Result<Vec<BuildReport>> {
    let fail = |target: &str, message: String| Error::Build {
        target: target.to_owned(),
        message,
    };
    // Held for the whole build: garbage collection never runs under a build.
    let _lock =
        crate::cache::gc::BuildLock::shared(&options.root).map_err(|e| fail("", e.to_string()))?;
    let store = Store::open(&options.root).map_err(|e| fail("", e.to_string()))?;
    let requests = ordered(plan)?;

    // Lower every request in link order: a linked target's image config and graph are
    // known before the targets that use it are lowered.
    let mut combiner = Combiner::default();
    let mut worker_locals: BTreeMap<String, LocalInput> = BTreeMap::new();
    let mut lowered: Vec<Lowered> = Vec::with_capacity(requests.len());
    // One puller for the whole build: a base two targets share is resolved and pulled once.
    let registry = registry_options(&options.registries);
    let images = Arc::new(
        crate::source::image::Puller::new(
            registry.clone(),
            &options.root,
            requests.iter().any(|r| r.pull),
        )
        .map_err(|e| fail("", e.to_string()))?,
    );
    for request in &requests {
        let file = dockerfile(request)?;
        let linked = |name: &str| pick(&requests, &lowered, name, request.platform.as_ref());
        let resolver = super::Resolver {
            targets: request
                .named_contexts
                .values()
                .filter_map(|c| match c {
                    plan::NamedContext::Target { name } => {
                        linked(name).map(|l| (name.clone(), l.image.clone()))
                    }
                    _ => None,
                })
                .collect(),
            images: Some(images.clone()),
        };
        let converted =
            crate::frontend::dockerfile::convert(&file, &convert_options_with(request, resolver)?)
                .map_err(Box::new)?;
        let names = locals(request);
        for local in &names {
            let dockerfile = local
                .ignore_for
                .clone()
                .or_else(|| match &request.dockerfile {
                    Dockerfile::File(path) if local.name == "context" => Some(path.clone()),
                    _ => None,
                });
            worker_locals
                .entry(local.unique())
                .or_insert_with(|| LocalInput {
                    name: local.name.clone(),
                    dir: local.dir.clone(),
                    dockerfile,
                });
        }
        let root = combiner
            .add(
                &converted.definition,
                &names,
                &|name| linked(name).map(|l| l.root),
                request.no_cache,
            )
            .map_err(|message| fail(&request.target, message))?;
        lowered.push(Lowered {
            root,
            image: converted.image,
            platform: converted.platform,
        });
    }
    let definition = combiner.finish();

    let runtime = crate::executor::Runc::new(&options.runtime, options.root.join("runtime"))
        .with_bundle_root(options.root.join("bundles"))
        .with_cancel(options.cancel.clone());
    let (secrets, ssh) = session(&requests)?;
    let worker = Worker::new(&options.root, Box::new(runtime), worker_locals)
        .with_secrets(secrets)
        .with_ssh(ssh)
        .with_images(images.clone())
        .with_snapshotter(match options.snapshotter {
            crate::config::Snapshotter::Native | crate::config::Snapshotter::Unsupported(_) => {
                SnapshotterKind::Native
            }
            crate::config::Snapshotter::Overlayfs => SnapshotterKind::Overlayfs,
            crate::config::Snapshotter::Auto => SnapshotterKind::Auto,
        });
    let cache =
        LocalCache::open(&options.root, worker.snapshots()).map_err(|e| fail("", e.to_string()))?;
    let solver = Solver::new(worker, cache).with_options(SolveOptions {
        max_parallelism: options.max_parallelism.max(1),
        cancel: CancelToken::from_flag(options.cancel.clone()),
        ..SolveOptions::default()
    });
    let roots: Vec<_> = lowered.iter().map(|l| (&definition, l.root)).collect();
    let result = solver.solve(&roots, sink).map_err(|error| {
        // Name the targets whose graphs hold the failing step, as buildx does.
        let target = match &error {
            crate::solver::Error::Vertex { vertex, .. } => requests
                .iter()
                .zip(&lowered)
                .filter(|(_, l)| combine::reaches(&definition, l.root.as_ref(), vertex))
                .map(|(r, _)| r.target.as_str())
                .fold(String::new(), |mut all, name| {
                    if !all.split(", ").any(|n| n == name) {
                        if !all.is_empty() {
                            all.push_str(", ");
                        }
                        all.push_str(name);
                    }
                    all
                }),
            _ => String::new(),
        };
        fail(&target, error.to_string())
    })?;

    // Export target by target; a multi-platform target exports all its platforms at once.
    let context = ExportContext {
        source_date_epoch: options.source_date_epoch,
        now: now(),
    };
    let mut reports: Vec<BuildReport> = Vec::new();
    let mut exported: Vec<&str> = Vec::new();
    for (position, request) in requests.iter().enumerate() {
        if exported.contains(&request.target.as_str()) {
            continue;
        }
        exported.push(&request.target);
        let mut platforms = Vec::new();
        for (at, (other, lowered)) in requests.iter().zip(&lowered).enumerate().skip(position) {
            if other.target != request.target {
                continue;
            }
            let output = result.outputs.get(at).cloned().flatten();
            let rootfs: PathBuf = match &output {
                Some(result) => super::layers::rootfs(result)
                    .map_err(|e| fail(&request.target, e.to_string()))?,
                None => {
                    // `FROM scratch` with nothing added: an empty filesystem.
                    let empty = options.root.join("snapshots").join("empty");
                    std::fs::create_dir_all(&empty)
                        .map_err(|e| fail(&request.target, e.to_string()))?;
                    empty
                }
            };
            let layers = match &output {
                Some(result) => super::layers::layers(result)
                    .map_err(|e| fail(&request.target, e.to_string()))?,
                None => Vec::new(),
            };
            platforms.push(PlatformOutput {
                platform: lowered.platform.clone(),
                rootfs,
                layers,
                image: lowered.image.clone(),
            });
        }
        let output = BuildOutput { platforms };
        let mut report = BuildReport {
            target: request.target.clone(),
            cache_only: request.outputs.is_empty(),
            ..BuildReport::default()
        };
        for entry in &request.outputs {
            if !matches!(
                entry.kind.as_str(),
                "local" | "tar" | "oci" | "docker" | "image" | "registry" | "cacheonly"
            ) {
                return Err(fail(
                    &request.target,
                    format!(
                        "the `{}` exporter needs a registry, which is not supported yet (use `type=oci` or `type=docker` with `dest=`)",
                        entry.kind
                    ),
                ));
            }
            let mut entry = entry.clone();
            // Compat: buildx names image outputs after the target's tags when they give no
            // `name=` (so `--push` pushes every tag).
            if matches!(entry.kind.as_str(), "image" | "registry" | "docker")
                && !entry.attrs.contains_key("name")
                && !request.tags.is_empty()
            {
                entry
                    .attrs
                    .insert("name".to_owned(), request.tags.join(","));
            }
            if entry.kind != "cacheonly"
                && !entry.destination.is_empty()
                && entry.destination != "-"
            {
                entry.destination = absolute(&entry.destination);
            }
            let response = exporter::export_with_registry(
                &store,
                &entry,
                &output,
                &context,
                &registry,
                &mut std::io::stdout(),
            )
            .map_err(|e| fail(&request.target, e.to_string()))?;
            report.metadata.extend(response.metadata);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Collects garbage in the state root after a build, under buildkitd.toml's GC keys: `gc`
/// (on unless `false`), a size budget from `maxUsedSpace` or `gckeepstorage` (else the last
/// `[[worker.oci.gcpolicy]]` that sets `maxUsedSpace` or `keepBytes`, else 10% of the disk,
/// as BuildKit's default) raised to `reservedSpace` (what GC always leaves), and the
/// `keepDuration` of the first policy without filters. Returns `None` when disabled or another build holds the root.
// Diverges: BuildKit applies each gcpolicy in turn with its filters; bake applies one budget
// and one age limit to every cached result.
pub fn collect_garbage(
    root: &Path,
    gc: &crate::config::Gc,
) -> Result<Option<crate::cache::gc::Report>> {
    if gc.enabled == Some(false) || !root.join("snapshots").is_dir() {
        return Ok(None);
    }
    let disk = rustix::fs::statvfs(root)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    let bytes = |space: &crate::config::DiskSpace| match space {
        crate::config::DiskSpace::Bytes(bytes) => *bytes,
        crate::config::DiskSpace::Percent(percent) => disk / 100 * u64::from(*percent),
    };
    let budget = [&gc.max_used_space, &gc.keep_storage]
        .into_iter()
        .find_map(|s| s.as_ref())
        .or_else(|| {
            gc.policies.iter().rev().find_map(|p| {
                [&p.max_used_space, &p.keep_bytes]
                    .into_iter()
                    .find_map(|s| s.as_ref())
            })
        })
        .map_or(disk / 10, bytes);
    let reserved = gc
        .reserved_space
        .as_ref()
        .or_else(|| {
            gc.policies
                .iter()
                .rev()
                .find_map(|p| p.reserved_space.as_ref())
        })
        .map_or(0, bytes);
    let budget = budget.max(reserved);
    let policy = crate::cache::gc::Policy {
        keep_bytes: Some(budget),
        keep_duration: gc
            .policies
            .iter()
            .find(|p| p.filters.is_empty() && p.keep_duration.is_some())
            .and_then(|p| p.keep_duration),
    };
    crate::cache::gc::collect(root, &policy).map_err(|e| Error::Build {
        target: String::new(),
        message: e.to_string(),
    })
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

/// The secret values and SSH agent sockets the requests name (buildx's session attachables),
/// read once for the whole solve.
// Diverges: buildx gives each target its own session; one solve shares them, so one id with
// different sources in two targets is an error rather than a silent pick.
#[allow(clippy::type_complexity, reason = "two maps by id, used once")]
fn session(
    requests: &[&BuildRequest],
) -> Result<(BTreeMap<String, Vec<u8>>, BTreeMap<String, PathBuf>)> {
    let mut secrets: BTreeMap<String, (Vec<u8>, &str)> = BTreeMap::new();
    let mut ssh: BTreeMap<String, (PathBuf, &str)> = BTreeMap::new();
    for request in requests {
        let fail = |message: String| Error::Build {
            target: request.target.clone(),
            message,
        };
        for secret in &request.secrets {
            let value = secret_value(secret).map_err(fail)?;
            if let Some((other, owner)) = secrets.get(&secret.id)
                && *other != value
            {
                return Err(fail(format!(
                    "secret `{}` has a different value in target `{owner}`; one build shares one value per id",
                    secret.id
                )));
            }
            secrets.insert(secret.id.clone(), (value, &request.target));
        }
        for entry in &request.ssh {
            let socket = ssh_socket(entry).map_err(fail)?;
            if let Some((other, owner)) = ssh.get(&entry.id)
                && *other != socket
            {
                return Err(fail(format!(
                    "SSH id `{}` names another agent in target `{owner}`",
                    entry.id
                )));
            }
            ssh.insert(entry.id.clone(), (socket, &request.target));
        }
    }
    Ok((
        secrets.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        ssh.into_iter().map(|(k, (v, _))| (k, v)).collect(),
    ))
}

/// A secret's value: from `env=`, from `src=`, or (neither given) from the environment
/// variable named like the id if it is set, else the file named like it.
// Compat: buildkit secretsprovider: an id alone means the env variable, then the file.
fn secret_value(secret: &crate::buildflags::Secret) -> std::result::Result<Vec<u8>, String> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| {
                format!(
                    "secret `{}`: environment variable `{name}` is not set",
                    secret.id
                )
            })
    };
    let from_file = |path: &str| {
        std::fs::read(absolute(path))
            .map_err(|e| format!("secret `{}`: failed to read `{path}`: {e}", secret.id))
    };
    if !secret.env.is_empty() {
        from_env(&secret.env)
    } else if !secret.src.is_empty() {
        from_file(&secret.src)
    } else if std::env::var_os(&secret.id).is_some() {
        from_env(&secret.id)
    } else {
        from_file(&secret.id)
    }
}

/// The agent socket an `ssh` entry names: `$SSH_AUTH_SOCK` for an entry without paths, else
/// its first path, which must be a socket.
fn ssh_socket(entry: &crate::buildflags::Ssh) -> std::result::Result<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt as _;
    let path = match entry.paths.first() {
        Some(path) => PathBuf::from(absolute(path)),
        None => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from).ok_or_else(|| {
            format!(
                "SSH `{}`: no agent (SSH_AUTH_SOCK is not set; start ssh-agent or give a socket path)",
                entry.id
            )
        })?,
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(path),
        Ok(_) => Err(format!(
            "SSH `{}`: `{}` is not an agent socket; key files are not supported yet (load them into ssh-agent and use its socket)",
            entry.id,
            path.display()
        )),
        Err(e) => Err(format!("SSH `{}`: `{}`: {e}", entry.id, path.display())),
    }
}

/// A lowered request: its root in the combined graph and its image config.
struct Lowered {
    root: Option<Edge>,
    image: crate::oci::Image,
    platform: crate::platform::Platform,
}

/// The lowered request of the linked target `name`: the one for `platform` if the target
/// has it, else its first.
fn pick<'a>(
    requests: &[&BuildRequest],
    lowered: &'a [Lowered],
    name: &str,
    platform: Option<&crate::platform::Platform>,
) -> Option<&'a Lowered> {
    let candidates: Vec<(&BuildRequest, &Lowered)> = requests
        .iter()
        .copied()
        .zip(lowered)
        .filter(|(r, _)| r.target == name)
        .collect();
    candidates
        .iter()
        .find(|(r, _)| r.platform.as_ref() == platform)
        .or_else(|| candidates.first())
        .map(|(_, l)| *l)
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
