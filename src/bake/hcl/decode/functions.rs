//! User `function` blocks: checking their shape and calling them in a fresh scope.

use hcl::Value;

use super::Parser;
use crate::bake::error::Error;
use crate::bake::hcl::body::{self, Block};
use crate::bake::hcl::eval::{EvalError, EvalResult, Locals};

impl Parser<'_> {
    pub(super) fn validate_functions(&self) -> Result<(), Error> {
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

    pub(super) fn params(&self, block: &Block) -> EvalResult<(Vec<String>, Option<String>)> {
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

    pub(super) fn call_user(
        &self,
        name: &str,
        block: &Block,
        args: Vec<Value>,
    ) -> EvalResult<Value> {
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
}
