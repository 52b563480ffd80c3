//! The command line: clap types, subcommands, and the only place that writes to stdout and
//! stderr. Layer 5.
#![expect(clippy::print_stderr, reason = "the CLI owns stderr")]

pub mod args;
mod bake;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

/// Runs the `bake` command line and returns the process exit code.
pub fn main() -> ExitCode {
    let args = args::Args::parse();
    match bake::run(&args) {
        Ok(output) => {
            if let Some(text) = output {
                let mut stdout = std::io::stdout().lock();
                if stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Draws a diagnostic on stderr: coloured on a terminal, plain otherwise.
fn report(error: &dyn miette::Diagnostic) {
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
    eprint!("{text}");
}
