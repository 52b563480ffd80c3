//! Tracks the empty files and directories an OCI runtime creates in the rootfs as mount
//! points (`/etc/hosts` in an image without one, the target of `RUN --mount`), and removes
//! them after the run so they never reach a layer.
//!
//! Part of the executor; imports nothing from the crate's graph, cache, image or layer
//! modules.
//!
//! Compat: buildkit executor/stubs.go `MountStubsCleaner`: only paths that did not exist
//! before the run are considered, and only while they are still an empty file or an empty
//! directory (a RUN step that wrote into one keeps it).

use std::path::{Component, Path, PathBuf};

/// Host paths inside a rootfs that did not exist before a run.
#[derive(Debug, Default)]
pub struct MountStubs {
    missing: Vec<PathBuf>,
}

impl MountStubs {
    /// Records which of the paths from the rootfs down to each of `destinations` do not exist
    /// yet. A symlink on the way ends the walk: the runtime resolves it inside the rootfs,
    /// and we would rather leave a stub than remove something outside the walked path.
    pub fn record<'a>(rootfs: &Path, destinations: impl IntoIterator<Item = &'a str>) -> Self {
        let mut missing = Vec::new();
        for destination in destinations {
            let mut path = rootfs.to_path_buf();
            let mut absent = false;
            for component in Path::new(destination).components() {
                let Component::Normal(name) = component else {
                    continue;
                };
                path.push(name);
                if absent {
                    missing.push(path.clone());
                    continue;
                }
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.file_type().is_symlink() => break,
                    Ok(_) => {}
                    Err(_) => {
                        absent = true;
                        missing.push(path.clone());
                    }
                }
            }
        }
        missing.sort();
        missing.dedup();
        Self { missing }
    }

    /// The recorded paths, sorted.
    pub fn paths(&self) -> &[PathBuf] {
        &self.missing
    }

    /// Removes every recorded path that is now an empty file or an empty directory, deepest
    /// first so that emptied parents go too. Failures are ignored: a stub left behind is
    /// harmless, and cleanup must never hide the result of the run.
    pub fn remove(&self) {
        let mut paths: Vec<&PathBuf> = self.missing.iter().collect();
        paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for path in paths {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if meta.is_dir() {
                // Fails, as intended, when the directory is not empty.
                let _ = std::fs::remove_dir(path);
            } else if meta.is_file() && meta.len() == 0 {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_new_empty_stubs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/hosts"), "kept").unwrap();
        let stubs = MountStubs::record(root, ["/etc/hosts", "/etc/resolv.conf", "/a/b/c", "/w/x"]);
        assert_eq!(
            stubs.paths(),
            [
                root.join("a"),
                root.join("a/b"),
                root.join("a/b/c"),
                root.join("etc/resolv.conf"),
                root.join("w"),
                root.join("w/x"),
            ]
        );
        // What a runtime does: create the mount points.
        std::fs::write(root.join("etc/resolv.conf"), "").unwrap();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        std::fs::create_dir_all(root.join("w")).unwrap();
        std::fs::write(root.join("w/x"), "written by the step").unwrap();
        stubs.remove();
        assert!(root.join("etc/hosts").exists());
        assert!(!root.join("etc/resolv.conf").exists());
        assert!(!root.join("a").exists());
        assert!(root.join("w/x").exists());
    }
}
