//! Bake semantics over parsed bodies: variables (defaults, types, environment and `--var`
//! overrides, validation), global attributes, user functions, `matrix` expansion, lazy
//! `target.<name>.<attr>` references with cycle detection, and decoding into targets.
//!
//! Everything resolves on demand and is memoised, so declaration order never matters.
// Compat: buildx bake/hclparser/hclparser.go (resolveValue, resolveBlock, GetEvalContexts).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bake::fasthash::{FastMap as HashMap, FastSet as HashSet};
use std::rc::Rc;

use hcl::Value;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::hcl::body::{Attr, Block, Body};
use crate::bake::hcl::eval::{self, Ctx, EvalError, EvalResult, Globals, Locals};
use crate::bake::hcl::fields::TARGET_ATTRIBUTES;
use crate::bake::hcl::types;
use crate::bake::model::{Group, Target, Variable};
use crate::diag::SourceFile;

mod blocks;
mod functions;
mod variables;

/// Inputs to evaluation that do not come from the files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// The environment variables may be overridden from (empty when lookups are disabled).
    pub(crate) env: BTreeMap<String, String>,
    /// `--var NAME=VALUE` overrides, which win over the environment.
    pub(crate) vars: BTreeMap<String, String>,
    /// Built-in variables such as `BAKE_LOCAL_PLATFORM`.
    pub(crate) builtins: BTreeMap<String, String>,
}

/// What the HCL and JSON files define, in file order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Decoded {
    /// Targets, one per name, definitions merged in order.
    pub(crate) targets: Vec<Target>,
    /// Groups, a later definition replacing an earlier one.
    pub(crate) groups: Vec<Group>,
    /// Declared variables with their final values (for `--list=variables`).
    pub(crate) variables: Vec<Variable>,
    /// Problems that do not stop the load, such as ignored attributes.
    pub(crate) warnings: Vec<Diagnostic>,
}

const RESERVED: &[&str] = &["target", "group", "variable", "function"];
const NAME_PATTERN: &str = "[a-zA-Z0-9_-]+";

/// One evaluation of a target or group block: the block plus one matrix cell.
struct Instance<'a> {
    block: &'a Block,
    cell: Vec<(String, Value)>,
    name: String,
}

