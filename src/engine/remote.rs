//! The choice between the embedded solver and a BuildKit daemon: builder selection is
//! `remote`'s, and a remote build's reports become the same [`BuildReport`]s the embedded
//! build returns. Part of `engine`.

use std::sync::atomic::AtomicBool;

use crate::engine::export::BuildReport;
use crate::plan::Plan;
use crate::progress::Sink;

pub use crate::remote::builder::{DEFAULT_BUILDER, instances, resolve};
pub use crate::remote::{
    Builder, Driver, Environment, Error, NodeStatus, Origin, Selection, inspect,
};

/// Chooses the builder for `--builder` (see [`crate::remote::builder::select`]).
pub fn select(flag: Option<&str>, environment: &Environment) -> Result<Selection, Error> {
    crate::remote::builder::select(flag, environment)
}

/// Builds `plan` on `builder`; an output to `-` goes to `stdout`. Outputs are checked
/// first, as in-process: their types always, their attributes on a `docker` builder, where
/// bake writes `oci`/`docker` archives itself (a buildkitd judges its own).
pub fn build(
    plan: &Plan,
    builder: &Builder,
    sink: &dyn Sink,
    cancel: &AtomicBool,
    stdout: &mut dyn std::io::Write,
) -> Result<Vec<BuildReport>, crate::engine::Error> {
    crate::engine::export::validate_outputs(plan, builder.driver == Driver::Docker)?;
    Ok(crate::remote::build(plan, builder, sink, cancel, stdout)
        .map_err(|error| crate::engine::Error::Remote(Box::new(error)))?
        .into_iter()
        .map(|report| BuildReport {
            target: report.target,
            metadata: report.metadata,
            cache_only: report.cache_only,
            warnings: report.warnings,
        })
        .collect())
}

/// One line per attribute of an output bake writes itself for `builder` that no exporter
/// acts on: on a `docker` builder the `oci` and `docker` archives (with `dest`), which bake
/// writes from `docker save`. A buildkitd's own exporters judge their attributes.
pub fn ignored_attributes(plan: &Plan, builder: &Builder) -> Vec<String> {
    if builder.driver != Driver::Docker {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for request in plan
        .requests
        .iter()
        .filter(|r| r.call == crate::plan::Call::Build)
    {
        for entry in &request.outputs {
            let archive =
                matches!(entry.kind.as_str(), "oci" | "docker") && !entry.destination.is_empty();
            if !archive {
                continue;
            }
            for key in crate::exporter::unknown_attributes(entry) {
                let line = format!(
                    "output attribute `{key}` of target `{}` (`type={}`) is ignored: bake writes this archive from the engine's image and does not act on it",
                    request.target, entry.kind
                );
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    out
}
