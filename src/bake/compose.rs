//! Compose files → targets (interim stub; the full model lands from the compose branch).

use std::collections::BTreeMap;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::model::{Group, Target};
use crate::diag::SourceFile;

/// Targets and groups a set of Compose files describes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Composed {
    /// One target per service with a `build` section.
    pub(crate) targets: Vec<Target>,
    /// The `default` group.
    pub(crate) groups: Vec<Group>,
}

/// Parses Compose files.
pub(crate) fn parse(
    files: &[SourceFile],
    env: &BTreeMap<String, String>,
    dotenv_dir: Option<&std::path::Path>,
) -> Result<Composed, Error> {
    let _ = (env, dotenv_dir);
    Err(Error::one(
        Diagnostic::new("bake::compose", "compose files are not supported yet").at(&files[0], None),
    ))
}

/// Whether the text looks like a Compose file (a top-level `services:` key).
pub(crate) fn looks_like_compose(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("services:"))
}
