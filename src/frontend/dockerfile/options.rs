//! What a conversion takes and returns: [`ConvertOptions`], named contexts, the
//! [`ImageResolver`] seam for base-image metadata, and [`Converted`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::digest::Digest;
use crate::graph::Definition;
use crate::oci;
use crate::platform::Platform;

/// Metadata about a base image, supplied by whoever can reach a registry.
// Compat: buildkit llb.ImageMetaResolver (ResolveImageConfig returns the digest and config).
pub trait ImageResolver {
    /// Returns the config of `reference` (normalised, e.g. `docker.io/library/alpine:3`) for
    /// `platform`, or `None` when unknown (the stage then starts from an empty config, as in a
    /// dry run).
    ///
    /// # Errors
    /// Returns a message when the image exists but cannot be read.
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> std::result::Result<Option<ResolvedImage>, String>;
}

/// What an [`ImageResolver`] knows about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The manifest digest; when given, the source is pinned to `reference@digest`.
    pub digest: Option<Digest>,
    /// The image config (env, workdir, user, ONBUILD triggers, history, ...).
    pub image: oci::Image,
}

/// A replacement input for a stage name, `FROM` name or `COPY --from` name (bake `contexts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum NamedContext {
    /// A local directory, sent as a local source named `name`.
    Local {
        /// The local source name the engine uploads the directory under.
        name: String,
    },
    /// `docker-image://<reference>`.
    Image {
        /// The image reference.
        reference: String,
    },
    /// `oci-layout://<path>[:tag|@digest]`.
    OciLayout {
        /// The layout directory (or its store id).
        path: String,
        /// Tag or `@digest`, if given.
        reference: Option<String>,
    },
    /// `target:<name>`: another bake target's result.
    Target {
        /// The target name.
        name: String,
    },
}

/// The build context's `.dockerignore` as the front end sees it: only the `CopyIgnoredFile`
/// check reads it (the context itself is filtered where it is loaded).
// Compat: buildkit dockerui Client.DockerIgnorePatterns plus the patternmatcher it builds.
#[derive(Clone)]
pub struct DockerIgnore {
    /// The patterns in file order; a `!` re-include keeps its prefix.
    pub patterns: Vec<String>,
    /// Returns true when a context path (slash-separated, relative) or a parent is excluded.
    pub excludes: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl DockerIgnore {
    /// Returns true when some pattern re-includes (`!`), which BuildKit's check treats as too
    /// hard to judge statically.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.starts_with('!'))
    }
}

impl fmt::Debug for DockerIgnore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerIgnore")
            .field("patterns", &self.patterns)
            .finish_non_exhaustive()
    }
}

/// Options of one conversion (BuildKit's `ConvertOpt`).
#[derive(Clone, Default)]
pub struct ConvertOptions {
    /// Stage to build; the last stage when `None`.
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Extra image labels.
    pub labels: BTreeMap<String, String>,
    /// Platform to build for; the build platform when `None`.
    pub target_platform: Option<Platform>,
    /// Platform of the builder; the host when `None`.
    pub build_platform: Option<Platform>,
    /// Named contexts by name.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// Base-image metadata; without one, image stages start from an empty config.
    pub resolver: Option<Arc<dyn ImageResolver + Send + Sync>>,
    /// Lower every stage, not only those reachable from the target (used by checks).
    pub all_stages: bool,
    /// Stages (names, or indexes as text) whose steps ignore the cache (`no-cache-filter`).
    pub no_cache_filter: Vec<String>,
    /// The build context's `.dockerignore`, when it has patterns.
    pub dockerignore: Option<DockerIgnore>,
    /// The target builds for several platforms, so step names start with the platform
    /// (`[linux/arm64 build 2/3] RUN make`), as BuildKit names them.
    pub multi_platform: bool,
    /// Extra `/etc/hosts` entries for every RUN step, as `host=ip` (the target's
    /// `extra-hosts`).
    pub extra_hosts: Vec<String>,
    /// Size of every RUN step's `/dev/shm` in bytes (the target's `shm-size`); 0 keeps the
    /// default.
    pub shm_size: u64,
    /// Resource limits of every RUN step's process (the target's `ulimits`).
    pub ulimits: Vec<crate::graph::Ulimit>,
    /// cgroup limits of every RUN step's container (the target's `resources`).
    pub resources: Option<Box<crate::graph::ExecResources>>,
    /// The network of RUN steps without `--network` (or with `--network=default`): the
    /// target's `network`, BuildKit's `force-network-mode`.
    pub network: crate::graph::NetworkMode,
}

impl fmt::Debug for ConvertOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConvertOptions")
            .field("target", &self.target)
            .field("build_args", &self.build_args)
            .field("labels", &self.labels)
            .field("target_platform", &self.target_platform)
            .field("build_platform", &self.build_platform)
            .field("named_contexts", &self.named_contexts)
            .field("resolver", &self.resolver.is_some())
            .field("all_stages", &self.all_stages)
            .field("no_cache_filter", &self.no_cache_filter)
            .field("dockerignore", &self.dockerignore)
            .field("extra_hosts", &self.extra_hosts)
            .field("shm_size", &self.shm_size)
            .field("ulimits", &self.ulimits)
            .field("resources", &self.resources)
            .finish()
    }
}

/// The result of [`convert`](crate::frontend::dockerfile::convert).
#[derive(Debug, Clone, Serialize)]
pub struct Converted {
    /// The build graph of the target stage.
    pub definition: Definition,
    /// The image config of the target stage.
    pub image: oci::Image,
    /// The target stage's name (`stage-N` when unnamed).
    pub target: String,
    /// The platform the target was built for.
    pub platform: Platform,
}

/// The predefined proxy args, usable without declaring them.
pub(crate) const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];
