//! One target on a BuildKit daemon: the `dockerfile.v0` solve request buildx would send
//! (front-end attributes, exporter, cache options), the session it calls back into, the
//! status stream as progress events, and the export moved into place. Part of `remote`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::buildflags::{CacheEntry, ExportEntry};
use crate::plan::{BuildRequest, Context, Dockerfile, NamedContext};
use crate::progress::Sink;
use crate::remote::builder::Driver;
use crate::remote::control::Control;
use crate::remote::error::{Error, Result};
use crate::remote::proto::{BytesMessage, CacheOptions, CacheOptionsEntry, SolveRequest};
use crate::remote::saved::{internal_image_name, save};
use crate::remote::session::{Attachables, Session};
use crate::remote::staging::{Destination, Staging};
use crate::remote::status::Translator;
use crate::remote::transport::Dialer;

/// One target's build on one node: the requests of its platforms, and the node.
pub(crate) struct Job {
    /// The requests (one per platform, same target), built as one multi-platform solve.
    pub(crate) requests: Vec<BuildRequest>,
    /// The builder's name, for messages.
    pub(crate) builder: String,
    /// The builder's driver (exporter names differ on the engine).
    pub(crate) driver: Driver,
    /// The node's client.
    pub(crate) control: Control,
    /// How to reach the node again (the engine's `/session`).
    pub(crate) dialer: Dialer,
    /// Whether the daemon's Dockerfile front end predates named contexts, so image
    /// contexts are written into the Dockerfile instead.
    pub(crate) legacy_frontend: bool,
    /// Whether the node can attach attestations to what it exports.
    pub(crate) attestations: Attestations,
    /// The engine image other targets link this one as, and where to say it is ready.
    pub(crate) publish: Option<(String, watch::Sender<Option<String>>)>,
    /// The engine images of the targets this one links, as they become ready.
    pub(crate) linked: BTreeMap<String, watch::Receiver<Option<String>>>,
    /// The outputs' paths (and new parent directories) that did not exist when the build
    /// started: the context of every solve is as it was then.
    pub(crate) created: Vec<PathBuf>,
    /// The engine images loaded for this target's `oci-layout://` contexts, by context name.
    pub(crate) layout_images: BTreeMap<String, String>,
    /// What the progress has shown of this target's earlier solves.
    pub(crate) translator: Option<Translator>,
    /// The target's secrets, SSH agents and the registry credentials, for its sessions.
    pub(crate) attachables: Arc<Attachables>,
    /// The node's name when the target's platforms are split over several nodes: the
    /// result is a per-platform one, an image push goes by digest to be merged, and the
    /// exports wait in staging until every node has built.
    pub(crate) split_over: Option<String>,
}

/// Whether a node can attach attestations (BuildKit v0.11 and later, and on the engine only
/// with the containerd image store), as buildx decides before sending `attest:*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attestations {
    /// The daemon attaches them.
    Supported,
    /// The engine's classic image store cannot hold them.
    ClassicEngine,
    /// The daemon predates them.
    OldDaemon,
}

impl Attestations {
    /// Decides for a node whose daemon answers `Info` (`modern`), asking an engine which
    /// image store it uses.
    pub(crate) async fn of(driver: Driver, modern: bool, dialer: &Dialer) -> Self {
        // Compat: buildx asks the driver first (the engine's classic store cannot hold
        // them), then the daemon.
        if driver == Driver::Docker && !containerd_store(dialer).await {
            return Self::ClassicEngine;
        }
        if modern {
            Self::Supported
        } else {
            Self::OldDaemon
        }
    }
}

/// Whether the engine keeps its images in containerd: its `/info` names the containerd
/// snapshotter in `DriverStatus` then.
async fn containerd_store(dialer: &Dialer) -> bool {
    let mut body = Vec::new();
    let answered =
        crate::remote::transport::engine_request(dialer, "GET", "/info", &mut body).await;
    matches!(answered, Ok(200))
        && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|info| {
            info["DriverStatus"].as_array().is_some_and(|rows| {
                rows.iter()
                    .flat_map(|row| row.as_array().into_iter().flatten())
                    .any(|v| {
                        v.as_str()
                            .is_some_and(|v| v.starts_with("io.containerd.snapshotter"))
                    })
            })
        })
}

