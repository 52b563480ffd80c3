//! A target's `annotations` (`[type[,type…]:]key=value`, a type optionally followed by
//! `[os/arch]`) turned into the exporter attributes BuildKit reads
//! (`annotation-manifest[linux/amd64].key`), added to every output as buildx adds them.

use crate::platform::Platform;

/// The four places an annotation can go.
const TYPES: [&str; 4] = [
    "index",
    "index-descriptor",
    "manifest",
    "manifest-descriptor",
];

/// Why an annotation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// No `=` between key and value.
    #[error("invalid annotation `{0}`: expected `key=value`")]
    NotKeyValue(String),
    /// A type that is not one of the four, or malformed brackets.
    #[error(
        "invalid annotation type `{0}`: expected `index`, `index-descriptor`, `manifest` or `manifest-descriptor`, optionally followed by a platform in square brackets"
    )]
    Type(String),
    /// The platform in brackets does not parse.
    #[error("invalid platform `{0}` in annotation `{1}`")]
    Platform(String, String),
    /// Nothing before the `=` once the types are removed.
    #[error("invalid annotation `{0}`: the key is empty")]
    EmptyKey(String),
}

/// Returns the exporter attributes (`annotation…` key, value) for `annotations`, in order;
/// a later duplicate key wins, as in buildx's map.
// Compat: buildx util/buildflags ParseAnnotations and buildkit exptypes AnnotationKey.String
// (the platform is kept only on manifest types).
pub(super) fn exporter_attrs(
    annotations: &[String],
) -> Result<Vec<(String, String)>, AnnotationError> {
    let mut out = Vec::new();
    for annotation in annotations.iter().filter(|a| !a.is_empty()) {
        let (spec, value) = annotation
            .split_once('=')
            .ok_or_else(|| AnnotationError::NotKeyValue(annotation.clone()))?;
        let Some((types, key)) = spec.split_once(':') else {
            if spec.is_empty() {
                return Err(AnnotationError::EmptyKey(annotation.clone()));
            }
            out.push((format!("annotation.{spec}"), value.to_owned()));
            continue;
        };
        if key.is_empty() {
            return Err(AnnotationError::EmptyKey(annotation.clone()));
        }
        for typed in types.split(',') {
            let (kind, platform) = match typed.split_once('[') {
                Some((kind, rest)) => {
                    let platform = rest
                        .strip_suffix(']')
                        .filter(|p| {
                            !p.is_empty()
                                && p.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || "_/-".contains(c))
                        })
                        .ok_or_else(|| AnnotationError::Type(typed.to_owned()))?;
                    let parsed: Platform = platform.parse().map_err(|_| {
                        AnnotationError::Platform(platform.to_owned(), annotation.clone())
                    })?;
                    parsed.check_known(platform).map_err(|_| {
                        AnnotationError::Platform(platform.to_owned(), annotation.clone())
                    })?;
                    (kind, Some(parsed.normalize()))
                }
                None => (typed, None),
            };
            if !TYPES.contains(&kind) {
                return Err(AnnotationError::Type(typed.to_owned()));
            }
            let attr = match (kind, platform) {
                ("manifest" | "manifest-descriptor", Some(platform)) => {
                    format!("annotation-{kind}[{platform}].{key}")
                }
                _ => format!("annotation-{kind}.{key}"),
            };
            out.push((attr, value.to_owned()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[&str]) -> Result<Vec<(String, String)>, AnnotationError> {
        exporter_attrs(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn untyped_typed_and_platform_annotations_become_buildkit_keys() {
        let got = attrs(&[
            "org.opencontainers.image.title=app",
            "index,manifest:org.opencontainers.image.version=1.2",
            "manifest[linux/arm64/v8]:arch=arm",
            "index[linux/amd64]:dropped.platform=x",
            "manifest-descriptor:k=a=b",
        ])
        .expect("valid");
        assert_eq!(
            got,
            [
                ("annotation.org.opencontainers.image.title", "app"),
                ("annotation-index.org.opencontainers.image.version", "1.2"),
                (
                    "annotation-manifest.org.opencontainers.image.version",
                    "1.2"
                ),
                ("annotation-manifest[linux/arm64].arch", "arm"),
                ("annotation-index.dropped.platform", "x"),
                ("annotation-manifest-descriptor.k", "a=b"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn malformed_annotations_are_errors() {
        assert_eq!(
            attrs(&["novalue"]),
            Err(AnnotationError::NotKeyValue("novalue".into()))
        );
        assert_eq!(
            attrs(&["config:k=v"]),
            Err(AnnotationError::Type("config".into()))
        );
        assert_eq!(
            attrs(&["manifest[linux/amd64:k=v"]),
            Err(AnnotationError::Type("manifest[linux/amd64".into()))
        );
        assert!(matches!(
            attrs(&["manifest[plan9/vax]:k=v"]),
            Err(AnnotationError::Platform(..))
        ));
        assert_eq!(
            attrs(&["manifest:=v"]),
            Err(AnnotationError::EmptyKey("manifest:=v".into()))
        );
        assert!(attrs(&[""]).expect("empty entries are skipped").is_empty());
    }
}
