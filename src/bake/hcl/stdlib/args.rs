//! What every function file shares: [`CallError`] and the typed argument accessors.

use hcl::{Map, Value};

use crate::bake::hcl::types::{f64_to_number, number_to_string, type_name, value_to_string};

/// Why a stdlib call failed; the evaluator turns it into a diagnostic at the call's span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallError {
    /// No function of that name exists.
    Unknown,
    /// The number of arguments does not fit the signature.
    Arity {
        /// A human description of what was expected, e.g. `2` or `at least 1`.
        expected: String,
        /// How many arguments were given.
        got: usize,
    },
    /// One argument has the wrong type or value (0-based index).
    Argument {
        /// The 0-based position of the bad argument.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The function itself failed.
    Failed(String),
}

/// A numeric result, keeping whole numbers integral.
pub(super) fn num(f: f64) -> Result<Value, CallError> {
    f64_to_number(snap(f))
        .map(Value::Number)
        .ok_or_else(|| CallError::Failed("result is not a finite number".to_owned()))
}

/// Removes binary rounding noise (`0.1 + 0.2` → `0.3`): cty computes with 512-bit
/// decimals-friendly floats, so its results never show f64 artefacts.
pub(crate) fn snap(f: f64) -> f64 {
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if (rounded - f).abs() <= f.abs() * 4.0 * f64::EPSILON {
        rounded
    } else {
        f
    }
}

/// The string argument at `i` (arguments are already converted).
pub(super) fn arg_str(args: &[Value], i: usize) -> Result<&str, CallError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad(i, "a string is required")),
    }
}

/// The number argument at `i` as f64.
pub(super) fn arg_f64(args: &[Value], i: usize) -> Result<f64, CallError> {
    match args.get(i) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad(i, "a number is required")),
        _ => Err(bad(i, "a number is required")),
    }
}

/// The whole-number argument at `i`.
pub(super) fn arg_int(args: &[Value], i: usize) -> Result<i64, CallError> {
    match args.get(i) {
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Ok(v),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
                _ => Err(bad(i, "value must be a whole number")),
            },
        },
        _ => Err(bad(i, "a number is required")),
    }
}

/// The bool argument at `i`.
pub(super) fn arg_bool(args: &[Value], i: usize) -> Result<bool, CallError> {
    match args.get(i) {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(bad(i, "a bool is required")),
    }
}

/// The list argument at `i`.
pub(super) fn arg_list(args: &[Value], i: usize) -> Result<&[Value], CallError> {
    match args.get(i) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(bad(i, "a list is required")),
    }
}

/// The object argument at `i`.
pub(super) fn arg_obj(args: &[Value], i: usize) -> Result<&Map<String, Value>, CallError> {
    match args.get(i) {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(bad(i, "a map or object is required")),
    }
}

/// Takes ownership of the argument at `i`.
pub(super) fn take(args: &mut [Value], i: usize) -> Value {
    args.get_mut(i).map(std::mem::take).unwrap_or(Value::Null)
}

/// An `Argument` error.
pub(super) fn bad(index: usize, message: impl Into<String>) -> CallError {
    CallError::Argument {
        index,
        message: message.into(),
    }
}

/// A `Failed` error.
pub(super) fn failed(message: impl Into<String>) -> CallError {
    CallError::Failed(message.into())
}

/// Renders a primitive for messages (`"a"`, `1`).
pub(super) fn display(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => number_to_string(n),
        other => value_to_string(other).unwrap_or_else(|| type_name(other).to_owned()),
    }
}
