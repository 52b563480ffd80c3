//! Stage 3: resolved bake targets → build requests, one per target and platform, with every
//! path made absolute and every CSV spec already typed. Pure: it never reads a file.
//!
//! May import `bake` (model only), `buildflags`, `platform`, `diag`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bake::model::Target;
use crate::bake::resolve::Resolved;
use crate::buildflags::{Attest, CacheEntry, ExportEntry, Secret, Ssh};
use crate::platform::Platform;

mod annotations;
pub mod entitlements;
mod limits;

pub use self::limits::{Limits, Resources};

pub use self::annotations::AnnotationError;

/// Why a target cannot become a build request.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// A platform string does not parse.
    #[error("target `{target}`: invalid platform")]
    #[diagnostic(
        code(plan::platform),
        help("write platforms as `os/arch[/variant]`, e.g. `linux/arm64`")
    )]
    Platform {
        /// The target.
        target: String,
        /// The parse failure.
        source: crate::platform::ParsePlatformError,
    },
    /// A platform names an OS or architecture that does not exist.
    #[error("target `{target}`: unknown platform")]
    #[diagnostic(
        code(plan::platform),
        help(
            "write platforms as `os/arch[/variant]` with Go's names, e.g. `linux/amd64`, `linux/arm64`, `linux/arm/v7`"
        )
    )]
    UnknownPlatform {
        /// The target.
        target: String,
        /// What is unknown.
        source: crate::platform::UnknownPlatformError,
    },
    /// The `network` attribute names a mode BuildKit does not have.
    // Compat: buildx build.toSolveOpt's message.
    #[error(
        "target `{target}`: network mode `{mode}` not supported by buildkit - you can define a custom network for your builder using the network driver-opt in buildx create"
    )]
    #[diagnostic(code(plan::network), help("use `default`, `none` or `host`"))]
    Network {
        /// The target.
        target: String,
        /// The mode as written.
        mode: String,
    },
    /// The `call` attribute names an unknown method.
    #[error("target `{target}`: unknown call method `{method}`")]
    #[diagnostic(code(plan::call), help("use `build`, `check`, `outline` or `targets`"))]
    Call {
        /// The target.
        target: String,
        /// The method as written.
        method: String,
    },
    /// An entry of `annotations` does not parse.
    #[error("target `{target}`: {source}")]
    #[diagnostic(
        code(plan::annotation),
        help(
            "write annotations as `[type[,type...]:]key=value`, a type being `index`, `index-descriptor`, `manifest` or `manifest-descriptor`, optionally with `[os/arch]`"
        )
    )]
    Annotation {
        /// The target.
        target: String,
        /// What is wrong.
        source: AnnotationError,
    },
    /// `shm-size`, `ulimits` or `resources` does not parse.
    #[error("target `{target}`: invalid RUN limits")]
    #[diagnostic(code(plan::limits))]
    Limits {
        /// The target.
        target: String,
        /// What does not parse.
        source: crate::buildflags::Error,
    },
}

/// Result alias for planning.
pub type Result<T> = std::result::Result<T, Error>;

/// Where the build context comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "value")]
pub enum Context {
    /// A local directory (absolute).
    Local(PathBuf),
    /// A Git or HTTP URL.
    Remote(String),
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "value")]
pub enum Dockerfile {
    /// A file on disk (absolute).
    File(PathBuf),
    /// Text from `dockerfile-inline`.
    Inline(String),
    /// A path inside a remote context.
    Remote(String),
}

/// A named context (`contexts = { name = "..." }`), typed by its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum NamedContext {
    /// A local directory (absolute).
    Local {
        /// The directory.
        path: PathBuf,
    },
    /// `docker-image://ref`.
    Image {
        /// The image reference.
        reference: String,
    },
    /// `oci-layout://path[:tag][@digest]`.
    OciLayout {
        /// The layout directory (absolute).
        path: PathBuf,
        /// The tag or digest to select, if given.
        reference: Option<String>,
    },
    /// `target:<name>`: another target's result.
    Target {
        /// The linked target.
        name: String,
    },
    /// A Git or HTTP URL.
    Remote {
        /// The URL.
        url: String,
    },
}

/// What the frontend is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Call {
    /// Build the image (the default).
    Build,
    /// Run the build checks (`check` is BuildKit's `lint`).
    Lint,
    /// Describe the build arguments, secrets and SSH the target uses.
    Outline,
    /// List the Dockerfile's stages.
    Targets,
}

