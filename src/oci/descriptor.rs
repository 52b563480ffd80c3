//! Content descriptors and the platform object of index entries. Part of `oci`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

/// The annotation that carries a manifest's tag in a layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A content descriptor: what a manifest or index points at.
// Compat: ocispecs v1.Descriptor: fields in Go's order, empty ones omitted as Go omits them,
// so the JSON we write matches BuildKit's byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced blob.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Other places the blob may be fetched from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Annotations of the reference (tags of a layout's `index.json` live here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of the image a manifest descriptor in an index points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// The artifact type of an artifact manifest it points to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// Describes a blob by media type, digest and size, with nothing else set.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// The `platform` object of a descriptor, as the image spec writes it.
// Compat: ocispecs v1.Platform, fields in Go's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// Operating system version (Windows images).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required operating system features (Windows images).
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// Architecture variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl DescriptorPlatform {
    /// Returns the platform exactly as written (not normalised), for matching.
    pub fn as_written(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }

    /// Returns the normalised [`Platform`].
    pub fn to_platform(&self) -> Platform {
        self.as_written().normalize()
    }
}

impl From<&Platform> for DescriptorPlatform {
    fn from(platform: &Platform) -> Self {
        Self {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            os_version: None,
            os_features: Vec::new(),
            variant: platform.variant.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields_follow_go_order() {
        let mut descriptor = Descriptor::new("m", Digest::from_bytes([0; 32]), 1);
        descriptor
            .annotations
            .insert("a".to_owned(), "b".to_owned());
        descriptor.platform = Some(DescriptorPlatform::from(&Platform {
            os: "linux".to_owned(),
            architecture: "amd64".to_owned(),
            variant: None,
        }));
        let zeros = "0".repeat(64);
        assert_eq!(
            serde_json::to_string(&descriptor).expect("json"),
            format!(
                r#"{{"mediaType":"m","digest":"sha256:{zeros}","size":1,"annotations":{{"a":"b"}},"platform":{{"architecture":"amd64","os":"linux"}}}}"#
            )
        );
    }

    #[test]
    fn optional_spec_fields_round_trip_with_their_spec_names() {
        let zeros = "0".repeat(64);
        let json = format!(
            r#"{{"mediaType":"m","digest":"sha256:{zeros}","size":2,"urls":["https://u"],"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763","os.features":["win32k"]}},"artifactType":"application/x"}}"#
        );
        let descriptor: Descriptor = serde_json::from_str(&json).expect("parses");
        let platform = descriptor.platform.as_ref().expect("platform");
        assert_eq!(platform.os_version.as_deref(), Some("10.0.17763"));
        assert_eq!(platform.os_features, ["win32k"]);
        assert_eq!(descriptor.artifact_type.as_deref(), Some("application/x"));
        assert_eq!(serde_json::to_string(&descriptor).expect("json"), json);
    }
}
