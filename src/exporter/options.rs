//! Typed exporter attributes for the image exporters (`oci`, `docker`): compression, media
//! types, `rewrite-timestamp`, names and annotations. Part of `exporter`.

use std::collections::BTreeMap;

use crate::buildflags::parse_bool;
use crate::exporter::error::{Error, Result};
use crate::oci::media_types;
use crate::platform::Platform;

/// How layers are compressed (`compression=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    Uncompressed,
    /// gzip, BuildKit's default.
    #[default]
    Gzip,
    /// Zstandard; needs OCI media types.
    Zstd,
}

impl Compression {
    /// Returns the compression a layer media type declares, or `None` for a media type that
    /// is not a known layer type.
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            media_types::OCI_LAYER | media_types::DOCKER_LAYER => Some(Self::Uncompressed),
            media_types::OCI_LAYER_GZIP | media_types::DOCKER_LAYER_GZIP => Some(Self::Gzip),
            media_types::OCI_LAYER_ZSTD => Some(Self::Zstd),
            _ => None,
        }
    }

    /// Returns the layer media type for this compression.
    pub fn layer_media_type(self, oci: bool) -> &'static str {
        match (self, oci) {
            (Self::Uncompressed, true) => media_types::OCI_LAYER,
            (Self::Gzip, true) => media_types::OCI_LAYER_GZIP,
            (Self::Zstd, _) => media_types::OCI_LAYER_ZSTD,
            (Self::Uncompressed, false) => media_types::DOCKER_LAYER,
            (Self::Gzip, false) => media_types::DOCKER_LAYER_GZIP,
        }
    }
}

/// Compression settings for layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompressionOptions {
    /// The algorithm.
    pub compression: Compression,
    /// `compression-level`: gzip 0–9, zstd 0–22; `None` is the algorithm's default.
    pub level: Option<u32>,
    /// `force-compression`: recompress stored layers that use another compression.
    pub force: bool,
}

/// Which object an annotation is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnnotationKind {
    /// The image manifest (`annotation.` and `annotation-manifest.`).
    Manifest,
    /// The descriptor that points at a manifest (`annotation-manifest-descriptor.`).
    ManifestDescriptor,
    /// The image index (`annotation-index.`).
    Index,
    /// The descriptor that points at the index (`annotation-index-descriptor.`).
    IndexDescriptor,
}

/// Annotations parsed from exporter attributes: `(kind, platform or all, key) → value`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations(pub BTreeMap<(AnnotationKind, Option<Platform>, String), String>);

impl Annotations {
    /// Parses every `annotation…` attribute, ignoring the others.
    // Compat: buildkit exporter/containerimage/annotations.go ParseAnnotations.
    pub fn parse(attrs: &BTreeMap<String, String>) -> Result<Self> {
        let mut annotations = BTreeMap::new();
        for (attr, value) in attrs {
            let Some(rest) = attr.strip_prefix("annotation") else {
                continue;
            };
            let bad = |reason: &str| Error::BadAttribute {
                key: attr.clone(),
                value: value.clone(),
                reason: reason.to_owned(),
            };
            let (kind_and_platform, key) = rest
                .split_once('.')
                .ok_or_else(|| bad("expected `annotation[-type][[platform]].key`"))?;
            if key.is_empty() {
                return Err(bad("the annotation key is empty"));
            }
            let (kind_text, platform) = match kind_and_platform.split_once('[') {
                Some((kind, platform)) => {
                    let platform = platform
                        .strip_suffix(']')
                        .ok_or_else(|| bad("unterminated `[platform]`"))?;
                    let platform: Platform = platform
                        .parse()
                        .map_err(|_| bad("invalid platform in `[...]`"))?;
                    (kind, Some(platform.normalize()))
                }
                None => (kind_and_platform, None),
            };
            let kind = match kind_text {
                "" | "-manifest" => AnnotationKind::Manifest,
                "-manifest-descriptor" => AnnotationKind::ManifestDescriptor,
                "-index" => AnnotationKind::Index,
                "-index-descriptor" => AnnotationKind::IndexDescriptor,
                _ => return Err(bad("unknown annotation type")),
            };
            annotations.insert((kind, platform, key.to_owned()), value.clone());
        }
        Ok(Self(annotations))
    }

