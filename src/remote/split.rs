//! A target whose platforms are split over several nodes: what cannot come out of it is
//! refused before anything builds, the nodes build their shares side by side, and their
//! results are put together (exports moved into place once all succeeded, pushes merged into
//! one index). Part of `remote`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::plan::BuildRequest;
use crate::progress::{Event, Sink};
use crate::remote::builder::{self, Builder};
use crate::remote::error::{Error, Result};
use crate::remote::{merge, nodes, solve};

/// Refuses, before anything builds, what cannot come out of a target split over several
/// nodes, as buildx does.
pub(crate) fn check_split(
    builder: &Builder,
    target: &str,
    shares: &[nodes::Share],
    groups: &BTreeMap<String, Vec<BuildRequest>>,
) -> Result<()> {
    let split = shares
        .iter()
        .map(|share| {
            let platforms: Vec<String> = share.platforms.iter().map(ToString::to_string).collect();
            format!(
                "`{}` ({})",
                builder.nodes[share.node].name,
                platforms.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let unsupported = |what: String| Error::Unsupported {
        target: target.to_owned(),
        builder: builder.name.clone(),
        what: format!("{what} when the platforms are split over nodes {split}"),
    };
    let request = &groups[target][0];
    for entry in &request.outputs {
        match (entry.kind.as_str(), entry.destination.as_str()) {
            // Compat: buildx Build: "oci for multi-node builds currently not supported".
            ("oci" | "tar", _) => {
                return Err(unsupported(format!("a `type={}` output", entry.kind)));
            }
            ("image" | "registry", _)
                if entry.kind == "registry" || solve::parse_bool(entry.attrs.get("push")) =>
            {
                // Compat: buildx Build: the docker driver cannot push by digest.
                if builder.driver == builder::Driver::Docker {
                    return Err(unsupported(
                        "pushing (multi-node push can't be performed with the docker driver)"
                            .to_owned(),
                    ));
                }
                if entry.attrs.get("name").is_none_or(String::is_empty) && request.tags.is_empty() {
                    return Err(Error::Solve {
                        target: target.to_owned(),
                        message: "tag is needed when pushing to registry (set the target's `tags` or the output's `name`)".to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    // Compat: buildx Build refuses a link whose targets build on different nodes; on the
    // engine a link is an image in one engine, which a split target cannot be or take.
    let links = |requests: &Vec<BuildRequest>, linked: Option<&str>| {
        requests[0].named_contexts.values().any(|context| {
            matches!(context, crate::plan::NamedContext::Target { name }
                if linked.is_none_or(|linked| linked == name))
        })
    };
    if builder.driver == builder::Driver::Docker {
        if links(&groups[target], None) {
            return Err(unsupported("a `target:` context".to_owned()));
        }
        if groups
            .values()
            .any(|requests| links(requests, Some(target)))
        {
            return Err(unsupported(
                "being another target's `target:` context".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Runs a split target's node jobs side by side (the first failure stops the others),
/// then puts each output together: staged exports moved into place one node after the
/// other, pushed images merged into one index.
pub(crate) async fn run_split(
    request: &BuildRequest,
    jobs: Vec<solve::Job>,
    sink: Arc<dyn Sink>,
) -> Result<Vec<solve::Outcome>> {
    let target = request.target.clone();
    let mut running = tokio::task::JoinSet::new();
    for (index, job) in jobs.into_iter().enumerate() {
        let node = job.split_over.clone().unwrap_or_default();
        let sink: Arc<dyn Sink> = Arc::new(NodeSink {
            inner: sink.clone(),
            node,
        });
        running.spawn(async move { job.run(sink).await.map(|outcomes| (index, outcomes)) });
    }
    let mut per_node = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(Ok(done)) => per_node.push(done),
            Ok(Err(error)) => return Err(error),
            Err(join) => {
                return Err(Error::Solve {
                    target,
                    message: join.to_string(),
                });
            }
        }
    }
    per_node.sort_by_key(|(index, _)| *index);
    let mut per_output: Vec<Vec<solve::Outcome>> = Vec::new();
    for (_, outcomes) in per_node {
        for (output, outcome) in outcomes.into_iter().enumerate() {
            if per_output.len() <= output {
                per_output.push(Vec::new());
            }
            per_output[output].push(outcome);
        }
    }
    let mut merged = Vec::new();
    for (output, outcomes) in per_output.into_iter().enumerate() {
        let entry = request.outputs.get(output);
        let mut first_response = None;
        let mut pushed = Vec::new();
        for outcome in outcomes {
            if let Some(staging) = outcome.held {
                staging.finish(&target)?;
            }
            pushed.extend(merge::pushed(&outcome.response));
            first_response.get_or_insert(outcome.response);
        }
        let mut response = first_response.unwrap_or_default();
        if let Some(entry) = entry.filter(|e| {
            matches!(e.kind.as_str(), "image" | "registry")
                && (e.kind == "registry" || solve::parse_bool(e.attrs.get("push")))
        }) && !pushed.is_empty()
        {
            let names = entry
                .attrs
                .get("name")
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| request.tags.join(","));
            let digest = merge_push(&target, entry, names, pushed, &*sink).await?;
            // Compat: buildx Build: the merged index's digest is the whole response.
            response = BTreeMap::from([("containerimage.digest".to_owned(), digest)]);
        }
        merged.push(solve::Outcome {
            response,
            stdout: None,
            held: None,
        });
    }
    Ok(merged)
}

/// Merges what the nodes pushed into one index under every name, shown as one step.
async fn merge_push(
    target: &str,
    entry: &crate::buildflags::ExportEntry,
    names: String,
    pushed: Vec<crate::oci::Descriptor>,
    sink: &dyn Sink,
) -> Result<String> {
    let fail = |message: String| Error::Solve {
        target: target.to_owned(),
        message: format!("merging the nodes' images into `{names}`: {message}"),
    };
    let annotations = merge::Annotations::of(&entry.attrs).map_err(fail)?;
    let insecure = solve::parse_bool(entry.attrs.get("registry.insecure"));
    // Compat: buildx Build writes this step as "merging manifest list NAMES".
    let name = format!("merging manifest list {names}");
    let vertex = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
            "{target}\n{name}"
        )))
    );
    sink.event(Event::Started {
        vertex: vertex.clone(),
        name,
    });
    let started = std::time::Instant::now();
    let task_names = names.clone();
    let result = tokio::task::spawn_blocking(move || {
        merge::push_merged(&task_names, insecure, &pushed, &annotations)
    })
    .await
    .map_err(|join| join.to_string())
    .and_then(|r| r);
    match result {
        Ok(digest) => {
            sink.event(Event::Done {
                vertex,
                duration: started.elapsed(),
            });
            Ok(digest)
        }
        Err(message) => {
            sink.event(Event::Error {
                vertex,
                message: message.clone(),
                duration: started.elapsed(),
            });
            Err(fail(message))
        }
    }
}

/// One node's progress within a split target: BuildKit names a vertex by the digest of its
/// operation, the same on every node, so each node's vertices get their own ids.
struct NodeSink {
    inner: Arc<dyn Sink>,
    node: String,
}

impl Sink for NodeSink {
    fn event(&self, mut event: Event) {
        let (Event::Started { vertex, .. }
        | Event::Cached { vertex }
        | Event::Log { vertex, .. }
        | Event::Done { vertex, .. }
        | Event::Cancelled { vertex, .. }
        | Event::Error { vertex, .. }) = &mut event;
        *vertex = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
                "{}\n{vertex}",
                self.node
            )))
        );
        self.inner.event(event);
    }
}
