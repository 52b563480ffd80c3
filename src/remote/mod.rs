//! A BuildKit daemon as the back end: builder selection (buildx's builder store, direct
//! endpoints), the `remote` (buildkitd over unix/TCP, TLS) and `docker` (the engine's
//! `/grpc` and `/session`) drivers, the control-API client (`ListWorkers`, `Info`, `Solve`,
//! `Status`) and the session services the daemon calls back (file sync, exports, registry
//! credentials, secrets, SSH agents).
//! Layer 4, the alternative to `solver`/`ops`: the same [`BuildRequest`]s go to the daemon
//! and its progress comes back as the same [`crate::progress::Event`]s. On a builder with
//! several nodes a target's platforms are split over the nodes and their results merged.
//!
//! May import `plan`, `buildflags`, `source` (the context walk), `registry`, `oci`, `exporter`
//! (archives rewritten from images the engine built),
//! `platform`, `progress`, `diag`; never `solver`, `ops`, `executor` or `snapshot`.
//! gRPC needs an async runtime: this module starts one per build and keeps every task inside
//! it, so the rest of bake stays synchronous.

mod auth;
pub mod builder;
mod control;
mod error;
mod filesync;
mod layouts;
mod link;
mod merge;
mod nodes;
mod proto;
mod saved;
mod secrets;
mod session;
mod solve;
mod split;
mod sshforward;
mod staging;
mod status;
mod substitute;
mod transport;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;

use crate::plan::{BuildRequest, Call, Plan};
use crate::platform::Platform;
use crate::progress::{Event, Sink};

pub use self::builder::{Builder, Driver, Environment, Origin, Selection};
pub use self::error::{Error, Result};

use self::control::Control;
use self::transport::Dialer;

/// What one target's remote build produced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The target.
    pub target: String,
    /// The exporter responses, decoded as buildx decodes them for `--metadata-file`.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Whether the target had no output.
    pub cache_only: bool,
    /// What the daemon was sent and does not act on.
    pub warnings: Vec<String>,
}

/// What a node says about itself, for `bake debug builders`.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The platforms the builder store lists for it (these decide where a platform builds).
    pub configured: Vec<Platform>,
    /// Its workers' platforms and BuildKit version, or why it could not be asked.
    pub answer: std::result::Result<(Vec<Platform>, Option<String>), String>,
}

/// Forwards events from the runtime's tasks to the caller's thread.
struct ChannelSink(tokio::sync::mpsc::UnboundedSender<Event>);

