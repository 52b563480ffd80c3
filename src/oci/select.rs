//! Choosing the manifest for a platform among the entries of an index: one rule for registry
//! pulls and `oci-layout://` sources alike. Part of `oci`.

use super::descriptor::Descriptor;
use crate::platform::Platform;

/// Picks the index entry for `wanted`: the best-ranked entry by [`Platform::match_rank`]
/// (the exact variant, then an equivalent spelling, then an older variant), the first one in
/// index order among equals. Entries without a platform, and attestation manifests
/// (`unknown/unknown`), are never picked.
// Compat: containerd platforms.Only with images.Manifest's stable sort by the matcher's Less.
pub fn select_platform<'a>(entries: &'a [Descriptor], wanted: &Platform) -> Option<&'a Descriptor> {
    entries
        .iter()
        .filter_map(|entry| {
            let platform = entry.platform.as_ref()?.as_written();
            wanted.match_rank(&platform).map(|rank| (rank, entry))
        })
        // min_by_key keeps the first of equal ranks, so index order breaks ties.
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, entry)| entry)
}

/// Lists the platforms of an index's entries, for an error message (`none` when empty).
pub fn platform_list(entries: &[Descriptor]) -> String {
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
    use crate::digest::Digest;
    use crate::oci::{DescriptorPlatform, media_types};

    /// An index entry for `platform` as written (`os/arch[/variant]`), tagged by `byte`.
    fn entry(platform: &str, byte: u8) -> Descriptor {
        let mut parts = platform.split('/').map(str::to_owned);
        let mut descriptor =
            Descriptor::new(media_types::OCI_MANIFEST, Digest::from_bytes([byte; 32]), 1);
        descriptor.platform = Some(DescriptorPlatform {
            os: parts.next().expect("os"),
            architecture: parts.next().expect("architecture"),
            os_version: None,
            os_features: Vec::new(),
            variant: parts.next(),
        });
        descriptor
    }

    fn pick(entries: &[Descriptor], wanted: &str) -> Option<u8> {
        let wanted: Platform = wanted.parse().expect("platform");
        select_platform(entries, &wanted).map(|d| d.digest.as_bytes()[0])
    }

    #[test]
    fn exact_variant_beats_loose_match_regardless_of_order() {
        let loose_first = [entry("linux/amd64", 1), entry("linux/amd64/v2", 2)];
        let exact_first = [entry("linux/amd64/v2", 2), entry("linux/amd64", 1)];
        assert_eq!(pick(&loose_first, "linux/amd64/v2"), Some(2));
        assert_eq!(pick(&exact_first, "linux/amd64/v2"), Some(2));
        assert_eq!(pick(&exact_first, "linux/amd64"), Some(1));
        let arm = [entry("linux/arm/v6", 6), entry("linux/arm/v7", 7)];
        assert_eq!(pick(&arm, "linux/arm/v7"), Some(7));
        assert_eq!(pick(&arm, "linux/arm/v6"), Some(6));
        assert_eq!(pick(&arm[..1], "linux/arm/v7"), Some(6));
    }

    #[test]
    fn arm64_without_variant_matches_arm64_v8() {
        let entries = [entry("linux/amd64", 1), entry("linux/arm64", 4)];
        assert_eq!(pick(&entries, "linux/arm64/v8"), Some(4));
        assert_eq!(pick(&[entry("linux/arm64/v8", 8)], "linux/arm64"), Some(8));
        let both = [entry("linux/arm64/v8", 8), entry("linux/arm64", 4)];
        assert_eq!(pick(&both, "linux/arm64"), Some(4));
    }

    #[test]
    fn attestation_manifests_are_skipped() {
        let entries = [entry("unknown/unknown", 9), entry("linux/amd64", 1)];
        assert_eq!(pick(&entries, "linux/amd64"), Some(1));
        assert_eq!(pick(&entries[..1], "linux/amd64"), None);
    }

    #[test]
    fn no_match_returns_none() {
        let entries = [entry("linux/amd64", 1), entry("linux/arm/v7", 7)];
        assert_eq!(pick(&entries, "linux/s390x"), None);
        assert_eq!(pick(&entries, "linux/arm/v6"), None);
        assert_eq!(pick(&entries, "windows/amd64"), None);
        assert_eq!(pick(&[], "linux/amd64"), None);
        let mut unlabelled = entry("linux/amd64", 1);
        unlabelled.platform = None;
        assert_eq!(pick(&[unlabelled], "linux/amd64"), None);
        assert_eq!(platform_list(&entries), "linux/amd64, linux/arm/v7");
    }
}
