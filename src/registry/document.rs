//! The distribution documents the client reads: descriptors, image manifests and indexes in
//! their OCI and Docker schema 2 forms, and platform matching over index entries. Part of
//! `registry`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// Media types of the documents a registry serves.
pub mod media_types {
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

    /// The `Accept` header for manifest requests: every type we can read.
    pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
        application/vnd.docker.distribution.manifest.list.v2+json, \
        application/vnd.oci.image.manifest.v1+json, \
        application/vnd.docker.distribution.manifest.v2+json";

    /// Reports whether `media_type` is an index or manifest list.
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    /// Reports whether `media_type` is an image manifest.
    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }
}

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    #[serde(default)]
    pub media_type: String,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of the image a manifest descriptor in an index points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
}

/// The `platform` object of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Architecture variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl DescriptorPlatform {
    /// Returns the normalised [`Platform`].
    pub fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
        .normalize()
    }
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest's own media type, when it states one.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// The index's own media type, when it states one.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// Picks the index entry for `wanted`: an exact variant match first, then an entry without a
/// variant (or a request without one).
// Compat: containerd platforms.Only, simplified: no arm64→arm or amd64 variant fallbacks.
pub fn select_platform<'a>(entries: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    let wanted = wanted.clone().normalize();
    let candidates = || {
        entries.iter().filter_map(|entry| {
            let platform = entry.platform.as_ref()?.to_platform();
            (platform.os == wanted.os && platform.architecture == wanted.architecture)
                .then_some((entry, platform))
        })
    };
    candidates()
        .find(|(_, platform)| platform.variant == wanted.variant)
        .or_else(|| {
            candidates()
                .find(|(_, platform)| platform.variant.is_none() || wanted.variant.is_none())
        })
        .map(|(entry, _)| entry)
}

/// Lists the platforms of an index, for an error message.
pub(crate) fn platform_list(entries: &[Descriptor]) -> String {
    let list: Vec<String> = entries
        .iter()
        .filter_map(|entry| entry.platform.as_ref())
        .map(|platform| platform.to_platform().to_string())
        .collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str, byte: u8) -> Descriptor {
        let parsed: Platform = platform.parse().expect("platform");
        Descriptor {
            media_type: media_types::OCI_MANIFEST.to_owned(),
            digest: Digest::from_bytes([byte; 32]),
            size: 1,
            annotations: BTreeMap::new(),
            platform: Some(DescriptorPlatform {
                architecture: parsed.architecture,
                os: parsed.os,
                variant: parsed.variant,
            }),
        }
    }

    #[test]
    fn platform_selection_prefers_exact_variants() {
        let entries = [
            entry("linux/amd64", 1),
            entry("linux/arm/v6", 2),
            entry("linux/arm/v7", 3),
            entry("linux/arm64", 4),
        ];
        let pick = |p: &str| {
            select_platform(&entries, &p.parse().expect("platform")).map(|d| d.digest.as_bytes()[0])
        };
        assert_eq!(pick("linux/arm/v7"), Some(3));
        assert_eq!(pick("linux/arm/v6"), Some(2));
        assert_eq!(pick("linux/arm64/v8"), Some(4));
        assert_eq!(pick("linux/amd64"), Some(1));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(
            platform_list(&entries),
            "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64"
        );
    }
}
