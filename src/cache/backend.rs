//! One `cache-to` / `cache-from` entry, checked and opened: which [`Remote`] it names, under
//! which manifest name, and how an export writes it. Every type either opens here or fails
//! naming the supported ones. Part of `cache`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::buildflags::{CacheEntry, parse_bool};
use crate::cache::local_layout::LocalLayout;
use crate::cache::registry::RegistryCache;
use crate::cache::remote::Remote;

/// The cache types that work, for messages.
pub const SUPPORTED: &str = "`local`, `registry`, `inline`";

/// Whether an entry is read (`cache-from`) or written (`cache-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `cache-from`.
    Import,
    /// `cache-to`.
    Export,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Self::Import => "cache-from",
            Self::Export => "cache-to",
        }
    }
}

/// Which records an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The final result's chain only (BuildKit's default).
    Min,
    /// Every step of the target's graph, including stages not in the final image.
    Max,
}

/// How an export is written, from the entry's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// `mode=`.
    pub mode: Mode,
    /// `image-manifest=` (default `true`, as BuildKit since v0.21).
    pub image_manifest: bool,
    /// `oci-mediatypes=` (default `true`).
    pub oci_media_types: bool,
    /// `ignore-error=`: a failed export is a warning.
    pub ignore_error: bool,
    /// The compression attributes (`compression`, `compression-level`,
    /// `force-compression`, `oci-mediatypes`), for the layer writer, which checks them.
    pub layer_attrs: BTreeMap<String, String>,
}

/// Where an entry's cache lives.
#[derive(Clone)]
pub enum Location {
    /// A [`Remote`] holding the cache under a manifest name.
    Remote {
        /// The backend.
        remote: Arc<dyn Remote>,
        /// The manifest name (a tag, or a digest for `cache-from type=local,digest=`).
        name: String,
    },
    /// `type=inline`: the exported image's config carries the cache.
    Inline,
}

/// An opened entry.
#[derive(Clone)]
pub struct Backend {
    /// The entry's type.
    pub kind: String,
    /// Where it lives.
    pub location: Location,
    /// How an export writes it (defaults for an import).
    pub options: ExportOptions,
}

impl Backend {
    /// Describes the entry for progress and warnings (`type=local,dest=/cache`).
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Remote { remote, .. } => remote.describe(),
            Location::Inline => "type=inline".to_owned(),
        }
    }
}

/// What an entry's backend needs from the build.
pub struct OpenContext<'a> {
    /// The state root (registry blobs pass through its content store).
    pub root: &'a Path,
    /// Registry settings (auth, mirrors, plain HTTP).
    pub registry: &'a crate::registry::ClientOptions,
    /// Where relative `dest=`/`src=` paths start.
    pub cwd: &'a Path,
}

/// Why an entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The type is not one bake knows.
    #[error("unsupported cache type `{kind}`; supported types are {SUPPORTED}")]
    UnknownType {
        /// The type given.
        kind: String,
    },
    /// The type is known but has no backend here.
    #[error("cache type `{kind}` is not supported{why}; supported types are {SUPPORTED}")]
    NotSupported {
        /// The type given.
        kind: String,
        /// Why, with a leading separator.
        why: &'static str,
    },
    /// `inline` was given to `cache-from`.
    #[error(
        "`type=inline` cannot be imported; import an inline cache with `type=registry,ref=<image>`"
    )]
    InlineImport,
    /// A required attribute is missing.
    #[error("`{attribute}` of `type={kind}` needs `{key}=`")]
    Missing {
        /// `cache-to` or `cache-from`.
        attribute: &'static str,
        /// The type.
        kind: String,
        /// The missing key.
        key: &'static str,
    },
    /// An attribute has a bad value.
    #[error("invalid `{key}={value}`: {reason}")]
    Bad {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// The registry client could not be made.
    #[error("cannot reach the cache registry")]
    Registry(#[source] crate::registry::Error),
}

/// The attributes each type acts on; anything else is named in a warning.
fn known(kind: &str, direction: Direction) -> &'static [&'static str] {
    match (kind, direction) {
        ("local", Direction::Import) => &["src", "tag", "digest"],
        ("local", Direction::Export) => &[
            "dest",
            "tag",
            "mode",
            "image-manifest",
            "oci-mediatypes",
            "compression",
            "compression-level",
            "force-compression",
            "ignore-error",
        ],
        ("registry", Direction::Import) => &["ref"],
        ("registry", Direction::Export) => &[
            "ref",
            "mode",
            "image-manifest",
            "oci-mediatypes",
            "compression",
            "compression-level",
            "force-compression",
            "ignore-error",
        ],
        ("inline", _) => &["mode"],
        _ => &[],
    }
}

