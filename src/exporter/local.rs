//! The `local` exporter: copies the result's root filesystem into a directory, one
//! `os_arch[_variant]` subdirectory per platform when the result is split. Part of `exporter`.
//!
//! A destination that is missing or empty is filled under a temp name next to it and moved
//! into place, so it never holds a half copy. A destination that already holds files is
//! synchronised in place, writing only what differs: a file is skipped when its size, mode,
//! mtime and owner match and either the record of the previous export shows that neither the
//! result's file nor the destination's changed since, or their contents compare equal. Every
//! file written goes to a temp name in its directory and is renamed over the old one, so
//! each file is always whole; files the previous export wrote that the result no longer has
//! are removed, and files bake did not write are left alone. Symlinks already in the
//! destination are replaced, never followed, so nothing is written outside it.
//!
//! The record (`<state root>/exports/local-<digest of the destination>.json`) gets a marker
//! file (`.dirty`) before the first change to the destination, removed once the new record is
//! written, so an export killed half way is never trusted: the next one compares contents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};
use serde::{Deserialize, Serialize};

use crate::buildflags::ExportEntry;
use crate::exporter::atomic::AtomicDir;
use crate::exporter::attrs::{platform_dir_name, platform_split, source_date_epoch};
use crate::exporter::error::{Error, Result, io_error};
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse};

/// The record format version; another version is ignored.
const VERSION: u32 = 1;

/// Copies `output` to `entry.destination`.
// Compat: buildkit exporter/local/export.go (platform split, epoch applied to every mtime).
pub(crate) fn export(
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
) -> Result<ExportResponse> {
    if entry.destination.is_empty() {
        return Err(Error::MissingDestination {
            kind: entry.kind.clone(),
        });
    }
    let epoch = source_date_epoch(&entry.attrs, context)?;
    let split = platform_split(&entry.attrs, output)?;
    let dest = Path::new(&entry.destination);
    let record = context.state_dir.as_ref().map(|dir| record_path(dir, dest));
    let trees: Vec<(&Path, PathBuf)> = output
        .platforms
        .iter()
        .map(|platform| {
            let below = if split {
                PathBuf::from(platform_dir_name(&platform.platform))
            } else {
                PathBuf::new()
            };
            (platform.rootfs.as_path(), below)
        })
        .collect();
    let fresh = match fs::symlink_metadata(dest) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => true,
        Err(error) => return Err(io_error("stat", dest)(error)),
        Ok(meta) if meta.is_dir() => fs::read_dir(dest)
            .map_err(io_error("read", dest))?
            .next()
            .is_none(),
        Ok(_) => false,
    };
    if fresh {
        let atomic = AtomicDir::create(dest)?;
        let mut sync = Sync::new(atomic.path(), epoch, None, false);
        sync.run(&trees)?;
        let written = sync.into_record();
        atomic.commit()?;
        if let Some(path) = &record {
            // Advisory: without a record the next export compares contents.
            let _ = written.save(path);
        }
        return Ok(ExportResponse::default());
    }
    let previous = record.as_deref().and_then(Record::load);
    let mut sync = Sync::new(dest, epoch, previous, true);
    sync.record_path = record;
    sync.run(&trees)?;
    sync.remove_stale()?;
    if let Some(path) = sync.record_path.clone() {
        let unchanged = !sync.marked
            && sync
                .previous
                .as_ref()
                .is_some_and(|previous| previous.complete && previous.paths == sync.written);
        // A warm export that changed nothing writes nothing, not even its record.
        let marked = sync.marked;
        if !unchanged && sync.into_record().save(&path).is_ok() && marked {
            let _ = fs::remove_file(dirty_marker(&path));
        }
    }
    Ok(ExportResponse::default())
}

/// The file that exists while an export changes a destination: the record beside it
/// describes the destination as it was before, and is not trusted.
fn dirty_marker(record: &Path) -> PathBuf {
    record.with_extension("dirty")
}

/// Where the record of exports to `dest` lives under `state_dir`.
fn record_path(state_dir: &Path, dest: &Path) -> PathBuf {
    let absolute = match (dest.parent(), dest.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            fs::canonicalize(parent).map_or_else(|_| dest.to_owned(), |p| p.join(name))
        }
        _ => fs::canonicalize(dest).unwrap_or_else(|_| dest.to_owned()),
    };
    let digest = crate::digest::Digest::of(absolute.as_os_str().as_encoded_bytes()).hex();
    state_dir.join(format!("local-{}.json", &digest[..32]))
}

