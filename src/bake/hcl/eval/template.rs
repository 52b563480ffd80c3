//! String templates (`${}` interpolation, `%{if}`/`%{for}` directives, `~` strip markers)
//! and for-expressions.

use hcl::edit::expr::{Expression, ForExpr};
use hcl::edit::template::{Directive, Element, Template};
use hcl::{Map, Value};

use crate::bake::hcl::eval::context::{Ctx, EvalResult, Locals, as_bool};
use crate::bake::hcl::types::type_name;
use crate::bake::hcl::types::value_to_string;

pub(super) fn eval_template(template: &Template, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let elements: Vec<&Element> = template.iter().collect();
    if let [Element::Interpolation(interpolation)] = elements.as_slice() {
        // A template that is a single interpolation yields the value itself, unconverted.
        return ctx.eval(&interpolation.expr);
    }
    let mut out = String::new();
    render_elements(&elements, false, false, &mut out, ctx)?;
    Ok(Value::String(out))
}

/// Which way an element strips whitespace from its neighbours (`~` markers).
fn strips(element: &Element) -> (bool, bool) {
    match element {
        Element::Literal(_) => (false, false),
        Element::Interpolation(i) => (i.strip.strip_start(), i.strip.strip_end()),
        Element::Directive(directive) => match directive.as_ref() {
            Directive::If(d) => (
                d.if_expr.strip.strip_start(),
                d.endif_expr.strip.strip_end(),
            ),
            Directive::For(d) => (
                d.for_expr.strip.strip_start(),
                d.endfor_expr.strip.strip_end(),
            ),
        },
    }
}

fn render_elements(
    elements: &[&Element],
    trim_first: bool,
    trim_last: bool,
    out: &mut String,
    ctx: &Ctx<'_>,
) -> EvalResult<()> {
    for (index, element) in elements.iter().enumerate() {
        match element {
            Element::Literal(literal) => {
                let mut text = literal.value().as_str();
                let strip_before = if index == 0 {
                    trim_first
                } else {
                    strips(elements[index - 1]).1
                };
                let strip_after = match elements.get(index + 1) {
                    Some(next) => strips(next).0,
                    None => trim_last,
                };
                if strip_before {
                    text = text.trim_start();
                }
                if strip_after {
                    text = text.trim_end();
                }
                out.push_str(text);
            }
            Element::Interpolation(interpolation) => {
                let value = ctx.eval(&interpolation.expr)?;
                out.push_str(&template_string(&value, &interpolation.expr, ctx)?);
            }
            Element::Directive(directive) => render_directive(directive, out, ctx)?,
        }
    }
    Ok(())
}

fn template_string(value: &Value, expr: &Expression, ctx: &Ctx<'_>) -> EvalResult<String> {
    match value_to_string(value) {
        Some(s) => Ok(s),
        None if value.is_null() => ctx.fail(expr, "cannot include a null value in a string"),
        None => ctx.fail(
            expr,
            format!(
                "cannot include a {} in a string; use `join()` or `jsonencode()`",
                type_name(value)
            ),
        ),
    }
}

fn render_directive(directive: &Directive, out: &mut String, ctx: &Ctx<'_>) -> EvalResult<()> {
    match directive {
        Directive::If(d) => {
            let test = ctx.eval(&d.if_expr.cond_expr)?;
            let Some(test) = as_bool(&test) else {
                return ctx.fail(&d.if_expr.cond_expr, "`%{if}` needs a bool condition");
            };
            let else_strip_start = d.else_expr.as_ref().map(|e| e.strip.strip_start());
            if test {
                let trim_last = else_strip_start.unwrap_or(d.endif_expr.strip.strip_start());
                let elements: Vec<&Element> = d.if_expr.template.iter().collect();
                render_elements(&elements, d.if_expr.strip.strip_end(), trim_last, out, ctx)
            } else if let Some(else_expr) = &d.else_expr {
                let elements: Vec<&Element> = else_expr.template.iter().collect();
                let trim_last = d.endif_expr.strip.strip_start();
                render_elements(&elements, else_expr.strip.strip_end(), trim_last, out, ctx)
            } else {
                Ok(())
            }
        }
        Directive::For(d) => {
            let collection = ctx.eval(&d.for_expr.collection_expr)?;
            let items = iterate(&collection, &d.for_expr.collection_expr, ctx)?;
            let elements: Vec<&Element> = d.for_expr.template.iter().collect();
            for (key, value) in items {
                let mut vars = vec![(d.for_expr.value_var.value().to_string(), value)];
                if let Some(key_var) = &d.for_expr.key_var {
                    vars.push((key_var.value().to_string(), key));
                }
                let locals = Locals::new(vars, Some(ctx.locals));
                let inner = ctx.with(&locals);
                render_elements(
                    &elements,
                    d.for_expr.strip.strip_end(),
                    d.endfor_expr.strip.strip_start(),
                    out,
                    &inner,
                )?;
            }
            Ok(())
        }
    }
}

/// Returns `(key, value)` pairs: indexes for lists, keys (sorted, as cty does) for objects.
fn iterate(
    collection: &Value,
    expr: &Expression,
    ctx: &Ctx<'_>,
) -> EvalResult<Vec<(Value, Value)>> {
    match collection {
        Value::Array(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i as u64), v.clone()))
            .collect()),
        Value::Object(map) => {
            let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            Ok(pairs
                .into_iter()
                .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                .collect())
        }
        other => ctx.fail(expr, format!("cannot iterate over a {}", type_name(other))),
    }
}

pub(super) fn eval_for(for_expr: &ForExpr, ctx: &Ctx<'_>) -> EvalResult<Value> {
    let intro = &for_expr.intro;
    let collection = ctx.eval(&intro.collection_expr)?;
    let items = iterate(&collection, &intro.collection_expr, ctx)?;
    let mut list = Vec::new();
    let mut object: Map<String, Value> = Map::new();
    for (key, value) in items {
        let mut vars = vec![(intro.value_var.value().to_string(), value)];
        if let Some(key_var) = &intro.key_var {
            vars.push((key_var.value().to_string(), key));
        }
        let locals = Locals::new(vars, Some(ctx.locals));
        let inner = ctx.with(&locals);
        if let Some(cond) = &for_expr.cond {
            let keep = inner.eval(&cond.expr)?;
            match as_bool(&keep) {
                Some(true) => {}
                Some(false) => continue,
                None => return inner.fail(&cond.expr, "the `if` clause must be a bool"),
            }
        }
        let value = inner.eval(&for_expr.value_expr)?;
        match &for_expr.key_expr {
            None => list.push(value),
            Some(key_expr) => {
                let key = inner.eval(key_expr)?;
                let Some(key) = value_to_string(&key) else {
                    return inner.fail(key_expr, "object keys must be strings");
                };
                if for_expr.grouping {
                    match object
                        .entry(key)
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        Value::Array(group) => group.push(value),
                        _ => return inner.fail(key_expr, "cannot group into a non-list"),
                    }
                } else if object.contains_key(&key) {
                    return inner.fail(
                        key_expr,
                        format!("duplicate object key `{key}`; add `...` to group values"),
                    );
                } else {
                    object.insert(key, value);
                }
            }
        }
    }
    Ok(match for_expr.key_expr {
        None => Value::Array(list),
        Some(_) => Value::Object(object),
    })
}
