//! `bake setup emulation [--arch ARCH,...] [--uninstall]`: registers (or removes) the
//! host's QEMU `binfmt_misc` handlers and prints one line per architecture.

use clap::{Parser, Subcommand};

use crate::cli::bake::Output;
use crate::engine::setup;

/// Prepare this host for builds.
#[derive(Debug, Parser)]
#[command(name = "bake setup")]
pub(crate) struct SetupArgs {
    #[command(subcommand)]
    command: SetupCommand,
}

#[derive(Debug, Subcommand)]
enum SetupCommand {
    /// Register QEMU's binfmt_misc handlers (with the `F` flag) so every process of a
    /// foreign RUN step runs emulated. Host-wide until reboot; needs root.
    Emulation(EmulationArgs),
}

#[derive(Debug, clap::Args)]
struct EmulationArgs {
    /// Architectures, as Go (`arm64`, `riscv64`) or QEMU (`aarch64`) names, comma-separated
    /// or repeated. Default: every one whose `qemu-<arch>-static` is installed (with
    /// `--uninstall`: every handler named `qemu-*`).
    #[arg(long = "arch", value_name = "ARCH", value_delimiter = ',')]
    arch: Vec<String>,

    /// Remove the handlers that run these architectures instead.
    #[arg(long)]
    uninstall: bool,
}

/// Runs a `bake setup` subcommand.
pub(crate) fn run(args: &SetupArgs) -> miette::Result<Output> {
    let SetupCommand::Emulation(emulation) = &args.command;
    let report = if emulation.uninstall {
        setup::uninstall(&emulation.arch)?
    } else {
        setup::install(&emulation.arch)?
    };
    let mut text = String::new();
    if report.mounted {
        text.push_str("mounted binfmt_misc at /proc/sys/fs/binfmt_misc\n");
    }
    for line in &report.lines {
        text.push_str(&format!("{line}\n"));
    }
    Ok(Output {
        stdout: Some(text),
        failed: false,
    })
}
