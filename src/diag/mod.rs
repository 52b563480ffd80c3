//! Source files, byte spans, diagnostics and their rendering, shared by every parser (bake
//! files, config files, Dockerfiles). Leaf: imports nothing from the crate.
//!
//! Parsers keep byte ranges into the original text; a [`SourceFile`] turns them into miette
//! labels, a [`Diagnostic`] carries one problem with its code, span, help and severity,
//! [`suggest`] finds the "did you mean" candidate, and [`render`] draws a report the way tests
//! snapshot it.

mod diagnostic;
mod source;
mod suggest;

use miette::{GraphicalReportHandler, GraphicalTheme};

pub use self::diagnostic::Diagnostic;
pub use self::source::{SourceFile, span};
pub use self::suggest::{edit_distance, suggest};

/// Renders a diagnostic as plain text (no colours, fixed width, no URLs), the form tests
/// snapshot and the form used when stderr is not a terminal.
pub fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
        .with_urls(false);
    if handler.render_report(&mut out, diagnostic).is_err() {
        out = diagnostic.to_string();
    }
    out
}
