//! The `--print` document and the `--list` views, byte-compatible with buildx: Go's
//! `json.MarshalIndent` with two spaces, sorted maps, struct field order, HTML-safe
//! escaping, and `${`/`%{` re-escaped so the output reads back as a bake file.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

use crate::bake::model::{Group, Target, Variable};
use crate::bake::resolve::{Config, Resolved};
use crate::bake::tabwriter;

#[derive(Serialize)]
struct Document<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    group: BTreeMap<&'a str, &'a Group>,
    target: BTreeMap<&'a str, Cow<'a, Target>>,
}

fn escape_template(text: &str) -> String {
    text.replace("${", "$${").replace("%{", "%%{")
}

fn needs_escape(text: &str) -> bool {
    text.contains("${") || text.contains("%{")
}

/// Returns the target as `--print` shows it: template markers escaped (borrowed when no
/// value has one, which is nearly always).
// Compat: buildx Target.MarshalJSON (bake/bake.go).
fn printable(target: &Target) -> Cow<'_, Target> {
    let escaped = target.annotations.iter().any(|a| needs_escape(a))
        || target
            .dockerfile_inline
            .as_deref()
            .is_some_and(needs_escape)
        || [&target.args, &target.labels]
            .iter()
            .any(|map| map.values().flatten().any(|v| needs_escape(v)));
    if !escaped {
        return Cow::Borrowed(target);
    }
    let mut out = target.clone();
    for annotation in &mut out.annotations {
        *annotation = escape_template(annotation);
    }
    if let Some(inline) = &mut out.dockerfile_inline {
        *inline = escape_template(inline);
    }
    for map in [&mut out.args, &mut out.labels] {
        for value in map.values_mut().flatten() {
            *value = escape_template(value);
        }
    }
    Cow::Owned(out)
}

/// Renders the resolved targets as `docker buildx bake --print` does (with a final newline).
pub fn print(resolved: &Resolved) -> String {
    let document = Document {
        group: resolved
            .groups
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .collect(),
        target: resolved
            .targets
            .iter()
            .map(|(k, v)| (k.as_str(), printable(v)))
            .collect(),
    };
    // About 600 bytes per printed target: one allocation instead of a dozen regrowths.
    let mut text = go_json_with_capacity(&document, 1024 + 640 * resolved.targets.len());
    text.push('\n');
    text
}

/// Renders `--call=<method>,format=json`: each target's resolved definition under `build`
/// and the frontend's answer under the method's name (`check`, `outline`, `targets`).
// Compat: buildx printResult / the `--call` JSON document (commands/bake.go).
pub fn print_calls(
    resolved: &Resolved,
    results: &BTreeMap<String, (String, serde_json::Value)>,
) -> String {
    let mut targets = serde_json::Map::new();
    for (name, (method, result)) in results {
        let Some(target) = resolved.targets.get(name) else {
            continue;
        };
        let mut entry = serde_json::Map::new();
        entry.insert(
            "build".to_owned(),
            serde_json::to_value(printable(target)).unwrap_or_default(),
        );
        entry.insert(method.clone(), result.clone());
        targets.insert(name.clone(), serde_json::Value::Object(entry));
    }
    let groups: BTreeMap<&str, &Group> = resolved
        .groups
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut document = serde_json::Map::new();
    if !groups.is_empty() {
        document.insert(
            "group".to_owned(),
            serde_json::to_value(groups).unwrap_or_default(),
        );
    }
    document.insert("target".to_owned(), serde_json::Value::Object(targets));
    let mut text = to_go_json(&document);
    text.push('\n');
    text
}

/// Serialises a value the way Go's `json.MarshalIndent(v, "", "  ")` does.
pub fn to_go_json<T: Serialize>(value: &T) -> String {
    go_json_with_capacity(value, 0)
}

