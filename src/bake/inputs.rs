//! [`Inputs`]: what a bake run reads besides the files' own text.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diag::SourceFile;

/// Everything bake needs besides the files themselves.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The bake files, in load order, with their display names.
    pub files: Vec<SourceFile>,
    /// Requested target or group names (empty means `default`).
    pub targets: Vec<String>,
    /// `--set` values, plus the ones `--load`, `--push`, `--no-cache`... add.
    pub overrides: Vec<String>,
    /// The environment variables may read (empty to disable lookups).
    pub env: BTreeMap<String, String>,
    /// `--var NAME=VALUE` values.
    pub vars: BTreeMap<String, String>,
    /// The working directory (for Compose's `.env`).
    pub cwd: Option<PathBuf>,
    /// The client platform, for `BAKE_LOCAL_PLATFORM`.
    pub local_platform: String,
}
