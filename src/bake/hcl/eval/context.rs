//! What evaluation works with: the [`Ctx`] of one evaluation (globals, locals, file), its
//! [`EvalError`], and value coercions shared by the evaluator's files.

use std::borrow::Cow;
use std::ops::Range;

use hcl::Value;
use hcl::edit::Span;

use crate::bake::hcl::stdlib;
use crate::bake::hcl::types;

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

    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .or_else(|| self.parent.and_then(|p| p.get(name)))
    }

    pub(super) fn names(&self, out: &mut Vec<String>) {
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
    pub(super) fn with<'b>(&'b self, locals: &'b Locals<'b>) -> Ctx<'b> {
        Ctx {
            globals: self.globals,
            file: self.file,
            locals,
            spans: self.spans,
        }
    }

    pub(super) fn span_of(&self, expr: &impl Span) -> Option<Range<usize>> {
        if self.spans { expr.span() } else { None }
    }

    pub(super) fn fail<T>(&self, expr: &impl Span, message: impl Into<String>) -> EvalResult<T> {
        Err(EvalError::new(message).at(self.file, self.span_of(expr)))
    }
}

/// Returns a number value: integral when whole (cty prints `4`, not `4.0`) and without
/// binary rounding noise (`0.1 + 0.2` is `0.3`).
pub(crate) fn number(value: f64) -> Value {
    types::f64_to_number(stdlib::snap(value)).map_or(Value::Null, Value::Number)
}

pub(super) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

pub(super) fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}
