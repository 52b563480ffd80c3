//! Exporters: turn a finished build result (root filesystems, layer diffs and an image config
//! per platform) into what `output` asks for: a directory (`local`), a tar stream (`tar`), an
//! OCI image layout (`oci`) or a `docker load` tarball (`docker`).
//!
//! Stage 5. May import `snapshot`, `content`, `registry`, `oci`, `buildflags`, `platform` and
//! `progress`; never `solver` or `graph`: the engine hands over plain directories and an
//! [`oci::Image`](crate::oci::Image), so an exporter cannot depend on how the result was built.
//!
//! Every output is written under a temp name next to its destination and renamed into place,
//! so a failed export never leaves a half-written file behind.

mod archive;
mod atomic;
mod compress;
mod docker;
mod image;
mod layer;
mod load;
mod local;
mod oci;
mod options;
mod push;
mod reference;
mod tar;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::buildflags::ExportEntry;
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::platform::Platform;

pub use image::{Assembled, AssembledManifest, assemble};
pub use options::{AnnotationKind, Annotations, Compression, CompressionOptions, ImageOptions};

/// Errors of the exporters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An exporter attribute has a value the exporter does not accept.
    #[error("invalid value `{value}` for exporter attribute `{key}`: {reason}")]
    BadAttribute {
        /// The attribute name.
        key: String,
        /// The rejected value.
        value: String,
        /// What is accepted instead.
        reason: String,
    },
    /// The output type is not one this crate can export.
    #[error(
        "unknown output type `{0}`: the types are `local`, `tar`, `oci`, `docker`, `image`, `registry` and `cacheonly`"
    )]
    UnsupportedType(String),
    /// The exporter needs `dest=` and none was given.
    #[error("exporter `{kind}` requires `dest`")]
    MissingDestination {
        /// The exporter type.
        kind: String,
    },
    /// The result has no platform to export.
    #[error("nothing to export: the build result has no platform")]
    EmptyResult,
    /// The docker exporter was given a multi-platform result.
    // Compat: buildkit exporter/oci/export.go (the exact message).
    #[error("docker exporter does not currently support exporting manifest lists")]
    DockerManifestList,
    /// Two platforms of one result share a name, so their outputs would collide.
    #[error("platform `{0}` appears twice in the build result")]
    DuplicatePlatform(String),
    /// An image name is not a valid reference.
    #[error("invalid image name `{name}`: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored layer's descriptor names no valid digest or an unknown media type.
    #[error("cannot reuse layer `{digest}` of media type `{media_type}`: {reason}")]
    BadLayer {
        /// The layer's digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A filesystem or stream operation failed.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved (`-` for stdout).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] crate::content::Error),
    /// Diffing or copying a snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::Error),
    /// Pushing the image to a registry failed.
    #[error("failed to push `{name}`")]
    Push {
        /// The image name being pushed.
        name: String,
        /// The registry client's error.
        #[source]
        source: Box<crate::registry::Error>,
    },
    /// `--load` found no Docker engine to load the image into.
    #[error(
        "cannot load the image: no Docker engine answers on `{socket}`; write it to a file \
         instead with `--set *.output=type=docker,dest=img.tar` (then `docker load -i img.tar`) \
         or `--set *.output=type=oci,dest=img.tar`"
    )]
    NoDockerEngine {
        /// The socket or address tried.
        socket: String,
    },
    /// Serialising an image document failed.
    #[error("failed to encode `{what}` as JSON")]
    Json {
        /// Which document.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// One layer of an image, uncompressed, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "an image has a few dozen layers at most; boxing buys nothing"
)]
pub enum Layer {
    /// The difference between two snapshot directories (`lower` absent for a base layer),
    /// computed by [`snapshot::diff`](crate::snapshot::diff) at export time.
    Diff {
        /// The parent tree, or `None` for the first layer.
        lower: Option<PathBuf>,
        /// The tree after the step.
        upper: PathBuf,
    },
    /// An uncompressed layer tar on disk (for example one already produced by a diff).
    Tar(PathBuf),
    /// A layer blob already in the content store (a pulled base image's layer). It is reused
    /// as is unless `force-compression` or `rewrite-timestamp` asks for a new blob.
    Blob {
        /// The blob's descriptor (its media type tells how it is compressed).
        descriptor: Descriptor,
        /// `sha256:<hex>` of the uncompressed tar, from the base image's config.
        diff_id: String,
    },
}

