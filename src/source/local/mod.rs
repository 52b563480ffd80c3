//! The local build context: a directory on this machine, filtered by `.dockerignore` and by
//! the include patterns of what a build reads, checksummed by content and copied into a
//! snapshot directory. Part of `source`.
//!
//! Symlinks are never followed out of the context: the walk lists each directory through its
//! descriptor and opens every name with `O_NOFOLLOW`, file contents are opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the context's descriptor, symlinks are
//! copied as symlinks, and [`LocalSource::resolve`] rejects a path whose symlinks lead outside.
//! (Extended attributes are still read by path with `lgetxattr`: a directory swapped for a
//! symlink in the middle of a checksum could expose another file's xattrs, never its content.)

mod checksum;
mod include;
pub mod snapshot;
mod update;
mod xattrs;

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{
    AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps, XattrFlags,
};
use sha2::{Digest as _, Sha256};

use self::include::Includes;
use self::xattrs::read_xattrs;
use crate::digest::Digest;
use crate::source::dockerignore::{self, Matcher};
use crate::source::error::{Error, Result, io_error};
use crate::source::stat_cache::{FileStat, StatCache};

/// The allocation unit sizes are rounded up to (ext4's and most filesystems' block).
const BLOCK: u64 = 4096;

/// Symlink hops allowed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// Which paths of a context a build sees.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// `.dockerignore` patterns (as [`dockerignore::parse`] returns them).
    pub exclude_patterns: Vec<String>,
    /// When not empty, only paths matching one of these (or below a match) are transferred:
    /// BuildKit's `local.includepattern`, which the Dockerfile front end fills with the paths
    /// the build reads.
    pub include_patterns: Vec<String>,
    /// Paths whose symlinks are followed: each is resolved inside the context and both the
    /// path and its target are added to the include patterns (BuildKit's `local.followpaths`,
    /// which the front end sets for the Dockerfile so a symlinked Dockerfile works).
    pub follow_paths: Vec<String>,
}

/// What kind of filesystem object an [`Entry`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// A symlink and its target, as written (never followed).
    Symlink(PathBuf),
    /// A device node, fifo or socket.
    Other,
}

/// One path of the context, as the walk saw it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path relative to the context root.
    pub path: PathBuf,
    /// The object's kind.
    pub kind: EntryKind,
    /// The full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Device number (device nodes).
    pub rdev: u64,
    stat: FileStat,
    mtime: (i64, i64),
    inode: (u64, u64),
    links: u64,
}

/// A context directory opened for reading.
#[derive(Debug)]
pub struct LocalSource {
    root: PathBuf,
    root_fd: OwnedFd,
    excludes: Matcher,
    includes: Option<Includes>,
}

