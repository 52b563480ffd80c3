//! Typed source identifiers: a [`SourceOp`]'s `identifier` and `attrs` parsed once into a
//! [`Source`], so the engine, the combiner and the worker match on variants instead of
//! string prefixes. The op keeps the string form, which is what digests and `debug graph`
//! encode.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::graph::op::SourceOp;

/// The local source attribute naming the only paths of the context the build reads (a JSON
/// list), as BuildKit's `local.followpaths`.
pub const FOLLOW_PATHS: &str = "local.followpaths";

/// Which image of an OCI layout a source names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutSelector {
    /// The layout's only image (or the one for the platform).
    Default,
    /// The image whose `org.opencontainers.image.ref.name` annotation is this tag.
    Tag(String),
    /// The image (or index) with this digest.
    Digest(Digest),
}

/// What a source vertex reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local directory given to the build under `name` (`local://name`).
    Local {
        /// The name the build knows the directory by.
        name: String,
        /// The only paths the build reads (`None`: the whole directory).
        follow_paths: Option<Vec<String>>,
    },
    /// A registry image (`docker-image://reference`).
    Image {
        /// The image reference as written after the scheme.
        reference: String,
    },
    /// An image from an OCI layout directory (`oci-layout://dir[:tag|@digest]`).
    OciLayout {
        /// The layout directory.
        dir: String,
        /// Which image of the layout.
        selector: LayoutSelector,
    },
    /// The empty filesystem.
    Scratch,
    /// Another bake target's result (`target://name`), spliced in by the engine.
    Target {
        /// The linked target.
        name: String,
    },
    /// A git repository (`git://host/path`, with `git.*` attributes).
    Git {
        /// The remote as written after the scheme.
        remote: String,
        /// The `git.*` attributes (`git.keepgitdir`, `git.checksum`, ...).
        attrs: BTreeMap<String, String>,
    },
    /// A file over HTTP(S) (with `http.*` attributes).
    Http {
        /// The URL.
        url: String,
        /// The `http.*` attributes (`http.checksum`, `http.filename`, ...).
        attrs: BTreeMap<String, String>,
    },
}

/// Why a source op's identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The identifier has a scheme no source handles.
    #[error(
        "unknown source `{0}`: expected `local://`, `docker-image://`, `oci-layout://`, `git://`, `https://`, `http://`, `target://` or `scratch`"
    )]
    UnknownScheme(String),
    /// An `oci-layout://` reference names an invalid digest.
    #[error("invalid OCI layout reference `{reference}`: {reason}")]
    BadLayoutReference {
        /// The reference after the scheme.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// `local.followpaths` is not a JSON list of strings.
    #[error("invalid `{FOLLOW_PATHS}` attribute `{0}`: expected a JSON list of paths")]
    BadFollowPaths(String),
}

impl Source {
    /// Parses a source op's identifier and attributes.
    pub fn parse(op: &SourceOp) -> Result<Self, SourceError> {
        let identifier = op.identifier.as_str();
        if identifier == "scratch" {
            return Ok(Self::Scratch);
        }
        let Some((scheme, rest)) = identifier.split_once("://") else {
            return Err(SourceError::UnknownScheme(identifier.to_owned()));
        };
        Ok(match scheme {
            "local" => Self::Local {
                name: rest.to_owned(),
                follow_paths: match op.attrs.get(FOLLOW_PATHS) {
                    None => None,
                    Some(json) => Some(
                        serde_json::from_str(json)
                            .map_err(|_| SourceError::BadFollowPaths(json.clone()))?,
                    ),
                },
            },
            "docker-image" => Self::Image {
                reference: rest.to_owned(),
            },
            "oci-layout" => {
                let (dir, selector) = parse_layout_reference(rest)?;
                Self::OciLayout { dir, selector }
            }
            "target" => Self::Target {
                name: rest.to_owned(),
            },
            "git" => Self::Git {
                remote: rest.to_owned(),
                attrs: op.attrs.clone(),
            },
            "http" | "https" => Self::Http {
                url: identifier.to_owned(),
                attrs: op.attrs.clone(),
            },
            _ => return Err(SourceError::UnknownScheme(identifier.to_owned())),
        })
    }

