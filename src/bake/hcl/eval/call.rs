//! Function calls: the special forms (`try`, `can`, `convert`), user `function` blocks
//! through the globals, then the standard library.

use hcl::Value;
use hcl::edit::expr::{Expression, FuncCall};

use crate::bake::error::closest;
use crate::bake::hcl::eval::context::{Ctx, EvalError, EvalResult};
use crate::bake::hcl::stdlib::{self, CallError};
use crate::bake::hcl::types;

pub(super) fn eval_call(call: &FuncCall, whole: &Expression, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let name = call.name.name.value().as_str();
    let args: Vec<&Expression> = call.args.iter().collect();
    match name {
        "try" => return eval_try(&args, whole, ctx),
        "can" => {
            let [arg] = args.as_slice() else {
                return ctx.fail(whole, "`can` takes exactly 1 argument");
            };
            return Ok(Value::Bool(ctx.eval(arg).is_ok()));
        }
        "convert" => {
            let [value, type_expr] = args.as_slice() else {
                return ctx.fail(whole, "`convert` takes exactly 2 arguments");
            };
            let value = ctx.eval(value)?;
            let ty = types::from_expr(type_expr)
                .map_err(|e| EvalError::new(e).at(ctx.file, ctx.span_of(*type_expr)))?;
            return ty
                .convert(value)
                .map_err(|e| EvalError::new(e).at(ctx.file, ctx.span_of(whole)));
        }
        _ => {}
    }
    let mut values = args
        .iter()
        .map(|arg| ctx.eval(arg))
        .collect::<EvalResult<Vec<_>>>()?;
    if call.args.expand_final() {
        match values.pop() {
            Some(Value::Array(rest)) => values.extend(rest),
            _ => return ctx.fail(whole, "only a list can be expanded with `...`"),
        }
    }
    let values = match ctx.globals.call(name, values) {
        Ok(result) => return result.map_err(|e| e.at(ctx.file, ctx.span_of(whole))),
        Err(values) => values,
    };
    stdlib::call(name, values).map_err(|error| match error {
        CallError::Unknown => {
            let mut candidates: Vec<String> =
                stdlib::NAMES.iter().map(|s| (*s).to_owned()).collect();
            candidates.extend(ctx.globals.names());
            let error = EvalError::new(format!("unknown function `{name}`"))
                .code("bake::unknown_function")
                .at(ctx.file, ctx.span_of(whole));
            match closest(name, &candidates) {
                Some(similar) => error.with_help(format!("did you mean `{similar}`?")),
                None => error.with_help(
                    "define it with a `function` block or see the list of standard functions",
                ),
            }
        }
        CallError::Arity { expected, got } => EvalError::new(format!(
            "`{name}` takes {expected} argument{}, but {got} {} given",
            if expected == "1" { "" } else { "s" },
            if got == 1 { "was" } else { "were" }
        ))
        .code("bake::arity")
        .at(ctx.file, ctx.span_of(whole)),
        CallError::Argument { index, message } => {
            let span = args
                .get(index)
                .and_then(|a| ctx.span_of(*a))
                .or(ctx.span_of(whole));
            EvalError::new(format!(
                "invalid argument {} to `{name}`: {message}",
                index + 1
            ))
            .code("bake::argument")
            .at(ctx.file, span)
        }
        CallError::Failed(message) => {
            EvalError::new(format!("`{name}` failed: {message}")).at(ctx.file, ctx.span_of(whole))
        }
    })
}

fn eval_try(args: &[&Expression], whole: &Expression, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let mut last = None;
    for arg in args {
        match ctx.eval(arg) {
            Ok(value) => return Ok(value),
            Err(error) => last = Some(error),
        }
    }
    Err(match last {
        Some(error) => EvalError::new(format!(
            "no expression given to `try` succeeded; the last failed with: {}",
            error.message
        ))
        .at(ctx.file, ctx.span_of(whole)),
        None => {
            EvalError::new("`try` needs at least one argument").at(ctx.file, ctx.span_of(whole))
        }
    })
}