impl LocalSource {
    /// Opens the context at `root` with explicit options.
    pub fn new(root: &Path, options: &LocalOptions) -> Result<Self> {
        let root = fs::canonicalize(root).map_err(io_error("open", root))?;
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_error("open", &root)(errno.into()))?;
        let mut source = Self {
            excludes: Matcher::new(&options.exclude_patterns)?,
            includes: None,
            root,
            root_fd,
        };
        // Compat: fsutil Walk: follow paths and their resolved targets join the include
        // patterns, so giving follow paths alone restricts the walk to them.
        let mut includes = options.include_patterns.clone();
        for path in &options.follow_paths {
            includes.push(path.clone());
            let target = source.resolve(path)?;
            includes.push(target.to_string_lossy().into_owned());
        }
        if !includes.is_empty() {
            source.includes = Some(Includes::new(&includes)?);
        }
        Ok(source)
    }

    /// Opens the context at `root` with the ignore file that applies to `dockerfile` (see
    /// [`dockerignore::ignore_file_for`]) and optional include patterns.
    pub fn load(
        root: &Path,
        dockerfile: Option<&Path>,
        include_patterns: &[String],
    ) -> Result<Self> {
        let options = LocalOptions {
            exclude_patterns: dockerignore::load(root, dockerfile)?,
            include_patterns: include_patterns.to_vec(),
            follow_paths: Vec::new(),
        };
        Self::new(root, &options)
    }

    /// Returns the canonical context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lists every path the build may see, parents before children, siblings sorted by name
    /// (so the order is the same on every machine). Directories are listed in parallel.
    pub fn walk(&self) -> Result<Vec<Entry>> {
        let root = rustix::fs::openat(
            &self.root_fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_error("open", &self.root)(errno.into()))?;
        self.walk_dir(&root, Path::new(""))
    }

    /// Lists one directory through its descriptor: every name is looked up relative to it
    /// without following symlinks, so a directory swapped for a symlink while we walk cannot
    /// lead us out of the context (a path-based walk would follow it).
    fn walk_dir(&self, dir_fd: &OwnedFd, dir: &Path) -> Result<Vec<Entry>> {
        let full = self.root.join(dir);
        let mut names: Vec<OsString> = Vec::new();
        let listing = rustix::fs::Dir::read_from(dir_fd)
            .map_err(|errno| io_error("list", &full)(errno.into()))?;
        for item in listing {
            let item = item.map_err(|errno| io_error("list", &full)(errno.into()))?;
            let name = item.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let parts: Vec<Vec<Entry>> = names
            .par_iter()
            .map(|name| self.walk_name(dir_fd, dir, name))
            .collect::<Result<_>>()?;
        Ok(parts.concat())
    }

    /// The entries for `name` in the directory `dir_fd` (at `dir`) and, for a directory,
    /// everything selected below it.
    fn walk_name(&self, dir_fd: &OwnedFd, dir: &Path, name: &OsStr) -> Result<Vec<Entry>> {
        let path = dir.join(name);
        let text = path.to_string_lossy();
        let excluded = self.excludes.excludes(&text);
        let included = self.includes.as_ref().is_none_or(|i| i.includes(&text));
        let selected = !excluded && included;
        let full = || self.root.join(&path);
        let stat = rustix::fs::statat(dir_fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|errno| io_error("stat", full())(errno.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return Ok(if selected {
                vec![entry(path.clone(), dir_fd, name, &stat)?]
            } else {
                Vec::new()
            });
        }
        // An excluded directory is still entered when a `!` pattern may bring something
        // below it back, and a directory outside the include patterns when one of them may
        // match below it; it is listed only if something inside is.
        let may_hold_excluded = !excluded || self.excludes.has_exclusions();
        let may_hold_included = included
            || self
                .includes
                .as_ref()
                .is_some_and(|i| i.may_match_below(&text));
        if !(selected || (may_hold_excluded && may_hold_included)) {
            return Ok(Vec::new());
        }
        let child = rustix::fs::openat(
            dir_fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| io_error("open", full())(errno.into()))?;
        let below = self.walk_dir(&child, &path)?;
        if !selected && below.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(below.len() + 1);
        out.push(entry(path.clone(), dir_fd, name, &stat)?);
        out.extend(below);
        Ok(out)
    }

    /// Resolves `path` (relative to the context; `..` cannot climb above it) through the
    /// context's symlinks, the final one included, and returns the real relative path.
    ///
    /// # Errors
    /// [`Error::OutsideContext`] when a symlink leads outside the context: an absolute target
    /// not under the context directory, or a relative one that climbs above it.
    // Diverges: buildkit resolves symlinks as if the context were `/` (fs.RootPath), so an
    // absolute target silently names another file of the context; we refuse instead, so a COPY
    // never reads something other than what the user's symlink says.
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        let outside = || Error::OutsideContext {
            path: path.to_owned(),
            context: self.root.clone(),
        };
        let cleaned = dockerignore::clean(&format!("/{path}"));
        let mut pending: VecDeque<OsString> = components(Path::new(&cleaned));
        let mut resolved = PathBuf::new();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                if !resolved.pop() {
                    return Err(outside());
                }
                continue;
            }
            let candidate = resolved.join(&part);
            let full = self.root.join(&candidate);
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(io_error("resolve", full)(io::Error::other(
                            "too many levels of symbolic links",
                        )));
                    }
                    let target = fs::read_link(&full).map_err(io_error("read symlink", &full))?;
                    let target = if target.is_absolute() {
                        resolved = PathBuf::new();
                        target
                            .strip_prefix(&self.root)
                            .map_err(|_| outside())?
                            .to_owned()
                    } else {
                        target
                    };
                    for part in components(&target).into_iter().rev() {
                        pending.push_front(part);
                    }
                }
                _ => resolved = candidate,
            }
        }
        Ok(resolved)
    }

    /// Opens a regular file of the context without following any symlink, so a path swapped
    /// for a symlink after the walk cannot make us read outside the context.
    fn open(&self, path: &Path) -> Result<File> {
        let fd = rustix::fs::openat2(
            &self.root_fd,
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|errno| io_error("open", self.root.join(path))(errno.into()))?;
        Ok(File::from(fd))
    }

    /// Copies every path [`Self::walk`] lists into `dest` (created if needed), preserving
    /// modes, symlinks, modification times and, when running as root, ownership. Returns the
    /// entries copied.
    pub fn materialize(&self, dest: &Path) -> Result<Vec<Entry>> {
        Ok(self.materialize_from(dest, None)?.entries)
    }

    /// [`Self::materialize`], reusing an earlier snapshot of this context: a file whose
    /// source stat is the one `previous` recorded for it (its manifest) is hard-linked from
    /// that snapshot (given as its layer directories, top first, see
    /// [`crate::snapshot::overlay::layers`]) instead of copied, so only changed files are read. Every other file is
    /// hashed while it is copied. The returned manifest holds the digest of every file
    /// `dest` holds; save it next to the snapshot once the snapshot is complete.
    ///
    /// Snapshots are never written after they are made, so sharing inodes between them is
    /// safe: steps that change a file copy it first (overlay copy-up, or the native
    /// snapshotter's full copy).
    pub fn materialize_from(
        &self,
        dest: &Path,
        previous: Option<(&[PathBuf], &StatCache)>,
    ) -> Result<Materialized> {
        self.materialize_entries(self.walk()?, dest, previous)
    }

    /// [`Self::materialize_from`] with the entries of an earlier [`Self::walk`], so a sync
    /// that just checksummed the context does not list it again.
    pub fn materialize_entries(
        &self,
        entries: Vec<Entry>,
        dest: &Path,
        previous: Option<(&[PathBuf], &StatCache)>,
    ) -> Result<Materialized> {
        fs::create_dir_all(dest).map_err(io_error("create", dest))?;
        let privileged = rustix::process::geteuid().is_root();
        // Directories first, parents before children, so files can go in parallel.
        for entry in entries.iter().filter(|e| e.kind == EntryKind::Directory) {
            let target = dest.join(&entry.path);
            match fs::create_dir(&target) {
                Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(io_error("create", &target)(error));
                }
                _ => {}
            }
            set_metadata(&self.root, &target, entry, privileged)?;
        }
        // Files with several links inside the selection stay linked in the copy, as
        // fsutil's transfer keeps them; they are copied one by one after the others.
        let (shared, single): (Vec<&Entry>, Vec<&Entry>) = entries
            .iter()
            .filter(|e| e.kind != EntryKind::Directory)
            .partition(|e| e.kind == EntryKind::File && e.links > 1);
        let placed: Vec<Option<Placed>> = single
            .par_iter()
            .map(|entry| self.place(entry, dest, previous, privileged))
            .collect::<Result<_>>()?;
        let mut linked: HashMap<(u64, u64), &Path> = HashMap::new();
        let mut placed_shared = Vec::new();
        for entry in shared {
            if let Some(first) = linked.get(&entry.inode) {
                let target = dest.join(&entry.path);
                fs::hard_link(dest.join(first), &target).map_err(io_error("link", &target))?;
                let digest = manifest_digest(&placed_shared, first);
                if let Some(digest) = digest {
                    placed_shared.push(Placed {
                        path: entry.path.clone(),
                        stat: entry.stat,
                        digest,
                        reused: true,
                        changed: false,
                    });
                }
                continue;
            }
            linked.insert(entry.inode, &entry.path);
            if let Some(done) = self.place(entry, dest, None, privileged)? {
                placed_shared.push(done);
            }
        }
        // What the snapshot holds of its own: its directories and the files copied into it
        // (a linked file's blocks belong to the snapshot that first held them).
        let directories = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Directory)
            .count() as u64
            * BLOCK;
        // Creating children touched the directories' mtimes; restore them, deepest first.
        for entry in entries.iter().rev() {
            if entry.kind == EntryKind::Directory {
                set_times(&dest.join(&entry.path), entry)?;
            }
        }
        Ok(Materialized::tally(
            entries,
            placed.into_iter().flatten().chain(placed_shared),
            directories,
        ))
    }

    /// Puts one non-directory entry into `dest`: a link to the previous snapshot's copy when
    /// its stat is unchanged, else a copy. Returns what the manifest records for a file.
    fn place(
        &self,
        entry: &Entry,
        dest: &Path,
        previous: Option<(&[PathBuf], &StatCache)>,
        privileged: bool,
    ) -> Result<Option<Placed>> {
        let target = dest.join(&entry.path);
        match &entry.kind {
            EntryKind::File => {
                let text = entry.path.to_string_lossy();
                if let Some((layers, manifest)) = previous
                    && let Some(digest) = manifest.lookup(&text, entry.stat)
                    // The snapshot may have been collected since; then the file is copied.
                    && let Some(file) = layer_file(layers, &entry.path)
                    && fs::hard_link(file, &target).is_ok()
                {
                    return Ok(Some(Placed {
                        path: entry.path.clone(),
                        stat: entry.stat,
                        digest,
                        reused: true,
                        changed: false,
                    }));
                }
                let mut input = self.open(&entry.path)?;
                let mut output = File::create_new(&target).map_err(io_error("create", &target))?;
                let digest =
                    copy_hashing(&mut input, &mut output).map_err(io_error("copy", &target))?;
                // A file written while it was copied must not be reused by the next snapshot.
                let after = input.metadata().map_err(io_error("stat", &target))?;
                let changed = FileStat::of(&after) != entry.stat;
                set_metadata(&self.root, &target, entry, privileged)?;
                Ok(Some(Placed {
                    path: entry.path.clone(),
                    stat: entry.stat,
                    digest,
                    reused: false,
                    changed,
                }))
            }
            EntryKind::Symlink(link) => {
                std::os::unix::fs::symlink(link, &target)
                    .map_err(io_error("create symlink", &target))?;
                set_metadata(&self.root, &target, entry, privileged)?;
                Ok(None)
            }
            // Diverges: device nodes and fifos in a context are skipped, as fsutil's
            // sender does for anything that is not a file, directory or symlink.
            EntryKind::Other | EntryKind::Directory => Ok(None),
        }
    }
}

