//! `cache-to type=registry,ref=…` and `cache-from type=registry,ref=…`: a build cache in a
//! registry repository, the manifest under the reference's tag, through the registry client
//! (auth, mirrors, plain HTTP and CAs from buildkitd.toml). Part of `cache`.
//!
//! Blobs pass through the state root's content store: an export pushes them from there (a
//! blob handed in from elsewhere is stored first), and an import fetches them into it.

use std::io::Read;
use std::path::PathBuf;

use crate::cache::remote::{Remote, RemoteError, Result};
use crate::content::Store;
use crate::digest::Digest;
use crate::registry::{Client, Reference};

/// A cache in a registry repository.
pub struct RegistryCache {
    client: Client,
    reference: Reference,
    store_root: PathBuf,
}

impl RegistryCache {
    /// The repository of `reference`, reached with `client`; blobs pass through the content
    /// store at `store_root`.
    pub fn new(client: Client, reference: Reference, store_root: PathBuf) -> Self {
        Self {
            client,
            reference,
            store_root,
        }
    }

    fn store(&self) -> Result<Store> {
        Store::open(&self.store_root).map_err(|source| {
            RemoteError::new(
                format!(
                    "failed to open the content store in `{}`",
                    self.store_root.display()
                ),
                source,
            )
        })
    }

    fn error(&self, what: &str) -> impl FnOnce(crate::registry::Error) -> RemoteError {
        let what = format!("{what} `{}`", self.reference.name());
        move |source| RemoteError::new(what, source)
    }
}

impl Remote for RegistryCache {
    fn describe(&self) -> String {
        format!("type=registry,ref={}", self.reference)
    }

    fn repository(&self) -> Option<String> {
        Some(self.reference.name())
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.client
            .blob_exists(&self.reference, digest)
            .map_err(self.error("failed to check a blob in"))
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>> {
        let store = self.store()?;
        let found = self
            .client
            .fetch_blob_into(&self.reference, digest, u64::MAX, &store)
            .map_err(self.error(&format!("failed to fetch blob `{digest}` from")))?;
        if !found {
            return Ok(None);
        }
        let file = store.open_blob(digest).map_err(|source| {
            RemoteError::new(format!("failed to open fetched blob `{digest}`"), source)
        })?;
        Ok(Some(Box::new(file)))
    }

    fn put_blob(
        &self,
        digest: &Digest,
        _media_type: &str,
        size: u64,
        blob: &mut dyn Read,
    ) -> Result<()> {
        let store = self.store()?;
        if !store.exists(digest) {
            store.write_from(blob, Some(*digest)).map_err(|source| {
                RemoteError::new(format!("failed to store blob `{digest}`"), source)
            })?;
        }
        self.client
            .push_blob(&self.reference, digest, size, &store, None)
            .map_err(self.error(&format!("failed to push blob `{digest}` to")))?;
        Ok(())
    }

    fn get_manifest(&self, name: &str) -> Result<Option<(String, Vec<u8>)>> {
        let target = match name.parse::<Digest>() {
            Ok(digest) => self.reference.with_digest(digest),
            Err(_) => self.reference.with_tag(name),
        };
        match self.client.resolve(&target) {
            Ok(resolved) => Ok(Some((resolved.descriptor.media_type, resolved.bytes))),
            Err(crate::registry::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(RemoteError::new(
                format!("failed to read the cache manifest `{target}`"),
                error,
            )),
        }
    }

    fn put_manifest(&self, name: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let target = self.reference.with_tag(name);
        self.client
            .push_manifest(&target, media_type, bytes)
            .map_err(|source| {
                RemoteError::new(
                    format!("failed to push the cache manifest `{target}`"),
                    source,
                )
            })?;
        Ok(())
    }
}