struct Parser<'a> {
    files: &'a [SourceFile],
    json: &'a [bool],
    options: &'a Options,
    variables: HashMap<&'a str, &'a Block>,
    attrs: HashMap<&'a str, &'a Attr>,
    functions: HashMap<&'a str, &'a Block>,
    instances: Vec<Instance<'a>>,
    by_name: HashMap<(&'a str, String), Vec<usize>>,
    values: RefCell<HashMap<String, Value>>,
    resolving: RefCell<Vec<String>>,
    attr_values: RefCell<HashMap<(usize, &'a str), Rc<Value>>>,
    attr_resolving: RefCell<HashSet<(usize, &'a str)>>,
    calls: RefCell<Vec<String>>,
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Evaluates HCL/JSON bodies into targets, groups and variables.
pub(crate) fn decode(
    files: &[SourceFile],
    json: &[bool],
    bodies: &[Body],
    options: &Options,
) -> Result<Decoded, Error> {
    let mut parser = Parser {
        files,
        json,
        options,
        variables: HashMap::default(),
        attrs: HashMap::default(),
        functions: HashMap::default(),
        instances: Vec::new(),
        by_name: HashMap::default(),
        values: RefCell::new(HashMap::default()),
        resolving: RefCell::new(Vec::new()),
        attr_values: RefCell::new(HashMap::default()),
        attr_resolving: RefCell::new(HashSet::default()),
        calls: RefCell::new(Vec::new()),
    };
    let blocks = parser.collect(bodies)?;
    let variables = parser.resolve_variables()?;
    parser.validate_functions()?;
    parser.expand(&blocks)?;
    let (targets, groups, warnings) = parser.decode_blocks()?;
    Ok(Decoded {
        targets,
        groups,
        variables,
        warnings,
    })
}

impl<'a> Parser<'a> {
    fn diagnostic(&self, error: EvalError) -> Diagnostic {
        let file = error.file.and_then(|index| self.files.get(index));
        let mut diagnostic = Diagnostic::new(error.code, error.message).maybe_help(error.help);
        if let Some(file) = file {
            diagnostic = diagnostic.at(file, error.span);
        }
        diagnostic
    }

    fn at(
        &self,
        file: usize,
        span: Option<std::ops::Range<usize>>,
        code: &'static str,
        message: String,
    ) -> Diagnostic {
        Diagnostic::new(code, message).at(&self.files[file], span)
    }

    /// Sorts the blocks of every body into variables, functions, globals and target/group
    /// blocks (the last definition of a variable, function or global wins).
    fn collect(&mut self, bodies: &'a [Body]) -> Result<Vec<&'a Block>, Error> {
        let mut blocks = Vec::new();
        let mut problems = Vec::new();
        for body in bodies {
            for attr in &body.attrs {
                if !RESERVED.contains(&attr.name.as_str())
                    && !self.options.builtins.contains_key(&attr.name)
                {
                    self.attrs.insert(&attr.name, attr);
                }
            }
            for block in &body.blocks {
                if block.labels.len() != 1 {
                    problems.push(self.at(
                        block.file,
                        block.label_span.clone(),
                        "bake::block_label",
                        format!(
                            "a `{}` block needs exactly one label, found {}",
                            block.kind,
                            block.labels.len()
                        ),
                    ));
                    continue;
                }
                let label = block.label();
                match block.kind.as_str() {
                    "variable"
                        if !RESERVED.contains(&label)
                            && !self.options.builtins.contains_key(label) =>
                    {
                        self.variables.insert(label, block);
                        self.attrs.remove(label);
                    }
                    "function" if !RESERVED.contains(&label) => {
                        self.functions.insert(label, block);
                    }
                    "target" | "group" => blocks.push(block),
                    // Compat: buildx ignores unknown block types ("Blocks are not allowed here"
                    // diagnostics are filtered out).
                    _ => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(blocks)
        } else {
            Err(Error {
                diagnostics: problems,
            })
        }
    }

    fn ctx<'b>(&'b self, file: usize, locals: &'b Locals<'b>) -> Ctx<'b> {
        Ctx {
            globals: self,
            file,
            locals,
            spans: !self.json.get(file).copied().unwrap_or(false),
        }
    }

    fn eval_in(&self, attr: &Attr, locals: &Locals<'_>) -> EvalResult<Value> {
        eval::eval(&attr.expr, &self.ctx(attr.file, locals))
            .map_err(|e| e.at(attr.file, attr.span.clone()))
    }
}

fn dedupe(problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::default();
    problems
        .into_iter()
        .filter(|d| seen.insert((d.message.clone(), d.span.clone())))
        .collect()
}

/// Renders a variable's value for `--list=variables`: typed values as JSON (strings bare),
/// untyped primitives as text, untyped collections as JSON, null as nothing.
fn render_variable_value(value: &Value, typed: bool) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) if !typed => types::value_to_string(value),
        other => serde_json::to_string(other).ok(),
    }
}

impl Globals for Parser<'_> {
    fn variable(&self, name: &str) -> Option<EvalResult<Value>> {
        if let Some(value) = self.options.builtins.get(name) {
            return Some(Ok(Value::String(value.clone())));
        }
        if self.variables.contains_key(name) || self.attrs.contains_key(name) {
            return Some(self.resolve_value(name));
        }
        None
    }

    fn block(&self, kind: &str, name: &str, attr: Option<&str>) -> Option<EvalResult<Value>> {
        if !matches!(kind, "target" | "group") {
            return None;
        }
        let Some(indexes) = self.by_name.get(&(kind, name.to_owned())) else {
            return Some(Err(
                EvalError::new(format!("unknown {kind} `{name}`")).code("bake::unknown_target")
            ));
        };
        let known: &[&str] = if kind == "target" {
            TARGET_ATTRIBUTES
        } else {
            &["targets", "description"]
        };
        match attr {
            Some("name") => Some(Ok(Value::String(name.to_owned()))),
            Some(attr) if !known.contains(&attr) && attr != "matrix" => Some(Err(EvalError::new(
                format!("`{kind}.{name}` has no attribute `{attr}`"),
            )
            .code("bake::unknown_attribute"))),
            Some(attr) => {
                // Diverges: with several blocks of one name, buildx exposes the last block's
                // value; we take the last block that sets the attribute.
                let mut value = Value::Null;
                for &index in indexes {
                    match self.attr_value(index, attr) {
                        Some(Ok(v)) => value = Rc::unwrap_or_clone(v),
                        Some(Err(error)) => return Some(Err(error)),
                        None => {}
                    }
                }
                Some(Ok(value))
            }
            None => {
                let mut object = hcl::Map::new();
                object.insert("name".to_owned(), Value::String(name.to_owned()));
                for &index in indexes {
                    for attr in &self.instances[index].block.attrs {
                        if matches!(attr.name.as_str(), "matrix" | "name") {
                            continue;
                        }
                        match self.attr_value(index, &attr.name) {
                            Some(Ok(v)) => {
                                object.insert(attr.name.clone(), Rc::unwrap_or_clone(v));
                            }
                            Some(Err(error)) => return Some(Err(error)),
                            None => {}
                        }
                    }
                }
                Some(Ok(Value::Object(object)))
            }
        }
    }

    fn call(&self, name: &str, args: Vec<Value>) -> Result<EvalResult<Value>, Vec<Value>> {
        match self.functions.get(name) {
            Some(block) => Ok(self.call_user(name, block, args)),
            None => Err(args),
        }
    }

    fn names(&self) -> Vec<String> {
        self.variables
            .keys()
            .chain(self.attrs.keys())
            .map(|s| (*s).to_owned())
            .chain(self.options.builtins.keys().cloned())
            .collect()
    }
}
