//! The command line: clap types, subcommands, and the only place that writes to stdout and
//! stderr. Layer 5.

use std::process::ExitCode;

/// Runs the `bake` command line and returns the process exit code.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
