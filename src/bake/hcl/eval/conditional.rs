//! `cond ? a : b`: HCL gives both results one type (`convert.UnifyUnsafe`) before picking
//! one, so what a conditional returns depends on the branch it did not take.
//!
//! Values here carry no cty type, so the branch not taken is typed from its syntax (a set
//! function, a literal, a template) without evaluating it: evaluating it could fail or
//! recurse where HCL only discards the result.

use hcl::Value;
use hcl::edit::expr::{Conditional, Expression};

use crate::bake::hcl::eval::context::{Ctx, EvalResult, as_bool};
use crate::bake::hcl::stdlib::{SET_FUNCTIONS, to_set};
use crate::bake::hcl::types::{type_name, value_to_string};

/// The type of a branch as far as its syntax tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Set,
    String,
    Number,
    Bool,
    Unknown,
}

/// Evaluates a conditional and converts the chosen result to the unified type.
// Compat: hclsyntax ConditionalExpr.Value (hashicorp/hcl) with cty convert.UnifyUnsafe, for
// the unifications bake files meet: a set with a list or tuple is a set (deduplicated,
// sorted); a string with a number or bool is a string.
pub(super) fn eval_conditional(cond: &Conditional, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let test = ctx.eval(&cond.cond_expr)?;
    let (chosen, other) = match as_bool(&test) {
        Some(true) => (&cond.true_expr, &cond.false_expr),
        Some(false) => (&cond.false_expr, &cond.true_expr),
        None => {
            return ctx.fail(
                &cond.cond_expr,
                format!("the condition must be a bool, not a {}", type_name(&test)),
            );
        }
    };
    let value = ctx.eval(chosen)?;
    Ok(unify(value, shape(other)))
}

/// Converts `value` to the type it shares with a branch of shape `other`.
fn unify(value: Value, other: Shape) -> Value {
    match (value, other) {
        (Value::Array(items), Shape::Set) => Value::Array(to_set(&items)),
        (value @ (Value::Number(_) | Value::Bool(_)), Shape::String) => {
            Value::String(value_to_string(&value).unwrap_or_default())
        }
        (value, _) => value,
    }
}

/// Types a branch from its syntax alone.
fn shape(expr: &Expression) -> Shape {
    match expr {
        Expression::Parenthesis(inner) => shape(inner.inner()),
        Expression::FuncCall(call) if SET_FUNCTIONS.contains(&call.name.name.value().as_str()) => {
            Shape::Set
        }
        Expression::Conditional(cond) => match (shape(&cond.true_expr), shape(&cond.false_expr)) {
            (Shape::Set, _) | (_, Shape::Set) => Shape::Set,
            (Shape::String, _) | (_, Shape::String) => Shape::String,
            (a, b) if a == b => a,
            _ => Shape::Unknown,
        },
        Expression::String(_) | Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            Shape::String
        }
        Expression::Number(_) => Shape::Number,
        Expression::Bool(_) => Shape::Bool,
        _ => Shape::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_beside_a_set_becomes_a_set() {
        let list = Value::Array(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(
            unify(list, Shape::Set),
            Value::Array(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn a_number_beside_a_string_becomes_a_string() {
        assert_eq!(unify(Value::from(8), Shape::String), Value::from("8"));
        assert_eq!(unify(Value::from(true), Shape::String), Value::from("true"));
        assert_eq!(unify(Value::from(8), Shape::Number), Value::from(8));
    }
}