/// What one platform of a build produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformOutput {
    /// The platform the result is for.
    pub platform: Platform,
    /// The final root filesystem, used by the `local` and `tar` exporters.
    pub rootfs: PathBuf,
    /// The image's layers, bottom first, used by the image exporters.
    pub layers: Vec<Layer>,
    /// The image config the front end produced (its `rootfs` and `created` are filled in here).
    pub image: crate::oci::Image,
}

/// A finished build result: one entry per platform, in the order requested.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildOutput {
    /// The per-platform results.
    pub platforms: Vec<PlatformOutput>,
}

/// What an export reports back: buildx's `--metadata-file` keys for this target.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ExportResponse {
    /// Metadata keys (`containerimage.digest`, `containerimage.config.digest`,
    /// `containerimage.descriptor`, `image.name`) with their JSON values.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Context an export runs in, besides the `output` entry itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportContext {
    /// `SOURCE_DATE_EPOCH` of the build, if set; the `source-date-epoch` attribute overrides it.
    pub source_date_epoch: Option<u64>,
    /// The current time in seconds since the epoch, used for `created` when no
    /// `SOURCE_DATE_EPOCH` is given (passed in so tests and callers control it).
    pub now: u64,
}

/// Exports `output` as `entry` asks, writing a stream destination (`dest=-`) to `stdout`,
/// with default registry settings (credentials from `$DOCKER_CONFIG`) for pushes.
///
/// Types other than `local`, `tar`, `oci`, `docker`, `image` and `registry` are rejected; an
/// entry of type `cacheonly` exports nothing (the result stays in the cache).
pub fn export(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    let registry = crate::registry::ClientOptions::default();
    export_with_registry(store, entry, output, context, &registry, stdout)
}

/// Exports like [`export`], pushing with `registry`'s host options and credentials.
pub fn export_with_registry(
    store: &crate::content::Store,
    entry: &ExportEntry,
    output: &BuildOutput,
    context: &ExportContext,
    registry: &crate::registry::ClientOptions,
    stdout: &mut dyn Write,
) -> Result<ExportResponse> {
    if output.platforms.is_empty() {
        return Err(Error::EmptyResult);
    }
    let mut seen = std::collections::BTreeSet::new();
    for platform in &output.platforms {
        if !seen.insert(platform.platform.to_string()) {
            return Err(Error::DuplicatePlatform(platform.platform.to_string()));
        }
    }
    match Kind::of(entry)? {
        Kind::Local => local::export(entry, output, context),
        Kind::Tar => tar::export(entry, output, context, stdout),
        Kind::Oci => oci::export(store, entry, output, context, stdout),
        Kind::Docker if entry.destination.is_empty() => load::export(store, entry, output, context),
        Kind::Docker => docker::export(store, entry, output, context, stdout),
        Kind::Image => push::export(store, entry, output, context, registry),
        Kind::CacheOnly => Ok(ExportResponse::default()),
    }
}

/// The exporters, by the `type=` that selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `type=local`: a directory.
    Local,
    /// `type=tar`: a tar of the root filesystem.
    Tar,
    /// `type=oci`: an OCI image layout (tar or directory).
    Oci,
    /// `type=docker`: a `docker load` tarball, or a load into the engine without `dest`.
    Docker,
    /// `type=image` or `type=registry`: an image in the store, pushed when asked.
    Image,
    /// `type=cacheonly`: nothing; the result stays in the cache.
    CacheOnly,
}

impl Kind {
    /// The exporter an entry selects.
    pub fn of(entry: &ExportEntry) -> Result<Self> {
        Ok(match entry.kind.as_str() {
            "local" => Self::Local,
            "tar" => Self::Tar,
            "oci" => Self::Oci,
            "docker" => Self::Docker,
            "image" | "registry" => Self::Image,
            "cacheonly" => Self::CacheOnly,
            other => return Err(Error::UnsupportedType(other.to_owned())),
        })
    }

