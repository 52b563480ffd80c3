//! The HCL expression evaluator: walks `hcl::edit` ASTs, keeps byte spans for errors, and
//! asks a [`Globals`] implementation for variables, block references and user functions so
//! that bake can resolve them lazily, in any declaration order.
//!
//! Our own evaluator instead of `hcl::eval` because bake needs closures for user functions,
//! lazy `target.<name>.<attr>` references, short-circuit `&&`/`||` and sub-expression spans.

use std::borrow::Cow;
use std::ops::Range;

use hcl::edit::expr::{BinaryOperator, Expression, ObjectKey, UnaryOperator};
use hcl::edit::{Ident, Span};
use hcl::{Map, Value};

use crate::bake::hcl::stdlib;
pub(crate) use crate::bake::hcl::types::type_name;
use crate::bake::hcl::types::{self, value_to_string};

mod access;
mod call;
mod template;

use self::access::eval_traversal;
use self::call::eval_call;
use self::template::{eval_for, eval_template};

/// An evaluation failure: what went wrong and, when known, where (byte range in the file
/// the expression came from).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EvalError {
    /// Lowercase description, user values in backticks.
    pub(crate) message: String,
    /// The offending sub-expression, if the expression carries spans.
    pub(crate) span: Option<Range<usize>>,
    /// Which input file the span refers to.
    pub(crate) file: Option<usize>,
    /// A concrete fix, when there is one.
    pub(crate) help: Option<String>,
    /// The diagnostic code it is reported under.
    pub(crate) code: &'static str,
}

impl EvalError {
    /// Creates an error without a location; callers attach one with [`EvalError::at`].
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
            file: None,
            help: None,
            code: "bake::eval",
        }
    }

    /// Sets the diagnostic code.
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Attaches a location unless one is already known.
    pub(crate) fn at(mut self, file: usize, span: Option<Range<usize>>) -> Self {
        if self.span.is_none() && span.is_some() {
            self.span = span;
            self.file = Some(file);
        }
        if self.file.is_none() {
            self.file = Some(file);
        }
        self
    }

    /// Adds a help line.
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Result alias for evaluation.
pub(crate) type EvalResult<T> = Result<T, EvalError>;

/// What the evaluator cannot know by itself: top-level names, block references and user
/// functions. Implementations resolve lazily and detect cycles.
pub(crate) trait Globals {
    /// Returns the value of a variable or global attribute, `None` if no such name exists.
    fn variable(&self, name: &str) -> Option<EvalResult<Value>>;
    /// Returns `target.<name>.<attr>` (or the whole block with `attr = None`), `None` when
    /// `kind` is not a block type.
    fn block(&self, kind: &str, name: &str, attr: Option<&str>) -> Option<EvalResult<Value>>;
    /// Calls a user `function` block; when no such function exists, hands the arguments
    /// back (so the standard library gets them without a copy).
    fn call(&self, name: &str, args: Vec<Value>) -> Result<EvalResult<Value>, Vec<Value>>;
    /// Every name in scope, for "did you mean" hints.
    fn names(&self) -> Vec<String>;
}

/// Local names bound by for-expressions, function parameters and matrix cells.
#[derive(Debug, Default)]
pub(crate) struct Locals<'a> {
    vars: Cow<'a, [(String, Value)]>,
    parent: Option<&'a Locals<'a>>,
}

impl<'a> Locals<'a> {
    /// Creates a scope with the given bindings on top of `parent`.
    pub(crate) fn new(vars: Vec<(String, Value)>, parent: Option<&'a Locals<'a>>) -> Self {
        Self {
            vars: Cow::Owned(vars),
            parent,
        }
    }

    /// Creates a top scope over bindings that outlive it (a matrix cell evaluated for every
    /// attribute of its target), without copying them.
    pub(crate) fn borrowed(vars: &'a [(String, Value)]) -> Self {
        Self {
            vars: Cow::Borrowed(vars),
            parent: None,
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .or_else(|| self.parent.and_then(|p| p.get(name)))
    }

    fn names(&self, out: &mut Vec<String>) {
        out.extend(self.vars.iter().map(|(n, _)| n.clone()));
        if let Some(parent) = self.parent {
            parent.names(out);
        }
    }
}

/// Everything one evaluation needs: the globals, the file the expression is from, the
/// local bindings, and whether the AST's spans are byte offsets into that file.
pub(crate) struct Ctx<'a> {
    /// Top-level resolver.
    pub(crate) globals: &'a dyn Globals,
    /// Index of the file the expression was parsed from.
    pub(crate) file: usize,
    /// Local bindings.
    pub(crate) locals: &'a Locals<'a>,
    /// False for expressions re-parsed from JSON strings, whose spans are string-relative.
    pub(crate) spans: bool,
}

impl Ctx<'_> {
    fn with<'b>(&'b self, locals: &'b Locals<'b>) -> Ctx<'b> {
        Ctx {
            globals: self.globals,
            file: self.file,
            locals,
            spans: self.spans,
        }
    }

    fn span_of(&self, expr: &impl Span) -> Option<Range<usize>> {
        if self.spans { expr.span() } else { None }
    }

    fn fail<T>(&self, expr: &impl Span, message: impl Into<String>) -> EvalResult<T> {
        Err(EvalError::new(message).at(self.file, self.span_of(expr)))
    }
}

/// Returns a number value: integral when whole (cty prints `4`, not `4.0`) and without
/// binary rounding noise (`0.1 + 0.2` is `0.3`).
pub(crate) fn number(value: f64) -> Value {
    types::f64_to_number(stdlib::snap(value)).map_or(Value::Null, Value::Number)
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
        Expression::Conditional(cond) => {
            let test = eval(&cond.cond_expr, ctx)?;
            match as_bool(&test) {
                Some(true) => eval(&cond.true_expr, ctx),
                Some(false) => eval(&cond.false_expr, ctx),
                None => ctx.fail(
                    &cond.cond_expr,
                    format!("the condition must be a bool, not a {}", type_name(&test)),
                ),
            }
        }
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

/// Returns the candidate closest to `name` by edit distance, if any is close enough.
pub(crate) fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
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
