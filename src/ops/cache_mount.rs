//! Cache mount directories (`RUN --mount=type=cache`): where each id lives under the state
//! root's `cache-mounts`, the locks `sharing=locked|private` take, and the two ways a mount's
//! contents travel with an exported build cache: [`archive`] writes a directory as a layer tar
//! for `cache-to`, and [`Restore`] fills an absent or empty directory from a `cache-from`
//! cache just before the first step that mounts it runs. Part of `ops`.
//!
//! A directory with content is never replaced: what this state root made wins over what a
//! cache carries.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::content::Store;
use crate::graph::CacheSharing;
use crate::snapshot::Blob;

/// An error from the place a mount's contents come from.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a cache mount directory could not be prepared or archived.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory or lock file could not be made, locked or read.
    #[error("failed to prepare cache mount directory `{path}`")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The directory could not be written as a tar.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// The base a cache mount starts from (`from=`, `source=`) is not a directory.
    #[error("the base of the cache mount, `{path}` in its `from`, is not a directory")]
    CacheMountBase {
        /// The `source` path as the step gives it.
        path: String,
    },
}

/// Result alias for cache mounts.
pub type Result<T> = std::result::Result<T, Error>;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the exported contents of cache mounts come from: the imported `cache-from` caches.
pub trait Seeds: Send + Sync {
    /// The layer blob holding the contents cache mount `id` was exported with, fetched into
    /// `store`; `None` when no imported cache carries the mount.
    ///
    /// # Errors
    ///
    /// When the blob cannot be fetched.
    fn seed(&self, id: &str, store: &Store) -> std::result::Result<Option<Blob>, BoxError>;
}

/// Fills empty cache mount directories from [`Seeds`], each id at most once per build.
pub struct Restore {
    seeds: Arc<dyn Seeds>,
    /// The state root, whose content store receives the fetched blobs.
    state: PathBuf,
    /// Ids already looked at. Held while a directory is filled, so two steps that mount the
    /// same id at once never both fill it, and a mount a step has since emptied is not
    /// filled again under it.
    tried: Mutex<BTreeSet<String>>,
}

impl Restore {
    /// Restores from `seeds`, fetching blobs into the content store of the state root `state`.
    pub fn new(seeds: Arc<dyn Seeds>, state: &Path) -> Self {
        Self {
            seeds,
            state: state.to_owned(),
            tried: Mutex::new(BTreeSet::new()),
        }
    }

    /// Fills `dir` with the contents of mount `id` when `dir` is absent or empty and an
    /// imported cache carries them; returns the size of the blob it unpacked.
    fn fill(&self, id: &str, dir: &Path, mode: u32) -> std::result::Result<Option<u64>, BoxError> {
        let mut tried = self.tried.lock().unwrap_or_else(PoisonError::into_inner);
        if !tried.insert(id.to_owned()) || has_content(dir) {
            return Ok(None);
        }
        let store = Store::open(&self.state)?;
        let Some(blob) = self.seeds.seed(id, &store)? else {
            return Ok(None);
        };
        let parent = dir.parent().unwrap_or(Path::new("/"));
        remove_abandoned(parent);
        // Unpacked beside the directory and renamed over it (an empty directory may be
        // replaced so): a restore killed halfway leaves the mount empty, not half filled.
        // The name holds this process's id, so a later build can tell an abandoned one.
        let temp = tempfile::Builder::new()
            .prefix(&format!("{RESTORE_PREFIX}{}-", std::process::id()))
            .tempdir_in(parent)?;
        crate::snapshot::apply_blob(&store, &blob, temp.path())?;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode))?;
        fs::rename(temp.path(), dir)?;
        Ok(Some(blob.size))
    }
}

/// The start of the temp directories restores unpack into, before the process id.
const RESTORE_PREFIX: &str = ".restore-";

