//! The `image` and `registry` exporters: the image assembled in the content store, recorded
//! under its names and, with `push=true` (always for `registry`), pushed to each name's
//! registry. Part of `exporter`.
//!
//! Every name gets the config and layers (checked with `HEAD` first; a second repository of
//! the same registry mounts them from the first), the per-platform manifests by digest, then
//! the root (manifest or index) under its tag, or by digest alone with `push-by-digest`.

use crate::buildflags::ExportEntry;
use crate::content::Store;
use crate::exporter::error::{Error, Result};
use crate::exporter::image::Assembled;
use crate::exporter::oci::prepare;
use crate::exporter::options::parse_bool_attr;
use crate::exporter::output::{BuildOutput, ExportContext, ExportResponse, LazyBlobs};
use crate::registry::{Client, ClientOptions, Reference};

/// The store reference prefix `source::image` reads resolved images from.
const IMAGE_REFERENCE_PREFIX: &str = "image/";

/// Exports `output` as an `image` or `registry` entry.
pub(crate) fn export(
    store: &Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    registry: &ClientOptions,
) -> Result<ExportResponse> {
    let push = pushes(entry)?;
    let push_by_digest = match entry.attrs.get("push-by-digest") {
        Some(value) if !value.is_empty() => parse_bool_attr("push-by-digest", value)?,
        Some(_) => true,
        None => false,
    };
    let prepared = prepare(store, entry, output, context)?;
    let references = prepared
        .names
        .iter()
        .map(|name| {
            name.parse::<Reference>().map_err(|error| Error::BadName {
                name: name.clone(),
                reason: error.reason.to_owned(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if push && references.is_empty() {
        // Compat: buildkit exporter/containerimage (the same refusal, same words).
        return Err(Error::BadAttribute {
            key: "name".to_owned(),
            value: String::new(),
            reason: "tag is needed when pushing to registry".to_owned(),
        });
    }
    for reference in &references {
        remember(store, reference, &prepared.assembled)?;
    }
    if push {
        let client = Client::new(registry.clone()).map_err(|source| Error::Push {
            name: prepared.names.join(","),
            source: Box::new(source),
        })?;
        let mut pushed: Vec<Reference> = Vec::new();
        for reference in &references {
            let mount_from = pushed
                .iter()
                .find(|done| done.registry == reference.registry);
            push_image(
                &client,
                store,
                output.lazy.as_ref(),
                &prepared.assembled,
                reference,
                mount_from,
                push_by_digest,
            )?;
            pushed.push(reference.clone());
        }
    }
    Ok(prepared.response)
}

/// Whether an `image` or `registry` entry pushes.
pub(crate) fn pushes(entry: &ExportEntry) -> Result<bool> {
    Ok(entry.kind == "registry"
        || match entry.attrs.get("push") {
            Some(value) if !value.is_empty() => parse_bool_attr("push", value)?,
            Some(_) => true,
            None => false,
        })
}

/// Pushes every blob and manifest of `assembled` to `target`.
fn push_image(
    client: &Client,
    store: &Store,
    lazy: Option<&LazyBlobs>,
    assembled: &Assembled,
    target: &Reference,
    mount_from: Option<&Reference>,
    by_digest: bool,
) -> Result<()> {
    let pushing = |source| Error::Push {
        name: target.to_string(),
        source: Box::new(source),
    };
    let content = |source| {
        pushing(crate::registry::Error::Content {
            reference: target.to_string(),
            source: Box::new(source),
        })
    };
    for manifest in &assembled.manifests {
        let blobs = std::iter::once(&manifest.manifest.config).chain(&manifest.manifest.layers);
        for blob in blobs {
            if let Some(lazy) = lazy
                && !store.exists(&blob.digest)
                && !bring_lazy_blob(client, store, lazy, target, &blob.digest)?
            {
                continue;
            }
            client
                .push_blob(target, &blob.digest, blob.size, store, mount_from)
                .map_err(pushing)?;
        }
        if assembled.manifests.len() > 1 {
            let digest = manifest.descriptor.digest;
            let bytes = store.read(&digest).map_err(content)?;
            client
                .push_manifest(
                    &target.with_digest(digest),
                    &manifest.descriptor.media_type,
                    &bytes,
                )
                .map_err(pushing)?;
        }
    }
    let root = assembled.root.digest;
    let bytes = store.read(&root).map_err(content)?;
    let destination = if by_digest || target.tag.is_none() {
        target.with_digest(root)
    } else {
        target.clone()
    };
    client
        .push_manifest(&destination, &assembled.root.media_type, &bytes)
        .map_err(pushing)?;
    Ok(())
}

/// A layer left in the build cache it was imported from: nothing to do when `target`'s
/// repository has it, mounted when the cache is another repository of the same registry,
/// else fetched into the store (`true`: push it from there).
fn bring_lazy_blob(
    client: &Client,
    store: &Store,
    lazy: &LazyBlobs,
    target: &Reference,
    digest: &crate::digest::Digest,
) -> Result<bool> {
    let pushing = |source| Error::Push {
        name: target.to_string(),
        source: Box::new(source),
    };
    if client.blob_exists(target, digest).map_err(pushing)? {
        return Ok(false);
    }
    let origin = lazy
        .0
        .origin(digest)
        .and_then(|name| name.parse::<Reference>().ok());
    if let Some(origin) = origin
        && client
            .mount_blob(target, digest, &origin)
            .map_err(pushing)?
    {
        return Ok(false);
    }
    let fetched = lazy
        .0
        .fetch(digest, store)
        .map_err(|source| Error::FetchLayer {
            digest: *digest,
            source,
        })?;
    if !fetched {
        return Err(Error::FetchLayer {
            digest: *digest,
            source: "no imported build cache holds it".into(),
        });
    }
    Ok(true)
}

/// Records `image/<name>` so a later `FROM name` finds the image in the store; the same
/// record `source::image` writes after a pull (media type, digest and size of the root).
fn remember(store: &Store, reference: &Reference, assembled: &Assembled) -> Result<()> {
    let root = &assembled.root;
    let record = serde_json::json!({
        "mediaType": root.media_type,
        "digest": root.digest,
        "size": root.size,
    });
    let blobs: Vec<_> = assembled.blobs.iter().map(|(digest, _)| *digest).collect();
    store.set_reference(
        &format!("{IMAGE_REFERENCE_PREFIX}{reference}"),
        &record.to_string(),
        &blobs,
    )?;
    Ok(())
}
