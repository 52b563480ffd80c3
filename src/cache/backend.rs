//! One `cache-to` / `cache-from` entry, checked and opened: which [`Remote`] it names, under
//! which manifest names, and how an export writes it. Every type either opens here or fails
//! naming the supported ones. Part of `cache`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::buildflags::{CacheEntry, parse_bool};
use crate::cache::gha::GhaRemote;
use crate::cache::local_layout::LocalLayout;
use crate::cache::registry::RegistryCache;
use crate::cache::remote::{Remote, RemoteError};
use crate::cache::s3::{EnvLookup, S3Remote};

/// The cache types that work, for messages.
pub const SUPPORTED: &str = "`local`, `registry`, `inline`, `s3`, `gha`";

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

/// Which cache mounts (`RUN --mount=type=cache`) an export carries (`cache-mounts=`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheMounts {
    /// None (the default, and `cache-mounts=false`).
    #[default]
    None,
    /// Every cache mount the target's steps use (`cache-mounts=true`).
    All,
    /// The mounts with these ids (`cache-mounts=id1;id2`), whether the target uses them or not.
    Ids(Vec<String>),
}

impl CacheMounts {
    fn parse(value: Option<&String>) -> Self {
        match value.map(|v| v.trim()) {
            None | Some("false") => Self::None,
            // Compat: buildkit treats a key given without a value as true.
            Some("" | "true") => Self::All,
            Some(list) => Self::Ids(
                list.split(';')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }
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
    /// The cache config is stored bare under each name (`s3`, `gha`), as BuildKit does there.
    pub config_only: bool,
    /// The compression attributes (`compression`, `compression-level`,
    /// `force-compression`, `oci-mediatypes`), for the layer writer, which checks them.
    pub layer_attrs: BTreeMap<String, String>,
    /// `cache-mounts=`: the cache mounts whose contents go with the cache.
    pub cache_mounts: CacheMounts,
}

/// Where an entry's cache lives.
#[derive(Clone)]
pub enum Location {
    /// A [`Remote`] holding the cache under manifest names.
    Remote {
        /// The backend.
        remote: Arc<dyn Remote>,
        /// The manifest names (a tag, a digest for `cache-from type=local,digest=`, an S3
        /// `name`, a GitHub Actions `scope`): an export writes each, an import reads the
        /// first that exists. Only `type=s3` gives several (`name=a;b`).
        names: Vec<String>,
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
    /// The environment the S3 and GitHub Actions backends read (`AWS_*`, `ACTIONS_*`).
    pub env: EnvLookup<'a>,
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
    /// The S3 or GitHub Actions backend refused the entry (its message names the attribute).
    #[error(transparent)]
    Backend(RemoteError),
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
            "cache-mounts",
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
            "cache-mounts",
        ],
        ("inline", _) => &["mode"],
        _ => &[],
    }
}

/// Whether `key`, which the `s3` and `gha` backends accept (they reject unknown ones
/// themselves), does nothing in `direction`.
fn inert(kind: &str, direction: Direction, key: &str) -> bool {
    match direction {
        // The cache config is stored bare: there is no manifest to choose a form for.
        Direction::Export => key == "image-manifest",
        Direction::Import => {
            // The generic attributes all concern exports.
            crate::cache::remote::GENERIC_ATTRIBUTES.contains(&key)
                || (kind == "s3" && matches!(key, "upload_parallelism" | "touch_refresh"))
        }
    }
}

/// The attributes of `entry` its backend does not act on, so the caller can warn.
pub fn unknown_attributes(entry: &CacheEntry, direction: Direction) -> Vec<String> {
    match entry.kind.as_str() {
        "local" | "registry" | "inline" => {
            let known = known(&entry.kind, direction);
            entry
                .attrs
                .keys()
                .filter(|key| !known.contains(&key.as_str()))
                .cloned()
                .collect()
        }
        "s3" | "gha" => entry
            .attrs
            .keys()
            .filter(|key| inert(&entry.kind, direction, key))
            .cloned()
            .collect(),
        // A type without a backend fails as a whole; its attributes need no warning of their own.
        _ => Vec::new(),
    }
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
                names: vec![name],
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
                names: vec![name],
            }
        }
        "inline" if direction == Direction::Import => return Err(EntryError::InlineImport),
        "inline" if options.cache_mounts != CacheMounts::None => {
            return Err(EntryError::Bad {
                key: "cache-mounts".to_owned(),
                value: entry.attrs.get("cache-mounts").cloned().unwrap_or_default(),
                reason: "an inline cache lives in an image config, which has no room for cache mounts; export them with `type=local`, `registry`, `s3` or `gha`".to_owned(),
            });
        }
        "inline" => Location::Inline,
        "s3" => {
            let remote =
                S3Remote::from_attrs(&entry.attrs, context.env).map_err(EntryError::Backend)?;
            Location::Remote {
                names: remote.names().to_vec(),
                remote: Arc::new(remote),
            }
        }
        "gha" => {
            let remote =
                GhaRemote::from_attrs(&entry.attrs, context.env).map_err(EntryError::Backend)?;
            Location::Remote {
                names: remote.names().to_vec(),
                remote: Arc::new(remote),
            }
        }
        "azblob" => {
            return Err(EntryError::NotSupported {
                kind: entry.kind.clone(),
                why: ": no Azure Blob Storage emulator runs in bake's CI (Azurite needs npm), so the backend is untested and left out",
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
    let config_only = matches!(entry.kind.as_str(), "s3" | "gha");
    if image_manifest
        && !oci_media_types
        && !config_only
        && entry.attrs.contains_key("image-manifest")
    {
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
        config_only,
        layer_attrs,
        cache_mounts: CacheMounts::parse(entry.attrs.get("cache-mounts")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> CacheEntry {
        CacheEntry::parse_list(text).unwrap().remove(0)
    }

    fn open_with(
        text: &str,
        direction: Direction,
        env: EnvLookup<'_>,
    ) -> Result<Backend, EntryError> {
        let registry = crate::registry::ClientOptions::default();
        let context = OpenContext {
            root: Path::new("/nonexistent"),
            registry: &registry,
            cwd: Path::new("/project"),
            env,
        };
        open(&entry(text), direction, &context)
    }

    fn open_entry(text: &str, direction: Direction) -> Result<Backend, EntryError> {
        open_with(text, direction, &|_| None)
    }

    #[test]
    fn unknown_and_unsupported_types_name_the_supported_ones() {
        for text in ["type=nosuch", "type=azblob,account_url=x"] {
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
        let Location::Remote { remote, names } = backend.location else {
            panic!("not a remote");
        };
        assert_eq!(names, ["latest"]);
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

    #[test]
    fn cache_mounts_are_all_some_or_none_and_refused_on_inline() {
        let mounts = |text: &str| {
            open_entry(text, Direction::Export)
                .unwrap()
                .options
                .cache_mounts
        };
        assert_eq!(mounts("type=local,dest=c"), CacheMounts::None);
        assert_eq!(
            mounts("type=local,dest=c,cache-mounts=true"),
            CacheMounts::All
        );
        assert_eq!(
            mounts("type=local,dest=c,cache-mounts=false"),
            CacheMounts::None
        );
        assert_eq!(
            mounts("type=registry,ref=r/c,cache-mounts=go; npm"),
            CacheMounts::Ids(vec!["go".to_owned(), "npm".to_owned()])
        );
        let error = open_entry("type=inline,cache-mounts=true", Direction::Export)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("cache-mounts"), "{error}");
        assert!(open_entry("type=inline,cache-mounts=false", Direction::Export).is_ok());
        assert!(
            unknown_attributes(
                &entry("type=local,dest=c,cache-mounts=true"),
                Direction::Export
            )
            .is_empty()
        );
        assert_eq!(
            unknown_attributes(
                &entry("type=local,src=c,cache-mounts=true"),
                Direction::Import
            ),
            ["cache-mounts"]
        );
        let s3 = entry("type=s3,bucket=b,region=r,cache-mounts=true");
        assert!(unknown_attributes(&s3, Direction::Export).is_empty());
        assert_eq!(unknown_attributes(&s3, Direction::Import), ["cache-mounts"]);
    }

    #[test]
    fn s3_entries_open_with_every_name_and_store_the_config_bare() {
        let backend = open_entry(
            "type=s3,bucket=b,region=r,name=main;pr-1,mode=max,image-manifest=true",
            Direction::Export,
        )
        .unwrap();
        assert!(backend.options.config_only);
        assert_eq!(backend.options.mode, Mode::Max);
        let Location::Remote { remote, names } = &backend.location else {
            panic!("not a remote");
        };
        assert_eq!(names, &["main", "pr-1"]);
        assert_eq!(
            remote.describe(),
            "type=s3,bucket=b,region=r,name=main;pr-1"
        );
        // The region may come from the environment the context gives.
        let env = |key: &str| (key == "AWS_REGION").then(|| "eu-west-3".to_owned());
        let backend = open_with("type=s3,bucket=b", Direction::Import, &env).unwrap();
        assert!(backend.describe().contains("region=eu-west-3"));

        let error = open_entry("type=s3,bucket=b,region=r,nosuch=1", Direction::Export)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("unknown attribute `nosuch`"), "{error}");
        assert!(open_entry("type=s3,region=r", Direction::Export).is_err());

        let export = entry("type=s3,bucket=b,image-manifest=true,mode=max,touch_refresh=1h");
        assert_eq!(
            unknown_attributes(&export, Direction::Export),
            ["image-manifest"]
        );
        assert_eq!(
            unknown_attributes(&export, Direction::Import),
            ["image-manifest", "mode", "touch_refresh"]
        );
    }

    #[test]
    fn gha_entries_open_under_their_scope_from_the_runner_environment() {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            engine.encode("{}"),
            engine.encode(r#"{"ac":"[{\"Scope\":\"refs/heads/main\",\"Permission\":3}]"}"#)
        );
        let env = move |key: &str| match key {
            "ACTIONS_RUNTIME_TOKEN" => Some(token.clone()),
            "ACTIONS_RESULTS_URL" => Some("http://127.0.0.1:1/".to_owned()),
            "ACTIONS_CACHE_SERVICE_V2" => Some("true".to_owned()),
            _ => None,
        };
        let backend = open_with("type=gha,scope=app,mode=max", Direction::Export, &env).unwrap();
        assert!(backend.options.config_only);
        assert_eq!(backend.describe(), "type=gha,scope=app,version=2");
        let Location::Remote { names, .. } = &backend.location else {
            panic!("not a remote");
        };
        assert_eq!(names, &["app"]);
        let error = open_entry("type=gha,scope=app", Direction::Import)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("no token"), "{error}");
        assert_eq!(
            unknown_attributes(&entry("type=gha,mode=max,timeout=1m"), Direction::Import),
            ["mode"]
        );
    }
}