/// What the last export wrote to a destination.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    version: u32,
    /// False from the first change to the destination until the export finishes.
    complete: bool,
    /// Every path written, relative to the destination.
    paths: BTreeMap<String, Written>,
}

/// One path as the last export left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Written {
    /// The result file it came from: inode, birth time, size, mtime.
    source: Identity,
    /// The destination file after writing.
    dest: Identity,
    directory: bool,
}

/// The stat fields that change whenever a file's content can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    inode: u64,
    ctime_ns: i128,
    size: u64,
    mtime_ns: i128,
}

impl Identity {
    /// A result file's identity: its birth time instead of its ctime, which changes whenever
    /// a later snapshot hard-links the same (never written) inode. A reused inode number
    /// still gets a new birth time.
    fn of_source(meta: &fs::Metadata) -> Self {
        let mut identity = Self::of(meta);
        if let Ok(born) = meta.created()
            && let Ok(since) = born.duration_since(std::time::UNIX_EPOCH)
        {
            identity.ctime_ns = since.as_nanos() as i128;
        }
        identity
    }

    fn of(meta: &fs::Metadata) -> Self {
        Self {
            inode: meta.ino(),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

impl Record {
    /// Loads the record; one whose export was interrupted (its marker is there) is loaded
    /// as incomplete, so only its list of paths is used.
    fn load(path: &Path) -> Option<Self> {
        let bytes = fs::read(path).ok()?;
        let mut record = serde_json::from_slice::<Self>(&bytes)
            .ok()
            .filter(|record| record.version == VERSION)?;
        if dirty_marker(path).exists() {
            record.complete = false;
        }
        Some(record)
    }

    /// Writes the record through a temp file renamed into place.
    fn save(&self, path: &Path) -> io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        temp.write_all(&serde_json::to_vec(self).map_err(io::Error::other)?)?;
        temp.as_file().sync_all()?;
        temp.persist(path).map_err(|error| error.error)?;
        Ok(())
    }
}

/// How a destination path compares with the result's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing to do.
    UpToDate,
    /// Same bytes (or link target); mode, owner or mtime differ.
    SameContent,
    /// Must be written again.
    Different,
}

/// One export's walk over the result trees and the destination.
struct Sync<'a> {
    dest: &'a Path,
    epoch: Option<u64>,
    owner: (rustix::fs::Uid, rustix::fs::Gid),
    previous: Option<Record>,
    /// Whether `dest` is visible (written file by file through temp names) rather than a
    /// temp directory no one sees yet.
    in_place: bool,
    record_path: Option<PathBuf>,
    /// Whether the record was marked incomplete yet (done before the first change).
    marked: bool,
    written: BTreeMap<String, Written>,
    /// Result files with several links: the first destination path written for each.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<'a> Sync<'a> {
    fn new(dest: &'a Path, epoch: Option<u64>, previous: Option<Record>, in_place: bool) -> Self {
        Self {
            dest,
            epoch,
            owner: (rustix::process::geteuid(), rustix::process::getegid()),
            previous,
            in_place,
            record_path: None,
            marked: false,
            written: BTreeMap::new(),
            links: HashMap::new(),
        }
    }

    fn into_record(self) -> Record {
        Record {
            version: VERSION,
            complete: true,
            paths: self.written,
        }
    }

    fn run(&mut self, trees: &[(&Path, PathBuf)]) -> Result<()> {
        for (rootfs, below) in trees {
            let target = self.dest.join(below);
            if !below.as_os_str().is_empty() {
                let meta = fs::symlink_metadata(rootfs).map_err(io_error("stat", *rootfs))?;
                self.directory(&target, below, &meta)?;
            }
            self.children(rootfs, &target, below)?;
            if !below.as_os_str().is_empty() {
                let meta = fs::symlink_metadata(rootfs).map_err(io_error("stat", *rootfs))?;
                self.directory_metadata(&target, &meta)?;
            }
        }
        Ok(())
    }

