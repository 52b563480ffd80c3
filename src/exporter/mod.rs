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
mod attrs;
mod compress;
mod docker;
mod error;
mod image;
mod layer;
mod load;
mod local;
mod oci;
mod options;
mod output;
mod push;
mod reference;
mod saved;
mod tar;

use std::io::Write;

use crate::buildflags::ExportEntry;

pub use self::attrs::platform_dir_name;
use self::attrs::source_date_epoch;
pub use self::error::{Error, Result};
pub use self::image::{Assembled, AssembledManifest, assemble};
pub use self::layer::layer_blobs;
pub use self::options::{
    AnnotationKind, Annotations, Compression, CompressionOptions, ImageOptions,
};
pub use self::output::{
    BuildOutput, ExportContext, ExportResponse, Layer, LazyBlobs, PlatformOutput,
};
pub use self::saved::export_saved;

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

    /// Whether `entry` needs the image's layer blobs in the content store: an image output
    /// that only pushes can leave layers imported from a build cache where they are.
    pub fn needs_local_blobs(entry: &ExportEntry) -> bool {
        match Self::of(entry) {
            Ok(Self::Image) => !push::pushes(entry).unwrap_or(false),
            Ok(kind) => kind.is_image(),
            Err(_) => false,
        }
    }

    /// Whether the exporter writes an image (and so takes its name from the target's tags).
    pub fn is_image(self) -> bool {
        matches!(self, Self::Oci | Self::Docker | Self::Image)
    }
}

/// The attributes an exporter of `kind` acts on; `annotation…` keys count for image kinds.
fn known_attributes(kind: Kind) -> &'static [&'static str] {
    const COMMON: &[&str] = &["source-date-epoch", "platform-split"];
    match kind {
        Kind::Local | Kind::Tar | Kind::CacheOnly => COMMON,
        Kind::Oci | Kind::Docker | Kind::Image => &[
            "source-date-epoch",
            "platform-split",
            "name",
            "push",
            "push-by-digest",
            "compression",
            "compression-level",
            "force-compression",
            "oci-mediatypes",
            "rewrite-timestamp",
            "tar",
        ],
    }
}

/// The attributes of `entry` its exporter does not act on (`registry.insecure`, `unpack`,
/// ...), so the caller can name them instead of dropping them silently.
pub fn unknown_attributes(entry: &ExportEntry) -> Vec<String> {
    let Ok(kind) = Kind::of(entry) else {
        return Vec::new();
    };
    let known = known_attributes(kind);
    entry
        .attrs
        .keys()
        .filter(|key| {
            let annotation = kind.is_image() && key.starts_with("annotation");
            !(known.contains(&key.as_str()) || annotation)
        })
        .cloned()
        .collect()
}

/// Checks an output entry before anything is built: a known type, the destination it
/// needs, and attributes that parse.
pub fn validate(entry: &ExportEntry) -> Result<Kind> {
    let kind = validate_kind(entry)?;
    source_date_epoch(&entry.attrs, &ExportContext::default())?;
    if let Some(value) = entry.attrs.get("platform-split") {
        options::parse_bool_attr("platform-split", value)?;
    }
    if kind.is_image() {
        ImageOptions::parse(&entry.attrs, None)?;
    }
    Ok(kind)
}

/// Checks only what every exporter of `entry`'s type needs, whoever runs it: a known type
/// and, for `local`, a destination. A BuildKit daemon judges the attributes itself.
pub fn validate_kind(entry: &ExportEntry) -> Result<Kind> {
    let kind = Kind::of(entry)?;
    if kind == Kind::Local && entry.destination.is_empty() {
        return Err(Error::MissingDestination {
            kind: entry.kind.clone(),
        });
    }
    Ok(kind)
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
    fn attributes_an_exporter_does_not_act_on_are_named() {
        let image = entry(
            "image",
            "",
            &[
                ("name", "a/b"),
                ("registry.insecure", "true"),
                ("annotation.x", "y"),
            ],
        );
        assert_eq!(unknown_attributes(&image), ["registry.insecure"]);
        let local = entry(
            "local",
            "out",
            &[("name", "a/b"), ("platform-split", "false")],
        );
        assert_eq!(unknown_attributes(&local), ["name"]);
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
}