/// What [`LocalSource::materialize_from`] made.
#[derive(Debug)]
pub struct Materialized {
    /// The entries copied.
    pub entries: Vec<Entry>,
    /// The digest of every file the snapshot holds, under its source's stat.
    pub manifest: StatCache,
    /// Files kept from the previous snapshot (linked, or left in place under a new layer).
    pub reused: u64,
    /// Files copied (and hashed while copied).
    pub hashed: u64,
    /// Files that changed while they were copied: the snapshot may not hold what the walk
    /// saw.
    pub changed: u64,
    /// Bytes the snapshot holds of its own (directories and copied files, by whole blocks).
    pub bytes: u64,
}

impl Materialized {
    /// The snapshot of `entries`: `placed` recorded in its manifest and counted, its own
    /// bytes those of the files copied on top of `bytes`.
    fn tally(
        entries: Vec<Entry>,
        placed: impl IntoIterator<Item = Placed>,
        mut bytes: u64,
    ) -> Self {
        let mut manifest = StatCache::in_memory();
        let (mut reused, mut hashed, mut changed) = (0, 0, 0);
        for done in placed {
            let text = done.path.to_string_lossy();
            changed += u64::from(done.changed);
            if done.reused {
                reused += 1;
                manifest.record(&text, done.stat, done.digest, done.changed);
            } else {
                hashed += 1;
                bytes += done.stat.size().div_ceil(BLOCK) * BLOCK;
                manifest.record_read(&text, done.stat, done.digest, done.changed);
            }
        }
        Self {
            entries,
            manifest,
            reused,
            hashed,
            changed,
            bytes,
        }
    }
}

