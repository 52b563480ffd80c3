//! Bake semantics over parsed bodies: variables (defaults, types, environment and `--var`
//! overrides, validation), global attributes, user functions, `matrix` expansion, lazy
//! `target.<name>.<attr>` references with cycle detection, and decoding into targets.
//!
//! Everything resolves on demand and is memoised, so declaration order never matters.
// Compat: buildx bake/hclparser/hclparser.go (resolveValue, resolveBlock, GetEvalContexts).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use hcl::Value;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::hcl::body::{self, Attr, Block, Body};
use crate::bake::hcl::eval::{self, Ctx, EvalError, EvalResult, Globals, Locals};
use crate::bake::hcl::fields::{self, TARGET_ATTRIBUTES};
use crate::bake::hcl::types::{self, Type};
use crate::bake::model::{Group, Target, Variable};
use crate::diag::SourceFile;

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
    attr_values: RefCell<HashMap<(usize, String), Value>>,
    attr_resolving: RefCell<HashSet<(usize, String)>>,
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
        variables: HashMap::new(),
        attrs: HashMap::new(),
        functions: HashMap::new(),
        instances: Vec::new(),
        by_name: HashMap::new(),
        values: RefCell::new(HashMap::new()),
        resolving: RefCell::new(Vec::new()),
        attr_values: RefCell::new(HashMap::new()),
        attr_resolving: RefCell::new(HashSet::new()),
        calls: RefCell::new(Vec::new()),
    };
    let blocks = parser.collect(bodies)?;
    let variables = parser.resolve_variables()?;
    parser.validate_functions()?;
    parser.expand(&blocks)?;
    let (targets, groups) = parser.decode_blocks()?;
    Ok(Decoded {
        targets,
        groups,
        variables,
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

    fn resolve_value(&self, name: &str) -> EvalResult<Value> {
        if let Some(value) = self.values.borrow().get(name) {
            return Ok(value.clone());
        }
        if self.resolving.borrow().iter().any(|n| n == name) {
            let chain = self.resolving.borrow().join("` → `");
            return Err(
                EvalError::new(format!("variable cycle not allowed for `{name}`"))
                    .code("bake::cycle")
                    .with_help(format!(
                        "the values refer to each other: `{chain}` → `{name}`"
                    )),
            );
        }
        self.resolving.borrow_mut().push(name.to_owned());
        let result = match (self.variables.get(name), self.attrs.get(name)) {
            (Some(block), _) => self.resolve_variable(block),
            (None, Some(attr)) => self.eval_in(attr, &Locals::default()),
            (None, None) => Err(EvalError::new(format!("unknown variable `{name}`"))),
        };
        self.resolving.borrow_mut().pop();
        let value = result?;
        self.values
            .borrow_mut()
            .insert(name.to_owned(), value.clone());
        Ok(value)
    }

    fn variable_type(&self, block: &Block) -> EvalResult<Option<Type>> {
        let Some(attr) = block.attr("type") else {
            return Ok(None);
        };
        let parsed;
        let expr = match &attr.expr {
            hcl::edit::expr::Expression::String(text) => {
                parsed = hcl::edit::parser::parse_expr(text.value())
                    .map_err(|e| EvalError::new(format!("invalid type: {}", e.message())))?;
                &parsed
            }
            other => other,
        };
        types::from_expr(expr).map(Some).map_err(|message| {
            EvalError::new(message)
                .code("bake::type")
                .at(attr.file, attr.span.clone())
        })
    }

    /// Finds an override for a variable: `--var`, then the environment (`NAME_JSON` first for
    /// typed variables).
    fn override_for(&self, name: &str, typed: bool) -> Option<(String, bool)> {
        if let Some(raw) = self.options.vars.get(name) {
            return Some((raw.clone(), false));
        }
        let json_name = format!("{name}_JSON");
        let json_allowed = !self.variables.contains_key(json_name.as_str())
            && !self.options.builtins.contains_key(&json_name);
        let json = json_allowed
            .then(|| self.options.env.get(&json_name))
            .flatten();
        match (typed, json, self.options.env.get(name)) {
            (true, Some(raw), _) => Some((raw.clone(), true)),
            (_, _, Some(raw)) => Some((raw.clone(), false)),
            (false, Some(raw), None) => Some((raw.clone(), true)),
            _ => None,
        }
    }

    fn resolve_variable(&self, block: &Block) -> EvalResult<Value> {
        let name = block.label();
        let ty = self.variable_type(block)?;
        let default = match block.attr("default") {
            Some(attr) => Some(self.eval_in(attr, &Locals::default())?),
            None => None,
        };
        if let Some((raw, is_json)) = self.override_for(name, ty.is_some()) {
            let base = default.clone().unwrap_or(Value::Null);
            return types::parse_override(ty.as_ref(), &base, &raw, is_json).map_err(|message| {
                EvalError::new(format!("invalid value for variable `{name}`: {message}"))
                    .code("bake::variable_override")
                    .at(block.file, block.label_span.clone())
            });
        }
        match (default, ty) {
            (Some(value), Some(ty)) => ty.convert(value).map_err(|message| {
                let span = block.attr("default").and_then(|a| a.span.clone());
                EvalError::new(format!(
                    "the default of `{name}` does not match its type: {message}"
                ))
                .code("bake::type")
                .at(block.file, span)
            }),
            (Some(value), None) => Ok(value),
            (None, Some(_)) => Ok(Value::Null),
            (None, None) => Ok(Value::String(String::new())),
        }
    }

    /// Resolves every variable and global, then runs `validation` blocks; reports every
    /// failure, not just the first.
    fn resolve_variables(&self) -> Result<Vec<Variable>, Error> {
        let mut names: Vec<&str> = self.variables.keys().copied().collect();
        names.sort_unstable();
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for name in &names {
            match self.resolve_value(name) {
                Ok(value) => {
                    let block = self.variables[name];
                    let ty = self.variable_type(block).ok().flatten();
                    out.push(Variable {
                        name: (*name).to_owned(),
                        description: block
                            .attr("description")
                            .and_then(|a| self.eval_in(a, &Locals::default()).ok())
                            .and_then(|v| types::value_to_string(&v)),
                        type_name: ty.as_ref().map(ToString::to_string),
                        value: render_variable_value(&value, ty.is_some()),
                    });
                }
                Err(error) => problems.push(self.diagnostic(error)),
            }
        }
        let mut globals: Vec<&str> = self.attrs.keys().copied().collect();
        globals.sort_unstable();
        for name in globals {
            if let Err(error) = self.resolve_value(name) {
                problems.push(self.diagnostic(error));
            }
        }
        if !problems.is_empty() {
            return Err(Error {
                diagnostics: dedupe(problems),
            });
        }
        for name in &names {
            for validation in self.variables[name]
                .blocks
                .iter()
                .filter(|b| b.kind == "validation")
            {
                if let Some(problem) = self.validate(name, validation) {
                    problems.push(problem);
                }
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(Error {
                diagnostics: problems,
            })
        }
    }

    fn validate(&self, name: &str, validation: &Block) -> Option<Diagnostic> {
        let Some(condition) = validation.attr("condition") else {
            return Some(self.at(
                validation.file,
                validation.label_span.clone(),
                "bake::validation",
                format!("a validation block of `{name}` has no `condition`"),
            ));
        };
        let result = match self.eval_in(condition, &Locals::default()) {
            Ok(value) => value,
            Err(error) => return Some(self.diagnostic(error)),
        };
        match result {
            Value::Bool(true) => None,
            Value::Bool(false) => {
                let message = validation
                    .attr("error_message")
                    .map(|attr| self.eval_in(attr, &Locals::default()))
                    .transpose()
                    .ok()
                    .flatten()
                    .and_then(|v| types::value_to_string(&v))
                    .unwrap_or_else(|| "the condition is false".to_owned());
                Some(
                    self.at(
                        condition.file,
                        condition.span.clone(),
                        "bake::validation",
                        format!("validation failed for variable `{name}`: {message}"),
                    )
                    .label("this condition is false")
                    .help(format!(
                        "set `{name}` to a value that satisfies the condition"
                    )),
                )
            }
            other => Some(self.at(
                condition.file,
                condition.span.clone(),
                "bake::validation",
                format!(
                    "a validation condition must be a bool, found a {}",
                    eval::type_name(&other)
                ),
            )),
        }
    }

    fn validate_functions(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut names: Vec<&&str> = self.functions.keys().collect();
        names.sort_unstable();
        for name in names {
            let block = self.functions[name];
            for (attr, what) in [("params", "params"), ("result", "result")] {
                if block.attr(attr).is_none() {
                    problems.push(
                        self.at(
                            block.file,
                            block.label_span.clone(),
                            "bake::function",
                            format!("function `{name}` has no `{what}`"),
                        )
                        .help(format!("add `{what} = ...` (params may be `[]`)")),
                    );
                }
            }
            if let Err(error) = self.params(block) {
                problems.push(self.diagnostic(error));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error {
                diagnostics: problems,
            })
        }
    }

    fn params(&self, block: &Block) -> EvalResult<(Vec<String>, Option<String>)> {
        let mut params = Vec::new();
        if let Some(attr) = block.attr("params") {
            let hcl::edit::expr::Expression::Array(items) = &attr.expr else {
                return Err(EvalError::new("`params` must be a list of names")
                    .code("bake::function")
                    .at(attr.file, attr.span.clone()));
            };
            for item in items.iter() {
                match body::keyword(item) {
                    Some(name) => params.push(name),
                    None => {
                        return Err(EvalError::new("each parameter must be a bare name")
                            .code("bake::function")
                            .at(attr.file, attr.span.clone()));
                    }
                }
            }
        }
        let variadic = match block.attr("variadic_params") {
            Some(attr) => Some(body::keyword(&attr.expr).ok_or_else(|| {
                EvalError::new("`variadic_params` must be a bare name")
                    .code("bake::function")
                    .at(attr.file, attr.span.clone())
            })?),
            None => None,
        };
        Ok((params, variadic))
    }

    fn call_user(&self, name: &str, block: &Block, args: Vec<Value>) -> EvalResult<Value> {
        if self.calls.borrow().iter().any(|n| n == name) {
            return Err(
                EvalError::new(format!("function cycle not allowed for `{name}`"))
                    .code("bake::cycle"),
            );
        }
        let (params, variadic) = self.params(block)?;
        let fits = if variadic.is_some() {
            args.len() >= params.len()
        } else {
            args.len() == params.len()
        };
        if !fits {
            let expected = if variadic.is_some() {
                format!("at least {}", params.len())
            } else {
                params.len().to_string()
            };
            return Err(EvalError::new(format!(
                "`{name}` takes {expected} argument{}, but {} {} given",
                if params.len() == 1 { "" } else { "s" },
                args.len(),
                if args.len() == 1 { "was" } else { "were" }
            ))
            .code("bake::arity"));
        }
        let Some(result) = block.attr("result") else {
            return Err(
                EvalError::new(format!("function `{name}` has no `result`")).code("bake::function")
            );
        };
        let mut args = args.into_iter();
        let mut bindings: Vec<(String, Value)> = params.into_iter().zip(args.by_ref()).collect();
        if let Some(variadic) = variadic {
            bindings.push((variadic, Value::Array(args.collect())));
        }
        let locals = Locals::new(bindings, None);
        self.calls.borrow_mut().push(name.to_owned());
        let value = self.eval_in(result, &locals);
        self.calls.borrow_mut().pop();
        value
    }

    /// Expands every target and group block into instances (one per matrix cell) with
    /// their final names.
    fn expand(&mut self, blocks: &[&'a Block]) -> Result<(), Error> {
        let mut problems = Vec::new();
        for block in blocks {
            match self.instances_of(block) {
                Ok(instances) => {
                    for instance in instances {
                        self.by_name
                            .entry((block.kind.as_str(), instance.name.clone()))
                            .or_default()
                            .push(self.instances.len());
                        self.instances.push(instance);
                    }
                }
                Err(error) => problems.push(self.diagnostic(error)),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error {
                diagnostics: problems,
            })
        }
    }

    fn instances_of(&self, block: &'a Block) -> EvalResult<Vec<Instance<'a>>> {
        let label = block.label();
        let label_error = |message: String| {
            EvalError::new(message)
                .code("bake::name")
                .at(block.file, block.label_span.clone())
        };
        if !is_valid_name(label) {
            return Err(label_error(format!(
                "invalid {} name `{label}`: only `{NAME_PATTERN}` are allowed",
                block.kind
            )));
        }
        let matrix = block.attr("matrix");
        let name_attr = block.attr("name");
        if let (true, Some(attr)) = (block.kind == "group", matrix.or(name_attr)) {
            return Err(
                EvalError::new(format!("`{}` is not allowed in a group", attr.name))
                    .code("bake::matrix")
                    .at(attr.file, attr.span.clone()),
            );
        }
        let cells = match matrix {
            Some(attr) => self.matrix_cells(attr)?,
            None => vec![Vec::new()],
        };
        if let (Some(attr), None) = (name_attr, matrix) {
            return Err(EvalError::new("`name` requires `matrix`")
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
        }
        let mut instances = Vec::new();
        let mut seen = HashSet::new();
        for cell in cells {
            let name = match name_attr {
                Some(attr) => {
                    let locals = Locals::new(cell.clone(), None);
                    let value = self.eval_in(attr, &locals)?;
                    types::value_to_string(&value).ok_or_else(|| {
                        EvalError::new("`name` must be a string")
                            .code("bake::name")
                            .at(attr.file, attr.span.clone())
                    })?
                }
                None => label.to_owned(),
            };
            if !is_valid_name(&name) {
                return Err(label_error(format!(
                    "invalid target name `{name}`: only `{NAME_PATTERN}` are allowed"
                ))
                .with_help("use `sanitize()` in the `name` expression"));
            }
            if !seen.insert(name.clone()) {
                return Err(label_error(format!("duplicate name `{name}`"))
                    .with_help("include every matrix key in the `name` template"));
            }
            instances.push(Instance { block, cell, name });
        }
        Ok(instances)
    }

    /// Returns the cartesian product of the matrix: keys sorted, the first key varying
    /// fastest, as buildx's expansion orders it.
    fn matrix_cells(&self, attr: &Attr) -> EvalResult<Vec<Vec<(String, Value)>>> {
        let value = self.eval_in(attr, &Locals::default())?;
        let Value::Object(axes) = value else {
            return Err(EvalError::new("`matrix` must be a map of lists")
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
        };
        let mut keys: Vec<&String> = axes.keys().collect();
        keys.sort();
        let mut cells: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for key in keys {
            let Value::Array(values) = &axes[key] else {
                return Err(EvalError::new(format!(
                    "matrix values must be a list; `{key}` is not"
                ))
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
            };
            let mut next = Vec::with_capacity(cells.len() * values.len());
            for value in values {
                for cell in &cells {
                    let mut cell = cell.clone();
                    cell.push((key.clone(), value.clone()));
                    next.push(cell);
                }
            }
            cells = next;
        }
        Ok(cells)
    }

    fn attr_value(&self, index: usize, name: &str) -> Option<EvalResult<Value>> {
        let instance = &self.instances[index];
        let attr = instance.block.attr(name)?;
        let key = (index, name.to_owned());
        if let Some(value) = self.attr_values.borrow().get(&key) {
            return Some(Ok(value.clone()));
        }
        if !self.attr_resolving.borrow_mut().insert(key.clone()) {
            return Some(Err(EvalError::new(format!(
                "reference cycle not allowed for `{}.{}.{name}`",
                instance.block.kind, instance.name
            ))
            .code("bake::cycle")
            .at(attr.file, attr.span.clone())));
        }
        let locals = Locals::new(instance.cell.clone(), None);
        let result = self.eval_in(attr, &locals);
        self.attr_resolving.borrow_mut().remove(&key);
        if let Ok(value) = &result {
            self.attr_values.borrow_mut().insert(key, value.clone());
        }
        Some(result)
    }

    fn decode_blocks(&self) -> Result<(Vec<Target>, Vec<Group>), Error> {
        let mut problems = Vec::new();
        let mut targets: Vec<Target> = Vec::new();
        let mut target_index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        for (index, instance) in self.instances.iter().enumerate() {
            let block = instance.block;
            if block.kind == "group" {
                let mut group = Group {
                    name: instance.name.clone(),
                    ..Group::default()
                };
                for attr in &block.attrs {
                    let result = self
                        .attr_value(index, &attr.name)
                        .unwrap_or(Ok(Value::Null))
                        .and_then(|value| {
                            fields::set_group_field(&mut group, &attr.name, &value).map_err(|m| {
                                EvalError::new(m)
                                    .code("bake::attribute")
                                    .at(attr.file, attr.span.clone())
                            })
                        });
                    if let Err(error) = result {
                        problems.push(self.diagnostic(error));
                    }
                }
                match groups.iter_mut().find(|g| g.name == group.name) {
                    Some(existing) => *existing = group,
                    None => groups.push(group),
                }
                continue;
            }
            let mut target = Target {
                name: instance.name.clone(),
                ..Target::default()
            };
            for attr in &block.attrs {
                if matches!(attr.name.as_str(), "matrix" | "name") {
                    continue;
                }
                if !TARGET_ATTRIBUTES.contains(&attr.name.as_str()) {
                    let candidates: Vec<String> =
                        TARGET_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect();
                    let help = match eval::closest(&attr.name, &candidates) {
                        Some(similar) => format!("did you mean `{similar}`?"),
                        None => {
                            "see the list of target attributes in the book's reference".to_owned()
                        }
                    };
                    problems.push(
                        self.at(
                            attr.file,
                            attr.span.clone(),
                            "bake::unknown_attribute",
                            format!("unknown target attribute `{}`", attr.name),
                        )
                        .help(help),
                    );
                    continue;
                }
                let result = self
                    .attr_value(index, &attr.name)
                    .unwrap_or(Ok(Value::Null))
                    .and_then(|value| {
                        fields::set_target_field(&mut target, &attr.name, &value).map_err(|m| {
                            EvalError::new(format!("invalid `{}`: {m}", attr.name))
                                .code("bake::attribute")
                                .at(attr.file, attr.span.clone())
                        })
                    });
                if let Err(error) = result {
                    problems.push(self.diagnostic(error));
                }
            }
            match target_index.get(&target.name) {
                Some(&position) => targets[position].merge(&target),
                None => {
                    target_index.insert(target.name.clone(), targets.len());
                    targets.push(target);
                }
            }
        }
        // A matrix adds a group named after the block label holding the generated names.
        let mut renamed: Vec<(String, Vec<String>)> = Vec::new();
        for instance in self.instances.iter().filter(|i| i.block.kind == "target") {
            let label = instance.block.label();
            if instance.block.attr("matrix").is_none() {
                continue;
            }
            match renamed.iter_mut().find(|(l, _)| l == label) {
                Some((_, names)) if !names.contains(&instance.name) => {
                    names.push(instance.name.clone())
                }
                Some(_) => {}
                None => renamed.push((label.to_owned(), vec![instance.name.clone()])),
            }
        }
        for (label, names) in renamed {
            if names.len() == 1 && names[0] == label {
                continue;
            }
            groups.push(Group {
                name: label,
                description: None,
                targets: names,
            });
        }
        if problems.is_empty() {
            Ok((targets, groups))
        } else {
            Err(Error {
                diagnostics: dedupe(problems),
            })
        }
    }
}

fn dedupe(problems: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::new();
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
                        Some(Ok(v)) => value = v,
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
                                object.insert(attr.name.clone(), v);
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

    fn call(&self, name: &str, args: Vec<Value>) -> Option<EvalResult<Value>> {
        let block = self.functions.get(name)?;
        Some(self.call_user(name, block, args))
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