    /// Returns the annotations of `kind` that apply to `platform` (`None`: platform-less ones).
    pub fn for_kind(
        &self,
        kind: AnnotationKind,
        platform: Option<&Platform>,
    ) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|((k, p, _), _)| *k == kind && (p.is_none() || p.as_ref() == platform))
            .map(|((_, _, key), value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Reports whether any annotation of `kind` is set.
    pub fn has(&self, kind: AnnotationKind) -> bool {
        self.0.keys().any(|(k, _, _)| *k == kind)
    }
}

/// Options of the image exporters, from the `output` attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// Layer compression.
    pub compression: CompressionOptions,
    /// OCI media types (`true`, the default) or Docker schema 2 ones.
    pub oci_media_types: bool,
    /// `rewrite-timestamp`: clamp layer mtimes to the `SOURCE_DATE_EPOCH`.
    pub rewrite_timestamp: bool,
    /// `SOURCE_DATE_EPOCH`: fixes `created` times.
    pub source_date_epoch: Option<u64>,
    /// The `name=` list, comma-separated in the attribute.
    pub names: Vec<String>,
    /// `annotation…` attributes.
    pub annotations: Annotations,
}

impl ImageOptions {
    /// Parses the attributes the image exporters understand; others are ignored, as BuildKit
    /// ignores attributes meant for other exporters.
    // Compat: buildkit exporter/containerimage/opts.go ImageCommitOpts.Load and
    // util/compression/attrs.go ParseAttributes.
    pub fn parse(attrs: &BTreeMap<String, String>, source_date_epoch: Option<u64>) -> Result<Self> {
        let compression = match attrs.get("compression").map(String::as_str) {
            None | Some("" | "gzip") => Compression::Gzip,
            Some("uncompressed") => Compression::Uncompressed,
            Some("zstd") => Compression::Zstd,
            Some(other) => {
                return Err(Error::BadAttribute {
                    key: "compression".to_owned(),
                    value: other.to_owned(),
                    reason: "expected `gzip`, `zstd` or `uncompressed`".to_owned(),
                });
            }
        };
        let level = match attrs.get("compression-level") {
            None => None,
            Some(text) => {
                let max = match compression {
                    Compression::Zstd => 22,
                    _ => 9,
                };
                let level = text.parse::<u32>().ok().filter(|level| *level <= max);
                Some(level.ok_or_else(|| Error::BadAttribute {
                    key: "compression-level".to_owned(),
                    value: text.clone(),
                    reason: format!("expected a number from 0 to {max}"),
                })?)
            }
        };
        let oci_media_types = bool_attr(attrs, "oci-mediatypes", true)?;
        if !oci_media_types && compression == Compression::Zstd {
            return Err(Error::BadAttribute {
                key: "compression".to_owned(),
                value: "zstd".to_owned(),
                reason: "zstd compression requires `oci-mediatypes=true`".to_owned(),
            });
        }
        let names = attrs
            .get("name")
            .map(|names| {
                names
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            compression: CompressionOptions {
                compression,
                level,
                force: bool_attr(attrs, "force-compression", false)?,
            },
            oci_media_types,
            rewrite_timestamp: bool_attr(attrs, "rewrite-timestamp", false)?,
            source_date_epoch,
            names,
            annotations: Annotations::parse(attrs)?,
        })
    }
}

