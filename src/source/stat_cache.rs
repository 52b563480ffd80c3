//! The stat cache: remembers each context file's content digest under its `(size, mtime,
//! ctime, inode)` so an unchanged file is never read twice. Part of `source`.
//!
//! It is advisory: a missing or unreadable cache file means an empty cache, never an error.

use std::collections::BTreeMap;
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
const VERSION: u32 = 1;

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    stat: FileStat,
    digest: Digest,
    /// Recorded while the file was changing (see [`RACY_MARGIN_NS`]): never trusted.
    racy: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Cached>,
}

/// Content digests of one context's files, keyed by relative path and validated by stat.
#[derive(Debug)]
pub struct StatCache {
    file: Option<PathBuf>,
    entries: BTreeMap<String, Cached>,
    dirty: bool,
    reads: u64,
    pass_started_ns: i128,
}

impl StatCache {
    /// Returns an empty cache that is never saved.
    pub fn in_memory() -> Self {
        Self {
            file: None,
            entries: BTreeMap::new(),
            dirty: false,
            reads: 0,
            pass_started_ns: now_ns(),
        }
    }

    /// Loads the cache for the context directory `context` from `cache_dir` (one file per
    /// context, named by a digest of its path; pass the canonical
    /// [`LocalSource::root`](crate::source::local::LocalSource::root) so every spelling of one
    /// context shares a file). A missing or damaged file gives an empty cache.
    pub fn load(cache_dir: &Path, context: &Path) -> Self {
        let name = Digest::of(context.as_os_str().as_encoded_bytes()).hex();
        let file = cache_dir.join(format!("statcache-{}.json", &name[..32]));
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
            .filter(|cache| cache.version == VERSION)
            .map(|cache| cache.entries)
            .unwrap_or_default();
        let mut cache = Self::in_memory();
        cache.file = Some(file);
        cache.entries = entries;
        cache
    }

    /// Writes the cache back if it changed: to a temp file in the same directory, fsynced and
    /// renamed, so a crash leaves either the old or the new cache, never half of one.
    pub fn save(&mut self) -> Result<()> {
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
            entries: std::mem::take(&mut self.entries),
        };
        let bytes = serde_json::to_vec(&document);
        self.entries = document.entries;
        let bytes = bytes.map_err(|source| Error::StatCache {
            path: file.clone(),
            source,
        })?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(io_error("create", dir))?;
        temp.write_all(&bytes)
            .and_then(|()| temp.as_file().sync_all())
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

    /// Marks the start of a checksum pass: changes after this instant make entries racy.
    pub(crate) fn start_pass(&mut self) {
        self.pass_started_ns = now_ns();
    }

    /// Returns the cached digest of `path` when `stat` still matches and the entry is not racy;
    /// otherwise calls `read` (counted as a content read) and records its result.
    pub(crate) fn digest(
        &mut self,
        path: &str,
        stat: FileStat,
        read: impl FnOnce() -> Result<Digest>,
    ) -> Result<Digest> {
        if let Some(cached) = self.entries.get(path)
            && cached.stat == stat
            && !cached.racy
        {
            return Ok(cached.digest);
        }
        self.reads += 1;
        let digest = read()?;
        let racy = stat.ctime_ns.max(stat.mtime_ns) >= self.pass_started_ns - RACY_MARGIN_NS;
        self.entries
            .insert(path.to_owned(), Cached { stat, digest, racy });
        self.dirty = true;
        Ok(digest)
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as i128)
}
