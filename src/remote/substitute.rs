//! Named image contexts for a Dockerfile front end that predates them (the one built into
//! Docker Engine before BuildKit v0.11 ignores `context:NAME` attributes): the Dockerfile is
//! rewritten so that `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME` name the
//! image directly. Part of `remote`.

use std::collections::BTreeMap;
use std::ops::Range;

/// Returns `text` with every reference to a context of `images` (name → image reference)
/// replaced by the image; an error names a use the rewrite cannot express.
// Compat: buildkit frontend/dockerfile/dockerfile2llb: a named context replaces the base of
// `FROM NAME` and the source of `--from=NAME` when no earlier stage has that name.
pub(crate) fn substitute(
    text: &str,
    images: &BTreeMap<String, String>,
) -> std::result::Result<String, String> {
    let dockerfile = parse_dockerfile::parse(text).map_err(|error| error.to_string())?;
    let mut stages: Vec<String> = Vec::new();
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let image_of = |name: &str, stages: &[String]| {
        if stages.iter().any(|stage| stage.eq_ignore_ascii_case(name)) {
            return None;
        }
        images.get(name).cloned()
    };
    for instruction in &dockerfile.instructions {
        match instruction {
            parse_dockerfile::Instruction::From(from) => {
                if let Some(image) = image_of(&from.image.value, &stages) {
                    edits.push((from.image.span.clone(), image));
                }
                if let Some((_, name)) = &from.as_ {
                    if images.contains_key(name.value.as_ref()) {
                        // A named context that replaces a whole stage changes what the
                        // stage's own instructions mean: not something a rewrite can say.
                        return Err(format!(
                            "the context `{}` replaces a stage of the Dockerfile",
                            name.value
                        ));
                    }
                    stages.push(name.value.to_string());
                }
            }
            parse_dockerfile::Instruction::Copy(copy) => {
                for flag in &copy.options {
                    if flag.name.value == "from"
                        && let Some(value) = &flag.value
                        && let Some(image) = image_of(&value.value, &stages)
                    {
                        edits.push((value.span.clone(), image));
                    }
                }
            }
            parse_dockerfile::Instruction::Run(run) => {
                for flag in &run.options {
                    if flag.name.value == "mount"
                        && let Some(value) = &flag.value
                    {
                        let fields: Vec<String> = value
                            .value
                            .split(',')
                            .map(|field| match field.split_once('=') {
                                Some((key, source))
                                    if key.trim().eq_ignore_ascii_case("from")
                                        && image_of(source.trim(), &stages).is_some() =>
                                {
                                    let image = image_of(source.trim(), &stages)
                                        .expect("checked in the guard");
                                    format!("{key}={image}")
                                }
                                _ => field.to_owned(),
                            })
                            .collect();
                        let joined = fields.join(",");
                        if joined != value.value {
                            edits.push((value.span.clone(), joined));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_owned();
    for (span, replacement) in edits {
        out.replace_range(span, &replacement);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> BTreeMap<String, String> {
        BTreeMap::from([("base".to_owned(), "bake-internal/link:1".to_owned())])
    }

    #[test]
    fn from_copy_and_mount_references_name_the_image() {
        let text = "FROM --platform=$BUILDPLATFORM base AS build\nRUN --mount=type=bind,from=base,target=/b true\nFROM base\nCOPY --from=base /x /y\nCOPY --from=build /z /z\n";
        assert_eq!(
            substitute(text, &images()).unwrap(),
            "FROM --platform=$BUILDPLATFORM bake-internal/link:1 AS build\nRUN --mount=type=bind,from=bake-internal/link:1,target=/b true\nFROM bake-internal/link:1\nCOPY --from=bake-internal/link:1 /x /y\nCOPY --from=build /z /z\n"
        );
    }

    #[test]
    fn an_earlier_stage_of_the_same_name_wins_and_other_names_stay() {
        let text = "FROM scratch AS os\nFROM os\nCOPY --from=os / /\nFROM alpine\n";
        let images = BTreeMap::from([("os".to_owned(), "img".to_owned())]);
        let error = substitute(text, &images).unwrap_err();
        assert!(error.contains("replaces a stage"), "{error}");
        assert_eq!(
            substitute("FROM os AS a\nFROM a\nFROM alpine\n", &images).unwrap(),
            "FROM img AS a\nFROM a\nFROM alpine\n"
        );
    }
}
