//! HCL type expressions (`string`, `list(number)`, `object({a=string})`, ...) and cty's
//! conversion rules between values. Used by typed variables and `convert()`.
//!
//! Interim version: the full cty model lands with the stdlib branch.

use hcl::Value;
use hcl::edit::expr::Expression;

/// A cty type as written in a `type =` attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `any`
    Any,
}

impl Type {
    /// Parses a type expression.
    pub(crate) fn from_expr(expr: &Expression) -> Result<Type, String> {
        match expr {
            Expression::Variable(v) => match v.value().as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "any" => Ok(Type::Any),
                other => Err(format!("unknown type `{other}`")),
            },
            _ => Err("unsupported type expression".to_owned()),
        }
    }

    /// Converts a value to this type the way cty's `convert` does.
    pub(crate) fn convert(&self, value: Value) -> Result<Value, String> {
        Ok(value)
    }
}

/// Converts a primitive to its cty string form; `None` for null and collections.
pub(crate) fn value_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Type::String => "string",
            Type::Number => "number",
            Type::Bool => "bool",
            Type::Any => "any",
        })
    }
}

/// Parses an override string for a variable (interim: primitives only).
pub(crate) fn parse_override(
    ty: Option<&Type>,
    default: &Value,
    raw: &str,
    is_json: bool,
) -> Result<Value, String> {
    let _ = (ty, is_json);
    match default {
        Value::Bool(_) => match raw {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not a bool")),
        },
        Value::Number(_) => raw
            .parse::<f64>()
            .ok()
            .and_then(hcl::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{raw}` is not a number")),
        _ => Ok(Value::String(raw.to_owned())),
    }
}
