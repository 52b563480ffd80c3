//! The local cache: cache key → result snapshot refs, recorded as named references in the
//! content store's metadata database, so later runs (and other `bake` processes sharing the
//! root) find them. Part of `cache`.
//!
//! A record holds each result's whole chain ([`Ref`] serialised: every tree it stands on and
//! the kind of layer each adds), so a result loaded in a later run exports the same layers
//! as the run that made it. Records carry a format number; one from an older format, or one
//! whose trees or blobs are gone, is a miss and the step runs again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::content::Store;
use crate::digest::Digest;
use crate::snapshot::{Layer, Ref, Snapshotter};
use crate::solver::CacheStore;

/// The record format; records of any other format (or none) are misses.
const FORMAT: u32 = 2;

/// What a cache entry records.
#[derive(Serialize, Deserialize)]
struct Record {
    format: u32,
    refs: Vec<Ref>,
}

/// Results by cache key, kept in the state root's [`Store`].
pub struct LocalCache {
    // One SQLite connection is not `Sync`; the solver's workers take turns on it.
    store: Mutex<Store>,
    snapshotter: Arc<dyn Snapshotter>,
}

impl LocalCache {
    /// Opens the cache index of the state root `root`, whose trees `snapshotter` (the one
    /// the worker uses) mounts when a result is loaded.
    pub fn open(
        root: &Path,
        snapshotter: Arc<dyn Snapshotter>,
    ) -> Result<Self, crate::content::Error> {
        Ok(Self {
            store: Mutex::new(Store::open(root)?),
            snapshotter,
        })
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether every tree `refs` stand on is usable here and every blob is in the store.
    fn usable(&self, refs: &[Ref]) -> bool {
        let needed: Vec<Ref> = refs.iter().flat_map(Ref::closure).collect();
        let blobs_present = {
            let store = self.store();
            needed.iter().all(|r| match r.layer() {
                Layer::Blob(blob) => store.exists(&blob.digest),
                _ => true,
            })
        };
        // Outside the store lock: mounting may take a while and other steps wait on it.
        blobs_present
            && needed.iter().filter_map(Ref::path).all(|path| {
                // An overlay snapshot from an earlier process is mounted again on first use;
                // one that cannot be (its layers are gone, or this worker is native) is a miss.
                path.is_dir() && self.snapshotter.mount(&path).is_ok()
            })
    }
}

fn name(key: &Digest) -> String {
    format!("cache/{key}")
}

/// Every tree a cache record's results stand on; nothing for a record of another format.
pub(crate) fn record_paths(record: &str) -> Vec<PathBuf> {
    let Ok(record) = serde_json::from_str::<Record>(record) else {
        return Vec::new();
    };
    if record.format != FORMAT {
        return Vec::new();
    }
    record
        .refs
        .iter()
        .flat_map(Ref::closure)
        .filter_map(|r| r.path())
        .collect()
}

/// The record of `refs`.
pub(crate) fn encode(refs: &[Ref]) -> String {
    let record = Record {
        format: FORMAT,
        refs: refs.to_vec(),
    };
    serde_json::to_string(&record).unwrap_or_else(|_| "[]".to_owned())
}

impl CacheStore for LocalCache {
    type Ref = Ref;
    type Error = crate::content::Error;

    fn load(&self, key: &Digest) -> Result<Option<Vec<Ref>>, Self::Error> {
        let Some(reference) = self.store().reference(&name(key))? else {
            return Ok(None);
        };
        // A record from before chains were kept cannot say what its layers are: a miss.
        let Ok(record) = serde_json::from_str::<Record>(&reference.record) else {
            return Ok(None);
        };
        if record.format != FORMAT || !self.usable(&record.refs) {
            return Ok(None);
        }
        for path in record
            .refs
            .iter()
            .flat_map(Ref::closure)
            .filter_map(|r| r.path())
        {
            crate::snapshot::usage::mark_used(&path);
        }
        Ok(Some(record.refs))
    }

