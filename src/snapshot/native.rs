//! The [`Snapshotter`] trait and its native implementation, which gives every snapshot a full
//! copy of its parent (reflinked where the filesystem can). Part of `snapshot`.
//!
//! Layout: `<root>/snapshots/native/<key>/fs` is the tree, `<key>/parent` names the parent and
//! `<key>/committed` marks a read-only snapshot. A snapshot is built under a temp name and
//! renamed into place, so a crash never leaves a half copy under a real key, and two processes
//! preparing the same key get one winner and one [`Error::Exists`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

use super::diff::read_xattrs;
use super::{DiffOptions, Error, Result, diff};

/// Prepares mutable directories from committed parents and turns them into layers.
pub trait Snapshotter {
    /// Creates the active snapshot `key` as a copy of the committed `parent` (or empty) and
    /// returns the directory to mutate.
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<PathBuf>;
    /// Makes the active snapshot `key` read-only; only committed snapshots can be parents.
    fn commit(&self, key: &str) -> Result<()>;
    /// Deletes the snapshot `key`.
    fn remove(&self, key: &str) -> Result<()>;
    /// Returns the directory holding the tree of `key`.
    fn path(&self, key: &str) -> Result<PathBuf>;
    /// Writes the layer that turns the parent of `key` into `key` to `out`.
    fn diff(&self, key: &str, out: &mut dyn Write, options: &DiffOptions) -> Result<()>;
}

/// The copying snapshotter: works on any filesystem, costs a full copy per snapshot.
#[derive(Debug, Clone)]
pub struct Native {
    root: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Native {
    /// Uses `<state_root>/snapshots/native`, creating it if needed.
    pub fn new(state_root: &Path) -> Result<Self> {
        let root = state_root.join("snapshots").join("native");
        fs::create_dir_all(&root).map_err(io_error("create", &root))?;
        Ok(Self { root })
    }

    fn directory(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    fn existing(&self, key: &str) -> Result<PathBuf> {
        let directory = self.directory(key)?;
        if !directory.is_dir() {
            return Err(Error::NotFound(key.to_owned()));
        }
        Ok(directory)
    }

    fn is_committed(directory: &Path) -> bool {
        directory.join("committed").exists()
    }

    fn parent(&self, key: &str) -> Result<Option<String>> {
        let path = self.existing(key)?.join("parent");
        match fs::read_to_string(&path) {
            Ok(parent) => Ok(Some(parent)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                action: "read",
                path,
                source,
            }),
        }
    }
}

impl Snapshotter for Native {
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<PathBuf> {
        let directory = self.directory(key)?;
        if directory.exists() {
            return Err(Error::Exists(key.to_owned()));
        }
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .root
            .join(format!(".tmp-{}-{count}-{key}", std::process::id()));
        let result = (|| {
            fs::create_dir(&temp).map_err(io_error("create", &temp))?;
            match parent {
                Some(parent) => {
                    let parent_directory = self.existing(parent)?;
                    if !Self::is_committed(&parent_directory) {
                        return Err(Error::State {
                            key: parent.to_owned(),
                            state: "active, not committed",
                        });
                    }
                    copy_tree(&parent_directory.join("fs"), &temp.join("fs"))?;
                    let parent_file = temp.join("parent");
                    fs::write(&parent_file, parent).map_err(io_error("write", &parent_file))?;
                }
                None => fs::create_dir(temp.join("fs")).map_err(io_error("create", &temp))?,
            }
            // rename(2) onto an existing non-empty directory fails, so a concurrent prepare of
            // the same key loses cleanly instead of mixing two trees.
            fs::rename(&temp, &directory).map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty => {
                    Error::Exists(key.to_owned())
                }
                _ => Error::Io {
                    action: "rename",
                    path: directory.clone(),
                    source,
                },
            })
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        result.map(|()| directory.join("fs"))
    }

