//! Traversals: attribute access, indexing, splats, and the lazy `target.<name>.<attr>` and
//! `group.<name>.<attr>` references.

use hcl::Value;
use hcl::edit::expr::{Expression, TraversalOperator};

use crate::bake::hcl::eval::context::{Ctx, EvalError, EvalResult, as_number};
use crate::bake::hcl::types::type_name;
use crate::bake::hcl::types::value_to_string;

pub(super) fn eval_traversal(
    base: &Expression,
    operators: &[hcl::edit::Decorated<TraversalOperator>],
    ctx: &Ctx<'_>,
) -> EvalResult<Value> {
    // `target.<name>.<attr>` and `group.<name>...` resolve lazily through the globals.
    if let Expression::Variable(root) = base {
        let root = root.value().as_str();
        if ctx.locals.get(root).is_none() && matches!(root, "target" | "group") {
            let name = match operators.first().map(|o| o.value()) {
                Some(TraversalOperator::GetAttr(name)) => name.value().to_string(),
                Some(TraversalOperator::Index(index)) => {
                    let key = ctx.eval(index)?;
                    value_to_string(&key).unwrap_or_default()
                }
                _ => return ctx.fail(base, format!("cannot traverse `{root}` without a name")),
            };
            let attr = match operators.get(1).map(|o| o.value()) {
                Some(TraversalOperator::GetAttr(attr)) => Some(attr.value().to_string()),
                _ => None,
            };
            let consumed = if attr.is_some() { 2 } else { 1 };
            let value = match ctx.globals.block(root, &name, attr.as_deref()) {
                Some(result) => result.map_err(|e| e.at(ctx.file, ctx.span_of(base)))?,
                None => return ctx.fail(base, format!("unknown `{root}` `{name}`")),
            };
            return apply_operators(value, &operators[consumed..], ctx);
        }
    }
    let value = ctx.eval(base)?;
    apply_operators(value, operators, ctx)
}

fn apply_operators(
    mut value: Value,
    operators: &[hcl::edit::Decorated<TraversalOperator>],
    ctx: &Ctx<'_>,
) -> EvalResult<Value> {
    for (position, operator) in operators.iter().enumerate() {
        let span = ctx.span_of(operator);
        match operator.value() {
            TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                let items = match value {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                let rest = &operators[position + 1..];
                let mapped = items
                    .into_iter()
                    .map(|item| apply_operators(item, rest, ctx))
                    .collect::<EvalResult<Vec<_>>>()?;
                return Ok(Value::Array(mapped));
            }
            TraversalOperator::GetAttr(name) => {
                value = get_key(&value, name.value().as_str())
                    .map_err(|e| EvalError::new(e).at(ctx.file, span))?;
            }
            TraversalOperator::Index(index_expr) => {
                let index = ctx.eval(index_expr)?;
                value = index_value(&value, &index)
                    .map_err(|e| EvalError::new(e).at(ctx.file, ctx.span_of(index_expr)))?;
            }
            TraversalOperator::LegacyIndex(index) => {
                value = index_value(&value, &Value::from(*index.value()))
                    .map_err(|e| EvalError::new(e).at(ctx.file, span))?;
            }
        }
    }
    Ok(value)
}

fn get_key(value: &Value, key: &str) -> Result<Value, String> {
    match value {
        Value::Object(map) => map
            .get(key)
            .cloned()
            .ok_or_else(|| format!("this object has no attribute `{key}`")),
        Value::Null => Err(format!("cannot read `{key}` of a null value")),
        other => Err(format!(
            "cannot read attribute `{key}` of a {}",
            type_name(other)
        )),
    }
}

fn index_value(value: &Value, index: &Value) -> Result<Value, String> {
    match value {
        Value::Array(items) => {
            let position = as_number(index)
                .filter(|n| n.fract() == 0.0 && *n >= 0.0)
                .ok_or_else(|| "a list index must be a whole number".to_owned())?;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked above"
            )]
            let position = position as usize;
            items.get(position).cloned().ok_or_else(|| {
                format!(
                    "index {position} is out of range for a list of {} elements",
                    items.len()
                )
            })
        }
        Value::Object(_) => match value_to_string(index) {
            Some(key) => get_key(value, &key),
            None => Err("an object key must be a string".to_owned()),
        },
        Value::Null => Err("cannot index a null value".to_owned()),
        other => Err(format!("cannot index a {}", type_name(other))),
    }
}
