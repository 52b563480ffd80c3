//! The file op: `COPY`, `ADD` (local files; local tar archives, plain or gzip, bzip2, xz or
//! zstd compressed, are unpacked into the destination), `WORKDIR`'s mkdir, heredoc files and
//! removals, applied to a mutable root filesystem. Part of `ops`.
//!
//! Every action is turned into tar entries and written by [`crate::snapshot::apply_layer`], whose
//! `openat2(RESOLVE_IN_ROOT)` path resolution is the one audited way this crate writes into a
//! root filesystem: a destination such as `/etc/x` where `/etc` is a symlink to `/tmp` lands
//! in the root's own `/tmp`, never the host's. Sources are resolved inside their own root with
//! [`crate::executor::user::resolve_in_root`] and walked without following symlinks.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::executor::user::{self, resolve_in_root};
use crate::graph::{CopyAction, FileAction, FileOwner};
use crate::path::clean_in_root as clean;
use crate::snapshot;

use super::chmod;

/// Why a file action failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source path (or glob) matched nothing.
    #[error("`{path}` not found in the copy source")]
    NotFound {
        /// The path as written.
        path: String,
    },
    /// A path to remove does not exist.
    #[error("cannot remove `{path}`: it does not exist")]
    RemoveMissing {
        /// The path.
        path: String,
    },
    /// A directory's parent does not exist and `make_parents` is off.
    #[error("cannot create `{path}`: its parent directory does not exist")]
    MissingParent {
        /// The path.
        path: String,
    },
    /// Several sources were copied to a destination that is not a directory.
    #[error("copying several sources needs a destination directory ending in `/`, not `{dest}`")]
    DestinationNotDirectory {
        /// The destination.
        dest: String,
    },
    /// An input index is out of range (a malformed definition).
    #[error("file op refers to input {index}, but only {count} inputs were given")]
    MissingInput {
        /// The index.
        index: usize,
        /// How many inputs there are.
        count: usize,
    },
    /// `--chown` names a user or group the destination does not know.
    #[error(transparent)]
    Owner(#[from] crate::executor::Error),
    /// `--chmod` is not a valid mode.
    #[error("invalid `--chmod` value `{value}`")]
    Chmod {
        /// The value as written.
        value: String,
    },
    /// A local archive `ADD` tried to unpack is damaged.
    #[error("`ADD` could not unpack `{path}`: {message}")]
    Unpack {
        /// The archive.
        path: String,
        /// What was wrong with it.
        message: String,
    },
    /// Reading a source failed.
    #[error("failed to read `{path}`")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing into the root failed.
    #[error(transparent)]
    Write(#[from] snapshot::Error),
}

/// Result alias for file actions.
pub type Result<T> = std::result::Result<T, Error>;

/// Applies `actions` in order to the mutable root `root`; `inputs[i]` is the root directory
/// of the op's input `i`.
pub fn apply(root: &Path, inputs: &[&Path], actions: &[FileAction]) -> Result<()> {
    for action in actions {
        let mut layer = Layer::default();
        match action {
            FileAction::Mkdir {
                path,
                owner,
                make_parents,
            } => {
                mkdir(root, &mut layer, path, owner, *make_parents)?;
            }
            FileAction::Mkfile { path, owner, data } => {
                let ids = ids(root, owner)?;
                let mode = owner.mode.unwrap_or(0o644);
                layer.parents(root, path, ids)?;
                layer.file(path, data.as_bytes(), mode, ids, 0);
            }
            FileAction::Rm {
                path,
                allow_not_found,
            } => {
                if !exists(root, path) {
                    if *allow_not_found {
                        continue;
                    }
                    return Err(Error::RemoveMissing { path: path.clone() });
                }
                layer.whiteout(path);
            }
            FileAction::Copy(copy) => {
                let source = match copy.source {
                    Some(index) => Some(*inputs.get(index).ok_or(Error::MissingInput {
                        index,
                        count: inputs.len(),
                    })?),
                    None => None,
                };
                let archives = copy_into(root, source, copy, &mut layer)?;
                let tar = std::mem::take(&mut layer).finish();
                if !tar.is_empty() {
                    snapshot::apply_layer(root, tar.as_slice())?;
                }
                for archive in archives {
                    unpack(root, &archive, ids(root, &copy.owner)?)?;
                }
            }
        }
        let tar = layer.finish();
        if !tar.is_empty() {
            snapshot::apply_layer(root, tar.as_slice())?;
        }
    }
    Ok(())
}

/// A local archive `ADD` unpacks instead of copying.
struct Archive {
    /// Its path in the source root, as matched.
    relative: String,
    /// Its path on disk.
    disk: PathBuf,
    /// The directory it unpacks into.
    dest: String,
}

/// Unpacks `archive` into its destination directory, creating it if needed.
///
/// Compat: BuildKit unpacks with the destination as the archive's root (moby's chrooted
/// untar), so absolute symlinks and `..` in entries stay inside the destination; the same
/// `apply_layer` that applies image layers confines every entry here.
fn unpack(root: &Path, archive: &Archive, ids: Option<(u32, u32)>) -> Result<()> {
    if !archive.dest.is_empty() && !is_dir(root, &archive.dest) {
        let mut layer = Layer::default();
        layer.parents(root, &format!("{}/.", archive.dest), ids)?;
        layer.dir(&archive.dest, 0o755, ids, 0);
        snapshot::apply_layer(root, layer.finish().as_slice())?;
    }
    let dir = resolve_in_root(root, &archive.dest);
    let damaged = |message: String| Error::Unpack {
        path: archive.relative.clone(),
        message,
    };
    let reader =
        crate::source::archive::decompressed(&archive.disk).map_err(|e| damaged(e.to_string()))?;
    snapshot::apply_layer(&dir, reader).map_err(|e| damaged(e.to_string()))
}

/// `(uid, gid)` for an owner, names resolved in the destination's `/etc/passwd` and
/// `/etc/group`; `None` keeps the source's ownership.
fn ids(root: &Path, owner: &FileOwner) -> Result<Option<(u32, u32)>> {
    if owner.user.is_none() && owner.group.is_none() {
        return Ok(None);
    }
    let spec = format!(
        "{}:{}",
        owner.user.as_deref().unwrap_or("0"),
        owner.group.as_deref().unwrap_or("")
    );
    let spec = spec.trim_end_matches(':');
    let resolved = user::resolve(root, spec)?;
    Ok(Some((resolved.uid, resolved.gid)))
}

fn exists(root: &Path, path: &str) -> bool {
    fs::symlink_metadata(resolve_in_root(root, path)).is_ok()
}

fn is_dir(root: &Path, path: &str) -> bool {
    fs::metadata(resolve_in_root(root, path)).is_ok_and(|m| m.is_dir())
}

fn mkdir(
    root: &Path,
    layer: &mut Layer,
    path: &str,
    owner: &FileOwner,
    make_parents: bool,
) -> Result<()> {
    if is_dir(root, path) {
        return Ok(());
    }
    let parent = Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !make_parents && !parent.is_empty() && !is_dir(root, &parent) {
        return Err(Error::MissingParent {
            path: path.to_owned(),
        });
    }
    let ids = ids(root, owner)?;
    layer.parents(root, path, ids)?;
    layer.dir(path, owner.mode.unwrap_or(0o755), ids, 0);
    Ok(())
}

/// One file found in a copy source, with where it goes.
struct Found {
    /// The real path on disk (inside the source root).
    disk: PathBuf,
    /// The destination path inside the root.
    dest: String,
    meta: Metadata,
}

/// Adds the copy's entries to `layer` and returns the archives to unpack after it.
fn copy_into(
    root: &Path,
    source: Option<&Path>,
    copy: &CopyAction,
    layer: &mut Layer,
) -> Result<Vec<Archive>> {
    let empty = tempfile_dir()?;
    let source_root = source.unwrap_or(empty.path());
    let matches = matches(source_root, copy)?;
    if matches.is_empty() {
        if copy.allow_wildcard && copy.allow_empty_wildcard && has_wildcard(&copy.src) {
            return Ok(Vec::new());
        }
        return Err(Error::NotFound {
            path: copy.src.clone(),
        });
    }
    let dest_is_dir = copy.dest.ends_with('/') || is_dir(root, &copy.dest);
    if matches.len() > 1 && !dest_is_dir {
        return Err(Error::DestinationNotDirectory {
            dest: copy.dest.clone(),
        });
    }
    let ids = ids(root, &copy.owner)?;
    let mode = match (&copy.owner.mode, &copy.mode_str) {
        (Some(mode), _) => Some(chmod::Mode::Absolute(*mode)),
        (None, Some(text)) => Some(chmod::parse(text).ok_or_else(|| Error::Chmod {
            value: text.clone(),
        })?),
        (None, None) => None,
    };
    let dest_root = clean(&copy.dest);
    let mut found = Vec::new();
    let mut archives = Vec::new();
    for (relative, disk) in matches {
        let meta = metadata(&disk, copy.follow_symlinks)?;
        if copy.attempt_unpack && meta.is_file() && crate::source::archive::is_archive(&disk) {
            archives.push(Archive {
                relative,
                disk,
                dest: dest_root.clone(),
            });
            continue;
        }
        let name = Path::new(&relative)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = if copy.parents {
            join(&dest_root, &relative)
        } else if meta.is_dir() && copy.dir_copy_contents {
            dest_root.clone()
        } else if dest_is_dir {
            join(&dest_root, &name)
        } else {
            dest_root.clone()
        };
        if meta.is_dir() {
            let before = found.len();
            walk(&disk, &target, copy, &mut found)?;
            if copy.dir_copy_contents && !copy.parents {
                // The directory's contents go into the destination; the destination keeps
                // its own metadata (or is created 0755 below), as BuildKit's copy does.
                found.remove(before);
                if !is_dir(root, &target) && !target.is_empty() {
                    layer.parents(root, &target, ids)?;
                    layer.dir(&target, 0o755, ids, 0);
                }
            }
        } else {
            found.push(Found {
                disk,
                dest: target,
                meta,
            });
        }
    }
    let parent_target = if dest_is_dir {
        format!("{dest_root}/.")
    } else {
        dest_root.clone()
    };
    if copy.create_dest_path || dest_is_dir {
        layer.parents(root, &parent_target, ids)?;
    }
    if dest_is_dir && !is_dir(root, &dest_root) && !dest_root.is_empty() {
        layer.dir(&dest_root, 0o755, ids, 0);
    }
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for item in found {
        emit(layer, item, ids, mode.as_ref(), &mut links)?;
    }
    Ok(archives)
}

fn has_wildcard(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

fn join(base: &str, name: &str) -> String {
    match (base.is_empty(), name.is_empty()) {
        (true, _) => name.trim_start_matches('/').to_owned(),
        (_, true) => base.to_owned(),
        _ => format!("{base}/{}", name.trim_start_matches('/')),
    }
}

fn metadata(path: &Path, follow: bool) -> Result<Metadata> {
    let meta = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    meta.map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Resolves the copy's `src` (a path or a glob) inside the source root: `(path relative to
/// the source root, real path on disk)` per match, sorted.
fn matches(source_root: &Path, copy: &CopyAction) -> Result<Vec<(String, PathBuf)>> {
    let src = clean(&copy.src);
    if !(copy.allow_wildcard && has_wildcard(&src)) {
        let disk = resolve_in_root(source_root, &src);
        let present = if copy.follow_symlinks {
            disk.exists()
        } else {
            fs::symlink_metadata(&disk).is_ok()
        };
        return Ok(if present {
            vec![(src, disk)]
        } else {
            Vec::new()
        });
    }
    let mut current: Vec<String> = vec![String::new()];
    for component in src.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in current {
            if !has_wildcard(component) {
                let candidate = join(&base, component);
                if fs::symlink_metadata(resolve_in_root(source_root, &candidate)).is_ok() {
                    next.push(candidate);
                }
                continue;
            }
            let dir = resolve_in_root(source_root, &base);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            next.extend(
                names
                    .into_iter()
                    .filter(|n| chmod::glob_matches(component, n))
                    .map(|n| join(&base, &n)),
            );
        }
        current = next;
    }
    Ok(current
        .into_iter()
        .map(|relative| {
            let disk = resolve_in_root(source_root, &relative);
            (relative, disk)
        })
        .collect())
}

/// Lists a directory's tree (not following symlinks), destination paths under `dest`.
fn walk(dir: &Path, dest: &str, copy: &CopyAction, out: &mut Vec<Found>) -> Result<()> {
    let meta = metadata(dir, false)?;
    out.push(Found {
        disk: dir.to_owned(),
        dest: dest.to_owned(),
        meta,
    });
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|source| Error::Read {
            path: dir.to_owned(),
            source,
        })?
        .flatten()
        .collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if copy
            .exclude_patterns
            .iter()
            .any(|p| chmod::glob_matches(p, &name))
        {
            continue;
        }
        let path = entry.path();
        let target = join(dest, &name);
        let meta = metadata(&path, false)?;
        if meta.is_dir() {
            walk(&path, &target, copy, out)?;
        } else {
            out.push(Found {
                disk: path,
                dest: target,
                meta,
            });
        }
    }
    Ok(())
}

