//! The first build stage: every build request's Dockerfile goes through the front end, in an
//! order where each `target:` link comes before its users, and the graphs join one
//! combined definition. Part of `engine`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::combine::{self, Combiner, LocalName};
use crate::engine::error::Error;
use crate::engine::resolver::Resolver;
use crate::graph::{Definition, Edge};
use crate::ops::worker::LocalInput;
use crate::plan::{self, BuildRequest, Call, Dockerfile};
use crate::source::image::Puller;

/// One request after lowering: its root in the combined graph and its image config.
#[derive(Debug)]
pub(crate) struct LoweredRequest<'a> {
    /// The request.
    pub(crate) request: &'a BuildRequest,
    /// Its result in the combined graph (`None`: an empty filesystem).
    pub(crate) root: Option<Edge>,
    /// The image config the front end produced.
    pub(crate) image: crate::oci::Image,
    /// The platform it builds for.
    pub(crate) platform: crate::platform::Platform,
    /// The Dockerfile, for excerpts in errors.
    pub(crate) dockerfile: crate::diag::SourceFile,
}

/// What lowering produced: one graph for every request, and the local directories it reads.
#[derive(Debug)]
pub(crate) struct Lowered<'a> {
    /// The combined definition (it has no root of its own).
    pub(crate) definition: Definition,
    /// The requests in link order.
    pub(crate) requests: Vec<LoweredRequest<'a>>,
    /// The local directories, by the unique name the combined graph uses.
    pub(crate) locals: BTreeMap<String, LocalInput>,
}

impl Lowered<'_> {
    /// The targets whose graphs hold `vertex`, in request order, each once.
    pub(crate) fn targets_holding(&self, vertex: &crate::digest::Digest) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        for lowered in &self.requests {
            if !targets.contains(&lowered.request.target)
                && combine::reaches(&self.definition, lowered.root.as_ref(), vertex)
            {
                targets.push(lowered.request.target.clone());
            }
        }
        targets
    }
}

/// Lowers every request whose method is `build`, resolving base images with `images`.
pub(crate) fn lower<'a>(plan: &'a plan::Plan, images: &Arc<Puller>) -> Result<Lowered<'a>, Error> {
    let requests = ordered(plan)?;
    let several = requests.iter().any(|r| r.target != requests[0].target);
    let mut combiner = Combiner::default();
    let mut locals: BTreeMap<String, LocalInput> = BTreeMap::new();
    let mut lowered: Vec<LoweredRequest<'a>> = Vec::with_capacity(requests.len());
    for request in requests {
        check_inputs(request)?;
        let file = crate::engine::request::dockerfile(request)?;
        let linked = |name: &str| pick(&lowered, name, request.platform.as_ref());
        let resolver = Resolver {
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
        let mut options = crate::engine::request::convert_options_with(request, resolver)?;
        options.multi_platform = plan
            .requests
            .iter()
            .filter(|r| r.target == request.target && r.call == Call::Build)
            .count()
            > 1;
        let converted = crate::frontend::dockerfile::convert(&file, &options).map_err(Box::new)?;
        let names = local_names(request);
        for local in &names {
            let dockerfile = local
                .ignore_for
                .clone()
                .or_else(|| match &request.dockerfile {
                    Dockerfile::File(path) if local.name == "context" => Some(path.clone()),
                    _ => None,
                });
            locals.entry(local.unique()).or_insert_with(|| LocalInput {
                name: local.name.clone(),
                dir: local.dir.clone(),
                dockerfile,
            });
        }
        combiner.set_target(several.then_some(request.target.as_str()));
        let root = combiner
            .add(
                &converted.definition,
                &names,
                &|name| linked(name).map(|l| l.root),
                request.no_cache,
            )
            .map_err(|message| Error::Graph {
                target: request.target.clone(),
                message,
            })?;
        lowered.push(LoweredRequest {
            request,
            root,
            image: converted.image,
            platform: converted.platform,
            dockerfile: file,
        });
    }
    Ok(Lowered {
        definition: combiner.finish(),
        requests: lowered,
        locals,
    })
}

/// Checks that the directories and layouts a request names exist, so a wrong path is
/// reported against the bake file's entry rather than as a Dockerfile or step failure.
fn check_inputs(request: &BuildRequest) -> Result<(), Error> {
    if let plan::Context::Local(dir) = &request.context
        && !dir.is_dir()
    {
        return Err(Error::MissingContext {
            target: request.target.clone(),
            path: dir.clone(),
        });
    }
    for (name, context) in &request.named_contexts {
        let problem: Option<Box<dyn std::error::Error + Send + Sync>> = match context {
            plan::NamedContext::Local { path } if !path.is_dir() => {
                Some(format!("the directory `{}` does not exist", path.display()).into())
            }
            plan::NamedContext::OciLayout { path, .. } => {
                crate::source::oci_layout::OciLayout::open(path)
                    .err()
                    .map(|e| Box::new(e) as _)
            }
            _ => None,
        };
        if let Some(source) = problem {
            return Err(Error::NamedContext {
                target: request.target.clone(),
                name: name.clone(),
                value: named_context_text(context),
                source,
            });
        }
    }
    Ok(())
}