/// One file placed in a snapshot.
struct Placed {
    path: PathBuf,
    stat: FileStat,
    digest: Digest,
    reused: bool,
    changed: bool,
}

/// The file at `relative` in the first of `layers` that has anything there, when it is a
/// regular file.
fn layer_file(layers: &[PathBuf], relative: &Path) -> Option<PathBuf> {
    layers.iter().find_map(|layer| {
        let path = layer.join(relative);
        fs::symlink_metadata(&path)
            .ok()
            .map(|meta| meta.is_file().then_some(path))
    })?
}

fn manifest_digest(placed: &[Placed], path: &Path) -> Option<Digest> {
    placed.iter().find(|p| p.path == path).map(|p| p.digest)
}

/// Copies `input` to `output` and returns the sha256 of the bytes written.
fn copy_hashing(input: &mut File, output: &mut File) -> io::Result<Digest> {
    use io::{Read as _, Write as _};
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let count = match input.read(&mut buffer) {
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
        output.write_all(&buffer[..count])?;
    }
    Ok(Digest::from_bytes(hasher.finalize().into()))
}

/// Builds an entry from the `lstat` of `name` in the directory `dir_fd`.
fn entry(path: PathBuf, dir_fd: &OwnedFd, name: &OsStr, stat: &rustix::fs::Stat) -> Result<Entry> {
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Directory => EntryKind::Directory,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir_fd, name, Vec::new())
                .map_err(|errno| io_error("read symlink", &path)(errno.into()))?;
            EntryKind::Symlink(PathBuf::from(OsString::from_vec(target.into_bytes())))
        }
        _ => EntryKind::Other,
    };
    Ok(Entry {
        path,
        size: if kind == EntryKind::File {
            u64::try_from(stat.st_size).unwrap_or(0)
        } else {
            0
        },
        kind,
        mode: stat.st_mode,
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: stat.st_rdev,
        stat: FileStat::of_stat(stat),
        inode: (stat.st_dev, stat.st_ino),
        links: stat.st_nlink,
        mtime: (stat.st_mtime, stat.st_mtime_nsec as i64),
    })
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn set_metadata(root: &Path, target: &Path, entry: &Entry, privileged: bool) -> Result<()> {
    let error = |errno: rustix::io::Errno| io_error("set metadata of", target)(errno.into());
    if privileged {
        let owner = Some(rustix::fs::Uid::from_raw(entry.uid));
        let group = Some(rustix::fs::Gid::from_raw(entry.gid));
        rustix::fs::chownat(CWD, target, owner, group, AtFlags::SYMLINK_NOFOLLOW).map_err(error)?;
    }
    let source = root.join(&entry.path);
    let xattrs = read_xattrs(&source).map_err(io_error("read xattrs of", &source))?;
    for (name, value) in xattrs {
        // Filesystems without xattrs, and `trusted.*` names without privilege, are skipped
        // rather than failing the copy, as the native snapshotter does.
        match rustix::fs::lsetxattr(target, &name, &value, XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP | rustix::io::Errno::PERM) => {}
            Err(errno) => return Err(error(errno)),
        }
    }
    if !matches!(entry.kind, EntryKind::Symlink(_)) {
        // After chown, which clears set-id bits.
        fs::set_permissions(target, fs::Permissions::from_mode(entry.mode & 0o7777))
            .map_err(io_error("set permissions of", target))?;
    }
    set_times(target, entry)
}

fn set_times(target: &Path, entry: &Entry) -> Result<()> {
    let time = Timespec {
        tv_sec: entry.mtime.0,
        tv_nsec: entry.mtime.1 as _,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, target, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|errno| io_error("set times of", target)(errno.into()))
}