/// The attributes of `entry` its backend does not act on, so the caller can warn.
pub fn unknown_attributes(entry: &CacheEntry, direction: Direction) -> Vec<String> {
    // A type without a backend fails as a whole; its attributes need no warning of their own.
    if !matches!(entry.kind.as_str(), "local" | "registry" | "inline") {
        return Vec::new();
    }
    let known = known(&entry.kind, direction);
    entry
        .attrs
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .cloned()
        .collect()
}

/// Opens `entry` for `direction`, checking its type and attributes; nothing is read or
/// written yet.
pub fn open(
    entry: &CacheEntry,
    direction: Direction,
    context: &OpenContext<'_>,
) -> Result<Backend, EntryError> {
    let options = export_options(entry)?;
    let attribute = direction.attribute();
    let missing = |key| EntryError::Missing {
        attribute,
        kind: entry.kind.clone(),
        key,
    };
    let location = match entry.kind.as_str() {
        "local" => {
            let key = match direction {
                Direction::Import => "src",
                Direction::Export => "dest",
            };
            let dir = entry
                .attrs
                .get(key)
                .filter(|d| !d.is_empty())
                .ok_or_else(|| missing(key))?;
            let tag = entry.attrs.get("tag").filter(|t| !t.is_empty());
            let digest = entry.attrs.get("digest").filter(|d| !d.is_empty());
            let name = match (direction, digest) {
                (Direction::Import, Some(digest)) => {
                    digest
                        .parse::<crate::digest::Digest>()
                        .map_err(|_| EntryError::Bad {
                            key: "digest".to_owned(),
                            value: digest.clone(),
                            reason: "expected `sha256:<64 hex digits>`".to_owned(),
                        })?;
                    digest.clone()
                }
                _ => tag.cloned().unwrap_or_else(|| "latest".to_owned()),
            };
            let dir = absolute(context.cwd, dir);
            let layout = match direction {
                Direction::Import => LocalLayout::source(dir),
                Direction::Export => LocalLayout::new(dir),
            };
            Location::Remote {
                remote: Arc::new(layout),
                name,
            }
        }
        "registry" => {
            let text = entry
                .attrs
                .get("ref")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| missing("ref"))?;
            let reference: crate::registry::Reference =
                text.parse()
                    .map_err(|e: crate::registry::ParseReferenceError| EntryError::Bad {
                        key: "ref".to_owned(),
                        value: text.clone(),
                        reason: e.reason.to_owned(),
                    })?;
            let name = reference.object();
            let client = crate::registry::Client::new(context.registry.clone())
                .map_err(EntryError::Registry)?;
            Location::Remote {
                remote: Arc::new(RegistryCache::new(
                    client,
                    reference,
                    context.root.to_path_buf(),
                )),
                name,
            }
        }
        "inline" if direction == Direction::Import => return Err(EntryError::InlineImport),
        "inline" => Location::Inline,
        "s3" | "gha" => {
            return Err(EntryError::NotSupported {
                kind: entry.kind.clone(),
                why: " in this build of bake",
            });
        }
        "azblob" => {
            return Err(EntryError::NotSupported {
                kind: entry.kind.clone(),
                why: ": no Azure Blob Storage emulator runs in bake's CI, so the backend is untested and left out",
            });
        }
        other => {
            return Err(EntryError::UnknownType {
                kind: other.to_owned(),
            });
        }
    };
    Ok(Backend {
        kind: entry.kind.clone(),
        location,
        options,
    })
}