    fn commit(&self, key: &str) -> Result<()> {
        let marker = self.existing(key)?.join("committed");
        match File::create_new(&marker) {
            Ok(file) => file.sync_all().map_err(io_error("fsync", &marker)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(Error::State {
                key: key.to_owned(),
                state: "already committed",
            }),
            Err(source) => Err(Error::Io {
                action: "create",
                path: marker,
                source,
            }),
        }
    }

    fn remove(&self, key: &str) -> Result<()> {
        let directory = self.existing(key)?;
        // Rename first so the key disappears at once; the slow delete cannot be seen half done.
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let doomed = self
            .root
            .join(format!(".rm-{}-{count}-{key}", std::process::id()));
        fs::rename(&directory, &doomed).map_err(io_error("rename", &directory))?;
        fs::remove_dir_all(&doomed).map_err(io_error("delete", &doomed))
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        Ok(self.existing(key)?.join("fs"))
    }

    fn diff(&self, key: &str, out: &mut dyn Write, options: &DiffOptions) -> Result<()> {
        let upper = self.path(key)?;
        let lower = self
            .parent(key)?
            .map(|parent| self.path(&parent))
            .transpose()?;
        diff(lower.as_deref(), &upper, out, options).map(drop)
    }
}

/// Copies the tree `source` to `target` (which must not exist) preserving type, mode, owner,
/// nanosecond mtimes, xattrs, symlinks, device nodes and hard links between copied files.
pub fn copy_tree(source: &Path, target: &Path) -> Result<()> {
    let mut inodes = HashMap::new();
    copy_entry(source, target, &mut inodes)
}

fn copy_entry(
    source: &Path,
    target: &Path,
    inodes: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let meta = fs::symlink_metadata(source).map_err(io_error("stat", source))?;
    let file_type = meta.file_type();
    if file_type.is_dir() {
        fs::create_dir(target).map_err(io_error("create", target))?;
        let mut names: Vec<_> = fs::read_dir(source)
            .and_then(|entries| {
                entries
                    .map(|entry| entry.map(|entry| entry.file_name()))
                    .collect()
            })
            .map_err(io_error("list", source))?;
        names.sort();
        for name in names {
            copy_entry(&source.join(&name), &target.join(&name), inodes)?;
        }
    } else if file_type.is_file() {
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = inodes.get(&key) {
                return fs::hard_link(first, target).map_err(io_error("link", target));
            }
            inodes.insert(key, target.to_owned());
        }
        copy_file(source, target)?;
    } else if file_type.is_symlink() {
        let link = fs::read_link(source).map_err(io_error("read symlink", source))?;
        std::os::unix::fs::symlink(link, target).map_err(io_error("create symlink", target))?;
    } else {
        let node_type = if file_type.is_char_device() {
            FileType::CharacterDevice
        } else if file_type.is_block_device() {
            FileType::BlockDevice
        } else if file_type.is_fifo() {
            FileType::Fifo
        } else {
            // Sockets belong to the process that made them; a snapshot cannot carry them.
            return Ok(());
        };
        rustix::fs::mknodat(
            CWD,
            target,
            node_type,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .map_err(|errno| Error::Io {
            action: "create device node",
            path: target.to_owned(),
            source: errno.into(),
        })?;
    }
    copy_metadata(source, target, &meta)
}

fn copy_file(source: &Path, target: &Path) -> Result<()> {
    let mut input = File::open(source).map_err(io_error("open", source))?;
    let mut output = File::create_new(target).map_err(io_error("create", target))?;
    // FICLONE shares extents on btrfs/xfs (a reflink); elsewhere it fails and we copy, which
    // `io::copy` does with copy_file_range(2) inside the kernel.
    if rustix::fs::ioctl_ficlone(&output, &input).is_err() {
        io::copy(&mut input, &mut output).map_err(io_error("copy", target))?;
    }
    Ok(())
}

fn copy_metadata(source: &Path, target: &Path, meta: &fs::Metadata) -> Result<()> {
    let error = |errno: rustix::io::Errno| Error::Io {
        action: "set metadata of",
        path: target.to_owned(),
        source: errno.into(),
    };
    let owner = Some(rustix::fs::Uid::from_raw(meta.uid()));
    let group = Some(rustix::fs::Gid::from_raw(meta.gid()));
    match rustix::fs::chownat(CWD, target, owner, group, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::PERM) if !rustix::process::geteuid().is_root() => {}
        other => other.map_err(error)?,
    }
    let xattrs = read_xattrs(source).map_err(io_error("read xattrs of", source))?;
    for (name, value) in xattrs {
        match rustix::fs::lsetxattr(target, &name, &value, XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => {}
            Err(errno) => return Err(error(errno)),
        }
    }
    if !meta.file_type().is_symlink() {
        // After chown, which clears set-id bits.
        rustix::fs::chmodat(
            CWD,
            target,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            AtFlags::empty(),
        )
        .map_err(error)?;
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, target, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(error)
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}
