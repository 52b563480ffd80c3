//! One shape for HCL and HCL-JSON files: top-level attributes and labelled blocks whose
//! attribute values are `hcl::edit` expressions. JSON strings are parsed as HCL templates,
//! as the HCL JSON syntax specifies, so one evaluator serves both formats.

use std::ops::Range;

use hcl::edit::expr::{Array, Expression, Object, ObjectKey, ObjectValue};
use hcl::edit::structure::{BlockLabel, Structure};
use hcl::edit::template::StringTemplate;
use hcl::edit::{Decorated, Formatted, Span};
use serde_json::Value as Json;

use crate::bake::error::Diagnostic;
use crate::diag::SourceFile;

/// An attribute: `name = expr`.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    /// The attribute name.
    pub(crate) name: String,
    /// The value expression.
    pub(crate) expr: Expression,
    /// Where the value is written (for error labels).
    pub(crate) span: Option<Range<usize>>,
    /// Index of the file it came from.
    pub(crate) file: usize,
}

/// A block such as `target "app" { ... }`.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// The block type (`target`, `group`, `variable`, `function`, `validation`).
    pub(crate) kind: String,
    /// The labels (bake blocks have exactly one, except `validation`).
    pub(crate) labels: Vec<String>,
    /// Where the label (or the block keyword) is written.
    pub(crate) label_span: Option<Range<usize>>,
    /// Attributes in order.
    pub(crate) attrs: Vec<Attr>,
    /// Nested blocks (`validation` inside `variable`).
    pub(crate) blocks: Vec<Block>,
    /// Index of the file it came from.
    pub(crate) file: usize,
}

impl Block {
    /// Returns the attribute with that name, if set.
    pub(crate) fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// Returns the block's single label (empty if it has none).
    pub(crate) fn label(&self) -> &str {
        self.labels.first().map_or("", String::as_str)
    }
}

/// The top level of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Body {
    /// Top-level attributes (global values).
    pub(crate) attrs: Vec<Attr>,
    /// Top-level blocks in file order.
    pub(crate) blocks: Vec<Block>,
}

/// Parses an HCL file.
pub(crate) fn parse_hcl(index: usize, file: &SourceFile) -> Result<Body, Diagnostic> {
    let body = hcl::edit::parser::parse_body(&file.text).map_err(|error| {
        let location = error.location();
        let offset = location.offset();
        let end = (offset + 1).min(file.text.len()).max(offset);
        Diagnostic::new("bake::syntax", format!("invalid HCL: {}", error.message()))
            .at(file, Some(offset..end))
            .label(error.message().to_owned())
    })?;
    let mut out = Body::default();
    for structure in body.into_iter() {
        match structure {
            Structure::Attribute(attr) => out.attrs.push(convert_attr(index, attr)),
            Structure::Block(block) => out.blocks.push(convert_block(index, block)),
        }
    }
    Ok(out)
}

fn convert_attr(index: usize, attr: hcl::edit::structure::Attribute) -> Attr {
    Attr {
        name: attr.key.value().to_string(),
        span: attr.value.span(),
        expr: attr.value,
        file: index,
    }
}

fn convert_block(index: usize, block: hcl::edit::structure::Block) -> Block {
    let label_span = block
        .labels
        .first()
        .and_then(|l| match l {
            BlockLabel::String(s) => s.span(),
            BlockLabel::Ident(i) => i.span(),
        })
        .or_else(|| block.ident.span());
    let labels = block.labels.iter().map(|l| l.as_str().to_owned()).collect();
    let mut out = Block {
        kind: block.ident.value().to_string(),
        labels,
        label_span,
        attrs: Vec::new(),
        blocks: Vec::new(),
        file: index,
    };
    for structure in block.body.into_iter() {
        match structure {
            Structure::Attribute(attr) => out.attrs.push(convert_attr(index, attr)),
            Structure::Block(inner) => out.blocks.push(convert_block(index, inner)),
        }
    }
    out
}

