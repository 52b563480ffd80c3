//! The stat cache: remembers each context file's content digest under its `(size, mtime,
//! ctime, inode)` so an unchanged file is never read twice. Part of `source`.
//!
//! The same format records what a context snapshot holds (its manifest, a side file next to
//! the snapshot): each file's digest under the stat its source had when it was copied, which
//! lets the next snapshot of the context reuse unchanged files and lets a COPY's checksum of
//! the snapshot skip reading them.
//!
//! It is advisory: a missing or unreadable cache file means an empty cache, never an error.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result, io_error};
use crate::digest::Digest;

/// How close to the start of a checksum pass a file's change time may be before its cached
/// digest is distrusted. Filesystem clocks are coarse (jiffies on ext4, whole seconds on some
/// filesystems), so a write landing right after we read a file can leave every stat field as
/// it was; git calls this the racy-clean problem and solves it the same way.
const RACY_MARGIN_NS: i128 = 1_000_000_000;

/// The cache file format version; another version is ignored and rewritten.
const VERSION: u32 = 2;

/// What a file looked like when its content was hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileStat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    device: u64,
}

impl FileStat {
    /// Takes the fields that change whenever a file's content can have changed.
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The same fields from a raw `stat`.
    pub(crate) fn of_stat(stat: &rustix::fs::Stat) -> Self {
        Self {
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_ns: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
            ctime_ns: i128::from(stat.st_ctime) * 1_000_000_000 + i128::from(stat.st_ctime_nsec),
            inode: stat.st_ino,
            device: stat.st_dev,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    stat: FileStat,
    digest: Digest,
    /// Recorded while the file was changing (see [`RACY_MARGIN_NS`]): never trusted.
    racy: bool,
    /// The digest of the whole entry (content, mode, owner, size, xattrs) as a checksum
    /// hashes it: any change to those changes the ctime, so the stat validates it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry: Option<Digest>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// The last snapshot made from this context, whose manifest lists its files.
    #[serde(default)]
    snapshot: Option<PathBuf>,
    entries: HashMap<String, Cached>,
}

/// Content digests of one context's files, keyed by relative path and validated by stat.
#[derive(Debug)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: HashMap<String, Cached>,
    snapshot: Option<PathBuf>,
    dirty: bool,
    reads: u64,
    pass_started_ns: i128,
    /// The files are an immutable snapshot's: a path alone names its content.
    trusted: bool,
}

impl StatCache {
    /// Returns an empty cache that is never saved.
    pub fn in_memory() -> Self {
        Self {
            file: None,
            entries: HashMap::new(),
            snapshot: None,
            dirty: false,
            reads: 0,
            pass_started_ns: now_ns(),
            trusted: false,
        }
    }

    /// Loads the cache for the context directory `context` from `cache_dir` (one file per
    /// context, named by a digest of its path; pass the canonical
    /// [`LocalSource::root`](crate::source::local::LocalSource::root) so every spelling of one
    /// context shares a file). A missing or damaged file gives an empty cache.
    pub fn load(cache_dir: &Path, context: &Path) -> Self {
        let name = Digest::of(context.as_os_str().as_encoded_bytes()).hex();
        Self::load_file(cache_dir.join(format!("statcache-{}.json", &name[..32])))
    }

    /// Loads the cache kept in `file`; a missing or damaged file gives an empty cache.
    pub(crate) fn load_file(file: PathBuf) -> Self {
        let document = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|cache| cache.version == VERSION)
            .unwrap_or_default();
        let mut cache = Self::in_memory();
        cache.file = Some(file);
        cache.entries = document.entries;
        cache.snapshot = document.snapshot;
        cache
    }

    /// Treats every recorded digest as valid whatever the file's stat: for the manifest of
    /// an immutable snapshot, whose files never change under their paths.
    pub(crate) fn trust_paths(mut self) -> Self {
        self.trusted = true;
        self
    }

    /// Writes the cache back if it changed: to a temp file in the same directory, fsynced and
    /// renamed, so a crash leaves either the old or the new cache, never half of one.
    pub fn save(&mut self) -> Result<()> {
        self.write(true)
    }