/// The `attest:TYPE` front-end attributes for `attests` on a node with `support`: each
/// enabled attestation's parameters, and buildx's default provenance unless the target
/// switches provenance off or `BUILDX_NO_DEFAULT_ATTESTATIONS` is true. Fails where the node
/// cannot attach what the target asks for.
// Compat: buildx build.toSolveOpt and controllerapi.CreateAttestations (the first entry of a
// type wins; parameters joined as CSV without `type` and `disabled`).
pub(crate) fn attest_attrs(
    attests: &[crate::buildflags::Attest],
    support: Attestations,
    no_default: Option<&str>,
) -> std::result::Result<BTreeMap<String, String>, AttestError> {
    let mut asked: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for attest in attests {
        if asked.contains_key(attest.kind.as_str()) {
            continue;
        }
        let params = (!attest.disabled).then(|| {
            attest
                .attrs
                .iter()
                .map(|(k, v)| {
                    if v.contains([',', '"']) {
                        format!("\"{k}={}\"", v.replace('"', "\"\""))
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        });
        asked.insert(attest.kind.as_str(), params);
    }
    let mut attrs = BTreeMap::new();
    let enabled: Vec<&str> = asked
        .iter()
        .filter(|(_, params)| params.is_some())
        .map(|(kind, _)| *kind)
        .collect();
    if !enabled.is_empty() {
        match support {
            Attestations::Supported => {}
            Attestations::ClassicEngine => return Err(AttestError::ClassicEngine),
            Attestations::OldDaemon => return Err(AttestError::OldDaemon),
        }
    }
    for (kind, params) in &asked {
        if let Some(params) = params {
            attrs.insert(format!("attest:{kind}"), params.clone());
        }
    }
    if support == Attestations::Supported && !asked.contains_key("provenance") {
        let off = match no_default {
            None => false,
            Some(value) => crate::buildflags::parse_bool(value)
                .ok_or_else(|| AttestError::NoDefault(value.to_owned()))?,
        };
        if !off {
            attrs.insert(
                "attest:provenance".to_owned(),
                "mode=min,inline-only=true".to_owned(),
            );
        }
    }
    Ok(attrs)
}

/// Why a target's attestations cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttestError {
    /// The engine keeps images in its classic store.
    ClassicEngine,
    /// The daemon predates attestations.
    OldDaemon,
    /// `BUILDX_NO_DEFAULT_ATTESTATIONS` is not a boolean.
    NoDefault(String),
}

impl AttestError {
    fn text(&self) -> String {
        match self {
            // Compat: buildx's messages for the two cases.
            Self::ClassicEngine => "attestations are not supported for the docker driver: switch to a different driver, or turn on the containerd image store, and try again (https://docs.docker.com/go/attestations/)".to_owned(),
            Self::OldDaemon => "attestations are not supported by the current BuildKit daemon (it predates BuildKit v0.11)".to_owned(),
            Self::NoDefault(value) => format!("invalid BUILDX_NO_DEFAULT_ATTESTATIONS `{value}`: expected a boolean"),
        }
    }
}

/// The exporter of one output: its BuildKit name, attributes, and destination.
struct Exporter {
    name: String,
    attrs: BTreeMap<String, String>,
    destination: Destination,
}

/// A finished solve whose export is not in place yet.
struct Solved {
    response: BTreeMap<String, String>,
    staging: Staging,
    /// The engine image to save as this output, on the docker driver.
    saved: Option<(String, crate::buildflags::ExportEntry)>,
}

impl Solved {
    /// Moves the export into place (or writes the engine's image as the archive asked); a
    /// node's share of a split target keeps it staged until every node has built.
    async fn finish(self, dialer: &Dialer, target: &str, split: bool) -> Result<Outcome> {
        if split {
            return Ok(Outcome {
                response: self.response,
                stdout: None,
                held: Some(self.staging),
            });
        }
        let stdout = self.staging.finish(target)?;
        if let Some((name, entry)) = self.saved {
            let (response, stdout) = save(dialer, target, &name, &entry).await?;
            return Ok(Outcome {
                response,
                stdout,
                held: None,
            });
        }
        Ok(Outcome {
            response: self.response,
            stdout,
            held: None,
        })
    }
}

/// What one output of a target produced.
pub(crate) struct Outcome {
    /// The exporter response (`containerimage.digest`, ...).
    pub(crate) response: BTreeMap<String, String>,
    /// Bytes for stdout (`dest=-`).
    pub(crate) stdout: Option<Vec<u8>>,
    /// The export still in staging, for a target split over several nodes.
    pub(crate) held: Option<Staging>,
}

/// Go's `strconv.ParseBool`, `false` for anything else, as buildx reads `push`.
pub(crate) fn parse_bool(value: Option<&String>) -> bool {
    matches!(
        value.map(String::as_str),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

impl Job {
    fn target(&self) -> &str {
        &self.requests[0].target
    }

    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::Unsupported {
            target: self.target().to_owned(),
            builder: self.builder.clone(),
            what: what.into(),
        }
    }

    /// Builds the target once per output (BuildKit before v0.13 takes one exporter per
    /// solve; the second solve of the same graph is all cache hits).
    pub(crate) async fn run(mut self, sink: Arc<dyn Sink>) -> Result<Vec<Outcome>> {
        let mut images = BTreeMap::new();
        for (linked, receiver) in &mut self.linked {
            // The sender lives until the linked target is exported; when it fails, the whole
            // build is cancelled, so a closed channel is only seen while shutting down.
            let ready = receiver
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::Solve {
                    target: self.requests[0].target.clone(),
                    message: format!("the linked target `{linked}` did not build"),
                })?
                .clone()
                .expect("waited for a name");
            images.insert(linked.clone(), ready);
        }
        let (attrs, directories, _inline) = self.frontend_attrs(&images)?;
        let cache = self.cache()?;
        if let Some((name, ready)) = self.publish.take() {
            let exporter = Exporter {
                name: "moby".to_owned(),
                attrs: BTreeMap::from([("name".to_owned(), name.clone())]),
                destination: Destination::None,
            };
            self.solve(
                &attrs,
                &directories,
                cache.clone(),
                Some(exporter),
                sink.clone(),
            )
            .await?
            .finish(&self.dialer, self.target(), false)
            .await?;
            let _ = ready.send(Some(name));
            if self.requests[0].outputs.is_empty() {
                return Ok(Vec::new());
            }
        }
        let outputs = self.requests[0].outputs.clone();
        let exporters: Vec<Option<Exporter>> = if outputs.is_empty() {
            vec![None]
        } else {
            outputs
                .iter()
                .map(|entry| self.exporter(entry))
                .collect::<Result<_>>()?
        };
        // Every solve reads the context again: the exports are moved into place only after
        // the last one, so an output inside the context never reaches a later solve.
        let mut solved = Vec::new();
        for exporter in exporters {
            solved.push(
                self.solve(&attrs, &directories, cache.clone(), exporter, sink.clone())
                    .await?,
            );
        }
        let target = self.target().to_owned();
        let mut outcomes = Vec::new();
        for one in solved {
            outcomes.push(
                one.finish(&self.dialer, &target, self.split_over.is_some())
                    .await?,
            );
        }
        Ok(outcomes)
    }

    /// The `dockerfile.v0` attributes and the local directories the session serves. The
    /// temp directory of an inline Dockerfile lives as long as the returned guard.
    // Compat: buildx build.toSolveOpt (build/opt.go): the same attribute names.
    #[expect(
        clippy::type_complexity,
        reason = "a private triple, named at its one caller"
    )]
    fn frontend_attrs(
        &self,
        images: &BTreeMap<String, String>,
    ) -> Result<(
        BTreeMap<String, String>,
        BTreeMap<String, PathBuf>,
        Option<tempfile::TempDir>,
    )> {
        let request = &self.requests[0];
        let mut attrs = BTreeMap::new();
        let mut directories = BTreeMap::new();
        let mut inline = None;
        match &request.context {
            Context::Local(path) => {
                directories.insert("context".to_owned(), path.clone());
            }
            Context::Remote(url) => {
                attrs.insert("context".to_owned(), url.clone());
            }
        }
        match &request.dockerfile {
            Dockerfile::File(path) => {
                let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
                let name = path.file_name().map_or_else(
                    || "Dockerfile".to_owned(),
                    |n| n.to_string_lossy().into_owned(),
                );
                attrs.insert("filename".to_owned(), name);
                directories.insert("dockerfile".to_owned(), dir);
                if matches!(request.context, Context::Remote(_)) {
                    attrs.insert("dockerfilekey".to_owned(), "dockerfile".to_owned());
                }
            }
            Dockerfile::Inline(text) => {
                let dir = tempfile::tempdir().map_err(|source| Error::Export {
                    target: request.target.clone(),
                    path: std::env::temp_dir(),
                    source,
                })?;
                std::fs::write(dir.path().join("Dockerfile"), text).map_err(|source| {
                    Error::Export {
                        target: request.target.clone(),
                        path: dir.path().join("Dockerfile"),
                        source,
                    }
                })?;
                attrs.insert("filename".to_owned(), "Dockerfile".to_owned());
                directories.insert("dockerfile".to_owned(), dir.path().to_owned());
                if matches!(request.context, Context::Remote(_)) {
                    attrs.insert("dockerfilekey".to_owned(), "dockerfile".to_owned());
                }
                inline = Some(dir);
            }
            Dockerfile::Remote(path) => {
                attrs.insert("filename".to_owned(), path.clone());
            }
        }
        if let Some(stage) = &request.stage {
            attrs.insert("target".to_owned(), stage.clone());
        }
        for (name, value) in &request.build_args {
            attrs.insert(format!("build-arg:{name}"), value.clone());
        }
        for (name, value) in &request.labels {
            attrs.insert(format!("label:{name}"), value.clone());
        }
        let platforms: Vec<String> = self
            .requests
            .iter()
            .filter_map(|r| r.platform.as_ref().map(ToString::to_string))
            .collect();
        if !platforms.is_empty() {
            attrs.insert("platform".to_owned(), platforms.join(","));
        }
        if self.split_over.is_some() {
            // Compat: buildx toSolveOpt: a per-platform result (an index, platform
            // directories) even for one platform, so the nodes' results fit together.
            attrs.insert("multi-platform".to_owned(), "true".to_owned());
        }
        if request.no_cache {
            attrs.insert("no-cache".to_owned(), String::new());
        } else if !request.no_cache_filter.is_empty() {
            attrs.insert("no-cache".to_owned(), request.no_cache_filter.join(","));
        }
        if request.pull {
            attrs.insert("image-resolve-mode".to_owned(), "pull".to_owned());
        }
        if !request.extra_hosts.is_empty() {
            // Compat: buildx build.toSolveOpt (`add-hosts`, `host=ip` comma-separated).
            attrs.insert("add-hosts".to_owned(), request.extra_hosts.join(","));
        }
        if request.limits.shm_size > 0 {
            // Compat: buildx build.toSolveOpt (`shm-size` in bytes).
            attrs.insert("shm-size".to_owned(), request.limits.shm_size.to_string());
        }
        if !request.limits.ulimits.is_empty() {
            // Compat: buildx toBuildkitUlimits (`name=soft:hard`, comma-separated, by name).
            let ulimits: Vec<String> = request
                .limits
                .ulimits
                .iter()
                .map(ToString::to_string)
                .collect();
            attrs.insert("ulimit".to_owned(), ulimits.join(","));
        }
        if let Some(network) = request.network.as_deref().filter(|n| *n != "default") {
            attrs.insert("force-network-mode".to_owned(), network.to_owned());
        }
        for (name, context) in &request.named_contexts {
            let value = match context {
                NamedContext::Local { path } => {
                    directories.insert(name.clone(), path.clone());
                    format!("local:{name}")
                }
                NamedContext::Image { reference } => format!("docker-image://{reference}"),
                NamedContext::Remote { url } => url.clone(),
                NamedContext::OciLayout { .. } => match self.layout_images.get(name) {
                    Some(image) => format!("docker-image://{image}"),
                    None if self.driver == Driver::Docker => {
                        return Err(self.unsupported(format!(
                            "the `oci-layout://` context `{name}` for several platforms (the engine holds one platform's image under a name)"
                        )));
                    }
                    None => {
                        return Err(
                            self.unsupported(format!("the `oci-layout://` context `{name}`"))
                        );
                    }
                },
                NamedContext::Target { name: linked } => match images.get(linked) {
                    Some(image) => format!("docker-image://{image}"),
                    None => {
                        return Err(
                            self.unsupported(format!("the `target:{linked}` context `{name}`"))
                        );
                    }
                },
            };
            attrs.insert(format!("context:{name}"), value);
        }
        if self.legacy_frontend {
            inline = self
                .substitute_contexts(&mut attrs, &mut directories)?
                .or(inline);
        }
        let no_default = std::env::var("BUILDX_NO_DEFAULT_ATTESTATIONS").ok();
        let attests = attest_attrs(&request.attest, self.attestations, no_default.as_deref())
            .map_err(|error| Error::Attest {
                target: self.target().to_owned(),
                builder: self.builder.clone(),
                reason: error.text(),
            })?;
        attrs.extend(attests);
        Ok((attrs, directories, inline))
    }

    /// Moves the named contexts from `context:NAME` attributes into the Dockerfile, for a
    /// front end that ignores those attributes; returns the rewritten Dockerfile's directory.
    fn substitute_contexts(
        &self,
        attrs: &mut BTreeMap<String, String>,
        directories: &mut BTreeMap<String, PathBuf>,
    ) -> Result<Option<tempfile::TempDir>> {
        let request = &self.requests[0];
        let mut images = BTreeMap::new();
        for name in request.named_contexts.keys() {
            let value = attrs.remove(&format!("context:{name}")).unwrap_or_default();
            match value.strip_prefix("docker-image://") {
                Some(image) => {
                    images.insert(name.clone(), image.to_owned());
                }
                None => {
                    return Err(self.unsupported(format!(
                        "the context `{name}` (`{value}`) on a daemon whose Dockerfile front end predates named contexts (only image contexts can be written into the Dockerfile)"
                    )));
                }
            }
        }
        if images.is_empty() {
            return Ok(None);
        }
        let text = match &request.dockerfile {
            Dockerfile::File(path) => {
                std::fs::read_to_string(path).map_err(|source| Error::Export {
                    target: request.target.clone(),
                    path: path.clone(),
                    source,
                })?
            }
            Dockerfile::Inline(text) => text.clone(),
            Dockerfile::Remote(_) => {
                return Err(self.unsupported(
                    "a Dockerfile inside a remote context with named contexts on a daemon whose Dockerfile front end predates them",
                ));
            }
        };
        let rewritten = crate::remote::substitute::substitute(&text, &images).map_err(|why| {
            self.unsupported(format!(
                "writing the named contexts into the Dockerfile ({why}) for a daemon whose Dockerfile front end predates named contexts"
            ))
        })?;
        let dir = tempfile::tempdir().map_err(|source| Error::Export {
            target: request.target.clone(),
            path: std::env::temp_dir(),
            source,
        })?;
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, rewritten).map_err(|source| Error::Export {
            target: request.target.clone(),
            path,
            source,
        })?;
        attrs.insert("filename".to_owned(), "Dockerfile".to_owned());
        directories.insert("dockerfile".to_owned(), dir.path().to_owned());
        Ok(Some(dir))
    }

    fn cache(&self) -> Result<CacheOptions> {
        let request = &self.requests[0];
        let entry = |entry: &CacheEntry| -> Result<CacheOptionsEntry> {
            if entry.kind == "local" {
                return Err(self.unsupported("a `type=local` cache"));
            }
            if entry.attrs.contains_key("cache-mounts") {
                return Err(self.unsupported("the `cache-mounts` cache attribute"));
            }
            Ok(CacheOptionsEntry {
                r#type: entry.kind.clone(),
                attrs: entry.attrs.clone(),
            })
        };
        Ok(CacheOptions {
            imports: request
                .cache_from
                .iter()
                .map(entry)
                .collect::<Result<_>>()?,
            exports: request.cache_to.iter().map(entry).collect::<Result<_>>()?,
        })
    }

    /// The exporter for one output.
    // Compat: buildx build.toSolveOpt: `docker` without `dest` on the engine is its `moby`
    // exporter, as are `image`/`registry`; `registry` is `image` with `push=true`.
    fn exporter(&self, entry: &ExportEntry) -> Result<Option<Exporter>> {
        let mut attrs = entry.attrs.clone();
        let tags = self.requests[0].tags.join(",");
        let named = |attrs: &mut BTreeMap<String, String>| {
            if !attrs.contains_key("name") && !tags.is_empty() {
                attrs.insert("name".to_owned(), tags.clone());
            }
        };
        let file = |dest: &str| {
            if dest == "-" {
                Destination::Stdout
            } else {
                Destination::File(PathBuf::from(dest))
            }
        };
        let (name, destination) = match (entry.kind.as_str(), entry.destination.as_str()) {
            ("cacheonly", _) => return Ok(None),
            ("local", "") | ("tar", "") => {
                return Err(self.unsupported(format!("`type={}` without `dest`", entry.kind)));
            }
            ("local", dest) => ("local", Destination::Directory(PathBuf::from(dest))),
            ("tar", dest) => ("tar", file(dest)),
            ("oci", "") => return Err(self.unsupported("`type=oci` without `dest`")),
            ("docker", "") if self.driver == Driver::Docker => {
                named(&mut attrs);
                ("moby", Destination::None)
            }
            // Diverges: buildx fails here (the engine's BuildKit has no `oci`/`docker`
            // exporter); bake exports to the engine and rewrites what `docker save` gives.
            ("oci" | "docker", _) if self.driver == Driver::Docker => {
                named(&mut attrs);
                let name = internal_image_name("export");
                let exporter_attrs = BTreeMap::from([("name".to_owned(), name.clone())]);
                let entry = ExportEntry {
                    attrs,
                    ..entry.clone()
                };
                return Ok(Some(Exporter {
                    name: "moby".to_owned(),
                    attrs: exporter_attrs,
                    destination: Destination::Saved { name, entry },
                }));
            }
            ("oci", dest) => {
                named(&mut attrs);
                ("oci", file(dest))
            }
            ("docker", "") => {
                return Err(self.unsupported("`--load` (`type=docker` without `dest`)"));
            }
            ("docker", dest) => {
                named(&mut attrs);
                ("docker", file(dest))
            }
            ("image" | "registry", _) => {
                named(&mut attrs);
                if entry.kind == "registry" {
                    attrs.insert("push".to_owned(), "true".to_owned());
                }
                if self.split_over.is_some() && parse_bool(attrs.get("push")) {
                    // Compat: buildx Build: each node pushes by digest to the repositories
                    // only; the merged index gets the tags.
                    let names = attrs.get("name").cloned().unwrap_or_default();
                    let repositories =
                        crate::remote::merge::repositories(&names).map_err(|message| {
                            Error::Solve {
                                target: self.target().to_owned(),
                                message,
                            }
                        })?;
                    attrs.insert("name".to_owned(), repositories);
                    attrs.insert("push-by-digest".to_owned(), "true".to_owned());
                }
                let name = if self.driver == Driver::Docker {
                    "moby"
                } else {
                    "image"
                };
                (name, Destination::None)
            }
            (other, _) => return Err(self.unsupported(format!("`type={other}` outputs"))),
        };
        Ok(Some(Exporter {
            name: name.to_owned(),
            attrs,
            destination,
        }))
    }

    /// One solve: session up, status streaming, solve; the export stays staged.
    async fn solve(
        &mut self,
        attrs: &BTreeMap<String, String>,
        directories: &BTreeMap<String, PathBuf>,
        cache: CacheOptions,
        exporter: Option<Exporter>,
        sink: Arc<dyn Sink>,
    ) -> Result<Solved> {
        let target = self.target().to_owned();
        let staging = Staging::new(&target, exporter.as_ref().map(|e| &e.destination))?;
        let session = Arc::new(Session {
            id: uuid::Uuid::new_v4().simple().to_string(),
            directories: directories.clone(),
            export: staging.target(),
            hidden: self.created.clone(),
            attachables: self.attachables.clone(),
        });
        let session_task = self.start_session(session.clone()).await?;
        let reference = uuid::Uuid::new_v4().simple().to_string();
        let (exporter_name, exporter_attrs) = exporter
            .as_ref()
            .map(|e| (e.name.clone(), e.attrs.clone()))
            .unwrap_or_default();
        let request = SolveRequest {
            r#ref: reference.clone(),
            definition: None,
            exporter: exporter_name,
            exporter_attrs,
            session: session.id.clone(),
            frontend: "dockerfile.v0".to_owned(),
            frontend_attrs: attrs.clone(),
            cache: Some(cache),
            entitlements: Vec::new(),
        };
        let mut status_control = self.control.clone();
        let status_sink = sink.clone();
        let mut translator = self.translator.take().unwrap_or_default();
        translator.next_solve();
        let status = tokio::spawn(async move {
            if let Ok(mut stream) = status_control.status(&reference).await {
                while let Ok(Some(update)) = stream.message().await {
                    translator.update(&update, &*status_sink);
                }
            }
            translator.flush(&*status_sink);
            translator
        });
        let solved = self.control.solve(request).await;
        // The status stream ends once the solve is over; a daemon that keeps it open must
        // not hold the build.
        let translator = tokio::time::timeout(std::time::Duration::from_secs(5), status)
            .await
            .ok()
            .and_then(std::result::Result::ok);
        session_task.abort();
        let response = solved.map_err(|status| {
            let mut message = status.message().to_owned();
            if let Some((name, tail)) = translator.as_ref().and_then(Translator::failure) {
                message = format!("{name}: {message}");
                if !tail.is_empty() {
                    message.push_str("\n  output:\n    ");
                    message.push_str(&tail.join("\n    "));
                }
            }
            if let Some(node) = &self.split_over {
                message = format!("on node `{node}`: {message}");
            }
            Error::Solve {
                target: target.clone(),
                message,
            }
        })?;
        self.translator = translator;
        let saved = match exporter {
            Some(Exporter {
                destination: Destination::Saved { name, entry },
                ..
            }) => Some((name, entry)),
            _ => None,
        };
        Ok(Solved {
            response: response.exporter_response,
            staging,
            saved,
        })
    }

    /// Starts serving `session`: over the engine's `/session` for the docker driver, else
    /// over the control API's `Session` tunnel.
    async fn start_session(
        &mut self,
        session: Arc<Session>,
    ) -> Result<tokio::task::JoinHandle<()>> {
        let headers = session.headers();
        if self.dialer.engine_session() {
            let io = self
                .dialer
                .session(&headers)
                .await
                .map_err(|source| Error::Connect {
                    builder: self.builder.clone(),
                    address: self.dialer.address(),
                    source: Box::new(source),
                })?;
            return Ok(tokio::spawn(session.serve(io)));
        }
        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let (mut read, mut write) = tokio::io::split(theirs);
        let (sender, receiver) = mpsc::channel::<BytesMessage>(16);
        let pump_out = tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            while let Ok(n) = read.read(&mut buffer).await {
                if n == 0
                    || sender
                        .send(BytesMessage {
                            data: buffer[..n].to_vec(),
                        })
                        .await
                        .is_err()
                {
                    break;
                }
            }
        });
        let mut incoming = self
            .control
            .session(ReceiverStream::new(receiver), &headers)
            .await
            .map_err(|status| Error::Call {
                builder: self.builder.clone(),
                call: "Session",
                message: crate::remote::error::status_text(&status),
            })?;
        Ok(tokio::spawn(async move {
            let pump_in = async move {
                while let Ok(Some(message)) = incoming.message().await {
                    if write.write_all(&message.data).await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            };
            tokio::join!(session.serve(ours), pump_in);
            pump_out.abort();
        }))
    }
}

