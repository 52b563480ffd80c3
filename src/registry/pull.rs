//! Pulling: resolving a reference to its index or manifest (mirrors first), choosing the
//! manifest for a platform, and fetching config and layers into the content store, several at
//! a time, each verified against its digest while it streams to disk. Part of `registry`.
//!
//! Blobs the store already holds are skipped, and the store renames a blob into place only
//! once it is complete and verified, so a pull killed half-way resumes with only the blobs it
//! had not finished.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Deserialize;

use super::client::Client;
use super::error::{Error, Result};
use super::reference::Reference;
use super::transport::{Endpoint, error_message};
use crate::content::Store;
use crate::digest::Digest;
use crate::oci::{self, Descriptor, Index, Manifest, media_types, platform_list, select_platform};
use crate::platform::Platform;

/// The `Accept` header for manifest requests: every document type we can read.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Manifests and indexes larger than this are refused.
const MAX_DOCUMENT_SIZE: u64 = 4 << 20;

/// What a reference names in a registry: an index or a manifest, with its bytes.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference as asked.
    pub reference: Reference,
    /// The index or manifest the reference names.
    pub descriptor: Descriptor,
    /// Its bytes, verified against `descriptor.digest`.
    pub bytes: Vec<u8>,
    endpoint: Endpoint,
}

/// A reference resolved to one platform's manifest.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference as asked.
    pub reference: Reference,
    /// What the reference names (an index, or the manifest itself).
    pub root: Descriptor,
    /// The chosen manifest.
    pub manifest: Descriptor,
    /// The chosen manifest, parsed.
    pub parsed: Manifest,
    /// Every document read on the way (root, nested indexes, manifest) with its bytes.
    documents: Vec<(Descriptor, Vec<u8>)>,
    endpoint: Endpoint,
}

/// An image pulled into the content store.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The reference as asked.
    pub reference: Reference,
    /// What the reference names (an index, or the manifest itself).
    pub root: Descriptor,
    /// The manifest for the requested platform.
    pub manifest: Descriptor,
    /// The config blob's descriptor.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The parsed image config.
    pub image: oci::Image,
    /// The uncompressed layer digests from the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Digest>,
}

impl PulledImage {
    /// Returns every blob of the image: root, manifest, config and layers.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut blobs = vec![self.root.digest, self.manifest.digest, self.config.digest];
        blobs.extend(self.layers.iter().map(|layer| layer.digest));
        blobs.dedup();
        blobs
    }
}

#[derive(Deserialize)]
struct MediaTypeOnly {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
}

#[derive(Default, Deserialize)]
struct ConfigRootFs {
    #[serde(default)]
    rootfs: RootFs,
}

