//! Garbage collection of the state root: cached step results (snapshots and the cache
//! entries naming them) are removed least recently used first until the root fits its
//! budget, snapshots nothing names are removed, and unreferenced blobs go too. Part of
//! `cache`.
//!
//! Each snapshot `<root>/snapshots/<id>` has two small side files the worker and the cache
//! keep: `<id>.size` (bytes it holds, written when the step finished) and `<id>.used` (its
//! modification time is the last time a build used the result). An overlay snapshot lists
//! the layer directories under it in `<id>/lowers`; a snapshot another kept one stands on is
//! never removed before it.
//!
//! Builds hold `<root>/gc.lock` shared for their whole run and collection takes it
//! exclusively without waiting, so a collection never removes what a running build uses; it
//! is simply skipped while another build runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::FlockOperation;

use crate::content::Store;
use crate::snapshot::usage::{side_file, snapshot_dir};

/// What may stay in the state root.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The most bytes snapshots may hold; least recently used ones go first beyond it.
    pub keep_bytes: Option<u64>,
    /// Results unused for longer than this go, whatever the size.
    pub keep_duration: Option<Duration>,
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Snapshots removed.
    pub snapshots: usize,
    /// Bytes those snapshots held.
    pub bytes: u64,
    /// Blobs removed from the content store.
    pub blobs: usize,
}

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("garbage collection: failed to {action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] crate::content::Error),
}

/// The lock a build holds shared, so that collection (exclusive) never runs under it.
pub struct BuildLock {
    _file: fs::File,
}

impl BuildLock {
    /// Takes `<root>/gc.lock` shared, waiting while a collection runs.
    pub fn shared(root: &Path) -> Result<Self, Error> {
        let file = open_lock(root)?;
        rustix::fs::flock(&file, FlockOperation::LockShared)
            .map_err(|e| io("lock", &root.join("gc.lock"))(e.into()))?;
        Ok(Self { _file: file })
    }
}

/// Runs `work` while holding `<root>/gc.lock` exclusive, so no build runs meanwhile; `None`
/// without running it while a build holds the root.
///
/// # Errors
///
/// When the lock file cannot be opened.
pub fn exclusive<T>(root: &Path, work: impl FnOnce() -> T) -> Result<Option<T>, Error> {
    let lock = open_lock(root)?;
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(None);
    }
    Ok(Some(work()))
}

