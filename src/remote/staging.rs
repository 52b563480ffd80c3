//! Where a daemon's export lands on this machine: a staging path beside the destination,
//! moved into place only when the build succeeds. Part of `remote`.

use std::path::{Path, PathBuf};

use crate::remote::error::{Error, Result};
use crate::remote::session::{ExportTarget, STAGED_PREFIX};

/// For every local output of `requests`, the topmost path that does not exist yet on its way
/// to the destination (the destination itself when its parent exists): what this build
/// creates. Relative destinations are taken from the working directory, as the exporters
/// take them.
pub(crate) fn created_paths<'a>(
    requests: impl Iterator<Item = &'a crate::plan::BuildRequest>,
) -> Vec<PathBuf> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut out = Vec::new();
    for request in requests {
        for output in &request.outputs {
            let dest = output.destination.as_str();
            if dest.is_empty()
                || dest == "-"
                || !matches!(output.kind.as_str(), "local" | "tar" | "oci" | "docker")
            {
                continue;
            }
            let mut topmost = None;
            let mut path = Some(cwd.join(dest));
            while let Some(candidate) = path {
                if std::fs::symlink_metadata(&candidate).is_ok() {
                    break;
                }
                path = candidate.parent().map(Path::to_owned);
                topmost = Some(candidate);
            }
            if let Some(topmost) = topmost.filter(|p| !out.contains(p)) {
                out.push(topmost);
            }
        }
    }
    out
}

/// Where an output's exporter writes on this machine.
pub(crate) enum Destination {
    /// Nothing comes back (an image in the daemon or a registry, or cache only).
    None,
    /// A directory.
    Directory(PathBuf),
    /// A file.
    File(PathBuf),
    /// Standard output (`dest=-`).
    Stdout,
    /// An image the engine keeps under `name` until bake has saved it as `entry` asks
    /// (`type=oci`/`type=docker` with `dest` on the docker driver).
    Saved {
        /// The engine's name for the image.
        name: String,
        /// The output as written, with its `name` filled from the tags.
        entry: crate::buildflags::ExportEntry,
    },
}

/// Where an export is received before it is moved to its destination, so a failed build
/// never leaves a half-written output. The staging path is next to the destination (one
/// rename moves it) and is created only when the daemon starts sending: the context may
/// hold the destination, and is read before the export begins.
pub(crate) struct Staging {
    /// The staged export's path (not created yet); removed on drop if still there.
    staged: Option<PathBuf>,
    /// The destination, and whether it is a directory.
    destination: Option<(PathBuf, bool)>,
    /// Stdout's staging directory (`dest=-`).
    _temp: Option<tempfile::TempDir>,
    stdout: bool,
}

impl Staging {
    /// Prepares the staging for `destination` (nothing is created yet).
    pub(crate) fn new(target: &str, destination: Option<&Destination>) -> Result<Self> {
        let beside = |dest: &Path| {
            let parent = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_owned);
            std::fs::create_dir_all(&parent).map_err(|source| Error::Export {
                target: target.to_owned(),
                path: parent.clone(),
                source,
            })?;
            Ok::<_, Error>(parent.join(format!("{STAGED_PREFIX}{}", uuid::Uuid::new_v4().simple())))
        };
        let none = || Self {
            staged: None,
            destination: None,
            _temp: None,
            stdout: false,
        };
        Ok(match destination {
            None | Some(Destination::None | Destination::Saved { .. }) => none(),
            Some(Destination::Directory(dest)) => Self {
                staged: Some(beside(dest)?),
                destination: Some((dest.clone(), true)),
                _temp: None,
                stdout: false,
            },
            Some(Destination::File(dest)) => Self {
                staged: Some(beside(dest)?),
                destination: Some((dest.clone(), false)),
                _temp: None,
                stdout: false,
            },
            Some(Destination::Stdout) => {
                let temp = tempfile::tempdir().map_err(|source| Error::Export {
                    target: target.to_owned(),
                    path: std::env::temp_dir(),
                    source,
                })?;
                Self {
                    staged: Some(temp.path().join("out")),
                    destination: None,
                    _temp: Some(temp),
                    stdout: true,
                }
            }
        })
    }

    /// What the session writes into.
    pub(crate) fn target(&self) -> Option<ExportTarget> {
        let staged = self.staged.clone()?;
        Some(match &self.destination {
            Some((_, true)) => ExportTarget::Directory(staged),
            _ => ExportTarget::File(staged),
        })
    }

    /// Moves the staged export into place; returns the bytes for stdout.
    pub(crate) fn finish(mut self, target: &str) -> Result<Option<Vec<u8>>> {
        let Some(staged) = self.staged.take() else {
            return Ok(None);
        };
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Export {
                target: target.to_owned(),
                path,
                source,
            }
        };
        if self.stdout {
            return std::fs::read(&staged).map(Some).map_err(fail(&staged));
        }
        if let Some((dest, is_dir)) = &self.destination {
            let moved = if *is_dir {
                merge(&staged, dest)
            } else {
                std::fs::rename(&staged, dest)
            };
            if let Err(error) = moved {
                self.staged = Some(staged);
                return Err(fail(dest)(error));
            }
        }
        Ok(None)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(staged) = &self.staged {
            let _ = std::fs::remove_dir_all(staged).or_else(|_| std::fs::remove_file(staged));
        }
    }
}

/// Moves the tree at `from` into `to`, merging into what is there: a directory on both
/// sides is merged, anything else in `to` is replaced. Never follows a symlink in `to`.
fn merge(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(to) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::rename(from, to);
        }
        Err(error) => return Err(error),
        Ok(metadata) if !metadata.is_dir() => {
            std::fs::remove_file(to)?;
            return std::fs::rename(from, to);
        }
        Ok(_) => {}
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            merge(&source, &dest)?;
        } else {
            match std::fs::symlink_metadata(&dest) {
                Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&dest)?,
                _ => {}
            }
            std::fs::rename(&source, &dest)?;
        }
    }
    // Everything below `from` has moved: the emptied directory goes too.
    std::fs::remove_dir(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_moves_new_files_and_replaces_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("from");
        let to = dir.path().join("to");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("sub/new"), "new").unwrap();
        std::fs::write(from.join("same"), "fresh").unwrap();
        std::fs::create_dir_all(to.join("sub")).unwrap();
        std::fs::write(to.join("sub/old"), "old").unwrap();
        std::fs::write(to.join("same"), "stale").unwrap();
        merge(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("sub/new")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(to.join("sub/old")).unwrap(), "old");
        assert_eq!(std::fs::read_to_string(to.join("same")).unwrap(), "fresh");
        assert!(!from.exists(), "nothing is left behind");
    }
}