/// Block types whose JSON form nests `{ "<label>": { ... } }`.
const JSON_BLOCKS: &[&str] = &["target", "group", "variable", "function"];

/// Parses an HCL-JSON file (`docker-bake.json`).
pub(crate) fn parse_json(index: usize, file: &SourceFile) -> Result<Body, Diagnostic> {
    let document: Json = serde_json::from_str(&file.text).map_err(|error| {
        let offset = file.offset_of(error.line(), error.column());
        Diagnostic::new("bake::syntax", format!("invalid JSON: {error}")).at(
            file,
            Some(offset..(offset + 1).min(file.text.len()).max(offset)),
        )
    })?;
    let Json::Object(top) = document else {
        return Err(Diagnostic::new(
            "bake::syntax",
            "a JSON bake file must be an object with `target`, `group`, `variable` or `function` keys",
        )
        .at(file, Some(0..file.text.len().min(1))));
    };
    let locator = Locator { file };
    let mut body = Body::default();
    for (key, value) in top {
        if JSON_BLOCKS.contains(&key.as_str()) {
            for (label, content) in json_blocks(&value) {
                let label_span = locator.find(&label);
                let block = json_block(index, &locator, &key, label, label_span, content)?;
                body.blocks.push(block);
            }
        } else {
            let span = locator.find(&key);
            body.attrs.push(Attr {
                expr: json_expr(&value, &locator, span.clone())?,
                name: key,
                span,
                file: index,
            });
        }
    }
    Ok(body)
}

/// Finds approximate spans in JSON text: serde_json keeps no positions, so errors point at
/// the first occurrence of the quoted key.
struct Locator<'a> {
    file: &'a SourceFile,
}

impl Locator<'_> {
    fn find(&self, key: &str) -> Option<Range<usize>> {
        let quoted = format!("\"{key}\"");
        self.file
            .text
            .find(&quoted)
            .map(|start| start..start + quoted.len())
    }
}

/// Lists `(label, body)` pairs of one JSON block type, accepting both the object form
/// (`{"app": {...}}`) and the HCL-JSON array forms (`[{"app": {...}}]`, `{"app": [{...}]}`).
fn json_blocks(value: &Json) -> Vec<(String, &serde_json::Map<String, Json>)> {
    let maps: Vec<&serde_json::Map<String, Json>> = match value {
        Json::Object(map) => vec![map],
        Json::Array(items) => items.iter().filter_map(Json::as_object).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for map in maps {
        for (label, content) in map {
            match content {
                Json::Array(items) => out.extend(
                    items
                        .iter()
                        .filter_map(Json::as_object)
                        .map(|body| (label.clone(), body)),
                ),
                Json::Object(body) => out.push((label.clone(), body)),
                _ => {}
            }
        }
    }
    out
}

fn json_block(
    index: usize,
    locator: &Locator<'_>,
    kind: &str,
    label: String,
    label_span: Option<Range<usize>>,
    content: &serde_json::Map<String, Json>,
) -> Result<Block, Diagnostic> {
    let mut block = Block {
        kind: kind.to_owned(),
        labels: vec![label],
        label_span: label_span.clone(),
        attrs: Vec::new(),
        blocks: Vec::new(),
        file: index,
    };
    for (name, value) in content {
        if kind == "variable" && name == "validation" {
            let items: Vec<&Json> = match value {
                Json::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let Json::Object(map) = item else { continue };
                let mut validation = Block {
                    kind: "validation".to_owned(),
                    labels: Vec::new(),
                    label_span: label_span.clone(),
                    attrs: Vec::new(),
                    blocks: Vec::new(),
                    file: index,
                };
                for (key, value) in map {
                    validation.attrs.push(Attr {
                        name: key.clone(),
                        expr: json_expr(value, locator, label_span.clone())?,
                        span: label_span.clone(),
                        file: index,
                    });
                }
                block.blocks.push(validation);
            }
            continue;
        }
        let span = locator.find(name).or_else(|| label_span.clone());
        block.attrs.push(Attr {
            name: name.clone(),
            expr: json_expr(value, locator, span.clone())?,
            span,
            file: index,
        });
    }
    Ok(block)
}

/// Converts a JSON value into an expression; strings become templates.
fn json_expr(
    value: &Json,
    locator: &Locator<'_>,
    span: Option<Range<usize>>,
) -> Result<Expression, Diagnostic> {
    Ok(match value {
        Json::Null => Expression::null(),
        Json::Bool(b) => Expression::Bool(Decorated::new(*b)),
        Json::Number(n) => {
            let number = n
                .as_i64()
                .map(hcl::Number::from)
                .or_else(|| n.as_u64().map(hcl::Number::from))
                .or_else(|| n.as_f64().and_then(hcl::Number::from_f64))
                .unwrap_or_else(|| hcl::Number::from(0));
            Expression::Number(Formatted::new(number))
        }
        Json::String(s) => json_string(s, locator, span)?,
        Json::Array(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(json_expr(item, locator, span.clone())?);
            }
            Expression::Array(array)
        }
        Json::Object(map) => {
            let mut object = Object::new();
            for (key, item) in map {
                let key = ObjectKey::Expression(Expression::String(Decorated::new(key.clone())));
                object.insert(
                    key,
                    ObjectValue::new(json_expr(item, locator, span.clone())?),
                );
            }
            Expression::Object(object)
        }
    })
}

