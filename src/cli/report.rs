//! Draws diagnostics (errors and warnings) on stderr for every subcommand.

use std::io::{IsTerminal, Write};

/// Draws a diagnostic on stderr: coloured on a terminal, plain otherwise.
pub(super) fn draw(error: &dyn miette::Diagnostic) {
    let text = if std::io::stderr().is_terminal() {
        let mut out = String::new();
        let handler = miette::GraphicalReportHandler::new();
        match handler.render_report(&mut out, error) {
            Ok(()) => out,
            Err(_) => crate::diag::render(error),
        }
    } else {
        crate::diag::render(error)
    };
    // A closed stderr (`bake ... 2>&1 | head`) only loses the text; `eprint!` would panic.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
