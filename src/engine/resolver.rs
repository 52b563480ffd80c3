//! The engine's answer to the front end's [`ImageResolver`] seam: base-image configs from OCI
//! layouts, already lowered bake targets and registries. Part of `engine`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::frontend::dockerfile::{ImageResolver, ResolvedImage};
use crate::graph::{Source, SourceOp};
use crate::platform::Platform;

/// Reads base-image configs for the front end: OCI layouts (`oci-layout://path[:tag|@digest]`),
/// already lowered bake targets (`target://name`) and, when `images` is set (builds, not dry
/// runs), registry references, which are pulled into the store and pinned to their digest.
/// Without `images`, registry references resolve to nothing and start from an empty config.
#[derive(Default)]
pub struct Resolver {
    /// Image configs of the targets lowered so far, by name.
    pub targets: BTreeMap<String, crate::oci::Image>,
    /// The registry puller for `FROM registry/ref`, shared with the worker.
    pub images: Option<Arc<crate::source::image::Puller>>,
}

impl ImageResolver for Resolver {
    fn resolve(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> std::result::Result<Option<ResolvedImage>, String> {
        let source = if reference.contains("://") {
            Source::parse(&SourceOp {
                identifier: reference.to_owned(),
                attrs: BTreeMap::new(),
            })
            .map_err(|e| e.to_string())?
        } else if reference == "scratch" {
            Source::Scratch
        } else {
            Source::Image {
                reference: reference.to_owned(),
            }
        };
        match source {
            Source::Target { name } => Ok(self.targets.get(&name).map(|image| ResolvedImage {
                digest: None,
                image: image.clone(),
            })),
            Source::OciLayout { dir, selector } => {
                let layout = crate::source::oci_layout::OciLayout::open(std::path::Path::new(&dir))
                    .map_err(|e| error_chain(&e))?;
                let image = layout
                    .resolve(&selector, platform)
                    .map_err(|e| error_chain(&e))?;
                Ok(Some(ResolvedImage {
                    digest: Some(image.manifest_digest),
                    image: image.config,
                }))
            }
            Source::Image { reference } => {
                let Some(images) = &self.images else {
                    return Ok(None);
                };
                let (digest, image) = images
                    .image(&reference, platform)
                    .map_err(|e| error_chain(&e))?;
                Ok(Some(ResolvedImage {
                    digest: Some(digest),
                    image,
                }))
            }
            Source::Scratch | Source::Local { .. } | Source::Git { .. } | Source::Http { .. } => {
                Ok(None)
            }
        }
    }
}

/// An error and its causes on one line, for the front end's string-typed resolver seam.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let message = error.to_string();
        // Some errors (ureq's) repeat their inner error in their own message.
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = error.source();
    }
    text
}
