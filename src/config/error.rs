//! Config-file problems: each one points into the file, and [`Error`] carries every error
//! found in one pass.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, Severity, SourceCode};

use crate::diag::SourceFile;

/// One problem in a config file: an error (bake stops) or a warning (bake goes on).
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// A stable code such as `config::type`, listed in the book's error reference.
    pub code: &'static str,
    /// Lowercase description with user values in backticks.
    pub message: String,
    /// Whether bake stops ([`Severity::Error`]) or goes on ([`Severity::Warning`]).
    pub severity: Severity,
    /// Byte range of the offending text.
    pub span: Option<Range<usize>>,
    /// Text shown under the span.
    pub label: Option<String>,
    /// A concrete fix, when there is one.
    pub help: Option<String>,
    /// The file the span points into, boxed so results stay small.
    source: Option<Box<NamedSource<Arc<str>>>>,
}

impl Diagnostic {
    /// Creates an error with a code and message and no location.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
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

    /// Creates a warning with a code and message and no location.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    /// Points the diagnostic at a byte range of a file.
    pub fn at(mut self, file: &SourceFile, span: Range<usize>) -> Self {
        self.source = Some(Box::new(file.named()));
        self.span = Some(span);
        self
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
        let span = self.span.clone()?;
        let label = LabeledSpan::new_with_span(self.label.clone(), crate::diag::span(span));
        Some(Box::new(std::iter::once(label)))
    }
}

/// A config file bake cannot use: at least one error diagnostic.
#[derive(Debug, Clone)]
pub struct Error {
    /// The errors, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Error {
    /// Wraps a single diagnostic.
    pub fn one(diagnostic: Diagnostic) -> Self {
        Self {
            diagnostics: vec![diagnostic],
        }
    }

    fn first(&self) -> Option<&Diagnostic> {
        self.diagnostics.first()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first() {
            Some(first) => fmt::Display::fmt(first, f),
            None => f.write_str("invalid config file"),
        }
    }
}

impl std::error::Error for Error {}

impl miette::Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.first().and_then(miette::Diagnostic::code)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.first().and_then(miette::Diagnostic::help)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.first()
            .and_then(|d| miette::Diagnostic::source_code(d))
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.first().and_then(miette::Diagnostic::labels)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.diagnostics.len() < 2 {
            return None;
        }
        Some(Box::new(
            self.diagnostics[1..]
                .iter()
                .map(|d| d as &dyn miette::Diagnostic),
        ))
    }
}