    /// Marks the record incomplete before the first change to a visible destination.
    fn before_change(&mut self) -> Result<()> {
        if self.in_place && !self.marked {
            self.marked = true;
            if let Some(path) = &self.record_path {
                let marker = dirty_marker(path);
                if let Some(parent) = marker.parent() {
                    fs::create_dir_all(parent).map_err(io_error("create", parent))?;
                }
                File::create(&marker)
                    .and_then(|file| file.sync_all())
                    .map_err(io_error("write", &marker))?;
            }
        }
        Ok(())
    }

    fn children(&mut self, source: &Path, target: &Path, relative: &Path) -> Result<()> {
        if self.in_place {
            self.remove_leftovers(target)?;
        }
        let mut names: Vec<_> = fs::read_dir(source)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(io_error("read", source))?;
        names.sort();
        // The stats of a directory's entries, on both sides, are most of a warm export's
        // time (the result's through an overlay mount): taken in parallel, the walk itself
        // stays in order.
        let stats: Vec<(io::Result<fs::Metadata>, Option<fs::Metadata>)> = names
            .par_iter()
            .map(|name| {
                (
                    fs::symlink_metadata(source.join(name)),
                    fs::symlink_metadata(target.join(name)).ok(),
                )
            })
            .collect();
        for (name, (meta, existing)) in names.iter().zip(stats) {
            let source = source.join(name);
            let meta = meta.map_err(io_error("stat", &source))?;
            self.entry(
                &source,
                &target.join(name),
                &relative.join(name),
                meta,
                existing,
            )?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        source: &Path,
        target: &Path,
        relative: &Path,
        meta: fs::Metadata,
        existing: Option<fs::Metadata>,
    ) -> Result<()> {
        if meta.is_dir() {
            self.directory(target, relative, &meta)?;
            self.children(source, target, relative)?;
            return self.directory_metadata(target, &meta);
        }
        let key = relative.to_string_lossy().into_owned();
        let file_type = meta.file_type();
        let state = match &existing {
            Some(current) if file_type.is_file() && current.is_file() => {
                self.compare_files(source, &meta, target, current, &key)?
            }
            Some(current) if file_type.is_symlink() && current.file_type().is_symlink() => {
                let same_target = fs::read_link(source)
                    .map_err(io_error("read symlink", source))?
                    == fs::read_link(target).map_err(io_error("read symlink", target))?;
                match (same_target, self.same_metadata(&meta, current)) {
                    (true, true) => State::UpToDate,
                    (true, false) => State::SameContent,
                    (false, _) => State::Different,
                }
            }
            _ => State::Different,
        };
        let after = match existing {
            Some(current) if state == State::UpToDate => current,
            Some(_) if state == State::SameContent => {
                // Same bytes: only the metadata is brought up to date, the inode stays.
                self.before_change()?;
                self.chown(target)?;
                if !file_type.is_symlink() {
                    fs::set_permissions(target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                        .map_err(io_error("set permissions of", target))?;
                }
                self.set_times(target, &meta)?;
                fs::symlink_metadata(target).map_err(io_error("stat", target))?
            }
            _ => {
                self.before_change()?;
                self.write(source, &meta, target, existing.as_ref())?;
                fs::symlink_metadata(target).map_err(io_error("stat", target))?
            }
        };
        self.written.insert(
            key,
            Written {
                source: Identity::of_source(&meta),
                dest: Identity::of(&after),
                directory: false,
            },
        );
        Ok(())
    }

    /// How the destination's regular file compares with the result's.
    fn compare_files(
        &mut self,
        source: &Path,
        meta: &fs::Metadata,
        target: &Path,
        current: &fs::Metadata,
        key: &str,
    ) -> Result<State> {
        if current.size() != meta.size() {
            return Ok(State::Different);
        }
        if meta.nlink() > 1
            && let Some(first) = self.links.get(&(meta.dev(), meta.ino()))
        {
            let first = fs::symlink_metadata(first).map_err(io_error("stat", first.clone()))?;
            return Ok(if first.ino() == current.ino() {
                State::UpToDate
            } else {
                State::Different
            });
        }
        if meta.nlink() > 1 {
            self.links
                .insert((meta.dev(), meta.ino()), target.to_owned());
        }
        let same_metadata = self.same_metadata(meta, current);
        let trusted = same_metadata
            && self.previous.as_ref().is_some_and(|previous| {
                previous.complete
                    && previous.paths.get(key).is_some_and(|written| {
                        written.source == Identity::of_source(meta)
                            && written.dest == Identity::of(current)
                    })
            });
        Ok(if trusted {
            State::UpToDate
        } else if !same_content(source, target)? {
            State::Different
        } else if same_metadata {
            State::UpToDate
        } else {
            State::SameContent
        })
    }

    /// Whether mode, owner and mtime already are what the export gives.
    fn same_metadata(&self, meta: &fs::Metadata, current: &fs::Metadata) -> bool {
        let permissions_match =
            meta.file_type().is_symlink() || meta.mode() & 0o7777 == current.mode() & 0o7777;
        permissions_match
            && current.uid() == self.owner.0.as_raw()
            && current.gid() == self.owner.1.as_raw()
            && (current.mtime(), current.mtime_nsec()) == self.mtime(meta)
    }

    fn mtime(&self, meta: &fs::Metadata) -> (i64, i64) {
        match self.epoch {
            Some(epoch) => (i64::try_from(epoch).unwrap_or(i64::MAX), 0),
            None => (meta.mtime(), meta.mtime_nsec()),
        }
    }

    /// Makes `target` a real directory (replacing whatever else is there).
    fn directory(&mut self, target: &Path, relative: &Path, meta: &fs::Metadata) -> Result<()> {
        let existing = fs::symlink_metadata(target).ok();
        if !existing.as_ref().is_some_and(fs::Metadata::is_dir) {
            self.before_change()?;
            if existing.is_some() {
                fs::remove_file(target).map_err(io_error("replace", target))?;
            }
            fs::create_dir(target).map_err(io_error("create", target))?;
        }
        self.written.insert(
            relative.to_string_lossy().into_owned(),
            Written {
                source: Identity::of(meta),
                dest: Identity::of(meta),
                directory: true,
            },
        );
        Ok(())
    }

    /// Gives a directory its mode, owner and mtime once its children are in place.
    fn directory_metadata(&mut self, target: &Path, meta: &fs::Metadata) -> Result<()> {
        let current = fs::symlink_metadata(target).map_err(io_error("stat", target))?;
        if current.mode() & 0o7777 != meta.mode() & 0o7777 {
            self.before_change()?;
            fs::set_permissions(target, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_error("set permissions of", target))?;
        }
        if (current.uid(), current.gid()) != (self.owner.0.as_raw(), self.owner.1.as_raw()) {
            self.before_change()?;
            self.chown(target)?;
        }
        if (current.mtime(), current.mtime_nsec()) != self.mtime(meta) {
            self.before_change()?;
            self.set_times(target, meta)?;
        }
        Ok(())
    }

    /// Writes the result's non-directory `source` at `target`: under a temp name renamed over
    /// it when the destination is visible, directly into a fresh tree otherwise.
    fn write(
        &mut self,
        source: &Path,
        meta: &fs::Metadata,
        target: &Path,
        existing: Option<&fs::Metadata>,
    ) -> Result<()> {
        if existing.is_some_and(fs::Metadata::is_dir) {
            fs::remove_dir_all(target).map_err(io_error("replace", target))?;
        }
        let staging = if self.in_place && existing.is_some_and(|m| !m.is_dir()) {
            temp_name(target)
        } else {
            target.to_owned()
        };
        let linked = meta.nlink() > 1
            && match self.links.get(&(meta.dev(), meta.ino())) {
                Some(first) if first != target => {
                    fs::hard_link(first, &staging).map_err(io_error("link", &staging))?;
                    true
                }
                Some(_) => false,
                None => {
                    self.links
                        .insert((meta.dev(), meta.ino()), target.to_owned());
                    false
                }
            };
        if !linked {
            let made = self.make(source, meta, &staging);
            if made.is_err() && staging != target {
                let _ = fs::remove_file(&staging);
            }
            made?;
        }
        if staging != target {
            fs::rename(&staging, target).map_err(io_error("move into place", target))?;
        }
        Ok(())
    }

    /// Creates `path` as a copy of the non-directory `source`, with the export's metadata.
    fn make(&self, source: &Path, meta: &fs::Metadata, path: &Path) -> Result<()> {
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            let link = fs::read_link(source).map_err(io_error("read symlink", source))?;
            std::os::unix::fs::symlink(link, path).map_err(io_error("create symlink", path))?;
        } else if file_type.is_file() {
            let mut input = File::open(source).map_err(io_error("open", source))?;
            let mut output = File::create_new(path).map_err(io_error("create", path))?;
            io::copy(&mut input, &mut output).map_err(io_error("copy", path))?;
        } else if file_type.is_fifo() || file_type.is_char_device() || file_type.is_block_device() {
            crate::snapshot::copy_tree(source, path)?;
        } else {
            // Sockets belong to the process that made them.
            return Ok(());
        }
        self.chown(path)?;
        if !file_type.is_symlink() {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_error("set permissions of", path))?;
        }
        self.set_times(path, meta)
    }

