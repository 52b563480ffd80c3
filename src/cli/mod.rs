//! The command line: clap types, subcommands, and the only place that writes to stdout and
//! stderr. Layer 5.

pub mod args;
mod bake;
mod call;
mod debug;
mod progress;
mod remote;
mod report;
mod setup;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use self::report::draw;

/// Runs the `bake` command line and returns the process exit code.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // `bake debug ...` and `bake setup ...` are subcommands; anything else is a list of
    // targets, as in buildx (a target literally named `debug` or `setup` can still be built
    // as `bake -- debug`).
    let outcome = if argv.get(1).is_some_and(|a| a == "debug") {
        debug::run(&debug::DebugArgs::parse_from(&argv[1..]))
    } else if argv.get(1).is_some_and(|a| a == "setup") {
        setup::run(&setup::SetupArgs::parse_from(&argv[1..]))
    } else {
        bake::run(&args::Args::parse_from(&argv))
    };
    match outcome {
        Ok(output) => {
            if let Some(text) = output.stdout {
                let mut stdout = std::io::stdout().lock();
                if stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
            }
            if output.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(report) => {
            draw(report.as_ref());
            ExitCode::FAILURE
        }
    }
}
