//! Bringing a writable copy of a context's previous snapshot up to date with a new walk,
//! writing only what changed: the context snapshot of a one-file edit costs one file, not a
//! link per unchanged file. Part of `source::local`.
//!
//! The tree written is an overlay on the previous (committed, never written) snapshot, so
//! every change lands in the new snapshot's own layer: a changed file is removed and written
//! again as a new file, never written in place, and the inodes the previous snapshot shares
//! with COPY results stay as they were.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::xattrs::read_xattrs;
use super::{BLOCK, Entry, EntryKind, LocalSource, Materialized, Placed, set_metadata, set_times};
use crate::source::error::{Result, io_error};
use crate::source::stat_cache::StatCache;

impl LocalSource {
    /// Whether [`Self::update_entries`] can bring a snapshot up to date with `entries`: it
    /// does not keep hard links between context files or place device nodes and fifos, so
    /// contexts that have them get a full snapshot.
    pub fn can_update(entries: &[Entry]) -> bool {
        entries.iter().all(|e| match e.kind {
            EntryKind::File => e.links <= 1,
            EntryKind::Other => false,
            EntryKind::Directory | EntryKind::Symlink(_) => true,
        })
    }

    /// Makes `dest`, a writable tree holding the snapshot `previous` is the manifest of, hold
    /// exactly `entries` (as [`Self::materialize_entries`] would copy them): paths no longer
    /// selected are removed, changed files and symlinks replaced, directories' metadata set,
    /// and files whose source stat `previous` recorded are left alone. Returns the manifest of
    /// the result, with the files kept counted as reused.
    pub fn update_entries(
        &self,
        entries: Vec<Entry>,
        dest: &Path,
        previous: &StatCache,
    ) -> Result<Materialized> {
        let privileged = rustix::process::geteuid().is_root();
        let wanted: HashSet<&Path> = entries.iter().map(|e| e.path.as_path()).collect();
        let mut bytes = 0;
        // What the walk no longer lists goes first, so a path that changed kind is free.
        let directories = std::iter::once(Path::new(""))
            .chain(
                entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Directory)
                    .map(|e| e.path.as_path()),
            )
            .collect::<Vec<_>>();
        for dir in &directories {
            let full = dest.join(dir);
            let Ok(listing) = fs::read_dir(&full) else {
                continue;
            };
            for item in listing {
                let item = item.map_err(io_error("list", &full))?;
                let relative = dir.join(item.file_name());
                if !wanted.contains(relative.as_path()) {
                    remove(&dest.join(&relative))?;
                }
            }
        }
        for entry in entries.iter().filter(|e| e.kind == EntryKind::Directory) {
            let target = dest.join(&entry.path);
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {
                    let source = self.root.join(&entry.path);
                    let same = meta.mode() & 0o7777 == entry.mode & 0o7777
                        && (!privileged || (meta.uid(), meta.gid()) == (entry.uid, entry.gid))
                        && read_xattrs(&source).ok() == read_xattrs(&target).ok();
                    if !same {
                        set_metadata(&self.root, &target, entry, privileged)?;
                    }
                    continue;
                }
                Ok(_) => remove(&target)?,
                Err(_) => {}
            }
            fs::create_dir(&target).map_err(io_error("create", &target))?;
            set_metadata(&self.root, &target, entry, privileged)?;
            bytes += BLOCK;
        }
        let placed: Vec<Option<Placed>> = entries
            .par_iter()
            .filter(|e| e.kind != EntryKind::Directory)
            .map(|entry| self.update_one(entry, dest, previous, privileged))
            .collect::<Result<_>>()?;
        // Writing into directories moved their mtimes; put back those that differ (setting
        // the others would copy every directory up into the new layer).
        for entry in entries.iter().rev() {
            if entry.kind == EntryKind::Directory {
                let target = dest.join(&entry.path);
                let meta = fs::symlink_metadata(&target).map_err(io_error("stat", &target))?;
                if (meta.mtime(), meta.mtime_nsec()) != entry.mtime {
                    set_times(&target, entry)?;
                }
            }
        }
        Ok(Materialized::tally(
            entries,
            placed.into_iter().flatten(),
            bytes,
        ))
    }

    /// Brings one non-directory entry up to date in `dest`: kept when the previous snapshot
    /// has it as it is now, else replaced by a new copy.
    fn update_one(
        &self,
        entry: &Entry,
        dest: &Path,
        previous: &StatCache,
        privileged: bool,
    ) -> Result<Option<Placed>> {
        let target = dest.join(&entry.path);
        match &entry.kind {
            EntryKind::File => {
                let text = entry.path.to_string_lossy();
                // The manifest lists the files the previous tree holds, and nothing above
                // removed a path the walk still lists as a file: no lookup through the mount
                // (each one probes every layer) is needed to know it is there.
                if let Some(digest) = previous.lookup(&text, entry.stat) {
                    return Ok(Some(Placed {
                        path: entry.path.clone(),
                        stat: entry.stat,
                        digest,
                        reused: true,
                        changed: false,
                    }));
                }
            }
            EntryKind::Symlink(link) => {
                let same = fs::symlink_metadata(&target).is_ok_and(|meta| {
                    meta.file_type().is_symlink()
                        && (!privileged || (meta.uid(), meta.gid()) == (entry.uid, entry.gid))
                        && (meta.mtime(), meta.mtime_nsec()) == entry.mtime
                        && fs::read_link(&target).is_ok_and(|target| &target == link)
                });
                if same {
                    return Ok(None);
                }
            }
            EntryKind::Other | EntryKind::Directory => return Ok(None),
        }
        if fs::symlink_metadata(&target).is_ok() {
            remove(&target)?;
        }
        self.place(entry, dest, None, privileged)
    }
}

/// Removes whatever is at `path` (a whole directory tree included); through an overlay this
/// leaves a whiteout over the lower layer's copy.
fn remove(path: &PathBuf) -> Result<()> {
    let meta = fs::symlink_metadata(path).map_err(io_error("stat", path))?;
    let removed = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(io_error("remove", path)(error))
        }
        _ => Ok(()),
    }
}
