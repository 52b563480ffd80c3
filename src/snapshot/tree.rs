//! Copying and removing whole snapshot trees: what the native snapshotter does for every
//! step, and what the overlay snapshotter falls back to when a chain of layers gets too long.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

use crate::snapshot::diff::read_xattrs;
use crate::snapshot::error::{Error, Result, io_error};

/// Deletes the snapshot directory holding the tree at `path` and its side files; renamed
/// first so the tree disappears at once and a slow delete is never seen half done.
pub(super) fn remove_snapshot(path: &Path) -> Result<()> {
    let snapshot = crate::snapshot::usage::snapshot_dir(path);
    let mut doomed = snapshot.as_os_str().to_owned();
    doomed.push(".removing");
    let doomed = PathBuf::from(doomed);
    fs::rename(snapshot, &doomed).map_err(io_error("rename", snapshot))?;
    for side in crate::snapshot::usage::SIDE_FILES {
        let _ = fs::remove_file(crate::snapshot::usage::side_file(snapshot, side));
    }
    fs::remove_dir_all(&doomed).map_err(io_error("delete", &doomed))
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