impl Sink for ChannelSink {
    fn event(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// A connected node.
#[derive(Clone)]
struct Connected {
    control: Control,
    dialer: Dialer,
    platforms: Vec<Platform>,
}

async fn connect(builder: &Builder, node: &builder::Node) -> Result<Connected> {
    let dialer = Dialer::new(&builder.name, builder.driver, node)?;
    let channel = dialer.channel(&builder.name).await?;
    let mut control = Control::new(channel);
    let platforms = if node.platforms.is_empty() {
        let workers = control.list_workers().await.map_err(|status| Error::Call {
            builder: builder.name.clone(),
            call: "ListWorkers",
            message: error::status_text(&status),
        })?;
        worker_platforms(&workers)
    } else {
        node.platforms.clone()
    };
    Ok(Connected {
        control,
        dialer,
        platforms,
    })
}

fn worker_platforms(workers: &[proto::WorkerRecord]) -> Vec<Platform> {
    let mut out: Vec<Platform> = Vec::new();
    for worker in workers {
        for platform in &worker.platforms {
            let platform = Platform {
                os: platform.os.clone(),
                architecture: platform.architecture.clone(),
                variant: Some(platform.variant.clone()).filter(|v| !v.is_empty()),
            };
            if !out.contains(&platform) {
                out.push(platform);
            }
        }
    }
    out
}

/// Asks every node of `builder` for its workers and version.
pub fn inspect(builder: &Builder) -> Result<Vec<NodeStatus>> {
    let runtime = runtime()?;
    Ok(builder
        .nodes
        .iter()
        .map(|node| {
            let answer = runtime.block_on(async {
                let probe = async {
                    let mut connected = connect(builder, node).await?;
                    let workers = if node.platforms.is_empty() {
                        connected.platforms
                    } else {
                        let workers = connected.control.list_workers().await.map_err(|status| {
                            Error::Call {
                                builder: builder.name.clone(),
                                call: "ListWorkers",
                                message: error::status_text(&status),
                            }
                        })?;
                        worker_platforms(&workers)
                    };
                    let version = connected.control.info().await.ok().flatten();
                    Ok::<_, Error>((
                        workers,
                        version.map(|v| v.version).filter(|v| !v.is_empty()),
                    ))
                };
                match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
                    Ok(result) => result.map_err(|e| error_chain(&e)),
                    Err(_) => Err("no answer within 10s".to_owned()),
                }
            });
            NodeStatus {
                name: node.name.clone(),
                address: node.address.to_string(),
                configured: node.platforms.clone(),
                answer,
            }
        })
        .collect())
}

/// An error and its causes on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Builds every `build` request of `plan` on `builder`, all targets at once; the first
/// failure cancels the others. Progress goes to `sink`; an output to `-` to `stdout`.
pub fn build(
    plan: &Plan,
    builder: &Builder,
    sink: &dyn Sink,
    cancel: &AtomicBool,
    stdout: &mut dyn Write,
) -> Result<Vec<Report>> {
    let runtime = runtime()?;
    let mut groups: BTreeMap<String, Vec<BuildRequest>> = BTreeMap::new();
    for request in plan.requests.iter().filter(|r| r.call == Call::Build) {
        groups
            .entry(request.target.clone())
            .or_default()
            .push(request.clone());
    }
    let limited: BTreeMap<String, Vec<&str>> = groups
        .iter()
        .map(|(target, requests)| (target.clone(), sent_limits(&requests[0])))
        .collect();
    let annotated: Vec<String> = groups
        .iter()
        .filter(|(_, requests)| annotates_engine_image(&requests[0]))
        .map(|(target, _)| target.clone())
        .collect();
    // Secrets, agents and the credentials file are checked before anything is sent.
    let auth = std::sync::Arc::new(
        crate::registry::DockerConfig::load(&crate::registry::DockerConfig::default_path())
            .map_err(Error::Credentials)?,
    );
    let attachables = groups
        .iter()
        .map(|(target, requests)| {
            session::Attachables::resolve(&requests[0], auth.clone())
                .map(|a| (target.clone(), Arc::new(a)))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let (outcomes, legacy_frontend) =
        runtime.block_on(run(builder, groups, attachables, sink, cancel))?;
    let mut reports = Vec::new();
    for (target, outcomes, cache_only) in outcomes {
        let mut metadata = BTreeMap::new();
        for outcome in outcomes {
            for (key, value) in outcome.response {
                metadata.insert(key, decode_response(&value));
            }
            if let Some(bytes) = outcome.stdout {
                stdout.write_all(&bytes).map_err(|source| Error::Export {
                    target: target.clone(),
                    path: "-".into(),
                    source,
                })?;
            }
        }
        let mut warnings: Vec<String> = limited
            .get(&target)
            .filter(|names| legacy_frontend && !names.is_empty())
            .map(|names| vec![legacy_limits_warning(&builder.name, &target, names)])
            .unwrap_or_default();
        if legacy_frontend && annotated.contains(&target) {
            warnings.push(format!(
                "the annotations of target `{target}` are ignored by builder `{}` for its image outputs: the engine's image exporter predates them (BuildKit before v0.11); `type=oci`/`type=docker` archives with `dest` carry them",
                builder.name
            ));
        }
        reports.push(Report {
            target,
            metadata,
            cache_only,
            warnings,
        });
    }
    Ok(reports)
}

/// A target's outcomes, and whether it had no output.
type TargetOutcome = (String, Vec<solve::Outcome>, bool);

/// The RUN limits of `request` that go to the daemon as front-end attributes.
fn sent_limits(request: &BuildRequest) -> Vec<&'static str> {
    let mut out = Vec::new();
    if request.limits.shm_size > 0 {
        out.push("shm-size");
    }
    if !request.limits.ulimits.is_empty() {
        out.push("ulimits");
    }
    out
}

/// Whether `request` has an output the engine's own image exporter writes (an image, or a
/// load into the engine) with annotations, which that exporter drops when it predates them.
fn annotates_engine_image(request: &BuildRequest) -> bool {
    request.outputs.iter().any(|output| {
        let engine_image = matches!(output.kind.as_str(), "image" | "registry")
            || (output.kind == "docker" && output.destination.is_empty());
        engine_image && output.attrs.keys().any(|key| key.starts_with("annotation"))
    })
}

/// The warning for limits a legacy front end drops.
// Compat: BuildKit's Dockerfile front end reads `shm-size` and `ulimit` since v0.10; the
// v0.8 one in Docker Engine 20.10 ignores attributes it does not know.
fn legacy_limits_warning(builder: &str, target: &str, names: &[&str]) -> String {
    format!(
        "`{}` of target `{target}` {} ignored by builder `{builder}`: the daemon's Dockerfile front end predates them (BuildKit before v0.10), so RUN steps get its defaults",
        names.join("`, `"),
        if names.len() == 1 { "is" } else { "are" },
    )
}

async fn run(
    builder: &Builder,
    groups: BTreeMap<String, Vec<BuildRequest>>,
    mut attachables: BTreeMap<String, Arc<session::Attachables>>,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<(Vec<TargetOutcome>, bool)> {
    let mut nodes: Vec<Option<Connected>> = vec![None; builder.nodes.len()];
    if builder.driver == builder::Driver::Docker {
        nodes[0] = Some(connect(builder, &builder.nodes[0]).await?);
    }
    let routes = routes(builder, &mut nodes, &groups).await?;
    for (target, shares) in &routes {
        if shares.len() > 1 {
            split::check_split(builder, target, shares, &groups)?;
        }
        for share in shares {
            if nodes[share.node].is_none() {
                nodes[share.node] = Some(connect(builder, &builder.nodes[share.node]).await?);
            }
        }
    }
    // Compat: BuildKit v0.11 added `Info`; a daemon without it may carry a Dockerfile front
    // end older than named contexts (Docker Engine 20.10's does), so on the engine bake
    // writes image contexts into the Dockerfile, which every front end understands.
    // The first node the routing connected (on the engine, its only node) answers for the
    // daemon; an empty build connects none.
    let Some(first) = nodes.iter().flatten().next().cloned() else {
        return Ok((Vec::new(), false));
    };
    let version = first
        .control
        .clone()
        .info()
        .await
        .ok()
        .flatten()
        .map(|v| v.version)
        .filter(|v| !v.is_empty());
    let legacy_frontend = builder.driver == builder::Driver::Docker && version.is_none();
    let attestations =
        solve::Attestations::of(builder.driver, version.is_some(), &first.dialer).await;
    let links = link::Links::new(builder, &groups)?;
    let created = staging::created_paths(groups.values().flatten());
    let host = first
        .platforms
        .first()
        .cloned()
        .unwrap_or_else(Platform::host);
    let mut layouts = layouts::Layouts::default();
    if let Err(error) = layouts.load(builder, &first.dialer, &host, &groups).await {
        layouts.remove(&first.dialer).await;
        return Err(error);
    }
    let (sender, events) = tokio::sync::mpsc::unbounded_channel();
    let forward: Arc<dyn Sink> = Arc::new(ChannelSink(sender));
    let mut tasks = tokio::task::JoinSet::new();
    for (target, requests) in groups {
        let shares = &routes[&target];
        let cache_only = requests[0].outputs.is_empty();
        let (publish, linked) = links.of(&target, &requests);
        let split = shares.len() > 1;
        let attachables = attachables
            .remove(&target)
            .expect("resolved for every target");
        let mut jobs = Vec::new();
        for share in shares {
            let node = nodes[share.node]
                .clone()
                .expect("every node a share names is connected above");
            let requests: Vec<BuildRequest> = if split {
                requests
                    .iter()
                    .filter(|r| {
                        r.platform
                            .as_ref()
                            .is_some_and(|p| share.platforms.contains(p))
                    })
                    .cloned()
                    .collect()
            } else {
                requests.clone()
            };
            let layout_images = layouts.of(&host, &requests);
            jobs.push(solve::Job {
                requests,
                builder: builder.name.clone(),
                driver: builder.driver,
                control: node.control,
                dialer: node.dialer,
                legacy_frontend,
                attestations,
                publish: None,
                linked: BTreeMap::new(),
                layout_images,
                created: created.clone(),
                translator: None,
                attachables: attachables.clone(),
                split_over: split.then(|| builder.nodes[share.node].name.clone()),
            });
        }
        if !split {
            jobs[0].publish = publish;
            jobs[0].linked = linked;
        }
        let sink = forward.clone();
        tasks.spawn(async move {
            let outcomes = if split {
                split::run_split(&requests[0], jobs, sink).await?
            } else {
                let job = jobs.pop().expect("one share");
                job.run(sink).await?
            };
            Ok((target, outcomes, cache_only))
        });
    }
    drop(forward);
    let finished = wait(tasks, events, sink, cancel).await;
    links.remove(&first.dialer).await;
    layouts.remove(&first.dialer).await;
    finished.map(|outcomes| (outcomes, legacy_frontend))
}

/// Which nodes build which platforms of each target. The nodes' configured platforms
/// decide when they cover every platform asked for; otherwise every node is asked for its
/// workers' platforms too, and a node that runs a platform may take it.
// Compat: buildx nodeResolver.Resolve: strict matching on the store's platforms first, then
// every node booted and its workers listed.
async fn routes(
    builder: &Builder,
    nodes: &mut [Option<Connected>],
    groups: &BTreeMap<String, Vec<BuildRequest>>,
) -> Result<BTreeMap<String, Vec<nodes::Share>>> {
    let wanted: BTreeMap<&String, Vec<Platform>> = groups
        .iter()
        .map(|(target, requests)| {
            (
                target,
                requests.iter().filter_map(|r| r.platform.clone()).collect(),
            )
        })
        .collect();
    let configured: Vec<Vec<Platform>> =
        builder.nodes.iter().map(|n| n.platforms.clone()).collect();
    let mut routes = BTreeMap::new();
    let mut perfect = true;
    for (target, platforms) in &wanted {
        if builder.nodes.len() == 1 {
            routes.insert(
                (*target).clone(),
                nodes::split(platforms, &configured[..1], nodes::Matching::Strict).0,
            );
            continue;
        }
        let (shares, all_found) = nodes::split(platforms, &configured, nodes::Matching::Strict);
        if !all_found {
            perfect = false;
            break;
        }
        routes.insert((*target).clone(), shares);
    }
    if perfect {
        return Ok(routes);
    }
    let mut listed = configured;
    for (index, node) in builder.nodes.iter().enumerate() {
        if nodes[index].is_none() {
            nodes[index] = Some(connect(builder, node).await?);
        }
        let connected = nodes[index].as_mut().expect("connected above");
        if node.platforms.is_empty() {
            // Connecting asked the workers of a node the store lists no platforms for.
            listed[index].extend(connected.platforms.iter().cloned());
            continue;
        }
        let workers = connected
            .control
            .list_workers()
            .await
            .map_err(|status| Error::Call {
                builder: builder.name.clone(),
                call: "ListWorkers",
                message: format!(
                    "listing workers of node `{}`: {}",
                    node.name,
                    error::status_text(&status)
                ),
            })?;
        listed[index].extend(worker_platforms(&workers));
    }
    Ok(wanted
        .into_iter()
        .map(|(target, platforms)| {
            let shares = nodes::split(&platforms, &listed, nodes::Matching::Compatible).0;
            (target.clone(), shares)
        })
        .collect())
}

/// Forwards progress until every target is done; the first failure or a cancel aborts the
/// others.
async fn wait(
    mut tasks: tokio::task::JoinSet<Result<TargetOutcome>>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    sink: &dyn Sink,
    cancel: &AtomicBool,
) -> Result<Vec<TargetOutcome>> {
    let mut done = Vec::new();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            Some(event) = events.recv() => sink.event(event),
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                match joined {
                    Ok(Ok(outcome)) => done.push(outcome),
                    Ok(Err(error)) => {
                        tasks.abort_all();
                        while let Ok(event) = events.try_recv() {
                            sink.event(event);
                        }
                        return Err(error);
                    }
                    Err(join) => {
                        tasks.abort_all();
                        return Err(Error::Solve {
                            target: String::new(),
                            message: join.to_string(),
                        });
                    }
                }
            }
            _ = ticker.tick() => {
                if cancel.load(Ordering::SeqCst) {
                    tasks.abort_all();
                    return Err(Error::Cancelled);
                }
            }
        }
    }
    while let Ok(event) = events.try_recv() {
        sink.event(event);
    }
    done.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(done)
}

/// An exporter response value as buildx writes it to the metadata file: base64 of a JSON
/// object becomes that object, anything else stays a string.
// Compat: buildx build.decodeExporterResponse.
fn decode_response(value: &str) -> serde_json::Value {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter(|json| json.as_object().is_some_and(|o| !o.is_empty()))
        .unwrap_or_else(|| serde_json::Value::String(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_response_decodes_only_json_objects() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#);
        assert_eq!(decode_response(&encoded), serde_json::json!({"a": 1}));
        assert_eq!(
            decode_response("sha256:abc"),
            serde_json::Value::String("sha256:abc".into())
        );
    }
}