fn absolute(cwd: &Path, dir: &str) -> PathBuf {
    let path = Path::new(dir);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

fn export_options(entry: &CacheEntry) -> Result<ExportOptions, EntryError> {
    let flag = |key: &str, default: bool| -> Result<bool, EntryError> {
        match entry.attrs.get(key) {
            None => Ok(default),
            // Compat: buildkit treats a key given without a value as true.
            Some(value) if value.is_empty() => Ok(true),
            Some(value) => parse_bool(value).ok_or_else(|| EntryError::Bad {
                key: key.to_owned(),
                value: value.clone(),
                reason: "expected `true` or `false`".to_owned(),
            }),
        }
    };
    let mode = match entry.attrs.get("mode").map(String::as_str) {
        None | Some("" | "min") => Mode::Min,
        Some("max") => Mode::Max,
        Some(other) => {
            return Err(EntryError::Bad {
                key: "mode".to_owned(),
                value: other.to_owned(),
                reason: "expected `min` or `max`".to_owned(),
            });
        }
    };
    let oci_media_types = flag("oci-mediatypes", true)?;
    let image_manifest = flag("image-manifest", true)?;
    if image_manifest && !oci_media_types && entry.attrs.contains_key("image-manifest") {
        // Compat: buildkit refuses an image manifest with Docker media types.
        return Err(EntryError::Bad {
            key: "image-manifest".to_owned(),
            value: "true".to_owned(),
            reason: "an image manifest needs `oci-mediatypes=true`".to_owned(),
        });
    }
    let layer_attrs: BTreeMap<String, String> = entry
        .attrs
        .iter()
        .filter(|(key, _)| {
            matches!(
                key.as_str(),
                "compression" | "compression-level" | "force-compression" | "oci-mediatypes"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(ExportOptions {
        mode,
        // Docker media types have no image-manifest form: an index it is.
        image_manifest: image_manifest && oci_media_types,
        oci_media_types,
        ignore_error: flag("ignore-error", false)?,
        layer_attrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> CacheEntry {
        CacheEntry::parse_list(text).unwrap().remove(0)
    }

    fn open_entry(text: &str, direction: Direction) -> Result<Backend, EntryError> {
        let registry = crate::registry::ClientOptions::default();
        let context = OpenContext {
            root: Path::new("/nonexistent"),
            registry: &registry,
            cwd: Path::new("/project"),
        };
        open(&entry(text), direction, &context)
    }

    #[test]
    fn unknown_and_unsupported_types_name_the_supported_ones() {
        for text in [
            "type=nosuch",
            "type=azblob,account_url=x",
            "type=s3,bucket=b",
        ] {
            let error = open_entry(text, Direction::Export)
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains(SUPPORTED), "{error}");
        }
        assert!(matches!(
            open_entry("type=inline", Direction::Import),
            Err(EntryError::InlineImport)
        ));
    }

    #[test]
    fn local_entries_need_their_directory_and_default_to_latest() {
        assert!(matches!(
            open_entry("type=local", Direction::Export),
            Err(EntryError::Missing { key: "dest", .. })
        ));
        let backend = open_entry("type=local,dest=cache,mode=max", Direction::Export).unwrap();
        assert_eq!(backend.options.mode, Mode::Max);
        assert!(backend.options.image_manifest);
        let Location::Remote { remote, name } = backend.location else {
            panic!("not a remote");
        };
        assert_eq!(name, "latest");
        assert_eq!(remote.describe(), "type=local,dest=/project/cache");
        assert!(open_entry("type=local,src=c,digest=nope", Direction::Import).is_err());
    }

    #[test]
    fn bad_options_are_errors_and_docker_types_write_an_index() {
        for text in [
            "type=local,dest=c,mode=most",
            "type=local,dest=c,ignore-error=perhaps",
            "type=local,dest=c,oci-mediatypes=false,image-manifest=true",
        ] {
            assert!(open_entry(text, Direction::Export).is_err(), "{text}");
        }
        let docker = open_entry("type=local,dest=c,oci-mediatypes=false", Direction::Export)
            .unwrap()
            .options;
        assert!(!docker.image_manifest);
        let warned = unknown_attributes(&entry("type=local,dest=c,reset=true"), Direction::Export);
        assert_eq!(warned, ["reset"]);
    }
}
