//! The image layers of a build result: the base image's own blobs, then one diff per step
//! along the chain of root filesystems that led to the result. Part of `engine`.
//!
//! Each step's snapshot is found again through its cache key (the solver reports the key of
//! every vertex it solved), so no extra state is kept during the solve.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cache::local::LocalCache;
use crate::content::Store;
use crate::digest::Digest;
use crate::exporter::Layer;
use crate::graph::{Definition, Edge, Op, Vertex};
use crate::oci::Descriptor;
use crate::platform::Platform;
use crate::solver::CacheStore;
use crate::source::image::Puller;
use crate::source::oci_layout::{self, OciLayout};

/// Why the layers could not be worked out.
#[derive(Debug, thiserror::Error)]
#[error("cannot assemble the image layers: {0}")]
pub struct Error(String);

/// Returns the layers of the result at `root`, a vertex of `definition` (bottom first);
/// registry bases come from `images`, the puller the build pulled them with.
pub fn layers(
    definition: &Definition,
    root: &Edge,
    keys: &BTreeMap<Digest, Digest>,
    cache: &LocalCache,
    store: &Store,
    platform: &Platform,
    images: &Puller,
) -> Result<Vec<Layer>, Error> {
    let by_digest: BTreeMap<&Digest, &Vertex> =
        definition.vertices.iter().map(|v| (&v.digest, v)).collect();
    let snapshot = |vertex: &Vertex| -> Result<PathBuf, Error> {
        let key = keys
            .get(&vertex.digest)
            .ok_or_else(|| Error(format!("no cache key for {}", vertex.digest)))?;
        let refs = cache.load(key).map_err(|e| Error(e.to_string()))?;
        refs.and_then(|r| r.first().map(|p| p.as_ref().clone()))
            .ok_or_else(|| Error(format!("no snapshot for {}", vertex.digest)))
    };
    // Walk down the chain of root filesystems from the result to its base.
    let mut chain: Vec<&Vertex> = Vec::new();
    let mut extra: Vec<Vec<Layer>> = Vec::new();
    let mut base: Vec<Layer> = Vec::new();
    let mut current = by_digest.get(&root.vertex).copied();
    while let Some(vertex) = current {
        let input = |index: usize| {
            vertex
                .inputs
                .get(index)
                .and_then(|edge| by_digest.get(&edge.vertex).copied())
        };
        let (parent, above) = match vertex.op.as_ref() {
            Op::File(op) => (op.base.and_then(input), Vec::new()),
            Op::Exec(op) => (
                op.mounts
                    .iter()
                    .find(|m| m.dest == "/")
                    .and_then(|m| m.input)
                    .and_then(input),
                Vec::new(),
            ),
            Op::Merge(_) => {
                // `COPY --link`: the first input is the chain below, each later input one layer.
                let mut above = Vec::new();
                for index in 1..vertex.inputs.len() {
                    if let Some(layer_vertex) = input(index) {
                        above.push(Layer::Diff {
                            lower: None,
                            upper: snapshot(layer_vertex)?,
                        });
                    }
                }
                (input(0), above)
            }
            Op::Source(source) => {
                if let Some(reference) = source.identifier.strip_prefix("oci-layout://") {
                    base = layout_layers(reference, store, platform)?;
                    chain.push(vertex);
                    break;
                }
                if let Some(reference) = source.identifier.strip_prefix("docker-image://") {
                    base = image_layers(reference, images, platform)?;
                    chain.push(vertex);
                    break;
                }
                (None, Vec::new())
            }
        };
        chain.push(vertex);
        extra.push(above);
        current = parent;
    }
    let mut layers = base;
    let mut lower: Option<PathBuf> = None;
    let source_at_bottom = matches!(chain.last().map(|v| v.op.as_ref()), Some(Op::Source(_)));
    if source_at_bottom && let Some(bottom) = chain.pop() {
        lower = Some(snapshot(bottom)?);
    }
    for (index, vertex) in chain.iter().enumerate().rev() {
        let upper = snapshot(vertex)?;
        if let Op::Merge(_) = vertex.op.as_ref() {
            layers.extend(extra.get(index).cloned().unwrap_or_default());
        } else {
            layers.push(Layer::Diff {
                lower: lower.clone(),
                upper: upper.clone(),
            });
        }
        lower = Some(upper);
    }
    Ok(layers)
}

/// The blobs of a registry base image, already pulled into the store by the worker.
fn image_layers(
    reference: &str,
    images: &Puller,
    platform: &Platform,
) -> Result<Vec<Layer>, Error> {
    let image = images
        .pulled(reference, platform)
        .map_err(|e| Error(format!("`docker-image://{reference}`: {e}")))?;
    Ok(image
        .layers
        .iter()
        .zip(&image.diff_ids)
        .map(|(d, diff_id)| blob(&d.media_type, d.digest, d.size, diff_id))
        .collect())
}

/// A base image layer already in the store.
fn blob(media_type: &str, digest: Digest, size: u64, diff_id: &impl ToString) -> Layer {
    Layer::Blob {
        descriptor: Descriptor::new(media_type, digest, size),
        diff_id: diff_id.to_string(),
    }
}

/// The blobs of an OCI-layout base image, imported into the store.
fn layout_layers(reference: &str, store: &Store, platform: &Platform) -> Result<Vec<Layer>, Error> {
    let fail = |e: &dyn std::fmt::Display| Error(format!("`oci-layout://{reference}`: {e}"));
    let (dir, selector) = oci_layout::parse_reference(reference).map_err(|e| fail(&e))?;
    let layout = OciLayout::open(&dir).map_err(|e| fail(&e))?;
    let image = layout.resolve(&selector, platform).map_err(|e| fail(&e))?;
    layout.import(&image, store).map_err(|e| fail(&e))?;
    Ok(image
        .layers
        .iter()
        .zip(&image.diff_ids)
        .map(|(d, diff_id)| blob(&d.media_type, d.digest, d.size, diff_id))
        .collect())
}
