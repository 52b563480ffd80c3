//! The content store: blobs by sha256 digest under `<root>/content/blobs/sha256/<hex>`, and the
//! metadata database (`<root>/metadata.db`) that names them, leases them and collects garbage.
//!
//! Layer 2 (storage). May import `digest` and `oci`; never `snapshot`, `solver` or
//! anything above. Several `bake` processes may share one root: blobs are written to a temp
//! file in the same directory, fsynced and renamed, so a crash never leaves a half blob under a
//! real name, and the database is SQLite in WAL mode (see `metadata.rs`).

mod error;
mod metadata;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::FlockOperation;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

pub use self::error::{Error, Result};
pub use self::metadata::{Lease, Reference};

/// The prefix of the references in which the exporter remembers which layer blob a snapshot
/// diff became (`{"upper": path, "lower": path, ...}` records); garbage collection drops
/// those whose snapshots are gone.
pub const LAYER_MEMO_PREFIX: &str = "layer-memo/";

/// Somewhere a blob missing from the store can be fetched from when it is needed (an
/// imported build cache), so a lazy layer is downloaded only when something reads it.
pub trait Fetch: Send + Sync {
    /// Fetches the blob `digest` into `store`; `Ok(false)` when this source does not have it.
    ///
    /// # Errors
    ///
    /// When the source has the blob but it cannot be fetched or stored.
    fn fetch(
        &self,
        digest: &Digest,
        store: &Store,
    ) -> std::result::Result<bool, Box<dyn std::error::Error + Send + Sync>>;

    /// The registry repository (`host/path`) this source serves `digest` from, when it is a
    /// registry: a push to the same registry can mount the blob from there instead of
    /// downloading and uploading it.
    fn origin(&self, digest: &Digest) -> Option<String> {
        let _ = digest;
        None
    }
}

/// A blob store and its metadata database rooted at one directory.
///
/// Each `Store` owns its own SQLite connection, so every thread or process opens its own.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    blobs: PathBuf,
    lock: File,
    db: metadata::Db,
}

