//! The native [`Snapshotter`]: every tree is a full copy of its parent (reflinked where the
//! filesystem can), so it works on any filesystem at the cost of a copy per step. Part of
//! `snapshot`.
//!
//! Layout: `<dir>/<id>` is the tree itself. A half-copied tree left by a crash is never named
//! by a cache entry, so garbage collection removes it like any unnamed snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use crate::snapshot::error::{Error, Result, io_error};
use crate::snapshot::snapshotter::{Snapshotter, new_id};
use crate::snapshot::tree::{copy_tree, remove_snapshot};

/// The copying snapshotter.
#[derive(Debug, Clone)]
pub struct Native {
    dir: PathBuf,
}

impl Native {
    /// Keeps trees under `dir` (created on first use).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }
}

impl Snapshotter for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn prepare(&self, parent: Option<&Path>) -> Result<PathBuf> {
        fs::create_dir_all(&self.dir).map_err(io_error("create", &self.dir))?;
        let path = self.dir.join(new_id());
        match parent {
            Some(parent) => copy_tree(parent, &path)?,
            None => fs::create_dir(&path).map_err(io_error("create", &path))?,
        }
        Ok(path)
    }

    fn commit(&self, path: &Path) -> Result<()> {
        // A copy is never shared with a running step, so there is nothing to seal.
        let _ = path;
        Ok(())
    }

    fn mount(&self, path: &Path) -> Result<()> {
        if crate::snapshot::overlay::is_snapshot(path) {
            return Err(Error::Foreign(path.to_owned()));
        }
        if !path.is_dir() {
            return Err(Error::NotFound(path.display().to_string()));
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> Result<()> {
        remove_snapshot(path)
    }

    fn fill(&self, path: &Path, fill: &mut dyn FnMut(&Path)) -> Result<()> {
        fill(path);
        Ok(())
    }
}
