//! A generic YAML tree with byte spans, read through serde-saphyr (which resolves anchors,
//! aliases and `<<` merge keys for us), so interpolation and the Compose model stay ours;
//! and the diagnostics that point at its nodes and keys.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::bake::error::Diagnostic;
use crate::diag::SourceFile;

/// One YAML node: its value, where it was written, and which input file it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The typed value.
    pub(crate) value: Value,
    /// Byte range of the node in its file, when serde-saphyr knows it.
    pub(crate) span: Option<Range<usize>>,
    /// Index of the file in the slice given to `compose::parse`.
    pub(crate) file: usize,
}

/// A mapping key with its own span, so errors about a key can point at it.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// The key text.
    pub(crate) name: String,
    /// Byte range of the key.
    pub(crate) span: Option<Range<usize>>,
}

/// YAML values as YAML 1.2 core schema types them.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// Any other scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Key, Node)>),
}

fn byte_range(location: &Location) -> Option<Range<usize>> {
    let span = location.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len().unwrap_or(0)).ok()?;
    Some(start..start + len)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            span: byte_range(&spanned.referenced),
            value: spanned.value,
            file: 0,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            let key = Key {
                span: byte_range(&key.referenced),
                name: key.value,
            };
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Events that aliases may replay in one file: far above what real Compose files reuse, far
/// below what an alias bomb ("billion laughs") expands to.
const MAX_REPLAYED_EVENTS: usize = 250_000;

/// Parses one YAML document; the error keeps serde-saphyr's message and 1-based line and
/// column.
pub(crate) fn parse(text: &str, file: usize) -> Result<Node, (String, Option<(usize, usize)>)> {
    // Compose reads YAML 1.2: `yes`/`no`/`on`/`off` are strings, not booleans.
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            // Diverges: serde-saphyr's alias/anchor ratio heuristic refuses real Compose files
            // (ten `x-` anchors reused by every service); go-yaml has no such rule, and the
            // replay caps below are what stops an alias bomb.
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            // An alias bomb expands exponentially; a real file replays a few thousand events.
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
        },
    };
    match serde_saphyr::from_str_with_options::<Node>(text, options) {
        Ok(mut node) => {
            node.set_file(file);
            Ok(node)
        }
        Err(err) => {
            let position = err.location().and_then(|l| {
                let line = usize::try_from(l.line()).ok()?;
                let column = usize::try_from(l.column()).ok()?;
                (line > 0).then_some((line, column.max(1)))
            });
            Err((err.without_snippet().to_string(), position))
        }
    }
}

impl Node {
    /// A node made up by the loader (e.g. the `context` of `build: ./dir`), spanning `like`.
    pub(crate) fn synthetic(value: Value, like: &Node) -> Node {
        Node {
            value,
            span: like.span.clone(),
            file: like.file,
        }
    }

    fn set_file(&mut self, file: usize) {
        self.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| n.set_file(file)),
            _ => {}
        }
    }

    /// The value of `key` when this node is a mapping.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entries when this node is a mapping.
    pub(crate) fn entries(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Whether the node is `null`.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as text, Go-style for numbers; `None` for null and collections.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(go_float(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name of the node's type for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Formats a float the way Go's `fmt.Sprint(float64)` does (`%v`: shortest, exponent form
/// below 1e-4 and from 1e21).
// Compat: compose-go stringifies YAML floats with fmt.Sprint.
fn go_float(value: f64) -> String {
    if !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_owned()
        } else if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e21).contains(&magnitude) {
        let text = format!("{value:e}");
        if let Some((mantissa, exp)) = text.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        return text;
    }
    format!("{value}")
}

/// The diagnostic code of every Compose problem.
pub(crate) const CODE: &str = "bake::compose";

/// Builds a diagnostic pointing at a node.
pub(crate) fn error(files: &[SourceFile], node: &Node, message: impl Into<String>) -> Diagnostic {
    at(files, node.file, node.span.clone(), message)
}

/// Builds a diagnostic pointing at a mapping key.
pub(crate) fn key_error(
    files: &[SourceFile],
    file: usize,
    key: &Key,
    message: impl Into<String>,
) -> Diagnostic {
    at(files, file, key.span.clone(), message)
}

/// Builds a diagnostic pointing at `span` in file `file`.
fn at(
    files: &[SourceFile],
    file: usize,
    span: Option<Range<usize>>,
    message: impl Into<String>,
) -> Diagnostic {
    let diagnostic = Diagnostic::new(CODE, message);
    match files.get(file) {
        Some(source) => diagnostic.at(source, span),
        None => diagnostic,
    }
}

/// The entries of a mapping, or of a `KEY=VALUE` list (`KEY` alone gives `null`).
pub(crate) fn keyed_entries(node: &Node, separators: &[char]) -> Option<Vec<(Key, Node)>> {
    match &node.value {
        Value::Map(entries) => Some(entries.clone()),
        Value::Seq(items) => {
            let mut out: Vec<(Key, Node)> = Vec::new();
            for item in items {
                let text = item.scalar_text()?;
                let (name, value) = match text.split_once(separators) {
                    Some((k, v)) => (k.to_owned(), Value::Str(v.to_owned())),
                    None => (text, Value::Null),
                };
                let key = Key {
                    name,
                    span: item.span.clone(),
                };
                out.push((key, Node::synthetic(value, item)));
            }
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_matches_fmt_sprint() {
        assert_eq!(go_float(1.22), "1.22");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-5), "1e-05");
    }

    #[test]
    fn merge_keys_and_spans() {
        let text = "a: &x\n  k: 1\nb:\n  <<: *x\n  j: \"s\"\n";
        let node = parse(text, 0).unwrap();
        let b = node.get("b").unwrap();
        assert_eq!(b.get("k").unwrap().scalar_text().as_deref(), Some("1"));
        let j = b.get("j").unwrap();
        assert_eq!(j.scalar_text().as_deref(), Some("s"));
        let span = j.span.clone().unwrap();
        assert!(text[span.clone()].contains('s'), "span {span:?}");
    }

    #[test]
    fn yes_is_a_string() {
        let node = parse("a: yes\nb: true\n", 0).unwrap();
        assert!(matches!(node.get("a").unwrap().value, Value::Str(_)));
        assert!(matches!(node.get("b").unwrap().value, Value::Bool(true)));
    }
}