impl Call {
    /// Parses a `call` value (`check` and `lint` are the same method).
    pub fn parse(method: &str) -> Option<Self> {
        match method {
            "" | "build" => Some(Call::Build),
            "check" | "lint" => Some(Call::Lint),
            "outline" => Some(Call::Outline),
            "targets" => Some(Call::Targets),
            _ => None,
        }
    }
}

/// One build: a target for one platform, ready for the frontend and the solver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildRequest {
    /// The bake target this request comes from.
    pub target: String,
    /// The platform to build for; `None` builds for the host.
    pub platform: Option<Platform>,
    /// The build context.
    pub context: Context,
    /// The Dockerfile.
    pub dockerfile: Dockerfile,
    /// The Dockerfile stage to build (`None`: the last one).
    pub stage: Option<String>,
    /// Build arguments, unset (`null`) ones removed.
    pub build_args: BTreeMap<String, String>,
    /// Labels added to the image.
    pub labels: BTreeMap<String, String>,
    /// Named contexts.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// Exporters.
    pub outputs: Vec<ExportEntry>,
    /// Cache imports.
    pub cache_from: Vec<CacheEntry>,
    /// Cache exports.
    pub cache_to: Vec<CacheEntry>,
    /// Attestations asked for (`attest`), disabled ones included: a disabled provenance
    /// still switches off a daemon's default one.
    pub attest: Vec<Attest>,
    /// Secrets (ids only travel here; values are read when the build runs).
    #[serde(skip)]
    pub secrets: Vec<Secret>,
    /// SSH agents or keys.
    #[serde(skip)]
    pub ssh: Vec<Ssh>,
    /// Network mode for RUN steps.
    pub network: Option<String>,
    /// Extra `/etc/hosts` entries for RUN steps, as `host=ip`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// `/dev/shm` size, ulimits and cgroup limits of RUN steps.
    #[serde(skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
    /// Ignore the cache entirely.
    pub no_cache: bool,
    /// Stages whose cache is ignored.
    pub no_cache_filter: Vec<String>,
    /// The target's `tags`: the names of image outputs that give none.
    pub tags: Vec<String>,
    /// Always re-resolve base images.
    pub pull: bool,
    /// The frontend method.
    pub call: Call,
    /// Entitlements the build is granted (`network.host`, `security.insecure`): the
    /// target's `entitlements`, plus what `--allow` grants once the bake-level check passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
}

/// Every request of one bake invocation, in target-name order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The requests.
    pub requests: Vec<BuildRequest>,
}

fn is_remote(value: &str) -> bool {
    crate::bake::resolve::is_remote(value)
}

fn absolute(cwd: &Path, path: &str) -> PathBuf {
    let path = path.strip_prefix("cwd://").unwrap_or(path);
    // Collecting the components drops `.` ones, so messages show `/src/app`, not `/src/./app`.
    cwd.join(path).components().collect()
}

/// Types a named-context value by its prefix.
pub fn named_context(cwd: &Path, value: &str) -> NamedContext {
    if let Some(name) = value.strip_prefix("target:") {
        return NamedContext::Target {
            name: name.to_owned(),
        };
    }
    if let Some(reference) = value.strip_prefix("docker-image://") {
        return NamedContext::Image {
            reference: reference.to_owned(),
        };
    }
    if let Some(rest) = value.strip_prefix("oci-layout://") {
        // Compat: buildx splits `path[:tag][@digest]` at the last `@`, then at a `:` after
        // the last `/`.
        let (path, digest) = match rest.rsplit_once('@') {
            Some((path, digest)) => (path, Some(digest.to_owned())),
            None => (rest, None),
        };
        let slash = path.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match path[slash..].rfind(':') {
            Some(colon) => (
                &path[..slash + colon],
                Some(path[slash + colon + 1..].to_owned()),
            ),
            None => (path, None),
        };
        return NamedContext::OciLayout {
            path: absolute(cwd, path),
            reference: digest.or(tag),
        };
    }
    if is_remote(value) && !value.starts_with("cwd://") {
        return NamedContext::Remote {
            url: value.to_owned(),
        };
    }
    NamedContext::Local {
        path: absolute(cwd, value),
    }
}

