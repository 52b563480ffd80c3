//! The HCL expression evaluator: walks `hcl::edit` ASTs, keeps byte spans for errors, and
//! asks a [`Globals`] implementation for variables, block references and user functions so
//! that bake can resolve them lazily, in any declaration order.
//!
//! Our own evaluator instead of `hcl::eval` because bake needs closures for user functions,
//! lazy `target.<name>.<attr>` references, short-circuit `&&`/`||` and sub-expression spans.

use hcl::edit::Ident;
use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, UnaryOperator};
use hcl::{Map, Value};

use crate::bake::error::closest;
pub(crate) use crate::bake::hcl::types::type_name;
use crate::bake::hcl::types::value_to_string;

mod access;
mod call;
mod conditional;
mod context;
mod template;

use self::access::eval_traversal;
use self::call::eval_call;
use self::conditional::eval_conditional;
use self::template::{eval_for, eval_template};

pub(crate) use self::context::{Ctx, EvalError, EvalResult, Globals, Locals, number};
use self::context::{as_bool, as_number};

impl Ctx<'_> {
    /// Evaluates `expr` in this context: the access, call and template files recurse through
    /// this method, so they depend on the context type and not on this file.
    pub(crate) fn eval(&self, expr: &Expression) -> EvalResult<Value> {
        eval(expr, self)
    }
}

/// Evaluates an expression.
pub(crate) fn eval(expr: &Expression, ctx: &Ctx<'_>) -> EvalResult<Value> {
    match expr {
        Expression::Null(_) => Ok(Value::Null),
        Expression::Bool(b) => Ok(Value::Bool(*b.value())),
        Expression::Number(n) => Ok(Value::Number(*n.value())),
        Expression::String(s) => Ok(Value::String(s.value().clone())),
        Expression::Array(items) => items
            .iter()
            .map(|item| eval(item, ctx))
            .collect::<EvalResult<Vec<_>>>()
            .map(Value::Array),
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.value().to_string(),
                    ObjectKey::Expression(key_expr) => {
                        let key_value = eval(key_expr, ctx)?;
                        match value_to_string(&key_value) {
                            Some(s) => s,
                            None => return ctx.fail(key_expr, "object keys must be strings"),
                        }
                    }
                };
                map.insert(key, eval(value.expr(), ctx)?);
            }
            Ok(Value::Object(map))
        }
        Expression::StringTemplate(template) => eval_template(template, ctx),
        Expression::HeredocTemplate(heredoc) => eval_template(&heredoc.template, ctx),
        Expression::Parenthesis(inner) => eval(inner.inner(), ctx),
        Expression::Variable(ident) => eval_variable(ident.value(), expr, ctx),
        Expression::Conditional(cond) => eval_conditional(cond, ctx),
        Expression::FuncCall(call) => eval_call(call, expr, ctx),
        Expression::Traversal(traversal) => {
            eval_traversal(&traversal.expr, &traversal.operators, ctx)
        }
        Expression::UnaryOp(op) => {
            let value = eval(&op.expr, ctx)?;
            match op.operator.value() {
                UnaryOperator::Not => match as_bool(&value) {
                    Some(b) => Ok(Value::Bool(!b)),
                    None => ctx.fail(&op.expr, "`!` needs a bool"),
                },
                UnaryOperator::Neg => match as_number(&value) {
                    Some(n) => Ok(number(-n)),
                    None => ctx.fail(&op.expr, "`-` needs a number"),
                },
            }
        }
        Expression::BinaryOp(op) => {
            eval_binary(&op.lhs_expr, *op.operator.value(), &op.rhs_expr, expr, ctx)
        }
        Expression::ForExpr(for_expr) => eval_for(for_expr, ctx),
    }
}