    fn save(&self, key: &Digest, refs: &[Ref]) -> Result<(), Self::Error> {
        // The entry holds the base image blobs its chains name, so store GC keeps them.
        let blobs: Vec<Digest> = refs
            .iter()
            .flat_map(Ref::closure)
            .filter_map(|r| match r.layer() {
                Layer::Blob(blob) => Some(blob.digest),
                _ => None,
            })
            .collect();
        self.store()
            .set_reference(&name(key), &encode(refs), &blobs)
    }

    fn alias(&self, fast: &Digest) -> Result<Option<Digest>, Self::Error> {
        Ok(self
            .store()
            .reference(&alias_name(fast))?
            .and_then(|reference| reference.record.parse().ok()))
    }

    fn save_alias(&self, fast: &Digest, key: &Digest) -> Result<(), Self::Error> {
        let store = self.store();
        let name = alias_name(fast);
        let record = key.to_string();
        // Most builds find the alias they would write: no write then.
        if store.reference(&name)?.is_some_and(|r| r.record == record) {
            return Ok(());
        }
        store.set_reference(&name, &record, &[])
    }
}

/// The prefix of the references that map a definition key to a cache key (see
/// [`CacheStore::alias`]); garbage collection drops those whose cache entry is gone.
pub(crate) const ALIAS_PREFIX: &str = "cache-alias/";

fn alias_name(fast: &Digest) -> String {
    format!("{ALIAS_PREFIX}{fast}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Blob, Native};

    fn cache(root: &Path) -> LocalCache {
        LocalCache::open(root, Arc::new(Native::new(&root.join("snapshots")))).unwrap()
    }

    #[test]
    fn aliases_survive_a_new_store_handle_and_are_rewritten_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let (fast, first, second) = (Digest::of(b"fast"), Digest::of(b"1"), Digest::of(b"2"));
        assert_eq!(cache(dir.path()).alias(&fast).unwrap(), None);
        cache(dir.path()).save_alias(&fast, &first).unwrap();
        assert_eq!(cache(dir.path()).alias(&fast).unwrap(), Some(first));
        cache(dir.path()).save_alias(&fast, &second).unwrap();
        assert_eq!(cache(dir.path()).alias(&fast).unwrap(), Some(second));
    }

    #[test]
    fn results_survive_a_new_store_handle_with_their_chain() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let step = dir.path().join("step");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&step).unwrap();
        let key = Digest::of(b"key");
        let result = Ref::new(
            step.clone(),
            Some(Ref::new(base.clone(), None, Layer::Empty)),
            Layer::Diff,
        );
        cache(dir.path()).save(&key, &[result]).unwrap();
        let cache = cache(dir.path());
        let loaded = cache.load(&key).unwrap().unwrap();
        let chain: Vec<_> = loaded[0].chain().map(|r| r.path().unwrap()).collect();
        assert_eq!(chain, [step.clone(), base.clone()]);
        assert!(matches!(loaded[0].layer(), Layer::Diff));
        std::fs::remove_dir(&base).unwrap();
        assert!(
            cache.load(&key).unwrap().is_none(),
            "a result whose parent vanished is a miss"
        );
    }

    #[test]
    fn old_records_and_missing_blobs_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        let cache = cache(dir.path());
        let old = Digest::of(b"old");
        let record = serde_json::to_string(&[&tree]).unwrap();
        cache
            .store()
            .set_reference(&name(&old), &record, &[])
            .unwrap();
        assert!(
            cache.load(&old).unwrap().is_none(),
            "the format before chains"
        );
        assert!(record_paths(&record).is_empty());

        let key = Digest::of(b"image");
        let blob = Blob {
            digest: Digest::of(b"not in the store"),
            media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
            size: 0,
            diff_id: Digest::of(b""),
        };
        cache
            .save(&key, &[Ref::new(tree.clone(), None, Layer::Blob(blob))])
            .unwrap();
        assert!(
            cache.load(&key).unwrap().is_none(),
            "a base layer left the store"
        );
        let record = cache
            .store()
            .reference(&name(&key))
            .unwrap()
            .unwrap()
            .record;
        assert_eq!(record_paths(&record), [tree]);
    }
}