fn plan_target(cwd: &Path, target: &Target) -> Result<Vec<BuildRequest>> {
    let context_value = target.context.clone().unwrap_or_else(|| ".".to_owned());
    // Compat: buildx reads a context of `-` from stdin (a tarball, or else a Dockerfile).
    let context = if is_remote(&context_value) || context_value == "-" {
        Context::Remote(context_value)
    } else {
        Context::Local(absolute(cwd, &context_value))
    };
    let dockerfile_name = target
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".to_owned());
    let dockerfile = match (&target.dockerfile_inline, &context) {
        (Some(text), _) => Dockerfile::Inline(text.clone()),
        (None, Context::Local(dir)) => match dockerfile_name.strip_prefix("cwd://") {
            Some(path) => Dockerfile::File(cwd.join(path)),
            None => Dockerfile::File(dir.join(&dockerfile_name)),
        },
        (None, Context::Remote(_)) => match dockerfile_name.strip_prefix("cwd://") {
            Some(path) => Dockerfile::File(cwd.join(path)),
            None => Dockerfile::Remote(dockerfile_name),
        },
    };
    let method = target.call.clone().unwrap_or_default();
    let call = Call::parse(&method).ok_or_else(|| Error::Call {
        target: target.name.clone(),
        method,
    })?;
    if let Some(mode) = target
        .network
        .as_deref()
        .filter(|m| !matches!(*m, "" | "default" | "none" | "host"))
    {
        return Err(Error::Network {
            target: target.name.clone(),
            mode: mode.to_owned(),
        });
    }
    let strings = |map: &crate::bake::model::NullableMap| -> BTreeMap<String, String> {
        map.iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    };
    let platforms: Vec<Option<Platform>> = match target.platforms.as_deref() {
        None | Some([]) => vec![None],
        Some(list) => list
            .iter()
            .map(|p| {
                let platform: Platform = p.parse().map_err(|source| Error::Platform {
                    target: target.name.clone(),
                    source,
                })?;
                platform
                    .check_known(p)
                    .map_err(|source| Error::UnknownPlatform {
                        target: target.name.clone(),
                        source,
                    })?;
                Ok(Some(platform))
            })
            .collect::<Result<_>>()?,
    };
    let annotations =
        annotations::exporter_attrs(&target.annotations).map_err(|source| Error::Annotation {
            target: target.name.clone(),
            source,
        })?;
    let mut outputs = target.output.clone().unwrap_or_default();
    for output in &mut outputs {
        output.attrs.extend(annotations.iter().cloned());
    }
    let limits = Limits::of(target).map_err(|source| Error::Limits {
        target: target.name.clone(),
        source,
    })?;
    Ok(platforms
        .into_iter()
        .map(|platform| BuildRequest {
            target: target.name.clone(),
            platform,
            context: context.clone(),
            dockerfile: dockerfile.clone(),
            stage: target.target.clone(),
            build_args: strings(&target.args),
            labels: strings(&target.labels),
            named_contexts: target
                .contexts
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .as_deref()
                        .map(|v| (name.clone(), named_context(cwd, v)))
                })
                .collect(),
            outputs: outputs.clone(),
            attest: target.attest.clone(),
            cache_from: target.cache_from.clone(),
            cache_to: target.cache_to.clone().unwrap_or_default(),
            secrets: target.secret.clone(),
            ssh: target.ssh.clone(),
            network: target.network.clone(),
            extra_hosts: target
                .extra_hosts
                .iter()
                .filter_map(|(host, ip)| ip.as_ref().map(|ip| format!("{host}={ip}")))
                .collect(),
            limits: limits.clone(),
            no_cache: target.no_cache.unwrap_or(false),
            no_cache_filter: target.no_cache_filter.clone(),
            pull: target.pull.unwrap_or(false),
            tags: target.tags.clone().unwrap_or_default(),
            call,
            entitlements: target.entitlements.clone(),
        })
        .collect())
}