fn emit(
    layer: &mut Layer,
    item: Found,
    ids: Option<(u32, u32)>,
    mode: Option<&chmod::Mode>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let meta = &item.meta;
    let owner = ids.unwrap_or((meta.uid(), meta.gid()));
    let permissions = meta.permissions().mode() & 0o7777;
    let mode = mode.map_or(permissions, |m| m.apply(permissions, meta.is_dir()));
    let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    if meta.is_dir() {
        if !item.dest.is_empty() {
            layer.dir(&item.dest, mode, Some(owner), mtime);
        }
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(&item.disk).map_err(|source| Error::Read {
            path: item.disk.clone(),
            source,
        })?;
        layer.symlink(&item.dest, &target.to_string_lossy(), owner, mtime);
    } else if meta.nlink() > 1 && links.contains_key(&(meta.dev(), meta.ino())) {
        let first = links[&(meta.dev(), meta.ino())].clone();
        layer.hard_link(&item.dest, &first);
    } else {
        if meta.nlink() > 1 {
            links.insert((meta.dev(), meta.ino()), item.dest.clone());
        }
        let data = fs::read(&item.disk).map_err(|source| Error::Read {
            path: item.disk.clone(),
            source,
        })?;
        layer.file(&item.dest, &data, mode, Some(owner), mtime);
    }
    Ok(())
}