/// Removes the temp directories of restores whose process is gone (killed mid-restore);
/// advisory, as a leftover only costs disk space.
fn remove_abandoned(cache_root: &Path) {
    let Ok(entries) = fs::read_dir(cache_root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RESTORE_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `dir` exists and holds at least one entry.
fn has_content(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The directory name of mount `id` under the cache root: ids are user text (often a path),
/// hashed into a safe name.
fn name(id: &str) -> String {
    crate::digest::Digest::of(id.as_bytes()).hex()
}

/// Writes the contents of cache mount `id` under `cache_root` to `out` as an uncompressed
/// layer tar, holding the mount's lock meanwhile, and returns `out`; `None` when the mount
/// is absent or empty. Only the shared directory is read, never the extra copies
/// `sharing=private` makes when it is busy.
///
/// # Errors
///
/// When the directory cannot be locked or read.
pub fn archive<W: Write>(cache_root: &Path, id: &str, out: W) -> Result<Option<W>> {
    let dir = cache_root.join(name(id));
    if !has_content(&dir) {
        return Ok(None);
    }
    // A `locked` or `private` user elsewhere (another bake on this root) writes under this
    // lock; `shared` users take none, but no step of this build runs any more.
    let lock_path = dir.with_extension("lock");
    let lock = fs::File::create(&lock_path).map_err(io_error(&lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|errno| io_error(&lock_path)(errno.into()))?;
    let out = crate::snapshot::diff(None, &dir, out, &crate::snapshot::DiffOptions::default())?;
    drop(lock);
    Ok(Some(out))
}

/// How a step's cache mount directory was prepared.
pub(crate) struct Prepared {
    /// The directory.
    pub(crate) dir: PathBuf,
    /// A line for the step's log when it was filled from an imported cache, or could not be.
    pub(crate) note: Option<String>,
}

/// Returns the directory of a cache mount, creating it on first use. `locked` waits for other
/// users; `private` takes a separate directory when the shared one is busy. An absent or
/// empty directory is filled from `restore` first.
///
/// A mount with a base (`from=`, `source=`) is a cache of its own for that base, created as
/// a copy of it.
// Compat: BuildKit keys a cache mount with an input by the id and the input ref, and starts
// it from that ref; the base's tree path stands for the ref here (a rebuilt base is a new
// snapshot, so a new cache, as a new ref is in BuildKit).
pub(crate) fn prepare(
    cache_root: &Path,
    id: &str,
    sharing: CacheSharing,
    mode: Option<u32>,
    locks: &mut Vec<fs::File>,
    restore: Option<&Restore>,
    base: Option<(&Path, &str)>,
) -> Result<Prepared> {
    let name = match base {
        Some((base, _)) => {
            crate::digest::Digest::of_parts([id.as_bytes(), base.as_os_str().as_encoded_bytes()])
                .hex()
        }
        None => name(id),
    };
    let restore = restore.filter(|_| base.is_none());
    let mode = mode.unwrap_or(0o755);
    fs::create_dir_all(cache_root).map_err(io_error(cache_root))?;
    let mut candidate = 0;
    loop {
        let dir = match candidate {
            0 => cache_root.join(&name),
            n => cache_root.join(format!("{name}-{n}")),
        };
        let lock_path = dir.with_extension("lock");
        if sharing != CacheSharing::Shared {
            let lock = fs::File::create(&lock_path).map_err(io_error(&lock_path))?;
            let operation = match sharing {
                CacheSharing::Locked => rustix::fs::FlockOperation::LockExclusive,
                _ => rustix::fs::FlockOperation::NonBlockingLockExclusive,
            };
            if rustix::fs::flock(&lock, operation).is_err() {
                candidate += 1;
                continue;
            }
            locks.push(lock);
        }
        let note = restore.and_then(|restore| match restore.fill(id, &dir, mode) {
            Ok(Some(size)) => Some(format!(
                "cache mount `{id}` restored from the imported build cache ({size} bytes)"
            )),
            Ok(None) => None,
            // The step still runs, on an empty mount, as it would without the cache.
            Err(error) => Some(format!(
                "cache mount `{id}` was not restored from the imported build cache: {error}"
            )),
        });
        if dir.exists() {
            // Advisory: a mount whose use is not recorded only expires sooner.
            let _ = fs::File::open(&dir).and_then(|d| d.set_modified(SystemTime::now()));
        } else {
            match base {
                Some((base, source)) => seed(base, source, &dir)?,
                None => {
                    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                    fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                        .map_err(io_error(&dir))?;
                }
            }
        }
        return Ok(Prepared { dir, note });
    }
}

/// The directory of the state root that holds cache mounts.
pub const CACHE_MOUNTS_DIR: &str = "cache-mounts";

/// What [`collect`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Cache mount directories removed.
    pub mounts: usize,
    /// The bytes they held.
    pub bytes: u64,
}

/// Removes the cache mounts under `cache_root` that no step used for `unused_for`, least
/// recently used first, while all of them together hold more than `keep_bytes`. The caller
/// holds the state root's lock exclusive, so no step is using any of them.
// Compat: BuildKit's default first GC policy (`exec.cachemount` records unused for 48 hours,
// while such records exceed 512 MB).
pub fn collect(cache_root: &Path, unused_for: Duration, keep_bytes: u64) -> Collected {
    let Ok(entries) = fs::read_dir(cache_root) else {
        return Collected::default();
    };
    let mut mounts: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|entry| {
            let used = entry.metadata().and_then(|m| m.modified()).ok()?;
            Some((used, tree_bytes(&entry.path()), entry.path()))
        })
        .collect();
    mounts.sort();
    let mut total: u64 = mounts.iter().map(|(_, bytes, _)| bytes).sum();
    let now = SystemTime::now();
    let mut collected = Collected::default();
    for (used, bytes, path) in mounts {
        let old = now.duration_since(used).is_ok_and(|age| age > unused_for);
        if total <= keep_bytes || !old {
            break;
        }
        if fs::remove_dir_all(&path).is_ok() {
            let _ = fs::remove_file(path.with_extension("lock"));
            total = total.saturating_sub(bytes);
            collected.mounts += 1;
            collected.bytes += bytes;
        }
    }
    collected
}

/// The bytes of the files under `dir` (not following symlinks).
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Creates `dir` as a copy of the directory `base` (the step's `source`), whole or not at
/// all.
fn seed(base: &Path, source: &str, dir: &Path) -> Result<()> {
    if !base.is_dir() {
        let source = if source.is_empty() { "/" } else { source };
        return Err(Error::CacheMountBase {
            path: source.to_owned(),
        });
    }
    let temp = dir.with_extension(format!("seed-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temp);
    crate::snapshot::copy_tree(base, &temp)?;
    fs::rename(&temp, dir).map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves one blob for the id `x`.
    struct One(Blob);

    impl Seeds for One {
        fn seed(&self, id: &str, _: &Store) -> std::result::Result<Option<Blob>, BoxError> {
            Ok((id == "x").then(|| self.0.clone()))
        }
    }

    /// A cache root holding mount `x` with one file, its archive stored as a blob.
    fn exported(dir: &Path) -> Blob {
        let source = dir.join("source");
        let mut locks = Vec::new();
        let prepared = prepare(
            &source,
            "x",
            CacheSharing::Locked,
            None,
            &mut locks,
            None,
            None,
        )
        .unwrap();
        drop(locks);
        fs::write(prepared.dir.join("file"), "kept").unwrap();
        assert!(archive(&source, "missing", Vec::new()).unwrap().is_none());
        let tar = archive(&source, "x", Vec::new()).unwrap().unwrap();
        let store = Store::open(dir.join("state")).unwrap();
        let digest = store.write(&tar).unwrap();
        Blob {
            digest,
            media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
            size: tar.len() as u64,
            diff_id: digest,
        }
    }

    #[test]
    fn unused_mounts_go_oldest_first_while_over_the_budget() {
        let root = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let mount = |name: &str, bytes: usize, age: Duration| {
            let dir = root.path().join(name);
            fs::create_dir_all(dir.join("sub")).unwrap();
            fs::write(dir.join("sub/f"), vec![0u8; bytes]).unwrap();
            fs::File::open(&dir)
                .unwrap()
                .set_modified(SystemTime::now() - age)
                .unwrap();
            dir
        };
        let oldest = mount("a", 100, 4 * day);
        let old = mount("b", 100, 3 * day);
        let fresh = mount("c", 100, Duration::ZERO);
        fs::write(oldest.with_extension("lock"), b"").unwrap();
        // 300 bytes, 150 allowed: the two mounts over age go, oldest first, the fresh one stays.
        let collected = collect(root.path(), 2 * day, 150);
        assert_eq!(collected.mounts, 2, "{collected:?}");
        assert!(!oldest.exists() && !oldest.with_extension("lock").exists());
        assert!(!old.exists() && fresh.exists());
        // Under the budget nothing goes, however old.
        let kept = mount("d", 10, 9 * day);
        assert_eq!(collect(root.path(), 2 * day, 1000), Collected::default());
        assert!(kept.exists());
    }

    #[test]
    fn an_empty_mount_is_restored_once_and_a_full_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let blob = exported(dir.path());
        let restore = Restore::new(Arc::new(One(blob)), &dir.path().join("state"));
        let root = dir.path().join("fresh");
        // What a restore killed halfway left, and what a running one (this process) holds.
        let abandoned = root.join(".restore-4000000000-abc");
        let running = root.join(format!(".restore-{}-def", std::process::id()));
        fs::create_dir_all(abandoned.join("half")).unwrap();
        fs::create_dir_all(&running).unwrap();
        let mut locks = Vec::new();
        let first = prepare(
            &root,
            "x",
            CacheSharing::Shared,
            None,
            &mut locks,
            Some(&restore),
            None,
        )
        .unwrap();
        assert!(first.note.unwrap().contains("restored"));
        assert_eq!(fs::read_to_string(first.dir.join("file")).unwrap(), "kept");
        let mode = fs::metadata(&first.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        // Emptied by a step: not filled again in the same build.
        fs::remove_file(first.dir.join("file")).unwrap();
        let again = prepare(
            &root,
            "x",
            CacheSharing::Shared,
            None,
            &mut locks,
            Some(&restore),
            None,
        )
        .unwrap();
        assert!(again.note.is_none());
        assert!(!first.dir.join("file").exists());

        // A mount with content of its own keeps it.
        let other = dir.path().join("other");
        let mut prepared = prepare(
            &other,
            "x",
            CacheSharing::Shared,
            None,
            &mut locks,
            None,
            None,
        )
        .unwrap();
        fs::write(prepared.dir.join("mine"), "local").unwrap();
        let restore = Restore::new(restore.seeds.clone(), &dir.path().join("state"));
        prepared = prepare(
            &other,
            "x",
            CacheSharing::Shared,
            None,
            &mut locks,
            Some(&restore),
            None,
        )
        .unwrap();
        assert!(prepared.note.is_none());
        assert!(!prepared.dir.join("file").exists());
        // The abandoned temp directory is gone, the running one's stays, and no other
        // is left beside the mounts.
        let names: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".restore-"))
            .collect();
        assert_eq!(names, [running.file_name().unwrap().to_str().unwrap()]);
    }
}
