//! The local cache: cache key → result snapshots, recorded as named references in the
//! content store's metadata database, so later runs (and other `bake` processes sharing the
//! root) find them. Part of `cache`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::content::Store;
use crate::digest::Digest;
use crate::solver::CacheStore;

/// Results by cache key, kept in the state root's [`Store`].
pub struct LocalCache {
    // One SQLite connection is not `Sync`; the solver's workers take turns on it.
    store: Mutex<Store>,
}

impl LocalCache {
    /// Opens the cache index of the state root `root`.
    pub fn open(root: &Path) -> Result<Self, crate::content::Error> {
        Ok(Self {
            store: Mutex::new(Store::open(root)?),
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn name(key: &Digest) -> String {
    format!("cache/{key}")
}

impl CacheStore for LocalCache {
    type Ref = Arc<PathBuf>;
    type Error = crate::content::Error;

    fn load(&self, key: &Digest) -> Result<Option<Vec<Arc<PathBuf>>>, Self::Error> {
        let Some(reference) = self.store().reference(&name(key))? else {
            return Ok(None);
        };
        let Ok(paths) = serde_json::from_str::<Vec<PathBuf>>(&reference.record) else {
            return Ok(None);
        };
        // A result whose snapshot was removed (by hand or a crash mid-GC) is a miss.
        if paths.iter().any(|p| !p.is_dir()) {
            return Ok(None);
        }
        for path in &paths {
            crate::snapshot::usage::mark_used(path);
        }
        // An overlay snapshot from an earlier process is mounted again on first use; one
        // that cannot be (its layers are gone) is a miss too.
        if paths
            .iter()
            .any(|p| crate::snapshot::overlay::ensure_mounted(p).is_err())
        {
            return Ok(None);
        }
        Ok(Some(paths.into_iter().map(Arc::new).collect()))
    }

    fn save(&self, key: &Digest, refs: &[Arc<PathBuf>]) -> Result<(), Self::Error> {
        let paths: Vec<&PathBuf> = refs.iter().map(AsRef::as_ref).collect();
        let record = serde_json::to_string(&paths).unwrap_or_else(|_| "[]".to_owned());
        self.store().set_reference(&name(key), &record, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_survive_a_new_store_handle() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("snap");
        std::fs::create_dir_all(&snapshot).unwrap();
        let key = Digest::of(b"key");
        LocalCache::open(dir.path())
            .unwrap()
            .save(&key, &[Arc::new(snapshot.clone())])
            .unwrap();
        let cache = LocalCache::open(dir.path()).unwrap();
        assert_eq!(cache.load(&key).unwrap().unwrap()[0].as_path(), snapshot);
        std::fs::remove_dir(&snapshot).unwrap();
        assert!(
            cache.load(&key).unwrap().is_none(),
            "a vanished snapshot is a miss"
        );
    }
}
