//! The output attributes several exporters read the same way: `source-date-epoch`,
//! `platform-split` and the per-platform directory names.

use std::collections::BTreeMap;

use crate::exporter::error::{Error, Result};
use crate::exporter::options::parse_bool_attr;
use crate::exporter::output::{BuildOutput, ExportContext};
use crate::platform::Platform;

/// Returns the directory name a platform's files go to when a result is split by platform
/// (`linux_amd64`, `linux_arm_v7`).
// Compat: buildkit exporter/local platform-split (platforms.Format with `/` → `_`).
pub fn platform_dir_name(platform: &Platform) -> String {
    platform.to_string().replace('/', "_")
}

/// Returns the `SOURCE_DATE_EPOCH` in force: the `source-date-epoch` attribute, else the
/// context's value.
pub(super) fn source_date_epoch(
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
pub(super) fn platform_split(
    attrs: &BTreeMap<String, String>,
    output: &BuildOutput,
) -> Result<bool> {
    match attrs.get("platform-split") {
        Some(value) => parse_bool_attr("platform-split", value),
        None => Ok(output.platforms.len() > 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            state_dir: None,
        };
        let mut attrs = BTreeMap::new();
        assert_eq!(source_date_epoch(&attrs, &context).expect("epoch"), Some(5));
        attrs.insert("source-date-epoch".to_owned(), "7".to_owned());
        assert_eq!(source_date_epoch(&attrs, &context).expect("epoch"), Some(7));
        attrs.insert("source-date-epoch".to_owned(), "soon".to_owned());
        assert!(source_date_epoch(&attrs, &context).is_err());
    }
}
