//! Atomic outputs: a file or directory is built under a hidden temp name next to its
//! destination and renamed into place only when complete, so a failed export leaves nothing
//! half-written. Part of `exporter`.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempDir};

use crate::exporter::error::{Result, io_error};

/// The directory a destination's temp sibling goes in, and the temp name prefix.
fn sibling(dest: &Path) -> (PathBuf, String) {
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = dest.file_name().map_or_else(
        || "export".to_owned(),
        |name| name.to_string_lossy().into_owned(),
    );
    (parent, format!(".{name}.tmp-"))
}

/// A file written under a temp name and renamed to its destination by [`AtomicFile::commit`].
/// Dropped without a commit, the temp file is removed.
pub(crate) struct AtomicFile {
    temp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temp file next to `dest`.
    pub(crate) fn create(dest: &Path) -> Result<Self> {
        let (parent, prefix) = sibling(dest);
        // Compat: buildx creates the destination's parent directories.
        fs::create_dir_all(&parent).map_err(io_error("create", &parent))?;
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&parent)
            .map_err(io_error("create a temp file in", &parent))?;
        Ok(Self {
            temp,
            dest: dest.to_owned(),
        })
    }

    /// Returns the file to write to.
    pub(crate) fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes the file to disk and renames it to the destination.
    pub(crate) fn commit(mut self) -> Result<()> {
        let dest = self.dest;
        let file = self.temp.as_file_mut();
        file.flush().map_err(io_error("write", &dest))?;
        // Temp files are 0600; an export is an ordinary file like `os.Create` makes.
        file.set_permissions(Permissions::from_mode(0o644))
            .map_err(io_error("set permissions of", &dest))?;
        file.sync_all().map_err(io_error("fsync", &dest))?;
        self.temp
            .persist(&dest)
            .map_err(|error| io_error("rename into place", &dest)(error.error))?;
        Ok(())
    }
}

/// A directory built under a temp name; [`AtomicDir::commit`] moves it to its destination.
pub(crate) struct AtomicDir {
    temp: TempDir,
    dest: PathBuf,
}

impl AtomicDir {
    /// Creates the temp directory next to `dest`.
    pub(crate) fn create(dest: &Path) -> Result<Self> {
        let (parent, prefix) = sibling(dest);
        fs::create_dir_all(&parent).map_err(io_error("create", &parent))?;
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(io_error("create a temp directory in", &parent))?;
        Ok(Self {
            temp,
            dest: dest.to_owned(),
        })
    }

    /// Returns the temp directory to fill.
    pub(crate) fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Moves the finished tree to the destination: a rename when the destination is missing
    /// or empty, else a merge that replaces entries one by one (as BuildKit's local exporter
    /// overwrites an existing directory).
    pub(crate) fn commit(self) -> Result<()> {
        let dest = self.dest.clone();
        let temp = self.temp.path().to_owned();
        fs::set_permissions(&temp, Permissions::from_mode(0o755))
            .map_err(io_error("set permissions of", &temp))?;
        let empty = match fs::read_dir(&dest) {
            Ok(mut entries) => entries.next().is_none(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let kept = self.temp.keep();
                return fs::rename(&kept, &dest).map_err(io_error("rename into place", &dest));
            }
            Err(error) => return Err(io_error("read", &dest)(error)),
        };
        if empty && !fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_dir(&dest).map_err(io_error("replace", &dest))?;
            let kept = self.temp.keep();
            return fs::rename(&kept, &dest).map_err(io_error("rename into place", &dest));
        }
        merge(&temp, &dest)
        // `self.temp` (now holding only emptied directories) is removed on drop.
    }
}

/// Moves every entry of `from` into `into`. Never follows a symlink found under `into`: a
/// symlink or file in the way is replaced, and only real directories are merged into, so
/// nothing is written outside the destination.
fn merge(from: &Path, into: &Path) -> Result<()> {
    let names: Vec<_> = fs::read_dir(from)
        .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
        .map_err(io_error("read", from))?;
    for name in names {
        let source = from.join(&name);
        let target = into.join(&name);
        let source_is_dir = fs::symlink_metadata(&source)
            .map_err(io_error("stat", &source))?
            .is_dir();
        let target_meta = fs::symlink_metadata(&target).ok();
        match target_meta {
            Some(meta) if meta.is_dir() && source_is_dir => {
                merge(&source, &target)?;
                let mode = fs::symlink_metadata(&source)
                    .map_err(io_error("stat", &source))?
                    .permissions();
                fs::set_permissions(&target, mode)
                    .map_err(io_error("set permissions of", &target))?;
                continue;
            }
            Some(meta) if meta.is_dir() => {
                fs::remove_dir_all(&target).map_err(io_error("replace", &target))?;
            }
            Some(_) if source_is_dir => {
                fs::remove_file(&target).map_err(io_error("replace", &target))?;
            }
            _ => {}
        }
        fs::rename(&source, &target).map_err(io_error("move into place", &target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.tar");
        {
            let mut file = AtomicFile::create(&dest).expect("create");
            file.file().write_all(b"half").expect("write");
        }
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn file_parents_are_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("a/b/out.tar");
        let file = AtomicFile::create(&dest).expect("create");
        file.commit().expect("commit");
        assert!(dest.is_file());
    }

    #[test]
    fn committed_file_replaces_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out.tar");
        fs::write(&dest, "old").expect("old");
        let mut file = AtomicFile::create(&dest).expect("create");
        file.file().write_all(b"new").expect("write");
        file.commit().expect("commit");
        assert_eq!(fs::read_to_string(&dest).expect("read"), "new");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn merge_replaces_symlinks_instead_of_following_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).expect("outside");
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).expect("dest");
        std::os::unix::fs::symlink(&outside, dest.join("etc")).expect("symlink");
        fs::write(dest.join("keep"), "kept").expect("keep");
        let atomic = AtomicDir::create(&dest).expect("create");
        fs::create_dir(atomic.path().join("etc")).expect("etc");
        fs::write(atomic.path().join("etc/passwd"), "root").expect("passwd");
        atomic.commit().expect("commit");
        assert!(
            fs::symlink_metadata(dest.join("etc"))
                .expect("etc")
                .is_dir()
        );
        assert_eq!(
            fs::read_to_string(dest.join("etc/passwd")).expect("read"),
            "root"
        );
        assert_eq!(fs::read_dir(&outside).expect("list").count(), 0);
        assert_eq!(fs::read_to_string(dest.join("keep")).expect("keep"), "kept");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 2);
    }
}