#[derive(Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl Client {
    /// Resolves `reference` to the index or manifest it names, trying mirrors first.
    pub fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        let endpoints = self.transport.endpoints(&reference.registry, true);
        let mut last = None;
        for endpoint in endpoints {
            match self.fetch_document(&endpoint, reference, &reference.object()) {
                Ok((descriptor, bytes)) => {
                    return Ok(Resolved {
                        reference: reference.clone(),
                        descriptor,
                        bytes,
                        endpoint,
                    });
                }
                // A mirror that lacks the image or is down is skipped, as containerd does.
                Err(error) if endpoint.mirror => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound {
            what: "manifest",
            reference: reference.to_string(),
        }))
    }

    /// Resolves `reference` to the manifest for `platform`, entering an index if it names one.
    pub fn resolve_image(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage> {
        let resolved = self.resolve(reference)?;
        let root = resolved.descriptor.clone();
        let mut documents = vec![(root.clone(), resolved.bytes)];
        let endpoint = resolved.endpoint;
        // Bounded, so indexes that name each other cannot loop.
        for _ in 0..4 {
            let (descriptor, bytes) = documents
                .last()
                .cloned()
                .expect("documents starts with the root");
            if !media_types::is_index(&descriptor.media_type) {
                let parsed: Manifest =
                    serde_json::from_slice(&bytes).map_err(|source| Error::BadDocument {
                        what: "manifest",
                        reference: reference.to_string(),
                        source,
                    })?;
                return Ok(ResolvedImage {
                    reference: reference.clone(),
                    root,
                    manifest: descriptor,
                    parsed,
                    documents,
                    endpoint,
                });
            }
            let index: Index =
                serde_json::from_slice(&bytes).map_err(|source| Error::BadDocument {
                    what: "index",
                    reference: reference.to_string(),
                    source,
                })?;
            let entry =
                select_platform(&index.manifests, platform).ok_or_else(|| Error::NoPlatform {
                    platform: platform.to_string(),
                    reference: reference.to_string(),
                    available: platform_list(&index.manifests),
                })?;
            let pinned = reference.with_digest(entry.digest);
            let (mut fetched, bytes) =
                self.fetch_document(&endpoint, &pinned, &entry.digest.to_string())?;
            fetched.platform = entry.platform.clone();
            fetched.annotations = entry.annotations.clone();
            documents.push((fetched, bytes));
        }
        Err(Error::MediaType {
            media_type: "index nested more than four levels".to_owned(),
            reference: reference.to_string(),
        })
    }

    /// Pulls the image `reference` names for `platform` into `store`: its documents, config
    /// and layers. Blobs already in the store are not fetched again.
    pub fn pull(
        &self,
        reference: &Reference,
        platform: &Platform,
        store: &Store,
    ) -> Result<PulledImage> {
        let resolved = self.resolve_image(reference, platform)?;
        for (descriptor, bytes) in &resolved.documents {
            // The bytes were verified when fetched; `write` rehashes and skips existing blobs.
            store.write(bytes).map_err(|source| Error::Content {
                reference: format!("{}@{}", reference.name(), descriptor.digest),
                source: Box::new(source),
            })?;
        }
        let manifest = &resolved.parsed;
        let mut blobs: Vec<&Descriptor> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .filter(|descriptor| !store.exists(&descriptor.digest))
            .collect();
        blobs.sort_by_key(|descriptor| std::cmp::Reverse(descriptor.size));
        blobs.dedup_by_key(|descriptor| descriptor.digest);
        self.fetch_blobs(&resolved.endpoint, reference, &blobs, store)?;
        let config_bytes =
            store
                .read(&manifest.config.digest)
                .map_err(|source| Error::Content {
                    reference: format!("{}@{}", reference.name(), manifest.config.digest),
                    source: Box::new(source),
                })?;
        let bad_config = |source| Error::BadDocument {
            what: "image config",
            reference: reference.to_string(),
            source,
        };
        let image: oci::Image = serde_json::from_slice(&config_bytes).map_err(bad_config)?;
        let rootfs: ConfigRootFs = serde_json::from_slice(&config_bytes).map_err(bad_config)?;
        Ok(PulledImage {
            reference: reference.clone(),
            root: resolved.root.clone(),
            manifest: resolved.manifest.clone(),
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            image,
            diff_ids: rootfs.rootfs.diff_ids,
        })
    }

    /// Fetches `blobs` on up to `concurrency` threads, each with its own store handle (a
    /// store's database connection is not shared across threads).
    fn fetch_blobs(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        blobs: &[&Descriptor],
        store: &Store,
    ) -> Result<()> {
        let workers = self.options.concurrency.clamp(1, 16).min(blobs.len());
        if workers <= 1 {
            return blobs
                .iter()
                .try_for_each(|blob| self.fetch_blob(endpoint, reference, blob, store));
        }
        let queue = Mutex::new(blobs.iter().rev().copied().collect::<Vec<_>>());
        let failed = AtomicBool::new(false);
        let root = store.root().to_owned();
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        let store = Store::open(&root).map_err(|source| Error::Content {
                            reference: reference.to_string(),
                            source: Box::new(source),
                        })?;
                        while !failed.load(Ordering::Relaxed) {
                            let next = queue
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .pop();
                            let Some(blob) = next else { break };
                            if let Err(error) = self.fetch_blob(endpoint, reference, blob, &store) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(error);
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                // A panicking fetch is a bug; surface it rather than report a partial pull.
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
                })
                .collect()
        });
        results.into_iter().collect()
    }

    /// Streams the blob `digest` (at most `size` bytes) of the repository `reference` names
    /// into `store`, verified, trying mirrors first; `Ok(false)` when no endpoint has it.
    pub fn fetch_blob_into(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        store: &Store,
    ) -> Result<bool> {
        let blob = Descriptor::new("", *digest, size);
        let mut last = None;
        for endpoint in self.transport.endpoints(&reference.registry, true) {
            match self.fetch_blob(&endpoint, reference, &blob, store) {
                Ok(()) => return Ok(true),
                Err(Error::NotFound { .. }) => {}
                // A mirror that is down is skipped, as containerd does.
                Err(error) if endpoint.mirror => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        last.map_or(Ok(false), Err)
    }

    /// Streams one blob into the store, verified against its digest and bounded by its size.
    pub(crate) fn fetch_blob(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        blob: &Descriptor,
        store: &Store,
    ) -> Result<()> {
        if store.exists(&blob.digest) {
            return Ok(());
        }
        let name = format!("{}@{}", reference.name(), blob.digest);
        let url = endpoint.url(&reference.repository, &format!("blobs/{}", blob.digest));
        let scopes = [pull_scope(endpoint, reference)];
        let response = self.transport.send(
            endpoint,
            &scopes,
            &reference.name(),
            "fetch blob from",
            &|agent, auth| with_auth(agent.get(&url), auth).call(),
        )?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(Error::NotFound {
                    what: "blob",
                    reference: name,
                });
            }
            status => {
                return Err(Error::Status {
                    action: "fetch blob",
                    name,
                    status,
                    message: error_message(response),
                });
            }
        }
        let reader = response.into_body().into_reader().take(blob.size);
        store
            .write_from(reader, Some(blob.digest))
            .map_err(|source| match source {
                crate::content::Error::DigestMismatch { actual, .. } => Error::DigestMismatch {
                    reference: name.clone(),
                    actual,
                },
                source => Error::Content {
                    reference: name.clone(),
                    source: Box::new(source),
                },
            })?;
        Ok(())
    }

    /// Fetches a manifest or index by tag or digest and verifies it when a digest names it.
    fn fetch_document(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        object: &str,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let url = endpoint.url(&reference.repository, &format!("manifests/{object}"));
        let scopes = [pull_scope(endpoint, reference)];
        let response = self.transport.send(
            endpoint,
            &scopes,
            &reference.name(),
            "fetch manifest from",
            &|agent, auth| {
                with_auth(agent.get(&url), auth)
                    .header("Accept", ACCEPT_MANIFESTS)
                    .call()
            },
        )?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(Error::NotFound {
                    what: "manifest",
                    reference: reference.to_string(),
                });
            }
            403 => {
                return Err(Error::Denied {
                    name: reference.name(),
                    message: error_message(response).trim_start_matches(": ").to_owned(),
                });
            }
            status => {
                return Err(Error::Status {
                    action: "fetch manifest",
                    name: reference.to_string(),
                    status,
                    message: error_message(response),
                });
            }
        }
        let header_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or(value).trim().to_owned());
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_DOCUMENT_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| Error::Connect {
                action: "read manifest from",
                host: endpoint.host.clone(),
                source: Box::new(ureq::Error::Io(error)),
            })?;
        if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
            return Err(Error::TooLarge {
                what: "manifest",
                reference: reference.to_string(),
                limit: MAX_DOCUMENT_SIZE,
            });
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = reference.digest
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                reference: reference.to_string(),
                actual: digest,
            });
        }
        let media_type = document_media_type(&bytes, header_type.as_deref());
        if !media_types::is_index(&media_type) && !media_types::is_manifest(&media_type) {
            return Err(Error::MediaType {
                media_type,
                reference: reference.to_string(),
            });
        }
        Ok((
            Descriptor::new(media_type, digest, bytes.len() as u64),
            bytes,
        ))
    }
}

