//! `bake debug graph [TARGET]` and `bake debug plan`: print the lowered build graph or the
//! build requests as JSON, like `buildctl debug dump-llb`.

use clap::{Parser, Subcommand};

use crate::bake::print::to_go_json;
use crate::bake::{self, Diagnostic, Error};
use crate::cli::args::Args;
use crate::cli::bake::{Output, call_spec, current_dir, inputs};
use crate::engine;
use crate::plan;

/// Inspect what bake would build.
#[derive(Debug, Parser)]
#[command(name = "bake debug")]
pub(crate) struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Print the build graph (ops, inputs, digests, source locations) of a target as JSON.
    Graph(Args),
    /// Print the build requests (one per target and platform) as JSON.
    Plan(Args),
    /// List the platforms this host builds for and how their RUN steps run (native, a
    /// binfmt_misc handler, QEMU started for the first process only, or unavailable).
    Workers,
}

/// Runs a `bake debug` subcommand.
pub(crate) fn run(args: &DebugArgs) -> miette::Result<Output> {
    let (bake_args, graph) = match &args.command {
        DebugCommand::Graph(a) => (a, true),
        DebugCommand::Plan(a) => (a, false),
        DebugCommand::Workers => return Ok(workers()),
    };
    let cwd = current_dir()?;
    let inputs = inputs(bake_args, &cwd, &call_spec(bake_args)?)?;
    let (mut resolved, warnings) = bake::load_with_warnings(&inputs)?;
    for warning in &warnings {
        crate::cli::report::draw(warning);
    }
    if let Some(url) = crate::cli::remote::definition_url(bake_args) {
        crate::cli::remote::default_contexts(&mut resolved, url);
    }
    let plan = plan::plan(&resolved, &cwd)?;
    if !graph {
        return Ok(Output {
            stdout: Some(format!("{}\n", to_go_json(&plan))),
            failed: false,
        });
    }
    let requested: Vec<String> = crate::cli::remote::targets(bake_args)
        .iter()
        .map(|t| t.replace('.', "_"))
        .collect();
    let request = plan
        .requests
        .iter()
        .find(|r| requested.is_empty() || requested.contains(&r.target))
        .ok_or_else(|| {
            Error::one(Diagnostic::new(
                "bake::unknown_target",
                "no target to show the graph of",
            ))
        })?;
    let fetched = crate::cli::remote::fetch_inputs(
        bake_args,
        plan::Plan {
            requests: vec![request.clone()],
        },
    )?;
    let definition = engine::graph(&fetched.requests[0])?;
    Ok(Output {
        stdout: Some(format!("{}\n", to_go_json(&definition))),
        failed: false,
    })
}

/// `bake debug workers`: one line per platform, as `buildctl debug workers` lists them.
fn workers() -> Output {
    let platforms = engine::settings::worker_platforms();
    let width = platforms
        .iter()
        .map(|w| w.platform.to_string().len())
        .max()
        .unwrap_or(0);
    let mut text = format!("{:<width$}   RUNS\n", "PLATFORM");
    for worker in &platforms {
        text.push_str(&format!(
            "{:<width$}   {}\n",
            worker.platform.to_string(),
            worker.how
        ));
    }
    Output {
        stdout: Some(text),
        failed: false,
    }
}