fn eval_variable(name: &Ident, expr: &Expression, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let name = name.as_str();
    if let Some(value) = ctx.locals.get(name) {
        return Ok(value.clone());
    }
    if let Some(result) = ctx.globals.variable(name) {
        return result.map_err(|e| e.at(ctx.file, ctx.span_of(expr)));
    }
    if matches!(name, "target" | "group") {
        return ctx.fail(
            expr,
            format!("cannot access `{name}` as a variable; use `{name}.<name>.<attribute>`"),
        );
    }
    let mut names = ctx.globals.names();
    ctx.locals.names(&mut names);
    let mut error = EvalError::new(format!("unknown variable `{name}`"))
        .code("bake::unknown_variable")
        .at(ctx.file, ctx.span_of(expr));
    error = match closest(name, &names) {
        Some(similar) => error.with_help(format!("did you mean `{similar}`?")),
        None => error.with_help(format!(
            "declare it with `variable \"{name}\" {{ default = ... }}`"
        )),
    };
    Err(error)
}

fn eval_binary(
    lhs: &Expression,
    operator: BinaryOperator,
    rhs: &Expression,
    whole: &Expression,
    ctx: &Ctx<'_>,
) -> EvalResult<Value> {
    use BinaryOperator as Op;
    let left = eval(lhs, ctx)?;
    if matches!(operator, Op::And | Op::Or) {
        let Some(l) = as_bool(&left) else {
            return ctx.fail(lhs, format!("`{}` needs bools", operator.as_str()));
        };
        // Diverges: HCL evaluates both sides; short-circuiting only accepts more programs.
        if (operator == Op::And && !l) || (operator == Op::Or && l) {
            return Ok(Value::Bool(l));
        }
        let right = eval(rhs, ctx)?;
        return match as_bool(&right) {
            Some(r) => Ok(Value::Bool(r)),
            None => ctx.fail(rhs, format!("`{}` needs bools", operator.as_str())),
        };
    }
    let right = eval(rhs, ctx)?;
    match operator {
        Op::Eq => Ok(Value::Bool(values_equal(&left, &right))),
        Op::NotEq => Ok(Value::Bool(!values_equal(&left, &right))),
        _ => {
            let (Some(l), Some(r)) = (as_number(&left), as_number(&right)) else {
                let bad = if as_number(&left).is_none() { lhs } else { rhs };
                let value = if as_number(&left).is_none() {
                    &left
                } else {
                    &right
                };
                return ctx.fail(
                    bad,
                    format!(
                        "`{}` needs numbers, found a {}",
                        operator.as_str(),
                        type_name(value)
                    ),
                );
            };
            let result = match operator {
                Op::Plus => number(l + r),
                Op::Minus => number(l - r),
                Op::Mul => number(l * r),
                Op::Div if r == 0.0 => return ctx.fail(whole, "division by zero"),
                Op::Div => number(l / r),
                Op::Mod if r == 0.0 => return ctx.fail(whole, "modulo by zero"),
                Op::Mod => number(l % r),
                Op::Less => Value::Bool(l < r),
                Op::LessEq => Value::Bool(l <= r),
                Op::Greater => Value::Bool(l > r),
                Op::GreaterEq => Value::Bool(l >= r),
                Op::Eq | Op::NotEq | Op::And | Op::Or => unreachable_operator(),
            };
            Ok(result)
        }
    }
}

fn unreachable_operator() -> Value {
    // Equality and logical operators return above; keep the match exhaustive without panicking.
    Value::Null
}

