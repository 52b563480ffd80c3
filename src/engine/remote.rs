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
            warnings: Vec::new(),
        })
        .collect())
}