    /// Whether the exporter writes an image (and so takes its name from the target's tags).
    pub fn is_image(self) -> bool {
        matches!(self, Self::Oci | Self::Docker | Self::Image)
    }
}

/// Checks an output entry before anything is built: a known type, the destination it
/// needs, and attributes that parse.
pub fn validate(entry: &ExportEntry) -> Result<Kind> {
    let kind = Kind::of(entry)?;
    source_date_epoch(&entry.attrs, &ExportContext::default())?;
    if let Some(value) = entry.attrs.get("platform-split") {
        options::parse_bool_attr("platform-split", value)?;
    }
    match kind {
        Kind::Local if entry.destination.is_empty() => {
            return Err(Error::MissingDestination {
                kind: entry.kind.clone(),
            });
        }
        Kind::Oci | Kind::Docker | Kind::Image => {
            ImageOptions::parse(&entry.attrs, None)?;
        }
        Kind::Local | Kind::Tar | Kind::CacheOnly => {}
    }
    Ok(kind)
}

/// Returns the directory name a platform's files go to when a result is split by platform
/// (`linux_amd64`, `linux_arm_v7`).
// Compat: buildkit exporter/local platform-split (platforms.Format with `/` → `_`).
pub fn platform_dir_name(platform: &Platform) -> String {
    platform.to_string().replace('/', "_")
}

/// Returns the `SOURCE_DATE_EPOCH` in force: the `source-date-epoch` attribute, else the
/// context's value.
pub(crate) fn source_date_epoch(
    attrs: &BTreeMap<String, String>,
    context: &ExportContext,
) -> Result<Option<u64>> {
    match attrs.get("source-date-epoch") {
        Some(value) if !value.is_empty() => {
            value.parse().map(Some).map_err(|_| Error::BadAttribute {
                key: "source-date-epoch".to_owned(),
                value: value.clone(),
                reason: "expected seconds since the epoch".to_owned(),
            })
        }
        _ => Ok(context.source_date_epoch),
    }
}

/// Reports whether the result should be split into one subdirectory per platform.
pub(crate) fn platform_split(
    attrs: &BTreeMap<String, String>,
    output: &BuildOutput,
) -> Result<bool> {
    match attrs.get("platform-split") {
        Some(value) => options::parse_bool_attr("platform-split", value),
        None => Ok(output.platforms.len() > 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, destination: &str, attrs: &[(&str, &str)]) -> ExportEntry {
        ExportEntry {
            kind: kind.to_owned(),
            destination: destination.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn validation_names_the_supported_types_and_missing_destinations() {
        let unknown = validate(&entry("s3", "", &[])).expect_err("unknown type");
        assert!(
            unknown.to_string().contains("`local`, `tar`, `oci`"),
            "{unknown}"
        );
        assert!(matches!(
            validate(&entry("local", "", &[])),
            Err(Error::MissingDestination { .. })
        ));
        assert!(validate(&entry("image", "", &[("compression", "brotli")])).is_err());
        assert!(validate(&entry("tar", "", &[("platform-split", "maybe")])).is_err());
        assert_eq!(
            validate(&entry("registry", "", &[("name", "x/y")])).expect("valid"),
            Kind::Image
        );
        assert_eq!(
            validate(&entry("docker", "", &[])).expect("load"),
            Kind::Docker
        );
    }

    #[test]
    fn platform_dir_names_use_underscores() {
        let platform: Platform = "linux/arm/v7".parse().expect("platform");
        assert_eq!(platform_dir_name(&platform), "linux_arm_v7");
    }

    #[test]
    fn attribute_epoch_overrides_context() {
        let context = ExportContext {
            source_date_epoch: Some(5),
            now: 0,
        };
        let mut attrs = BTreeMap::new();
        assert_eq!(source_date_epoch(&attrs, &context).expect("epoch"), Some(5));
        attrs.insert("source-date-epoch".to_owned(), "7".to_owned());
        assert_eq!(source_date_epoch(&attrs, &context).expect("epoch"), Some(7));
        attrs.insert("source-date-epoch".to_owned(), "soon".to_owned());
        assert!(source_date_epoch(&attrs, &context).is_err());
    }
}