fn bool_attr(attrs: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool> {
    match attrs.get(key) {
        None => Ok(default),
        // Compat: buildkit treats a key given without a value as true.
        Some(value) if value.is_empty() => Ok(true),
        Some(value) => parse_bool_attr(key, value),
    }
}

/// Parses a boolean attribute with Go's `strconv.ParseBool` spellings.
pub(crate) fn parse_bool_attr(key: &str, value: &str) -> Result<bool> {
    parse_bool(value).ok_or_else(|| Error::BadAttribute {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: "expected `true` or `false`".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_gzip_and_oci_media_types() {
        let options = ImageOptions::parse(&attrs(&[]), None).expect("options");
        assert_eq!(options.compression.compression, Compression::Gzip);
        assert_eq!(options.compression.level, None);
        assert!(!options.compression.force);
        assert!(options.oci_media_types);
        assert!(!options.rewrite_timestamp);
    }

    #[test]
    fn layer_media_types_follow_compression_and_flavour() {
        assert_eq!(
            Compression::Gzip.layer_media_type(true),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            Compression::Gzip.layer_media_type(false),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(
            Compression::Uncompressed.layer_media_type(false),
            "application/vnd.docker.image.rootfs.diff.tar"
        );
        assert_eq!(
            Compression::Zstd.layer_media_type(true),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    #[test]
    fn media_types_map_back_to_compression() {
        for compression in [
            Compression::Uncompressed,
            Compression::Gzip,
            Compression::Zstd,
        ] {
            for oci in [true, false] {
                let media_type = compression.layer_media_type(oci);
                assert_eq!(Compression::of_media_type(media_type), Some(compression));
            }
        }
        assert_eq!(Compression::of_media_type("text/plain"), None);
    }

    #[test]
    fn unknown_compression_is_a_clear_error() {
        let error = ImageOptions::parse(&attrs(&[("compression", "brotli")]), None)
            .expect_err("brotli is unknown");
        assert_eq!(
            error.to_string(),
            "invalid value `brotli` for exporter attribute `compression`: expected `gzip`, `zstd` or `uncompressed`"
        );
    }

    #[test]
    fn compression_level_is_range_checked_per_algorithm() {
        let zstd = ImageOptions::parse(
            &attrs(&[("compression", "zstd"), ("compression-level", "19")]),
            None,
        )
        .expect("zstd 19");
        assert_eq!(zstd.compression.level, Some(19));
        assert!(ImageOptions::parse(&attrs(&[("compression-level", "19")]), None).is_err());
        assert!(ImageOptions::parse(&attrs(&[("compression-level", "x")]), None).is_err());
    }

    #[test]
    fn zstd_needs_oci_media_types() {
        let error = ImageOptions::parse(
            &attrs(&[("compression", "zstd"), ("oci-mediatypes", "false")]),
            None,
        )
        .expect_err("conflict");
        assert!(error.to_string().contains("requires `oci-mediatypes=true`"));
    }

    #[test]
    fn booleans_and_names_parse() {
        let options = ImageOptions::parse(
            &attrs(&[
                ("rewrite-timestamp", "true"),
                ("oci-mediatypes", "0"),
                ("name", "a:1, b"),
            ]),
            Some(3),
        )
        .expect("options");
        assert!(options.rewrite_timestamp);
        assert!(!options.oci_media_types);
        assert_eq!(options.names, ["a:1", "b"]);
        assert_eq!(options.source_date_epoch, Some(3));
        assert!(ImageOptions::parse(&attrs(&[("rewrite-timestamp", "maybe")]), None).is_err());
    }

    #[test]
    fn annotations_parse_kinds_and_platforms() {
        let parsed = Annotations::parse(&attrs(&[
            ("annotation.org.opencontainers.image.title", "t"),
            ("annotation-manifest-descriptor.d", "1"),
            ("annotation-index.i", "2"),
            ("annotation-index-descriptor.x", "3"),
            ("annotation[linux/arm64].only", "4"),
            ("compression", "gzip"),
        ]))
        .expect("annotations");
        let amd64: Platform = "linux/amd64".parse().expect("platform");
        let arm64: Platform = "linux/arm64".parse().expect("platform");
        let manifest = parsed.for_kind(AnnotationKind::Manifest, Some(&amd64));
        assert_eq!(manifest.len(), 1);
        assert_eq!(manifest["org.opencontainers.image.title"], "t");
        assert_eq!(
            parsed
                .for_kind(AnnotationKind::Manifest, Some(&arm64))
                .len(),
            2
        );
        assert_eq!(parsed.for_kind(AnnotationKind::Index, None)["i"], "2");
        assert!(parsed.has(AnnotationKind::IndexDescriptor));
        assert!(parsed.has(AnnotationKind::ManifestDescriptor));
    }

    #[test]
    fn malformed_annotations_are_errors() {
        for key in [
            "annotation",
            "annotation-bogus.k",
            "annotation[linux/amd64.k",
            "annotation.",
        ] {
            assert!(
                Annotations::parse(&attrs(&[(key, "v")])).is_err(),
                "{key} should fail"
            );
        }
    }
}