fn tempfile_dir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|source| Error::Read {
        path: std::env::temp_dir(),
        source,
    })
}

/// A tar stream under construction; each action's changes become one layer applied with
/// [`crate::snapshot::apply_layer`].
#[derive(Default)]
struct Layer {
    builder: Option<tar::Builder<Vec<u8>>>,
}

impl Layer {
    fn builder(&mut self) -> &mut tar::Builder<Vec<u8>> {
        self.builder
            .get_or_insert_with(|| tar::Builder::new(Vec::new()))
    }

    fn header(
        kind: tar::EntryType,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
        size: u64,
    ) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(u64::from(owner.0));
        header.set_gid(u64::from(owner.1));
        header.set_mtime(mtime);
        header.set_size(size);
        header
    }

    fn append(&mut self, mut header: tar::Header, path: &str, data: &[u8]) {
        // An in-memory Vec never fails to write.
        let _ = self.builder().append_data(&mut header, clean(path), data);
    }

    fn dir(&mut self, path: &str, mode: u32, owner: Option<(u32, u32)>, mtime: u64) {
        let header = Self::header(
            tar::EntryType::Directory,
            mode,
            owner.unwrap_or((0, 0)),
            mtime,
            0,
        );
        self.append(header, &format!("{}/", clean(path)), &[]);
    }

    fn file(&mut self, path: &str, data: &[u8], mode: u32, owner: Option<(u32, u32)>, mtime: u64) {
        let header = Self::header(
            tar::EntryType::Regular,
            mode,
            owner.unwrap_or((0, 0)),
            mtime,
            data.len() as u64,
        );
        self.append(header, path, data);
    }

    fn symlink(&mut self, path: &str, target: &str, owner: (u32, u32), mtime: u64) {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, owner, mtime, 0);
        let _ = self.builder().append_link(&mut header, clean(path), target);
    }

    fn hard_link(&mut self, path: &str, target: &str) {
        let mut header = Self::header(tar::EntryType::Link, 0o644, (0, 0), 0, 0);
        let _ = self
            .builder()
            .append_link(&mut header, clean(path), clean(target));
    }

    fn whiteout(&mut self, path: &str) {
        let cleaned = clean(path);
        let (parent, name) = match cleaned.rsplit_once('/') {
            Some((parent, name)) => (format!("{parent}/"), name.to_owned()),
            None => (String::new(), cleaned),
        };
        let header = Self::header(tar::EntryType::Regular, 0o644, (0, 0), 0, 0);
        self.append(
            header,
            &format!("{parent}{}{name}", snapshot::WHITEOUT_PREFIX),
            &[],
        );
    }

    /// Adds entries for the missing parent directories of `path` (mode 0755, the given
    /// owner), leaving existing ones untouched.
    fn parents(&mut self, root: &Path, path: &str, owner: Option<(u32, u32)>) -> Result<()> {
        let cleaned = clean(path);
        let mut prefix = String::new();
        let parts: Vec<&str> = cleaned
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            prefix = join(&prefix, part);
            if !exists(root, &prefix) {
                self.dir(&prefix, 0o755, owner, 0);
            }
        }
        Ok(())
    }

    fn finish(self) -> Vec<u8> {
        match self.builder {
            Some(builder) => builder.into_inner().unwrap_or_default(),
            None => Vec::new(),
        }
    }
}
