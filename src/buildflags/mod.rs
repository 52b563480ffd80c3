//! Typed CSV specs for `output`, `cache-from`/`cache-to`, `secret`, `ssh` and `attest`, as
//! buildx's `util/buildflags` parses them, plus the flat JSON form `--print` shows, and
//! what a `secret` or `ssh` entry names on this host (shared by both back ends). Leaf.
//!
//! Every spec can be written as a CSV string (`type=local,dest=out`) or, in bake files, as
//! an object (`{ type = "local", dest = "out" }`); both go through the same key handling.
//! The limits of RUN steps (`shm-size`, `ulimits`, `resources`) are parsed here too, as
//! buildx's `dockeropts` parses them.

mod csv;
mod error;
mod limits;
mod secret;
mod ssh;
mod unavailable;

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

pub use self::csv::split_fields;
pub use self::error::{Error, Result};
pub use self::limits::{ULIMIT_NAMES, Ulimit, check_cpuset, ram_in_bytes};
pub use self::secret::Secret;
pub use self::ssh::{DEFAULT_SSH_ID, Ssh};
pub use self::unavailable::Unavailable;

fn key_values(input: &str) -> Result<Vec<(String, String)>> {
    split_fields(input)?
        .into_iter()
        .map(|field| match field.split_once('=') {
            Some((key, value)) => Ok((key.trim().to_lowercase(), value.to_owned())),
            None => Err(Error::NotKeyValue { field }),
        })
        .collect()
}

/// Parses Go's `strconv.ParseBool` spellings.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One exporter (`output`): a type plus attributes, `dest` among them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExportEntry {
    /// The exporter type (`local`, `tar`, `oci`, `docker`, `image`, `registry`, `cacheonly`).
    pub kind: String,
    /// Where the exporter writes (`dest=`), empty when not set.
    pub destination: String,
    /// Every other attribute, lowercased keys.
    pub attrs: BTreeMap<String, String>,
}

impl ExportEntry {
    /// Parses an `--output` value; a bare path means `type=local,dest=<path>` and `-` means
    /// a tar stream on stdout.
    // Compat: buildx ExportEntry.UnmarshalText (util/buildflags/export.go).
    pub fn parse(input: &str) -> Result<Self> {
        let fields = split_fields(input)?;
        if fields.len() == 1 && fields[0] == input && !input.starts_with("type=") {
            let kind = if input == "-" { "tar" } else { "local" };
            return Ok(Self {
                kind: kind.to_owned(),
                destination: input.to_owned(),
                attrs: BTreeMap::new(),
            });
        }
        Self::from_pairs(input, key_values(input)?)
    }

    /// Builds an entry from already split `key=value` pairs (the object form).
    pub fn from_pairs(input: &str, pairs: Vec<(String, String)>) -> Result<Self> {
        let mut entry = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "type" => entry.kind = value,
                "dest" => entry.destination = value,
                _ => {
                    entry.attrs.insert(key, value);
                }
            }
        }
        if entry.kind.is_empty() {
            return Err(Error::MissingType {
                input: input.to_owned(),
            });
        }
        Ok(entry)
    }
}

impl Serialize for ExportEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut flat = self.attrs.clone();
        flat.insert("type".to_owned(), self.kind.clone());
        if !self.destination.is_empty() {
            flat.insert("dest".to_owned(), self.destination.clone());
        }
        flat.serialize(serializer)
    }
}

/// One cache import or export (`cache-from`, `cache-to`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheEntry {
    /// The backend type (`registry`, `local`, `inline`, `gha`, `s3`, `azblob`).
    pub kind: String,
    /// Every other attribute, lowercased keys.
    pub attrs: BTreeMap<String, String>,
}

impl CacheEntry {
    /// Parses one list element; a bare reference (or a comma list of them) means
    /// `type=registry,ref=<ref>` each. Empty input gives no entry.
    // Compat: buildx ParseCacheEntry / CacheOptionsEntry.UnmarshalText (util/buildflags/cache.go).
    pub fn parse_list(input: &str) -> Result<Vec<Self>> {
        if input.trim().is_empty() {
            return Ok(Vec::new());
        }
        if !input.contains('=') {
            return Ok(split_fields(input)?
                .into_iter()
                .filter(|field| !field.is_empty())
                .map(|reference| Self {
                    kind: "registry".to_owned(),
                    attrs: BTreeMap::from([("ref".to_owned(), reference)]),
                })
                .collect());
        }
        Ok(vec![Self::from_pairs(input, key_values(input)?)?])
    }