fn open_lock(root: &Path) -> Result<fs::File, Error> {
    fs::create_dir_all(root).map_err(io("create", root))?;
    let path = root.join("gc.lock");
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open", &path))
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One snapshot as collection sees it.
struct Snapshot {
    bytes: u64,
    used: SystemTime,
    /// Snapshots whose directories this one's overlay stands on.
    lowers: BTreeSet<String>,
}

fn scan(snapshots: &Path) -> BTreeMap<String, Snapshot> {
    let mut found = BTreeMap::new();
    let Ok(entries) = fs::read_dir(snapshots) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Step results are named by 32 hex digits; anything else is not ours to collect.
        if name.len() != 32 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let bytes = fs::read_to_string(side_file(&path, "size"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        let used = [side_file(&path, "used"), path.clone()]
            .iter()
            .find_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let lowers = fs::read_to_string(path.join("lowers"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                Path::new(line)
                    .strip_prefix(snapshots)
                    .ok()
                    .and_then(|rest| rest.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
            })
            .filter(|id| *id != name)
            .collect();
        found.insert(
            name,
            Snapshot {
                bytes,
                used,
                lowers,
            },
        );
    }
    found
}

/// Collects garbage in the state root `root` under `policy`. Returns `None` without doing
/// anything while a build holds the root.
pub fn collect(root: &Path, policy: &Policy) -> Result<Option<Report>, Error> {
    let lock = open_lock(root)?;
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(None);
    }
    let snapshots_dir = root.join("snapshots");
    // Overlay mounts of this process (a build that just ended) must not pin directories.
    crate::snapshot::overlay::unmount_all(&snapshots_dir);
    let mut snapshots = scan(&snapshots_dir);
    let store = Store::open(root)?;

    // Which cache entries name which snapshots; a snapshot no entry names is garbage.
    let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, record) in store.references("cache/")? {
        // An entry needs every tree its results stand on, not only the top one.
        for path in crate::cache::local::record_paths(&record) {
            if let Ok(rest) = snapshot_dir(&path).strip_prefix(&snapshots_dir)
                && let Some(id) = rest.components().next()
            {
                entries
                    .entry(id.as_os_str().to_string_lossy().into_owned())
                    .or_default()
                    .push(name.clone());
            }
        }
    }

    let now = SystemTime::now();
    let mut total: u64 = snapshots.values().map(|s| s.bytes).sum();
    let mut report = Report::default();
    loop {
        // Only a snapshot no other kept snapshot stands on can go.
        let needed: BTreeSet<&String> = snapshots.values().flat_map(|s| &s.lowers).collect();
        let expired = |s: &Snapshot| {
            policy
                .keep_duration
                .is_some_and(|keep| now.duration_since(s.used).is_ok_and(|age| age > keep))
        };
        let over = policy.keep_bytes.is_some_and(|keep| total > keep);
        let victim = snapshots
            .iter()
            .filter(|(id, _)| !needed.contains(id))
            .filter(|(id, s)| !entries.contains_key(*id) || over || expired(s))
            .min_by_key(|(id, s)| (entries.contains_key(*id), s.used))
            .map(|(id, _)| id.clone());
        let Some(id) = victim else { break };
        for name in entries.remove(&id).unwrap_or_default() {
            store.delete_reference(&name)?;
        }
        let path = snapshots_dir.join(&id);
        fs::remove_dir_all(&path).map_err(io("remove", &path))?;
        for side in crate::snapshot::usage::SIDE_FILES {
            let _ = fs::remove_file(side_file(&path, side));
        }
        if let Some(gone) = snapshots.remove(&id) {
            total = total.saturating_sub(gone.bytes);
            report.bytes += gone.bytes;
        }
        report.snapshots += 1;
    }
    // Aliases naming a cache entry that is gone go with it.
    for (name, key) in store.references(crate::cache::local::ALIAS_PREFIX)? {
        if store.reference(&format!("cache/{key}"))?.is_none() {
            store.delete_reference(&name)?;
        }
    }
    // Layer memos of removed snapshots go, so their blobs become collectable.
    for (name, record) in store.references(crate::content::LAYER_MEMO_PREFIX)? {
        let value: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
        let gone = ["upper", "lower"].iter().any(|side| {
            value[side]
                .as_str()
                .is_some_and(|path| !Path::new(path).exists())
        });
        if gone {
            store.delete_reference(&name)?;
        }
    }
    report.blobs = store.gc()?.len();
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(root: &Path, id: char, bytes: u64, age_seconds: u64, lowers: &[char]) -> PathBuf {
        let name: String = std::iter::repeat_n(id, 32).collect();
        let dir = root.join("snapshots").join(&name);
        fs::create_dir_all(&dir).unwrap();
        if !lowers.is_empty() {
            let text: String = lowers
                .iter()
                .map(|l| {
                    let lower: String = std::iter::repeat_n(*l, 32).collect();
                    format!(
                        "{}\n",
                        root.join("snapshots").join(lower).join("upper").display()
                    )
                })
                .collect();
            fs::write(dir.join("lowers"), text).unwrap();
        }
        fs::write(side_file(&dir, "size"), bytes.to_string()).unwrap();
        let used = side_file(&dir, "used");
        fs::write(&used, b"").unwrap();
        let when = SystemTime::now() - Duration::from_secs(age_seconds);
        fs::File::options()
            .write(true)
            .open(&used)
            .unwrap()
            .set_modified(when)
            .unwrap();
        dir
    }

    fn cache(store: &Store, key: &str, dir: &Path) {
        let result = crate::snapshot::Ref::new(dir.to_owned(), None, crate::snapshot::Layer::Diff);
        let record = crate::cache::local::encode(&[result]);
        store
            .set_reference(&format!("cache/{key}"), &record, &[])
            .unwrap();
    }

    #[test]
    fn least_recently_used_leaves_go_first_and_orphans_always() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        // b stands on a; c is older than both but unrelated; d is named by nothing.
        let a = snapshot(root.path(), 'a', 100, 50, &[]);
        let b = snapshot(root.path(), 'b', 100, 40, &['a']);
        let c = snapshot(root.path(), 'c', 100, 60, &[]);
        let d = snapshot(root.path(), 'd', 100, 0, &[]);
        for (key, dir) in [("ka", &a), ("kb", &b), ("kc", &c)] {
            cache(&store, key, dir);
        }
        let policy = Policy {
            keep_bytes: Some(150),
            keep_duration: None,
        };
        let report = collect(root.path(), &policy).unwrap().unwrap();
        // d (orphan), then c (oldest), then b (a is needed by b until b goes), leaving a.
        assert_eq!(report.snapshots, 3);
        assert!(a.exists() && !b.exists() && !c.exists() && !d.exists());
        assert!(store.reference("cache/ka").unwrap().is_some());
        assert!(store.reference("cache/kb").unwrap().is_none());
    }

    #[test]
    fn aliases_go_with_the_entry_they_name() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let kept = snapshot(root.path(), 'a', 1, 0, &[]);
        let gone = snapshot(root.path(), 'b', 1, 7200, &[]);
        cache(&store, "kept", &kept);
        cache(&store, "gone", &gone);
        let alias = crate::cache::local::ALIAS_PREFIX;
        store
            .set_reference(&format!("{alias}1"), "kept", &[])
            .unwrap();
        store
            .set_reference(&format!("{alias}2"), "gone", &[])
            .unwrap();
        let policy = Policy {
            keep_bytes: None,
            keep_duration: Some(Duration::from_secs(3600)),
        };
        collect(root.path(), &policy).unwrap().unwrap();
        assert!(store.reference(&format!("{alias}1")).unwrap().is_some());
        assert!(store.reference(&format!("{alias}2")).unwrap().is_none());
    }

    #[test]
    fn old_results_go_and_a_running_build_blocks_collection() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let old = snapshot(root.path(), 'a', 1, 7200, &[]);
        let new = snapshot(root.path(), 'b', 1, 0, &[]);
        cache(&store, "old", &old);
        cache(&store, "new", &new);
        let policy = Policy {
            keep_bytes: None,
            keep_duration: Some(Duration::from_secs(3600)),
        };
        let lock = BuildLock::shared(root.path()).unwrap();
        assert_eq!(collect(root.path(), &policy).unwrap(), None);
        drop(lock);
        let report = collect(root.path(), &policy).unwrap().unwrap();
        assert_eq!(report.snapshots, 1);
        assert!(!old.exists() && new.exists());
    }
}