/// Makes temp names unique within this process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("content").join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_error("create", &blobs))?;
        let lock_path = root.join("content").join("gc.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error("open", &lock_path))?;
        let db = metadata::Db::open(&root.join("metadata.db"))?;
        Ok(Self {
            root,
            blobs,
            lock,
            db,
        })
    }

    /// Returns the root directory this store was opened at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Stores `bytes` and returns their digest. Writing a blob that exists is a cheap no-op.
    pub fn write(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if self.exists(&digest) {
            return Ok(digest);
        }
        self.write_from(bytes, Some(digest))
    }

    /// Streams `reader` into the store, hashing while writing. When `expected` is given and the
    /// bytes hash to something else, returns [`Error::DigestMismatch`] and stores nothing.
    pub fn write_from(&self, reader: impl Read, expected: Option<Digest>) -> Result<Digest> {
        // A shared lock keeps `gc` (exclusive) from deleting a blob between its rename and the
        // caller recording a reference or lease for it.
        let _guard = self.lock_shared()?;
        self.write_locked(reader, expected)
    }

    fn write_locked(&self, mut reader: impl Read, expected: Option<Digest>) -> Result<Digest> {
        if let Some(expected) = expected
            && self.exists(&expected)
        {
            // Idempotent: the bytes are already here under their real name.
            return Ok(expected);
        }
        let temp = self.temp_path();
        let result = self.write_temp(&temp, &mut reader, expected);
        if result.is_err() {
            // Best effort: nobody reads temp names, so a leftover only wastes space.
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn write_temp(
        &self,
        temp: &Path,
        reader: &mut dyn Read,
        expected: Option<Digest>,
    ) -> Result<Digest> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp)
            .map_err(io_error("create", temp))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let count = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        action: "read blob data for",
                        path: temp.to_owned(),
                        source,
                    });
                }
            };
            hasher.update(&buffer[..count]);
            file.write_all(&buffer[..count])
                .map_err(io_error("write", temp))?;
        }
        let actual = digest_from_bytes(hasher.finalize().into());
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(Error::DigestMismatch { expected, actual });
        }
        // The data must be on disk before the rename makes it visible under its real name.
        file.sync_all().map_err(io_error("fsync", temp))?;
        drop(file);
        let path = self.blob_path(&actual);
        fs::rename(temp, &path).map_err(io_error("rename", &path))?;
        // And the rename itself must survive a crash: fsync the directory entry.
        File::open(&self.blobs)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("fsync", &self.blobs))?;
        Ok(actual)
    }

    /// Returns whether the blob `digest` is stored.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Returns the size in bytes of the blob `digest`.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(metadata) => Ok(metadata.len()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(*digest)),
            Err(source) => Err(Error::Io {
                action: "stat",
                path,
                source,
            }),
        }
    }

    /// Opens the blob `digest` for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        match File::open(&path) {
            Ok(file) => Ok(file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(*digest)),
            Err(source) => Err(Error::Io {
                action: "open",
                path,
                source,
            }),
        }
    }

    /// Reads the whole blob `digest` into memory.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_error("read", &path))?;
        Ok(bytes)
    }

    /// Deletes the blob `digest`; deleting a missing blob is not an error.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                action: "delete",
                path,
                source,
            }),
        }
    }

    /// Lists every stored blob, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_error("list", &self.blobs))? {
            let entry = entry.map_err(io_error("list", &self.blobs))?;
            // Temp files start with `.` and never parse as a digest.
            if let Some(name) = entry.file_name().to_str()
                && let Ok(digest) = format!("sha256:{name}").parse::<Digest>()
            {
                digests.push(digest);
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Points the reference `name` (for example a cache key) at a `record` (any text, typically
    /// JSON) and the blobs it needs; those blobs survive [`Store::gc`] while the name exists.
    pub fn set_reference(&self, name: &str, record: &str, blobs: &[Digest]) -> Result<()> {
        self.db.set_reference(name, record, blobs)
    }

    /// Returns the reference `name`, if any.
    pub fn reference(&self, name: &str) -> Result<Option<Reference>> {
        self.db.reference(name)
    }

    /// Every reference whose name starts with `prefix`, as `(name, record)`, by name.
    pub fn references(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        self.db.references(prefix)
    }

    /// Deletes the reference `name`; its blobs become collectable unless something else holds them.
    pub fn delete_reference(&self, name: &str) -> Result<()> {
        self.db.delete_reference(name)
    }

    /// Creates a lease that protects the blobs added to it from [`Store::gc`] until it is
    /// released or `ttl_seconds` pass (a crashed process's leases expire instead of leaking).
    pub fn create_lease(&self, ttl_seconds: Option<u64>) -> Result<Lease> {
        let id = format!(
            "{}-{}-{}",
            std::process::id(),
            now_nanos(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.db
            .create_lease(&id, ttl_seconds.map(|ttl| now_seconds() + ttl as i64))?;
        Ok(Lease { id })
    }

    /// Adds `digest` to `lease`.
    pub fn lease_blob(&self, lease: &Lease, digest: &Digest) -> Result<()> {
        self.db.lease_blob(&lease.id, digest)
    }

    /// Streams `reader` into the store like [`Store::write_from`] and adds the blob to `lease`
    /// before any garbage collection can see it.
    pub fn write_leased(
        &self,
        lease: &Lease,
        reader: impl Read,
        expected: Option<Digest>,
    ) -> Result<Digest> {
        let _guard = self.lock_shared()?;
        let digest = self.write_locked(reader, expected)?;
        self.db.lease_blob(&lease.id, &digest)?;
        Ok(digest)
    }

    /// Releases `lease`; its blobs become collectable unless something else holds them.
    pub fn release_lease(&self, lease: Lease) -> Result<()> {
        self.db.release_lease(&lease.id)
    }

    /// Deletes every blob that no reference and no live lease holds, and expired leases.
    /// Returns the deleted digests.
    pub fn gc(&self) -> Result<Vec<Digest>> {
        // Exclusive: no writer is between writing a blob and recording who holds it.
        let lock_path = self.root.join("content").join("gc.lock");
        rustix::fs::flock(&self.lock, FlockOperation::LockExclusive)
            .map_err(|errno| io_error("lock", &lock_path)(errno.into()))?;
        let result = (|| {
            let live = self.db.live_blobs(now_seconds())?;
            let mut deleted = Vec::new();
            for digest in self.list()? {
                if !live.contains(&digest) {
                    self.delete(&digest)?;
                    deleted.push(digest);
                }
            }
            Ok(deleted)
        })();
        let _ = rustix::fs::flock(&self.lock, FlockOperation::Unlock);
        result
    }

    fn lock_shared(&self) -> Result<SharedLock<'_>> {
        // flock locks belong to the open file description: each `Store` opens its own, so two
        // stores (threads or processes) lock independently. Callers never nest this guard.
        rustix::fs::flock(&self.lock, FlockOperation::LockShared).map_err(|errno| Error::Io {
            action: "lock",
            path: self.root.join("content").join("gc.lock"),
            source: errno.into(),
        })?;
        Ok(SharedLock(&self.lock))
    }

    fn temp_path(&self) -> PathBuf {
        let count = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.blobs.join(format!(
            ".tmp-{}-{}-{count}",
            std::process::id(),
            now_nanos()
        ))
    }
}

/// Releases the shared flock when dropped.
struct SharedLock<'a>(&'a File);

impl Drop for SharedLock<'_> {
    fn drop(&mut self) {
        // Unlock errors leave nothing to recover: closing the store releases the lock anyway.
        let _ = rustix::fs::flock(self.0, FlockOperation::Unlock);
    }
}

fn digest_from_bytes(bytes: [u8; 32]) -> Digest {
    // `Digest` has no raw constructor and `digest.rs` is shared; round-trip through its text form.
    format!("sha256:{}", hex::encode(bytes))
        .parse()
        .expect("64 lowercase hex digits always parse as a digest")
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