fn json_string(
    text: &str,
    locator: &Locator<'_>,
    span: Option<Range<usize>>,
) -> Result<Expression, Diagnostic> {
    if !text.contains("${") && !text.contains("%{") {
        return Ok(Expression::String(Decorated::new(text.to_owned())));
    }
    let template = hcl::edit::parser::parse_template(text).map_err(|error| {
        Diagnostic::new(
            "bake::syntax",
            format!("invalid template in JSON string: {}", error.message()),
        )
        .at(locator.file, span)
    })?;
    Ok(Expression::StringTemplate(StringTemplate::from(
        template.into_iter().collect::<Vec<_>>(),
    )))
}

/// Returns the identifier a bare-word expression names (`x` in `params = [x]`), accepting
/// JSON strings too.
pub(crate) fn keyword(expr: &Expression) -> Option<String> {
    match expr {
        Expression::Variable(ident) => Some(ident.value().to_string()),
        Expression::String(s) => Some(s.value().clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_blocks_and_attributes_keep_spans() {
        let file = SourceFile::new("f.hcl", "X = 1\ntarget \"app\" {\n  tags = [\"a\"]\n}\n");
        let body = parse_hcl(0, &file).unwrap();
        assert_eq!(body.attrs[0].name, "X");
        let block = &body.blocks[0];
        assert_eq!((block.kind.as_str(), block.label()), ("target", "app"));
        assert_eq!(block.attrs[0].span, Some(30..35));
    }

    #[test]
    fn hcl_syntax_errors_point_at_the_problem() {
        let file = SourceFile::new("f.hcl", "target \"a\" {\n  tags = [\"x]\n}\n");
        let error = parse_hcl(0, &file).unwrap_err();
        assert_eq!(error.code, "bake::syntax");
        assert!(error.span.is_some());
    }

    #[test]
    fn json_accepts_object_and_array_block_forms() {
        let file = SourceFile::new(
            "f.json",
            r#"{"target": {"a": {"tags": ["${X}"]}, "b": [{"context": "."}]}, "X": "1"}"#,
        );
        let body = parse_json(0, &file).unwrap();
        let labels: Vec<&str> = body.blocks.iter().map(Block::label).collect();
        assert_eq!(labels, ["a", "b"]);
        assert_eq!(body.attrs[0].name, "X");
        assert!(matches!(body.blocks[0].attrs[0].expr, Expression::Array(_)));
    }

    #[test]
    fn json_syntax_errors_are_diagnostics() {
        let file = SourceFile::new("f.json", "{\"target\": ");
        assert!(parse_json(0, &file).is_err());
    }
}
