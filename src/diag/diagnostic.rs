//! [`Diagnostic`]: one problem in a user's file, with a stable code, the span it points at,
//! an optional help line and a severity.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, Severity, SourceCode};

use crate::diag::source::{SourceFile, span};

/// One problem in the user's input: an error (the command stops) or a warning (it goes on),
/// with where it is and what to do about it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// A stable code such as `bake::unknown_variable`, listed in the book's error reference.
    pub code: &'static str,
    /// Lowercase description with user values in backticks.
    pub message: String,
    /// Whether the command stops ([`Severity::Error`]) or goes on ([`Severity::Warning`]).
    pub severity: Severity,
    /// Byte range of the offending text.
    pub span: Option<Range<usize>>,
    /// Text shown under the span.
    pub label: Option<String>,
    /// A concrete fix, when there is one.
    pub help: Option<String>,
    /// The file the span points into, boxed so `Result<_, Diagnostic>` stays small.
    source: Option<Box<NamedSource<Arc<str>>>>,
}

impl Diagnostic {
    /// Creates an error with a code and message and no location.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            severity: Severity::Error,
            span: None,
            label: None,
            help: None,
            source: None,
        }
    }

    /// Creates an error with a code and message and no location (the pair of [`Self::warning`]).
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, message)
    }

    /// Creates a warning with a code and message and no location.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::new(code, message)
        }
    }

    /// Points the diagnostic at a byte range of a file (`None`: the file, no range).
    pub fn at(mut self, file: &SourceFile, span: impl Into<Option<Range<usize>>>) -> Self {
        self.source = Some(Box::new(file.named()));
        self.span = span.into();
        self
    }

    /// Returns the name of the file the diagnostic points into.
    pub fn file_name(&self) -> Option<&str> {
        self.source.as_deref().map(NamedSource::name)
    }

    /// Sets the text shown under the span.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if one is given.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Whether this is a warning rather than an error.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The location is drawn by the report handler (`╭─[file:line:col]`), so the message
        // stays bare here.
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.span.as_ref()?;
        self.source.as_deref().map(|n| n as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let range = self.span.clone()?;
        let label = LabeledSpan::new_with_span(self.label.clone(), span(range));
        Some(Box::new(std::iter::once(label)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::render;

    #[test]
    fn errors_and_warnings_render_with_code_span_and_help() {
        let file = SourceFile::new("f.hcl", "a = 1\n");
        let error = Diagnostic::new("x::bad", "bad `a`")
            .at(&file, 0..1)
            .label("here")
            .help("use `b`");
        assert!(!error.is_warning());
        assert_eq!(error.file_name(), Some("f.hcl"));
        let text = render(&error);
        assert!(text.contains("x::bad") && text.contains("here") && text.contains("use `b`"));
        let warning = Diagnostic::warning("x::odd", "odd").at(&file, None);
        assert!(warning.is_warning());
        assert!(miette::Diagnostic::source_code(&warning).is_none());
    }
}