fn go_json_with_capacity<T: Serialize>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter::default());
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's pretty printer plus Go's HTML-safe string escaping.
#[derive(Default)]
struct GoFormatter {
    pretty: PrettyFormatter<'static>,
}

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Scans bytes: every character Go escapes starts with one of these four bytes
        // (U+2028 and U+2029 are E2 80 A8/A9), so plain text is copied in one write.
        let bytes = fragment.as_bytes();
        if !bytes.chunks(16).any(has_special) {
            return writer.write_all(bytes);
        }
        let mut start = 0;
        let mut index = 0;
        while index < bytes.len() {
            let (escaped, len) = match bytes[index] {
                b'<' => ("\\u003c", 1),
                b'>' => ("\\u003e", 1),
                b'&' => ("\\u0026", 1),
                0xE2 if bytes.get(index + 1) == Some(&0x80) => match bytes.get(index + 2) {
                    Some(0xA8) => ("\\u2028", 3),
                    Some(0xA9) => ("\\u2029", 3),
                    _ => {
                        index += 1;
                        continue;
                    }
                },
                _ => {
                    index += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..index])?;
            writer.write_all(escaped.as_bytes())?;
            index += len;
            start = index;
        }
        writer.write_all(&bytes[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_array(writer)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_array(writer)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(writer, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(writer)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_object(writer)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_object(writer)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(writer, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(writer)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(writer)
    }
}

/// Whether a chunk holds a byte that may start a Go-escaped character; a fold over the
/// whole chunk (no early exit) so the compiler checks it in vector registers.
fn has_special(chunk: &[u8]) -> bool {
    chunk.iter().fold(false, |found, &b| {
        found | (b == b'<') | (b == b'>') | (b == b'&') | (b == 0xE2)
    })
}

/// How `--list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns with a header.
    Table,
    /// A JSON array.
    Json,
}

#[derive(Serialize)]
struct ListedTarget {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    group: bool,
}

/// Renders `--list=targets`: targets and groups sorted by name, `_private` ones hidden.
// Compat: buildx printTargetList (commands/bake.go).
pub fn list_targets(config: &Config, format: ListFormat) -> String {
    // Compat: buildx lists targets, then groups, and sorts by name with Go's pdqsort, which
    // keeps that order between a target and a group of the same name (insertion sort below
    // 13 rows); a stable sort does the same.
    let mut rows: Vec<ListedTarget> = config
        .targets
        .iter()
        .map(|target| ListedTarget {
            name: target.name.clone(),
            description: target.description.clone().filter(|d| !d.is_empty()),
            group: false,
        })
        .collect();
    for group in &config.groups {
        let mut members = group.targets.clone();
        members.sort();
        let list = members.join(", ");
        // Compat: buildx names a group's members in its description in both formats.
        let description = match group.description.as_deref().filter(|d| !d.is_empty()) {
            Some(d) if !list.is_empty() => format!("{d} ({list})"),
            Some(d) => d.to_owned(),
            None => list,
        };
        let description = Some(description).filter(|d| !d.is_empty());
        rows.push(ListedTarget {
            name: group.name.clone(),
            description,
            group: true,
        });
    }
    rows.retain(|r| !r.name.starts_with('_'));
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        ListFormat::Json => format!("{}\n", to_go_json(&rows)),
        ListFormat::Table => table(
            &["TARGET", "DESCRIPTION"],
            rows.iter()
                .map(|r| vec![r.name.clone(), r.description.clone().unwrap_or_default()])
                .collect(),
        ),
    }
}

/// Renders `--list=variables`: sorted by name, null shown as `<null>` in the table.
pub fn list_variables(variables: &[Variable], format: ListFormat) -> String {
    let mut variables = variables.to_vec();
    variables.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        ListFormat::Json => format!("{}\n", to_go_json(&variables)),
        ListFormat::Table => table(
            &["VARIABLE", "TYPE", "VALUE", "DESCRIPTION"],
            variables
                .iter()
                .map(|v| {
                    vec![
                        v.name.clone(),
                        v.type_name.clone().unwrap_or_default(),
                        v.value.clone().unwrap_or_else(|| "<null>".to_owned()),
                        v.description.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ),
    }
}

/// Lays out a `--list` table: cells joined by tabs, then Go's tabwriter.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut text = header.join("\t");
    text.push('\n');
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    tabwriter::format(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_html_characters() {
        let text = to_go_json(&serde_json::json!({"a": "<&>", "b": []}));
        assert_eq!(
            text,
            "{\n  \"a\": \"\\u003c\\u0026\\u003e\",\n  \"b\": []\n}"
        );
    }

    #[test]
    fn go_json_escapes_line_separators_anywhere_in_long_text() {
        let long = format!("{}\u{2028}x\u{2029}é€<{}", "a".repeat(17), "b".repeat(20));
        let text = to_go_json(&long);
        let expected = format!(
            "\"{}\\u2028x\\u2029é€\\u003c{}\"",
            "a".repeat(17),
            "b".repeat(20)
        );
        assert_eq!(text, expected);
        assert_eq!(to_go_json(&"plain ascii and é"), "\"plain ascii and é\"");
    }

    #[test]
    fn print_escapes_template_markers() {
        let mut target = Target {
            name: "t".into(),
            dockerfile_inline: Some("ARG X\nRUN echo ${X}".into()),
            ..Target::default()
        };
        target.args.insert("A".into(), Some("%{x}".into()));
        let resolved = Resolved {
            groups: BTreeMap::new(),
            targets: BTreeMap::from([("t".into(), target)]),
        };
        let text = print(&resolved);
        assert!(text.contains("$${X}"), "{text}");
        assert!(text.contains("%%{x}"), "{text}");
        assert!(!text.contains("\"group\""));
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn tables_pad_columns_with_tabs() {
        let text = table(&["A", "B"], vec![vec!["long-name".into(), String::new()]]);
        assert_eq!(text, "A\t\tB\nlong-name\t\n");
    }
}
