//! Bake's user-facing errors: one [`Diagnostic`] per problem, pointing into the file that
//! caused it, an [`Error`] that carries several at once, and bake's "did you mean" rule.

use std::fmt;

use miette::{LabeledSpan, SourceCode};

pub use crate::diag::Diagnostic;

/// Returns the candidate closest to `name`, if it is within a third of the longer name's
/// length (at least one edit).
pub(crate) fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = |candidate: &str| (name.len().max(candidate.len()) / 3).max(1);
    crate::diag::suggest(name, candidates.iter().map(String::as_str), false, limit)
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
