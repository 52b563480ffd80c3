//! `--flag` validation per instruction and `RUN --mount` CSV parsing.
//!
//! Compat: buildkit instructions/bflag.go and commands_runmount.go parseMount.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::diag::{self, SourceFile};
use crate::frontend::dockerfile::error::{Error, Result, suggest};
use crate::frontend::dockerfile::instructions::types::{MountSpec, MountType};
use crate::frontend::dockerfile::parser::{Node, syntax_error};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FlagKind {
    Value,
    Bool,
    List,
}

pub(super) struct Flags {
    pub(super) values: BTreeMap<&'static str, (Vec<String>, Range<usize>)>,
}

impl Flags {
    pub(super) fn value(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|(v, _)| v.last().cloned())
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .map(|(v, _)| v.clone())
            .unwrap_or_default()
    }

    pub(super) fn bool(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v == "true")
    }
}

pub(crate) struct Context<'a> {
    pub(crate) file: &'a SourceFile,
    pub(crate) escape: char,
}

impl Context<'_> {
    pub(super) fn error(&self, message: impl Into<String>, span: Range<usize>) -> Error {
        syntax_error(self.file, message.into(), span)
    }

    pub(super) fn flags(&self, node: &Node, allowed: &[(&'static str, FlagKind)]) -> Result<Flags> {
        let mut values: BTreeMap<&'static str, (Vec<String>, Range<usize>)> = BTreeMap::new();
        for flag in &node.flags {
            let Some((name, kind)) = allowed.iter().find(|(n, _)| *n == flag.name) else {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                let help = match suggest(&flag.name, names.iter().copied(), true) {
                    Some(close) => Some(format!("did you mean `--{close}`?")),
                    None if names.is_empty() => {
                        Some(format!("`{}` takes no flags", node.keyword.to_uppercase()))
                    }
                    None => Some(format!(
                        "`{}` takes: --{}",
                        node.keyword.to_uppercase(),
                        names.join(", --")
                    )),
                };
                return Err(Error::UnknownFlag {
                    instruction: node.keyword.to_uppercase(),
                    flag: flag.name.clone(),
                    help,
                    src: self.file.named(),
                    span: diag::span(flag.span.clone()),
                });
            };
            let value = match (kind, &flag.value) {
                (FlagKind::Bool, None) => "true".to_owned(),
                (FlagKind::Bool, Some(v)) if v == "true" || v == "false" => v.clone(),
                (FlagKind::Bool, Some(v)) => {
                    return Err(Error::InvalidFlag {
                        flag: format!("--{name}"),
                        message: format!("expected `true` or `false`, found `{v}`"),
                        src: self.file.named(),
                        span: diag::span(flag.span.clone()),
                    });
                }
                (_, None) => {
                    return Err(Error::InvalidFlag {
                        flag: format!("--{name}"),
                        message: "missing a value (`--name=value`)".to_owned(),
                        src: self.file.named(),
                        span: diag::span(flag.span.clone()),
                    });
                }
                (_, Some(v)) => v.clone(),
            };
            let entry = values
                .entry(name)
                .or_insert_with(|| (Vec::new(), flag.span.clone()));
            if *kind != FlagKind::List && !entry.0.is_empty() {
                return Err(self.error(
                    format!("duplicate flag specified: `--{name}`"),
                    flag.span.clone(),
                ));
            }
            entry.0.push(value);
            entry.1 = flag.span.clone();
        }
        Ok(Flags { values })
    }
}

pub(super) fn invalid_flag(
    context: &Context<'_>,
    node: &Node,
    name: &str,
    message: String,
) -> Error {
    let span = node
        .flags
        .iter()
        .find(|f| f.name == name)
        .map_or(node.keyword_span.clone(), |f| f.span.clone());
    Error::InvalidFlag {
        flag: format!("--{name}"),
        message,
        src: context.file.named(),
        span: diag::span(span),
    }
}

/// Parses one `--mount` CSV value.
// Compat: buildkit instructions.parseMount (key aliases, bare booleans, unknown keys error).
pub(super) fn parse_mount(
    context: &Context<'_>,
    value: &str,
    span: Range<usize>,
) -> Result<MountSpec> {
    let error = |message: String| Error::InvalidFlag {
        flag: "--mount".to_owned(),
        message,
        src: context.file.named(),
        span: diag::span(span.clone()),
    };
    let mut kind = MountType::Bind;
    let mut options = BTreeMap::new();
    for field in split_csv(value) {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.trim().to_lowercase(), Some(value.to_owned())),
            None => (field.trim().to_lowercase(), None),
        };
        let canonical = match key.as_str() {
            "type" => {
                kind = match value.as_deref().unwrap_or_default().to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    other => return Err(error(format!("unsupported mount type `{other}`"))),
                };
                continue;
            }
            "target" | "dst" | "destination" => "target",
            "source" | "src" => "source",
            "readonly" | "ro" => "readonly",
            "readwrite" | "rw" => {
                let writable = value.as_deref().is_none_or(|v| v == "true");
                options.insert("readonly".to_owned(), (!writable).to_string());
                continue;
            }
            "from" | "id" | "sharing" | "mode" | "uid" | "gid" | "size" | "required" | "env" => {
                key.as_str()
            }
            other => {
                let keys = [
                    "type",
                    "target",
                    "source",
                    "from",
                    "readonly",
                    "readwrite",
                    "id",
                    "sharing",
                    "mode",
                    "uid",
                    "gid",
                    "size",
                    "required",
                    "env",
                ];
                let hint = suggest(other, keys, true)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                return Err(error(format!(
                    "unexpected key `{other}` in `{field}`{hint}"
                )));
            }
        };
        let value = match (canonical, value) {
            ("readonly" | "required", None) => "true".to_owned(),
            (_, None) => return Err(error(format!("missing value for `{canonical}`"))),
            (_, Some(value)) => value,
        };
        options.insert(canonical.to_owned(), value);
    }
    if !options.contains_key("target") && !matches!(kind, MountType::Secret | MountType::Ssh) {
        return Err(error("mount has no `target`".to_owned()));
    }
    if kind == MountType::Secret && options.contains_key("from") {
        return Err(error("`from` is not allowed for secret mounts".to_owned()));
    }
    Ok(MountSpec {
        kind,
        options,
        span,
    })
}

/// Splits CSV fields, honouring double quotes (`"a,b"` is one field).
fn split_csv(text: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
        .into_iter()
        .filter(|f| !f.trim().is_empty())
        .collect()
}