#[cfg(test)]
mod attest_tests {
    use super::*;
    use crate::buildflags::Attest;

    fn attests(specs: &[&str]) -> Vec<Attest> {
        specs
            .iter()
            .map(|s| Attest::parse(s).expect("spec"))
            .collect()
    }

    #[test]
    fn attestations_become_attest_attributes_with_buildx_default_provenance() {
        let attrs = attest_attrs(
            &attests(&["type=sbom,generator=img", "type=sbom,generator=second"]),
            Attestations::Supported,
            None,
        )
        .expect("supported");
        assert_eq!(
            attrs,
            BTreeMap::from([
                ("attest:sbom".to_owned(), "generator=img".to_owned()),
                (
                    "attest:provenance".to_owned(),
                    "mode=min,inline-only=true".to_owned()
                ),
            ])
        );
        let attrs = attest_attrs(&[], Attestations::Supported, Some("1")).expect("supported");
        assert!(attrs.is_empty(), "{attrs:?}");
        let attrs = attest_attrs(
            &attests(&["type=provenance,disabled=true"]),
            Attestations::Supported,
            None,
        )
        .expect("supported");
        assert!(attrs.is_empty(), "{attrs:?}");
        let attrs = attest_attrs(
            &attests(&["type=provenance,mode=max,\"builder-id=a,b\""]),
            Attestations::Supported,
            None,
        )
        .expect("supported");
        assert_eq!(attrs["attest:provenance"], "\"builder-id=a,b\",mode=max");
        assert_eq!(
            attest_attrs(&[], Attestations::Supported, Some("maybe")),
            Err(AttestError::NoDefault("maybe".into()))
        );
    }