/// Turns resolved targets into build requests; relative paths are taken from `cwd`.
pub fn plan(resolved: &Resolved, cwd: &Path) -> Result<Plan> {
    let mut requests = Vec::new();
    for target in resolved.targets.values() {
        requests.extend(plan_target(cwd, target)?);
    }
    Ok(Plan { requests })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A build request for the target `app` with its context at `context`.
    pub(crate) fn request_for(context: &str) -> BuildRequest {
        let mut app = target("app");
        app.context = Some(context.to_owned());
        plan(&resolved(vec![app]), Path::new("/work"))
            .unwrap()
            .requests
            .remove(0)
    }

    /// A request for `target` on `platform` (an inline `FROM scratch`) whose named contexts
    /// link the targets `links`, as `ctx-NAME`.
    pub(crate) fn linking(target: &str, platform: Option<&str>, links: &[&str]) -> BuildRequest {
        let mut request = request_for("/nonexistent");
        request.target = target.to_owned();
        request.platform = platform.map(|p| p.parse().expect("platform"));
        request.dockerfile = Dockerfile::Inline("FROM scratch".to_owned());
        request.named_contexts = links
            .iter()
            .map(|l| {
                (
                    format!("ctx-{l}"),
                    NamedContext::Target {
                        name: (*l).to_owned(),
                    },
                )
            })
            .collect();
        request
    }

    fn target(name: &str) -> Target {
        Target {
            name: name.to_owned(),
            context: Some(".".to_owned()),
            dockerfile: Some("Dockerfile".to_owned()),
            ..Target::default()
        }
    }

    fn resolved(targets: Vec<Target>) -> Resolved {
        Resolved {
            groups: BTreeMap::new(),
            targets: targets.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    #[test]
    fn one_request_per_platform_with_absolute_paths() {
        let mut app = target("app");
        app.context = Some("src".into());
        app.platforms = Some(vec!["linux/amd64".into(), "linux/arm64/v8".into()]);
        app.args.insert("A".into(), Some("1".into()));
        app.args.insert("UNSET".into(), None);
        let plan = plan(&resolved(vec![app]), Path::new("/work")).unwrap();
        assert_eq!(plan.requests.len(), 2);
        let request = &plan.requests[1];
        assert_eq!(request.context, Context::Local("/work/src".into()));
        assert_eq!(
            request.dockerfile,
            Dockerfile::File("/work/src/Dockerfile".into())
        );
        assert_eq!(
            request.platform.as_ref().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(request.build_args.len(), 1);
    }

    #[test]
    fn inline_dockerfile_and_remote_context() {
        let mut app = target("app");
        app.dockerfile_inline = Some("FROM scratch".into());
        let plan = plan(&resolved(vec![app]), Path::new("/w")).unwrap();
        assert_eq!(
            plan.requests[0].dockerfile,
            Dockerfile::Inline("FROM scratch".into())
        );
        let mut remote = target("r");
        remote.context = Some("https://github.com/acme/app.git#main".into());
        let plan = super::plan(&resolved(vec![remote]), Path::new("/w")).unwrap();
        assert!(matches!(plan.requests[0].context, Context::Remote(_)));
        assert_eq!(
            plan.requests[0].dockerfile,
            Dockerfile::Remote("Dockerfile".into())
        );
    }

    #[test]
    fn named_contexts_are_typed_by_prefix() {
        let cwd = Path::new("/w");
        assert_eq!(
            named_context(cwd, "target:base"),
            NamedContext::Target {
                name: "base".into()
            }
        );
        assert_eq!(
            named_context(cwd, "docker-image://alpine:3.19"),
            NamedContext::Image {
                reference: "alpine:3.19".into()
            }
        );
        assert_eq!(
            named_context(cwd, "oci-layout://./layout:v1"),
            NamedContext::OciLayout {
                path: "/w/./layout".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            named_context(cwd, "oci-layout:///abs/x@sha256:00"),
            NamedContext::OciLayout {
                path: "/abs/x".into(),
                reference: Some("sha256:00".into())
            }
        );
        assert_eq!(
            named_context(cwd, "./src"),
            NamedContext::Local {
                path: "/w/./src".into()
            }
        );
        assert!(matches!(
            named_context(cwd, "https://example.com/x.tar"),
            NamedContext::Remote { .. }
        ));
    }

    #[test]
    fn bad_platforms_and_calls_are_errors() {
        let mut app = target("app");
        app.platforms = Some(vec!["linux".into()]);
        assert!(matches!(
            plan(&resolved(vec![app]), Path::new("/w")),
            Err(Error::Platform { .. })
        ));
        let mut app = target("app");
        app.call = Some("explode".into());
        assert!(matches!(
            plan(&resolved(vec![app]), Path::new("/w")),
            Err(Error::Call { .. })
        ));
        assert_eq!(Call::parse("check"), Some(Call::Lint));
    }
}