/// Compares two values the way cty's `==` does: numbers by value, collections deeply.
pub(crate) fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| values_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoGlobals;

    impl Globals for NoGlobals {
        fn variable(&self, name: &str) -> Option<EvalResult<Value>> {
            (name == "X").then(|| Ok(Value::from("x")))
        }
        fn block(&self, _: &str, _: &str, _: Option<&str>) -> Option<EvalResult<Value>> {
            None
        }
        fn call(&self, _: &str, args: Vec<Value>) -> Result<EvalResult<Value>, Vec<Value>> {
            Err(args)
        }
        fn names(&self) -> Vec<String> {
            vec!["X".to_owned()]
        }
    }

    fn run(source: &str) -> EvalResult<Value> {
        let expr = hcl::edit::parser::parse_expr(source).expect("test expression parses");
        let locals = Locals::default();
        let ctx = Ctx {
            globals: &NoGlobals,
            file: 0,
            locals: &locals,
            spans: true,
        };
        eval(&expr, &ctx)
    }

    #[test]
    fn arithmetic_keeps_whole_numbers_integral() {
        assert_eq!(run("3 + 1").unwrap(), Value::from(4));
        assert_eq!(run("3 / 2").unwrap(), number(1.5));
        assert_eq!(run("7 % 3").unwrap(), Value::from(1));
        assert_eq!(run("-(2 * 3)").unwrap(), Value::from(-6));
    }

    #[test]
    fn single_interpolation_keeps_its_type() {
        assert_eq!(run(r#""${1 + 1}""#).unwrap(), Value::from(2));
        assert_eq!(run(r#""a${1 + 1}""#).unwrap(), Value::from("a2"));
    }

    #[test]
    fn template_directives_and_strip_markers() {
        assert_eq!(
            run(r#""%{ for n in ["a", "b"] }${n};%{ endfor }""#).unwrap(),
            Value::from("a;b;")
        );
        assert_eq!(
            run(r#""x %{~ if true ~} y %{~ endif ~} z""#).unwrap(),
            Value::from("xyz")
        );
        assert_eq!(
            run(r#""%{ if false }a%{ else }b%{ endif }""#).unwrap(),
            Value::from("b")
        );
    }

    #[test]
    fn for_expressions_filter_and_group() {
        assert_eq!(
            run(r#"[for v in ["1", "2", "3"] : "v${v}" if v != "2"]"#).unwrap(),
            Value::from(vec!["v1", "v3"])
        );
        let grouped = run(r#"{for s in ["a1", "a2", "b1"] : substr_key(s) => s...}"#);
        assert!(grouped.is_err(), "unknown function reported");
        let object = run(r#"{for k, v in {b = 1, a = 2} : v => k}"#).unwrap();
        assert_eq!(object, Value::from_iter([("2", "a"), ("1", "b")]));
    }

    #[test]
    fn splats_and_indexes() {
        assert_eq!(
            run(r#"[{n = 1}, {n = 2}][*].n"#).unwrap(),
            Value::from(vec![1, 2])
        );
        assert_eq!(run(r#"[{n = 1}].*.n"#).unwrap(), Value::from(vec![1]));
        assert_eq!(run(r#"{a = [5, 6]}.a[1]"#).unwrap(), Value::from(6));
        assert!(run("[1][3]").is_err());
    }

    #[test]
    fn logical_operators_short_circuit() {
        assert_eq!(run("true || nope").unwrap(), Value::Bool(true));
        assert_eq!(run("false && nope").unwrap(), Value::Bool(false));
        assert_eq!(run("true ? X : nope").unwrap(), Value::from("x"));
    }

    #[test]
    fn unknown_variable_points_at_it_and_suggests() {
        let error = run(r#""a${Y}""#).unwrap_err();
        assert_eq!(error.message, "unknown variable `Y`");
        assert_eq!(error.span, Some(4..5));
        assert_eq!(error.help.as_deref(), Some("did you mean `X`?"));
    }

    #[test]
    fn try_and_can_catch_errors() {
        assert_eq!(run("try(nope, 3)").unwrap(), Value::from(3));
        assert_eq!(run("can(nope)").unwrap(), Value::Bool(false));
        assert_eq!(run("can(X)").unwrap(), Value::Bool(true));
    }

    #[test]
    fn equality_is_deep() {
        assert_eq!(
            run("[1, {a = 2}] == [1, {a = 2}]").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(run(r#"1 == "1""#).unwrap(), Value::Bool(false));
        assert_eq!(run("null == null").unwrap(), Value::Bool(true));
    }
}