    /// Gives `path` to the exporting user.
    // Compat: buildx receives a local export on the client and writes it as the user running
    // it, so `COPY --chown=10:20` or `RUN chown` show up as that user in the directory (the
    // image layers keep the real owners).
    fn chown(&self, path: &Path) -> Result<()> {
        rustix::fs::chownat(
            CWD,
            path,
            Some(self.owner.0),
            Some(self.owner.1),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| Error::Io {
            action: "set the owner of",
            path: path.to_owned(),
            source: errno.into(),
        })
    }

    fn set_times(&self, path: &Path, meta: &fs::Metadata) -> Result<()> {
        let (seconds, nanos) = self.mtime(meta);
        let time = Timespec {
            tv_sec: seconds,
            tv_nsec: nanos as _,
        };
        let times = Timestamps {
            last_access: time,
            last_modification: time,
        };
        rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(|errno| {
            Error::Io {
                action: "set the mtime of",
                path: path.to_owned(),
                source: errno.into(),
            }
        })
    }

    /// Removes temp files an export killed while writing left in `dir`.
    fn remove_leftovers(&mut self, dir: &Path) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if is_temp_name(&name.to_string_lossy()) && entry.file_type().is_ok_and(|t| !t.is_dir())
            {
                self.before_change()?;
                let path = entry.path();
                fs::remove_file(&path).map_err(io_error("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Removes what the previous export wrote that this one did not: files and symlinks
    /// (never following them), then directories left empty, deepest first.
    fn remove_stale(&mut self) -> Result<()> {
        let Some(previous) = &self.previous else {
            return Ok(());
        };
        let stale: Vec<(String, bool)> = previous
            .paths
            .iter()
            .filter(|(path, _)| !self.written.contains_key(*path))
            .map(|(path, written)| (path.clone(), written.directory))
            .collect();
        let mut directories = BTreeSet::new();
        for (path, directory) in stale {
            let target = self.dest.join(&path);
            let Ok(current) = fs::symlink_metadata(&target) else {
                continue;
            };
            if directory || current.is_dir() {
                directories.insert(path);
                continue;
            }
            self.before_change()?;
            fs::remove_file(&target).map_err(io_error("remove", &target))?;
        }
        for path in directories.iter().rev() {
            let target = self.dest.join(path);
            if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                self.before_change()?;
                // A directory still holding files bake did not write stays.
                let _ = fs::remove_dir(&target);
            }
        }
        Ok(())
    }
}

/// Whether `name` is one [`temp_name`] makes.
fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let mut parts = rest.rsplitn(3, '-');
    let (Some(unique), Some(pid), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    prefix.ends_with(".bake")
        && unique.len() == 32
        && unique.bytes().all(|b| b.is_ascii_hexdigit())
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
}

/// A sibling temp name for `target`, unique to this process.
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(
        ".{name}.bake-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Whether two regular files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let mut left = File::open(a).map_err(io_error("open", a))?;
    let mut right = File::open(b).map_err(io_error("open", b))?;
    let mut one = vec![0u8; 64 * 1024];
    let mut two = vec![0u8; 64 * 1024];
    loop {
        let count = read_full(&mut left, &mut one).map_err(io_error("read", a))?;
        let other = read_full(&mut right, &mut two).map_err(io_error("read", b))?;
        if count != other || one[..count] != two[..other] {
            return Ok(false);
        }
        if count == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::output::PlatformOutput;

    struct Fixture {
        _dir: tempfile::TempDir,
        rootfs: PathBuf,
        dest: PathBuf,
        state: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).expect("rootfs");
        fs::write(rootfs.join("etc/a"), "one\n").expect("a");
        fs::write(rootfs.join("etc/b"), "two\n").expect("b");
        Fixture {
            rootfs,
            dest: dir.path().join("out"),
            state: dir.path().join("state"),
            _dir: dir,
        }
    }

    fn run(fixture: &Fixture) {
        let entry = ExportEntry {
            kind: "local".to_owned(),
            destination: fixture.dest.display().to_string(),
            attrs: BTreeMap::new(),
        };
        let output = BuildOutput {
            lazy: None,
            platforms: vec![PlatformOutput {
                platform: crate::platform::Platform::host(),
                rootfs: fixture.rootfs.clone(),
                layers: Vec::new(),
                image: crate::oci::Image::default(),
                inline_cache: None,
            }],
        };
        let context = ExportContext {
            source_date_epoch: None,
            now: 0,
            state_dir: Some(fixture.state.clone()),
        };
        export(&entry, &output, &context).expect("export");
    }

    fn inode(path: &Path) -> u64 {
        fs::symlink_metadata(path).expect("stat").ino()
    }

    /// Rewrites `path` with `text` (same length) and puts its mtime back.
    fn edit_in_place(path: &Path, text: &str) {
        let mtime = fs::metadata(path).expect("stat").modified().expect("mtime");
        fs::write(path, text).expect("write");
        File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(mtime)
            .expect("mtime");
    }

    #[test]
    fn unchanged_files_keep_their_inode_and_removed_ones_go() {
        let fixture = fixture();
        run(&fixture);
        fs::write(fixture.rootfs.join("etc/b"), "changed\n").expect("b");
        fs::remove_file(fixture.rootfs.join("etc/a")).expect("a");
        fs::write(fixture.rootfs.join("etc/c"), "new\n").expect("c");
        run(&fixture);
        assert!(!fixture.dest.join("etc/a").exists());
        assert_eq!(
            fs::read_to_string(fixture.dest.join("etc/b")).expect("b"),
            "changed\n"
        );
        assert_eq!(
            fs::read_to_string(fixture.dest.join("etc/c")).expect("c"),
            "new\n"
        );
        fs::write(fixture.rootfs.join("etc/a"), "one\n").expect("a");
        run(&fixture);
        let b = inode(&fixture.dest.join("etc/b"));
        run(&fixture);
        assert_eq!(inode(&fixture.dest.join("etc/b")), b, "nothing changed");
        assert_eq!(
            fs::read_to_string(fixture.dest.join("etc/a")).expect("a"),
            "one\n"
        );
    }

    #[test]
    fn a_record_left_incomplete_is_not_trusted() {
        let fixture = fixture();
        run(&fixture);
        // What an export killed half way could leave: a destination file whose stat the
        // record matches but whose bytes are not the result's.
        let exported = fixture.dest.join("etc/a");
        edit_in_place(&exported, "ONE\n");
        let path = record_path(&fixture.state, &fixture.dest);
        let mut record = Record::load(&path).expect("record");
        let current = fs::symlink_metadata(&exported).expect("stat");
        if let Some(written) = record.paths.get_mut("etc/a") {
            written.dest = Identity::of(&current);
        }
        record.save(&path).expect("save");
        // The marker an interrupted export leaves says the record is not to be trusted.
        fs::write(dirty_marker(&path), "").expect("marker");
        run(&fixture);
        assert!(!dirty_marker(&path).exists());
        assert_eq!(fs::read_to_string(&exported).expect("a"), "one\n");
        assert!(Record::load(&path).expect("record").complete);
    }

    #[test]
    fn symlinks_in_the_destination_are_replaced_not_followed() {
        let fixture = fixture();
        run(&fixture);
        let outside = fixture.dest.parent().expect("parent").join("outside");
        fs::create_dir(&outside).expect("outside");
        fs::remove_dir_all(fixture.dest.join("etc")).expect("etc");
        std::os::unix::fs::symlink(&outside, fixture.dest.join("etc")).expect("symlink");
        run(&fixture);
        assert!(
            fs::symlink_metadata(fixture.dest.join("etc"))
                .expect("etc")
                .is_dir()
        );
        assert_eq!(fs::read_dir(&outside).expect("list").count(), 0);
    }

    #[test]
    fn temp_names_are_recognised() {
        let name = temp_name(Path::new("/x/some-file.txt"));
        let name = name
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(is_temp_name(&name), "{name}");
        assert!(!is_temp_name(".some-file.txt"));
        assert!(!is_temp_name("a.bake-1-2"));
    }
}