    /// Builds an entry from `key=value` pairs (the object form).
    pub fn from_pairs(input: &str, pairs: Vec<(String, String)>) -> Result<Self> {
        let mut entry = Self::default();
        for (key, value) in pairs {
            if key == "type" {
                entry.kind = value;
            } else {
                entry.attrs.insert(key, value);
            }
        }
        if entry.kind.is_empty() {
            return Err(Error::MissingType {
                input: input.to_owned(),
            });
        }
        Ok(entry)
    }
}

impl Serialize for CacheEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut flat = self.attrs.clone();
        flat.insert("type".to_owned(), self.kind.clone());
        flat.serialize(serializer)
    }
}

/// An attestation request (`attest`): `type=sbom|provenance`, optionally disabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attest {
    /// `sbom` or `provenance`.
    pub kind: String,
    /// Whether this attestation is switched off.
    pub disabled: bool,
    /// Every other attribute, lowercased keys.
    pub attrs: BTreeMap<String, String>,
}

impl Attest {
    /// Parses `type=sbom,generator=...` / `type=provenance,mode=max` / `disabled=true`.
    // Compat: buildx Attest.UnmarshalText (util/buildflags/attests.go).
    pub fn parse(input: &str) -> Result<Self> {
        Self::from_pairs(input, key_values(input)?)
    }

    /// Builds an attestation from `key=value` pairs (the object form).
    pub fn from_pairs(input: &str, pairs: Vec<(String, String)>) -> Result<Self> {
        let mut attest = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "type" => attest.kind = value,
                "disabled" => {
                    attest.disabled = parse_bool(&value).ok_or_else(|| Error::BadValue {
                        key: key.clone(),
                        value: value.clone(),
                        reason: "expected a boolean".to_owned(),
                    })?;
                }
                _ => {
                    attest.attrs.insert(key, value);
                }
            }
        }
        if attest.kind.is_empty() {
            return Err(Error::MissingType {
                input: input.to_owned(),
            });
        }
        Ok(attest)
    }
}

impl Serialize for Attest {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // Go marshals a map here, so keys come out sorted with `disabled` and `type` among them.
        let mut keys: Vec<&str> = self.attrs.keys().map(String::as_str).collect();
        keys.push("type");
        if self.disabled {
            keys.push("disabled");
        }
        keys.sort_unstable();
        let mut out = serializer.serialize_map(Some(keys.len()))?;
        for key in keys {
            match key {
                "type" => out.serialize_entry(key, &self.kind)?,
                "disabled" => out.serialize_entry(key, &true)?,
                _ => out.serialize_entry(key, &self.attrs[key])?,
            }
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_output_path_is_a_local_export() {
        let entry = ExportEntry::parse("out/dir").unwrap();
        assert_eq!(entry.kind, "local");
        assert_eq!(entry.destination, "out/dir");
        assert_eq!(ExportEntry::parse("-").unwrap().kind, "tar");
    }

    #[test]
    fn output_keys_are_lowercased_and_flattened() {
        let entry = ExportEntry::parse("type=image,Name=acme/app,push=true").unwrap();
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"name":"acme/app","push":"true","type":"image"}"#);
    }

    #[test]
    fn output_without_type_is_an_error() {
        assert!(matches!(
            ExportEntry::parse("dest=out,foo=bar"),
            Err(Error::MissingType { .. })
        ));
    }

    #[test]
    fn bare_cache_refs_become_registry_entries() {
        let entries = CacheEntry::parse_list("acme/cache:a,acme/cache:b").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].attrs["ref"], "acme/cache:b");
        assert!(CacheEntry::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn secret_env_type_moves_src_to_env() {
        let secret = Secret::parse("type=env,id=token,src=GITHUB_TOKEN").unwrap();
        assert_eq!(secret.env, "GITHUB_TOKEN");
        assert!(secret.src.is_empty());
        assert!(Secret::parse("id=a,bogus=1").is_err());
        assert!(Secret::parse("id=a,type=magic").is_err());
    }

    #[test]
    fn secret_serializes_in_struct_order() {
        let secret = Secret::parse("env=E,id=x").unwrap();
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            r#"{"id":"x","env":"E"}"#
        );
    }

    #[test]
    fn ssh_splits_paths() {
        let ssh = Ssh::parse("default=a.pem,b.pem");
        assert_eq!(ssh.paths, ["a.pem", "b.pem"]);
        assert_eq!(Ssh::parse("default").paths.len(), 0);
    }

    #[test]
    fn attest_disabled_is_a_bool() {
        let attest = Attest::parse("type=sbom,disabled=true").unwrap();
        assert_eq!(
            serde_json::to_string(&attest).unwrap(),
            r#"{"disabled":true,"type":"sbom"}"#
        );
        assert!(Attest::parse("type=sbom,disabled=maybe").is_err());
    }
}
