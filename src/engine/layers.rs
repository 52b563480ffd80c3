//! The image layers of a build result: walks the result's snapshot ref down its chain of
//! parents (the base image's own blobs at the bottom, then one diff per step) and lists
//! them bottom first. Part of `engine`.
//!
//! Every ref knows its parent and the kind of layer it adds, whether it was made in this run
//! or loaded from the cache, so neither the build graph nor the cache index is read again.

use std::path::PathBuf;

use crate::exporter::Layer;
use crate::oci::Descriptor;
use crate::ops::worker::{self, Ref};

/// Why the layers could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A step result in the chain has no tree on disk to diff.
    #[error("cannot assemble the image layers: a step result has no tree ({layer})")]
    NotMaterialised {
        /// What the ref's layer is, for the message.
        layer: String,
    },
    /// A result imported from a build cache could not be fetched or unpacked.
    #[error("cannot fetch the layers of a result imported from a build cache")]
    Fetch {
        /// Why.
        #[source]
        source: Box<crate::ops::worker::Error>,
    },
}

/// Returns the root filesystem of the result `result`.
pub fn rootfs(result: &Ref) -> Result<PathBuf, Error> {
    tree(result)
}

/// Returns the layers of the result `result`, bottom first.
pub fn layers(result: &Ref) -> Result<Vec<Layer>, Error> {
    let chain: Vec<&Ref> = result.chain().collect();
    let mut layers = Vec::new();
    // The tree below the current step, which its diff is taken against.
    let mut lower: Option<PathBuf> = None;
    for step in chain.into_iter().rev() {
        match step.layer() {
            worker::Layer::Blob(blob) => layers.push(Layer::Blob {
                descriptor: Descriptor::new(&blob.media_type, blob.digest, blob.size),
                diff_id: blob.diff_id.to_string(),
            }),
            worker::Layer::Empty => {}
            worker::Layer::Diff => layers.push(Layer::Diff {
                lower: lower.clone(),
                upper: tree(step)?,
            }),
            worker::Layer::Merge(trees) => {
                for above in trees {
                    layers.push(Layer::Diff {
                        lower: None,
                        upper: tree(above)?,
                    });
                }
            }
        }
        // A lazy base layer below the top of its image needs no tree: the next one is a blob.
        lower = step.path();
    }
    Ok(layers)
}

fn tree(step: &Ref) -> Result<PathBuf, Error> {
    step.path().ok_or_else(|| Error::NotMaterialised {
        layer: format!("{:?}", step.layer()),
    })
}
