//! The solver-level entitlement check, as BuildKit's: a `RUN --network=host` needs
//! `network.host` and a `RUN --security=insecure` needs `security.insecure`, granted to the
//! request (its target's `entitlements` and `--allow`) and allowed by the worker
//! (buildkitd.toml `insecure-entitlements`). Every step of every request is checked before
//! the first one runs. Part of `engine`.

use std::collections::{HashMap, HashSet};

use crate::engine::error::Refused;
use crate::engine::lower::Lowered;
use crate::graph::{NetworkMode, Op, SecurityMode, Vertex};
use crate::plan::entitlements::{NETWORK_HOST, SECURITY_INSECURE};

/// The entitlement an exec vertex needs, if any (host network first).
fn needs(vertex: &Vertex) -> Vec<&'static str> {
    let Op::Exec(exec) = vertex.op.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if exec.network == NetworkMode::Host {
        out.push(NETWORK_HOST);
    }
    if exec.security == SecurityMode::Insecure {
        out.push(SECURITY_INSECURE);
    }
    out
}

/// Checks every step of every request against its grants and the worker's `allowed` list.
pub(crate) fn check(lowered: &Lowered<'_>, allowed: &[String]) -> Result<(), Box<Refused>> {
    let by_digest: HashMap<_, &Vertex> = lowered
        .definition
        .vertices
        .iter()
        .map(|v| (&v.digest, v))
        .collect();
    for request in &lowered.requests {
        let Some(root) = &request.root else { continue };
        let mut seen = HashSet::new();
        let mut stack = vec![&root.vertex];
        while let Some(digest) = stack.pop() {
            if !seen.insert(digest) {
                continue;
            }
            let Some(vertex) = by_digest.get(digest) else {
                continue;
            };
            stack.extend(vertex.inputs.iter().map(|e| &e.vertex));
            for entitlement in needs(vertex) {
                let granted = request
                    .request
                    .entitlements
                    .iter()
                    .any(|e| e == entitlement);
                let (reason, help) = if !granted {
                    (
                        format!("{entitlement} is not allowed"),
                        format!("add `--allow {entitlement}` to the command line"),
                    )
                } else if !allowed.iter().any(|e| e == entitlement) {
                    (
                        format!(
                            "granting entitlement {entitlement} is not allowed by build daemon configuration"
                        ),
                        format!(
                            "add \"{entitlement}\" to `insecure-entitlements` in buildkitd.toml (`--config`)"
                        ),
                    )
                } else {
                    continue;
                };
                return Err(Box::new(refused(
                    request,
                    vertex,
                    entitlement,
                    reason,
                    help,
                )));
            }
        }
    }
    Ok(())
}

fn refused(
    request: &crate::engine::lower::LoweredRequest<'_>,
    vertex: &Vertex,
    entitlement: &'static str,
    reason: String,
    help: String,
) -> Refused {
    let excerpt = vertex.meta.location.as_ref().and_then(|location| {
        let file = &request.dockerfile;
        (file.name == location.file).then(|| {
            let end = location.span[1].min(file.text.len());
            let start = location.span[0].min(end);
            (file.named(), crate::diag::span(start..end))
        })
    });
    let (file, span) = excerpt.map_or((None, None), |(f, s)| (Some(f), Some(s)));
    Refused {
        target: request.request.target.clone(),
        name: vertex.meta.name.clone(),
        reason,
        file,
        span,
        entitlement,
        help,
    }
}
