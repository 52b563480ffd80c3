//! Image manifests and indexes (OCI and Docker schema 2, told apart by media type). Part of
//! `oci`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::Descriptor;

/// An image manifest (OCI or Docker schema 2).
// Compat: ocispecs v1.Manifest, fields in Go's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    #[serde(default)]
    pub schema_version: u32,
    /// The manifest's own media type; empty when the document does not state one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// The artifact type of an artifact manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (attestations, signatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (or Docker manifest list), and the `index.json` of a layout.
// Compat: ocispecs v1.Index, fields in Go's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    #[serde(default)]
    pub schema_version: u32,
    /// The index's own media type; empty when the document does not state one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// The artifact type of an artifact index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Box<Descriptor>>,
    /// Index annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::oci::media_types;

    #[test]
    fn manifest_fields_follow_go_order_and_omit_empty_ones() {
        let manifest = Manifest {
            schema_version: 2,
            media_type: media_types::OCI_MANIFEST.to_owned(),
            artifact_type: None,
            config: Descriptor::new("c", Digest::from_bytes([1; 32]), 3),
            layers: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        };
        let json = serde_json::to_string(&manifest).expect("json");
        assert!(
            json.starts_with(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"#
            ),
            "{json}"
        );
        assert!(json.ends_with(r#""layers":[]}"#), "{json}");
    }

    #[test]
    fn documents_without_media_type_parse() {
        let index: Index =
            serde_json::from_str(r#"{"schemaVersion":2,"manifests":[]}"#).expect("index parses");
        assert!(index.media_type.is_empty());
        assert_eq!(
            serde_json::to_string(&index).expect("json"),
            r#"{"schemaVersion":2,"manifests":[]}"#
        );
    }
}
