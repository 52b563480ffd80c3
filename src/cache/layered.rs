//! The solver's cache store during a build: the state root's [`LocalCache`] first, then the
//! records imported from `cache-from`. An imported hit is saved in the local cache too, so
//! the next build on this root finds it there once its blobs have been fetched. Every
//! result loaded or saved is remembered by key, for `cache-to` to export. Part of `cache`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cache::import::Imported;
use crate::cache::local::LocalCache;
use crate::digest::Digest;
use crate::snapshot::Ref;
use crate::solver::CacheStore;

/// The local cache, backed by imported records.
pub struct Layered {
    local: LocalCache,
    imported: Arc<Imported>,
    results: Mutex<HashMap<Digest, Vec<Ref>>>,
    imported_hits: AtomicUsize,
}

impl Layered {
    /// `local`, falling back to `imported`.
    pub fn new(local: LocalCache, imported: Arc<Imported>) -> Self {
        Self {
            local,
            imported,
            results: Mutex::new(HashMap::new()),
            imported_hits: AtomicUsize::new(0),
        }
    }

    /// The results of `key` this solve loaded or made.
    pub fn result(&self, key: &Digest) -> Option<Vec<Ref>> {
        self.results().get(key).cloned()
    }

    /// How many lookups the imported records answered.
    pub fn imported_hits(&self) -> usize {
        self.imported_hits.load(Ordering::Relaxed)
    }

    fn results(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Vec<Ref>>> {
        // Every operation on the map is a single insert or lookup.
        self.results.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CacheStore for Layered {
    type Ref = Ref;
    type Error = crate::content::Error;

    fn load(&self, key: &Digest) -> Result<Option<Vec<Ref>>, Self::Error> {
        if let Some(refs) = self.local.load(key)? {
            self.results().insert(*key, refs.clone());
            return Ok(Some(refs));
        }
        let Some(imported) = self.imported.lookup(key) else {
            return Ok(None);
        };
        let refs = vec![imported];
        self.local.save(key, &refs)?;
        self.imported_hits.fetch_add(1, Ordering::Relaxed);
        self.results().insert(*key, refs.clone());
        Ok(Some(refs))
    }

    fn save(&self, key: &Digest, refs: &[Ref]) -> Result<(), Self::Error> {
        self.local.save(key, refs)?;
        self.results().insert(*key, refs.to_vec());
        Ok(())
    }

    fn alias(&self, fast: &Digest) -> Result<Option<Digest>, Self::Error> {
        Ok(match self.local.alias(fast)? {
            Some(key) => Some(key),
            None => self.imported.alias(fast),
        })
    }

    fn save_alias(&self, fast: &Digest, key: &Digest) -> Result<(), Self::Error> {
        self.local.save_alias(fast, key)
    }
}
