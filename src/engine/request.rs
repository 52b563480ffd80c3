//! What the front end gets from a build request: its Dockerfile and its convert options
//! (named contexts mapped, base images answered by a [`Resolver`]). Part of `engine`.

use std::collections::BTreeMap;

use crate::diag::SourceFile;
use crate::engine::error::Error;
use crate::engine::resolver::Resolver;
use crate::frontend::dockerfile::{self, ConvertOptions};
use crate::plan::{self, BuildRequest, Dockerfile};

type Result<T> = std::result::Result<T, Error>;

/// Reads the request's Dockerfile (or takes the inline text).
pub fn dockerfile(request: &BuildRequest) -> Result<SourceFile> {
    match &request.dockerfile {
        Dockerfile::Inline(text) => Ok(SourceFile::new("Dockerfile", text.as_str())),
        Dockerfile::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::ReadDockerfile {
                target: request.target.clone(),
                path: path.display().to_string(),
                source,
            })?;
            let name = path.file_name().map_or_else(
                || "Dockerfile".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok(SourceFile::new(name, text))
        }
        Dockerfile::Remote(_) => Err(Error::Unsupported {
            target: request.target.clone(),
            what: "a Dockerfile inside a remote (git or HTTP) context".to_owned(),
        }),
    }
}

/// Maps a request onto the front end's options.
pub fn convert_options(request: &BuildRequest) -> Result<ConvertOptions> {
    convert_options_with(request, Resolver::default())
}

/// Maps a request onto the front end's options, answering base images with `resolver`.
pub fn convert_options_with(request: &BuildRequest, resolver: Resolver) -> Result<ConvertOptions> {
    let mut named_contexts = BTreeMap::new();
    for (name, context) in &request.named_contexts {
        let mapped = match context {
            plan::NamedContext::Local { .. } => {
                dockerfile::NamedContext::Local { name: name.clone() }
            }
            plan::NamedContext::Image { reference } => dockerfile::NamedContext::Image {
                reference: reference.clone(),
            },
            plan::NamedContext::OciLayout { path, reference } => {
                dockerfile::NamedContext::OciLayout {
                    path: path.display().to_string(),
                    // The front end tells a digest from a tag by its `@`.
                    reference: reference.as_ref().map(|r| {
                        if r.starts_with("sha256:") {
                            format!("@{r}")
                        } else {
                            r.clone()
                        }
                    }),
                }
            }
            plan::NamedContext::Target { name } => {
                dockerfile::NamedContext::Target { name: name.clone() }
            }
            plan::NamedContext::Remote { url } => {
                return Err(Error::Unsupported {
                    target: request.target.clone(),
                    what: format!("the URL named context `{name}` (`{url}`)"),
                });
            }
        };
        named_contexts.insert(name.clone(), mapped);
    }
    // A missing or unreadable ignore file, or a bad pattern, only turns the check off: loading
    // the context reports those problems where they matter.
    let dockerignore = match &request.context {
        plan::Context::Local(dir) => {
            let dockerfile_path = match &request.dockerfile {
                Dockerfile::File(path) => Some(path.as_path()),
                _ => None,
            };
            crate::source::dockerignore::load(dir, dockerfile_path)
                .ok()
                .filter(|patterns| !patterns.is_empty())
                .and_then(|patterns| {
                    let matcher = crate::source::dockerignore::Matcher::new(&patterns).ok()?;
                    Some(dockerfile::DockerIgnore {
                        patterns,
                        excludes: std::sync::Arc::new(move |path: &str| matcher.excludes(path)),
                    })
                })
        }
        plan::Context::Remote(_) => None,
    };
    Ok(ConvertOptions {
        target: request.stage.clone(),
        build_args: request.build_args.clone(),
        labels: request.labels.clone(),
        target_platform: request.platform.clone(),
        build_platform: None,
        named_contexts,
        resolver: Some(std::sync::Arc::new(resolver)),
        all_stages: false,
        no_cache_filter: request.no_cache_filter.clone(),
        dockerignore,
        multi_platform: false,
        extra_hosts: request.extra_hosts.clone(),
        network: match request.network.as_deref() {
            Some("host") => crate::graph::NetworkMode::Host,
            Some("none") => crate::graph::NetworkMode::None,
            _ => crate::graph::NetworkMode::Sandbox,
        },
        shm_size: request.limits.shm_size,
        ulimits: request
            .limits
            .ulimits
            .iter()
            .map(|u| crate::graph::Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        resources: request.limits.resources.as_ref().map(|r| {
            Box::new(crate::graph::ExecResources {
                memory: r.memory,
                memory_swap: r.memory_swap,
                cpu_shares: r.cpu_shares,
                cpu_period: r.cpu_period,
                cpu_quota: r.cpu_quota,
                cpuset_cpus: r.cpuset_cpus.clone(),
                cpuset_mems: r.cpuset_mems.clone(),
            })
        }),
    })
}