    #[test]
    fn a_daemon_without_attestations_refuses_only_enabled_ones() {
        let asked = attests(&["type=provenance"]);
        assert_eq!(
            attest_attrs(&asked, Attestations::ClassicEngine, None),
            Err(AttestError::ClassicEngine)
        );
        assert_eq!(
            attest_attrs(&asked, Attestations::OldDaemon, None),
            Err(AttestError::OldDaemon)
        );
        let off = attests(&["type=provenance,disabled=true"]);
        assert!(
            attest_attrs(&off, Attestations::OldDaemon, None)
                .expect("nothing to attach")
                .is_empty()
        );
        assert!(
            attest_attrs(&[], Attestations::ClassicEngine, None)
                .expect("no default where unsupported")
                .is_empty()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::builder::{Address, Node};

    /// A job for `request` on a node nothing listens on: building the attributes never
    /// dials it.
    fn job(request: BuildRequest) -> Job {
        let node = Node {
            name: "n".to_owned(),
            address: Address::Unix("/nonexistent/buildkitd.sock".into()),
            platforms: Vec::new(),
            tls: None,
        };
        let channel = tonic::transport::Endpoint::from_static("http://localhost").connect_lazy();
        let auth =
            crate::registry::DockerConfig::load(std::path::Path::new("/nonexistent/config.json"))
                .expect("a missing config is an empty one");
        let attachables = crate::remote::session::Attachables::resolve(&request, Arc::new(auth))
            .expect("no secrets or agents");
        Job {
            attachables: Arc::new(attachables),
            requests: vec![request],
            builder: "b".to_owned(),
            driver: Driver::Remote,
            control: Control::new(channel),
            dialer: Dialer::new("b", Driver::Remote, &node).expect("no TLS files to read"),
            legacy_frontend: false,
            attestations: Attestations::Supported,
            publish: None,
            linked: BTreeMap::new(),
            created: Vec::new(),
            layout_images: BTreeMap::new(),
            translator: None,
            split_over: None,
        }
    }

    #[tokio::test]
    async fn shm_size_and_ulimits_are_sent_as_buildx_sends_them() {
        let mut request = crate::plan::tests::request_for("/nonexistent");
        request.limits.shm_size = 96 << 20;
        request.limits.ulimits = ["nofile=1000:2000", "nproc=512"]
            .iter()
            .map(|u| crate::buildflags::Ulimit::parse(u).expect("valid ulimit"))
            .collect();
        let (attrs, _, _) = job(request).frontend_attrs(&BTreeMap::new()).unwrap();
        assert_eq!(attrs["shm-size"], "100663296");
        assert_eq!(attrs["ulimit"], "nofile=1000:2000,nproc=512:512");

        let plain = crate::plan::tests::request_for("/nonexistent");
        let (attrs, _, _) = job(plain).frontend_attrs(&BTreeMap::new()).unwrap();
        assert!(!attrs.contains_key("shm-size") && !attrs.contains_key("ulimit"));
    }
}
