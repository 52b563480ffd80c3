//! Variables and global attributes: lazy resolution with cycle detection, overrides from
//! `--var` and the environment parsed by type, and `validation` blocks.

use hcl::Value;

use super::{Parser, dedupe, render_variable_value};
use crate::bake::error::{Diagnostic, Error};
use crate::bake::hcl::body::Block;
use crate::bake::hcl::eval::{self, EvalError, EvalResult, Locals};
use crate::bake::hcl::types::{self, Type};
use crate::bake::model::Variable;

impl Parser<'_> {
    pub(super) fn resolve_value(&self, name: &str) -> EvalResult<Value> {
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

    pub(super) fn variable_type(&self, block: &Block) -> EvalResult<Option<Type>> {
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
    pub(super) fn override_for(&self, name: &str, typed: bool) -> Option<(String, bool)> {
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

    pub(super) fn resolve_variable(&self, block: &Block) -> EvalResult<Value> {
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
    pub(super) fn resolve_variables(&self) -> Result<Vec<Variable>, Error> {
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

    pub(super) fn validate(&self, name: &str, validation: &Block) -> Option<Diagnostic> {
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
}