/// A named context as the bake file writes it.
fn named_context_text(context: &plan::NamedContext) -> String {
    match context {
        plan::NamedContext::Local { path } => path.display().to_string(),
        plan::NamedContext::Image { reference } => format!("docker-image://{reference}"),
        plan::NamedContext::OciLayout { path, reference } => match reference {
            Some(r) if r.starts_with("sha256:") => format!("oci-layout://{}@{r}", path.display()),
            Some(r) => format!("oci-layout://{}:{r}", path.display()),
            None => format!("oci-layout://{}", path.display()),
        },
        plan::NamedContext::Target { name } => format!("target:{name}"),
        plan::NamedContext::Remote { url } => url.clone(),
    }
}

/// The local directories a request reads, by the names its front end gives them.
fn local_names(request: &BuildRequest) -> Vec<LocalName> {
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

/// The lowered request of the linked target `name`: the one for `platform` if the target
/// has it, else its first.
// Compat: buildx uses a single-platform linked target for every platform of its user.
fn pick<'l, 'a>(
    lowered: &'l [LoweredRequest<'a>],
    name: &str,
    platform: Option<&crate::platform::Platform>,
) -> Option<&'l LoweredRequest<'a>> {
    let mut candidates = lowered.iter().filter(|l| l.request.target == name);
    let first = candidates.clone().next();
    candidates
        .find(|l| l.request.platform.as_ref() == platform)
        .or(first)
}

/// The build requests in an order where every `target:` link comes before its users: a
/// graph of targets (an edge from each linked target to its user), sorted topologically.
/// Every request of a target stays together, so a target's platforms are adjacent.
fn ordered(plan: &plan::Plan) -> Result<Vec<&BuildRequest>, Error> {
    use petgraph::graph::{DiGraph, NodeIndex};
    let requests: Vec<&BuildRequest> = plan
        .requests
        .iter()
        .filter(|r| r.call == Call::Build)
        .collect();
    let mut graph: DiGraph<&str, ()> = DiGraph::new();
    let mut nodes: BTreeMap<&str, NodeIndex> = BTreeMap::new();
    for request in &requests {
        let target = request.target.as_str();
        if !nodes.contains_key(target) {
            nodes.insert(target, graph.add_node(target));
        }
    }
    for request in &requests {
        for context in request.named_contexts.values() {
            if let plan::NamedContext::Target { name } = context {
                let Some(&linked) = nodes.get(name.as_str()) else {
                    return Err(Error::Links {
                        targets: format!(
                            "`{}` (it links `{name}`, which is not built)",
                            request.target
                        ),
                    });
                };
                graph.update_edge(linked, nodes[request.target.as_str()], ());
            }
        }
    }
    let order = petgraph::algo::toposort(&graph, None).map_err(|_| {
        // Name every target on a loop: the strongly connected parts with a cycle.
        let mut looping: Vec<String> = petgraph::algo::tarjan_scc(&graph)
            .into_iter()
            .filter(|part| part.len() > 1 || graph.contains_edge(part[0], part[0]))
            .flatten()
            .map(|node| format!("`{}`", graph[node]))
            .collect();
        looping.sort();
        Error::Links {
            targets: looping.join(", "),
        }
    })?;
    Ok(order
        .into_iter()
        .flat_map(|node| {
            let target = graph[node];
            requests.iter().copied().filter(move |r| r.target == target)
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request for `target` on `platform` whose named contexts link `links`.
    pub(crate) fn request(target: &str, platform: Option<&str>, links: &[&str]) -> BuildRequest {
        plan::tests::linking(target, platform, links)
    }

    fn names(plan: &plan::Plan) -> Result<Vec<String>, Error> {
        Ok(ordered(plan)?
            .iter()
            .map(|r| {
                format!(
                    "{}@{}",
                    r.target,
                    r.platform
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect())
    }

    #[test]
    fn links_come_first_and_a_targets_platforms_stay_together() {
        let plan = plan::Plan {
            requests: vec![
                request("app", Some("linux/amd64"), &["base"]),
                request("app", Some("linux/arm64"), &["base"]),
                request("base", Some("linux/amd64"), &[]),
                request("base", Some("linux/arm64"), &[]),
                request("tool", None, &[]),
            ],
        };
        let order = names(&plan).expect("ordered");
        let position = |name: &str| order.iter().position(|n| n == name).expect(name);
        assert!(
            position("base@linux/arm64") < position("app@linux/amd64"),
            "{order:?}"
        );
        assert_eq!(
            position("app@linux/arm64"),
            position("app@linux/amd64") + 1,
            "{order:?}"
        );
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn a_loop_of_links_names_every_target_on_it() {
        let plan = plan::Plan {
            requests: vec![
                request("a", None, &["b"]),
                request("b", None, &["c"]),
                request("c", None, &["a"]),
                request("d", None, &[]),
            ],
        };
        let error = names(&plan).expect_err("loop");
        let text = error.to_string();
        assert!(text.contains("`a`, `b`, `c`"), "{text}");
        assert!(!text.contains("`d`"), "{text}");
    }

    #[test]
    fn a_link_to_a_target_that_is_not_built_is_named() {
        let plan = plan::Plan {
            requests: vec![request("app", None, &["missing"])],
        };
        let text = names(&plan).expect_err("missing").to_string();
        assert!(text.contains("`missing`"), "{text}");
    }
}