/// Returns the document's `mediaType` field, else the response's `Content-Type`, else a
/// guess from its shape (OCI allows both fields to be absent).
fn document_media_type(bytes: &[u8], header: Option<&str>) -> String {
    let parsed: Option<MediaTypeOnly> = serde_json::from_slice(bytes).ok();
    if let Some(media_type) = parsed.as_ref().and_then(|p| p.media_type.clone()) {
        return media_type;
    }
    match header {
        Some(header) if media_types::is_index(header) || media_types::is_manifest(header) => {
            header.to_owned()
        }
        _ if parsed.is_some_and(|p| p.manifests.is_some()) => media_types::OCI_INDEX.to_owned(),
        _ => media_types::OCI_MANIFEST.to_owned(),
    }
}

/// The token scope that lets us read `reference` through `endpoint`.
pub(crate) fn pull_scope(endpoint: &Endpoint, reference: &Reference) -> String {
    format!(
        "repository:{}{}:pull",
        endpoint.prefix, reference.repository
    )
}

/// Adds an `Authorization` header when there is one.
pub(crate) fn with_auth<B>(
    request: ureq::RequestBuilder<B>,
    authorization: Option<&str>,
) -> ureq::RequestBuilder<B> {
    match authorization {
        Some(value) => request.header("Authorization", value),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_document_then_the_header() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(document_media_type(index, None), media_types::OCI_INDEX);
        assert_eq!(
            document_media_type(index, Some(media_types::DOCKER_MANIFEST_LIST)),
            media_types::DOCKER_MANIFEST_LIST
        );
        let manifest = br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(
            document_media_type(manifest, Some("application/json")),
            media_types::DOCKER_MANIFEST
        );
    }
}