    /// Saves the cache as `file` (renamed into place; fsynced when `durable`).
    pub(crate) fn save_to(&mut self, file: PathBuf, durable: bool) -> Result<()> {
        self.file = Some(file);
        self.dirty = true;
        self.write(durable)
    }

    fn write(&mut self, durable: bool) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
        let document = CacheFile {
            version: VERSION,
            snapshot: self.snapshot.take(),
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = serde_json::to_vec(&document);
        self.entries = document.entries;
        self.snapshot = document.snapshot;
        let bytes = bytes.map_err(|source| Error::StatCache {
            path: file.clone(),
            source,
        })?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error("create", dir))?;
        temp.write_all(&bytes)
            .and_then(|()| {
                if durable {
                    temp.as_file().sync_all()
                } else {
                    Ok(())
                }
            })
            .map_err(io_error("write", temp.path()))?;
        temp.persist(file)
            .map_err(|error| io_error("rename", file.clone())(error.error))?;
        self.dirty = false;
        Ok(())
    }

    /// Returns how many files' contents were read (cache misses) since the cache was loaded.
    pub fn content_reads(&self) -> u64 {
        self.reads
    }

    /// Returns the number of cached files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns true when no file is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last snapshot recorded with [`Self::set_snapshot`].
    pub(crate) fn snapshot(&self) -> Option<&Path> {
        self.snapshot.as_deref()
    }

    /// Records the last snapshot made from this context.
    pub(crate) fn set_snapshot(&mut self, snapshot: &Path) {
        if self.snapshot.as_deref() != Some(snapshot) {
            self.snapshot = Some(snapshot.to_owned());
            self.dirty = true;
        }
    }

    /// Marks the start of a checksum pass: changes after this instant make entries racy.
    pub(crate) fn start_pass(&mut self) {
        self.pass_started_ns = now_ns();
    }

    /// Returns the cached digest of `path` when `stat` still matches and the entry is not
    /// racy, or whatever is recorded when the cache trusts paths (a snapshot's digests were
    /// taken of the bytes written into it, so racing writes to the source do not matter).
    pub(crate) fn lookup(&self, path: &str, stat: FileStat) -> Option<Digest> {
        self.entries
            .get(path)
            .filter(|cached| self.trusted || (cached.stat == stat && !cached.racy))
            .map(|cached| cached.digest)
    }

    /// Records a digest just read (counted as a content read); `changed` marks a file seen
    /// changing while it was read, whose entry must never be trusted.
    pub(crate) fn record_read(
        &mut self,
        path: &str,
        stat: FileStat,
        digest: Digest,
        changed: bool,
    ) {
        self.reads += 1;
        self.record(path, stat, digest, changed);
    }

    /// Records a digest known without reading the file (carried over from another cache).
    pub(crate) fn record(&mut self, path: &str, stat: FileStat, digest: Digest, changed: bool) {
        self.insert(path, stat, digest, None, changed);
    }

    /// Returns the cached whole-entry digest of `path` when `stat` still matches and the
    /// entry is not racy (never for a cache that trusts paths: its stats are not the files').
    pub(crate) fn lookup_entry(&self, path: &str, stat: FileStat) -> Option<Digest> {
        self.entries
            .get(path)
            .filter(|cached| !self.trusted && cached.stat == stat && !cached.racy)
            .and_then(|cached| cached.entry)
    }

    /// Records a file's content digest (`read` counts it as a content read) and its
    /// whole-entry digest.
    pub(crate) fn record_entry(
        &mut self,
        path: &str,
        stat: FileStat,
        digest: Digest,
        entry: Digest,
        read: bool,
    ) {
        if read {
            self.reads += 1;
        }
        self.insert(path, stat, digest, Some(entry), false);
    }

    fn insert(
        &mut self,
        path: &str,
        stat: FileStat,
        digest: Digest,
        entry: Option<Digest>,
        changed: bool,
    ) {
        let racy =
            changed || stat.ctime_ns.max(stat.mtime_ns) >= self.pass_started_ns - RACY_MARGIN_NS;
        self.entries.insert(
            path.to_owned(),
            Cached {
                stat,
                digest,
                racy,
                entry,
            },
        );
        self.dirty = true;
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i128)
}