    /// Returns the op this source is written as (the inverse of [`Source::parse`]).
    pub fn to_op(&self) -> SourceOp {
        let mut attrs = BTreeMap::new();
        let identifier = match self {
            Self::Local { name, follow_paths } => {
                if let Some(paths) = follow_paths {
                    attrs.insert(
                        FOLLOW_PATHS.to_owned(),
                        serde_json::to_string(paths).unwrap_or_default(),
                    );
                }
                format!("local://{name}")
            }
            Self::Image { reference } => format!("docker-image://{reference}"),
            Self::OciLayout { dir, selector } => match selector {
                LayoutSelector::Default => format!("oci-layout://{dir}"),
                LayoutSelector::Tag(tag) => format!("oci-layout://{dir}:{tag}"),
                LayoutSelector::Digest(digest) => format!("oci-layout://{dir}@{digest}"),
            },
            Self::Scratch => "scratch".to_owned(),
            Self::Target { name } => format!("target://{name}"),
            Self::Git { remote, attrs: a } => {
                attrs.clone_from(a);
                format!("git://{remote}")
            }
            Self::Http { url, attrs: a } => {
                attrs.clone_from(a);
                url.clone()
            }
        };
        SourceOp { identifier, attrs }
    }

    /// Whether this is a local directory.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local { .. })
    }
}

/// Splits `dir[:tag|@digest]` (the part of an `oci-layout://` identifier after the scheme).
pub fn parse_layout_reference(reference: &str) -> Result<(String, LayoutSelector), SourceError> {
    if let Some((dir, digest)) = reference.rsplit_once('@') {
        let digest = digest
            .parse()
            .map_err(
                |e: crate::digest::ParseDigestError| SourceError::BadLayoutReference {
                    reference: reference.to_owned(),
                    reason: e.to_string(),
                },
            )?;
        return Ok((dir.to_owned(), LayoutSelector::Digest(digest)));
    }
    // A tag follows the last `:` after the last `/`, so `./dir:v1` has one and `/a:b/c` not.
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    Ok(match reference[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (
                reference[..colon].to_owned(),
                LayoutSelector::Tag(reference[colon + 1..].to_owned()),
            )
        }
        None => (reference.to_owned(), LayoutSelector::Default),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(identifier: &str) -> SourceOp {
        SourceOp {
            identifier: identifier.to_owned(),
            attrs: BTreeMap::new(),
        }
    }

    #[test]
    fn every_scheme_round_trips_through_its_op() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for identifier in [
            "scratch".to_owned(),
            "local://context".to_owned(),
            "docker-image://docker.io/library/alpine:3".to_owned(),
            "oci-layout:///abs/layout".to_owned(),
            "oci-layout://./layout:v1".to_owned(),
            format!("oci-layout:///abs/layout@{digest}"),
            "target://base".to_owned(),
            "git://github.com/org/repo.git#main".to_owned(),
            "https://example.com/file.tar.gz".to_owned(),
        ] {
            let source = Source::parse(&op(&identifier)).expect(&identifier);
            assert_eq!(source.to_op().identifier, identifier);
        }
    }

    #[test]
    fn follow_paths_are_typed_and_written_back_as_json() {
        let mut local = op("local://context");
        local
            .attrs
            .insert(FOLLOW_PATHS.to_owned(), r#"["a","b/c"]"#.to_owned());
        let source = Source::parse(&local).expect("local");
        assert_eq!(
            source,
            Source::Local {
                name: "context".to_owned(),
                follow_paths: Some(vec!["a".to_owned(), "b/c".to_owned()]),
            }
        );
        assert_eq!(source.to_op(), local);
        local.attrs.insert(FOLLOW_PATHS.to_owned(), "{".to_owned());
        assert!(matches!(
            Source::parse(&local),
            Err(SourceError::BadFollowPaths(_))
        ));
    }

    #[test]
    fn layout_references_split_tag_and_digest() {
        assert_eq!(
            parse_layout_reference("/a:b/c").expect("plain"),
            ("/a:b/c".to_owned(), LayoutSelector::Default)
        );
        assert_eq!(
            parse_layout_reference("./dir:v1").expect("tag"),
            ("./dir".to_owned(), LayoutSelector::Tag("v1".to_owned()))
        );
        assert!(parse_layout_reference("/dir@sha256:00").is_err());
    }

    #[test]
    fn unknown_schemes_are_errors() {
        assert!(matches!(
            Source::parse(&op("ftp://x")),
            Err(SourceError::UnknownScheme(_))
        ));
        assert!(Source::parse(&op("context")).is_err());
    }
}
