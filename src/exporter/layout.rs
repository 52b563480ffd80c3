//! The OCI image-spec documents an exporter writes (descriptor, manifest, index), with fields
//! in the order Go's `ocispecs` structs marshal them, so our JSON matches BuildKit's byte for
//! byte where the inputs agree. Part of `exporter`.
//!
//! Diverges: these are our own serde types rather than `oci-spec`'s, whose builders validate
//! media types against OCI only and whose field order differs from Go's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::platform::Platform;

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced blob.
    pub media_type: String,
    /// Its digest, `sha256:<hex>`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// Annotations of the reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<OciPlatform>,
}

/// A platform as the image spec writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Architecture variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<&Platform> for OciPlatform {
    fn from(platform: &Platform) -> Self {
        Self {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone(),
        }
    }
}

/// An image manifest (OCI or Docker schema 2, told apart by `media_type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type.
    pub media_type: String,
    /// The image config.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (or Docker manifest list), and the `index.json` of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    pub media_type: String,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
    /// Index annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields_follow_go_order() {
        let descriptor = Descriptor {
            media_type: "m".to_owned(),
            digest: "sha256:00".to_owned(),
            size: 1,
            annotations: BTreeMap::from([("a".to_owned(), "b".to_owned())]),
            platform: Some(OciPlatform::from(&Platform {
                os: "linux".to_owned(),
                architecture: "amd64".to_owned(),
                variant: None,
            })),
        };
        assert_eq!(
            serde_json::to_string(&descriptor).expect("json"),
            r#"{"mediaType":"m","digest":"sha256:00","size":1,"annotations":{"a":"b"},"platform":{"architecture":"amd64","os":"linux"}}"#
        );
    }
}
