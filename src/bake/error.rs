//! Bake's user-facing errors: one [`Diagnostic`] per problem, pointing into the file that
//! caused it, and an [`Error`] that carries several at once.

use std::fmt;
use std::ops::Range;

use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

use crate::diag::SourceFile;

/// One problem in the user's input, with where it is and what to do about it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// A stable code such as `bake::unknown_variable`, listed in the book's error reference.
    pub code: &'static str,
    /// Lowercase description with user values in backticks.
    pub message: String,
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
    /// Creates a diagnostic with a code and message and no location.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            source: None,
        }
    }

    /// Points the diagnostic at a byte range of a file.
    pub fn at(mut self, file: &SourceFile, span: Option<Range<usize>>) -> Self {
        self.source = Some(Box::new(file.named()));
        self.span = span;
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

/// Everything that went wrong while loading bake files: at least one diagnostic.
#[derive(Debug, Clone)]
pub struct Error {
    /// The problems, in the order they were found.
    pub diagnostics: Vec<Diagnostic>,
}

impl Error {
    /// Wraps a single diagnostic.
    pub fn one(diagnostic: Diagnostic) -> Self {
        Self {
            diagnostics: vec![diagnostic],
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(diagnostic: Diagnostic) -> Self {
        Self::one(diagnostic)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.diagnostics.first() {
            Some(first) => fmt::Display::fmt(first, f),
            None => f.write_str("unknown error"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    fn first(&self) -> Option<&Diagnostic> {
        self.diagnostics.first()
    }
}

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
