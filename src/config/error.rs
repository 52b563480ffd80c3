//! Config-file problems: each one points into the file, and [`Error`] carries every error
//! found in one pass.

use std::fmt;

use miette::{LabeledSpan, SourceCode};

pub use crate::diag::Diagnostic;

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
