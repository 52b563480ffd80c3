//! The [`CacheStore`] trait (results by cache key) and [`MemoryStore`], an in-process store for
//! tests, benchmarks and `--no-cache`-only runs. Persistent stores live in `cache`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Mutex;

use crate::digest::Digest;

/// Results of earlier solves by cache key. Only successful results are ever saved, so a store
/// never holds half a failed build.
// Compat: buildkit solver/cachestorage.go CacheKeyStorage + CacheResultStorage, collapsed to
// one key → results map because keys here are already fully resolved digests.
pub trait CacheStore: Send + Sync {
    /// A result; the same type as the [`OpExec::Ref`](crate::solver::OpExec::Ref) it stores.
    type Ref: Clone + Send + Sync;
    /// Why the store could not be read or written.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Returns the results (one per output) saved under `key`, if any.
    ///
    /// # Errors
    ///
    /// When the store cannot be read; the solve fails rather than silently rebuilding.
    fn load(&self, key: &Digest) -> Result<Option<Vec<Self::Ref>>, Self::Error>;

    /// Saves the results of a vertex under `key`, replacing what was there.
    ///
    /// # Errors
    ///
    /// When the store cannot be written.
    fn save(&self, key: &Digest, refs: &[Self::Ref]) -> Result<(), Self::Error>;

    /// The cache key a step whose definition key (its op and its inputs' keys, before any
    /// content is hashed) is `fast` had when it last ran or was found: the same inputs have
    /// the same content, so the step need not hash it again.
    ///
    /// # Errors
    ///
    /// When the store cannot be read.
    fn alias(&self, fast: &Digest) -> Result<Option<Digest>, Self::Error> {
        let _ = fast;
        Ok(None)
    }

    /// Records that the step with definition key `fast` has the cache key `key`.
    ///
    /// # Errors
    ///
    /// When the store cannot be written.
    fn save_alias(&self, fast: &Digest, key: &Digest) -> Result<(), Self::Error> {
        let _ = (fast, key);
        Ok(())
    }
}

/// A [`CacheStore`] in memory, lost when dropped.
#[derive(Debug)]
pub struct MemoryStore<R> {
    entries: Mutex<HashMap<Digest, Vec<R>>>,
    aliases: Mutex<HashMap<Digest, Digest>>,
}

impl<R> Default for MemoryStore<R> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            aliases: Mutex::new(HashMap::new()),
        }
    }
}

impl<R: Clone> MemoryStore<R> {
    /// Returns how many keys hold results.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Returns whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns whether results are saved under `key`.
    pub fn contains(&self, key: &Digest) -> bool {
        self.lock().contains_key(key)
    }

    fn aliases(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Digest>> {
        // Single inserts and lookups, as for the entries.
        self.aliases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Vec<R>>> {
        // A panic while holding the lock cannot leave the map half-updated: every operation on
        // it is a single insert or lookup.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<R: Clone + Send + Sync> CacheStore for MemoryStore<R> {
    type Ref = R;
    type Error = Infallible;

    fn load(&self, key: &Digest) -> Result<Option<Vec<R>>, Infallible> {
        Ok(self.lock().get(key).cloned())
    }

    fn save(&self, key: &Digest, refs: &[R]) -> Result<(), Infallible> {
        self.lock().insert(*key, refs.to_vec());
        Ok(())
    }

    fn alias(&self, fast: &Digest) -> Result<Option<Digest>, Infallible> {
        Ok(self.aliases().get(fast).copied())
    }

    fn save_alias(&self, fast: &Digest, key: &Digest) -> Result<(), Infallible> {
        self.aliases().insert(*fast, *key);
        Ok(())
    }
}
