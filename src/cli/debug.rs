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
    /// binfmt_misc handler, QEMU started for the first process only, or unavailable); only
    /// the config's `[worker.oci] platforms` when it names them.
    Workers {
        /// The buildkitd.toml to read (default: the file buildkitd would read).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// List the BuildKit builders bake can use (buildx's store, `default`, `--builder`),
    /// which one a build would take, and what each node answers.
    Builders {
        /// Also show this builder or endpoint (as `--builder` takes it).
        #[arg(long, value_name = "NAME")]
        builder: Option<String>,
    },
}

/// Runs a `bake debug` subcommand.
pub(crate) fn run(args: &DebugArgs) -> miette::Result<Output> {
    let (bake_args, graph) = match &args.command {
        DebugCommand::Graph(a) => (a, true),
        DebugCommand::Plan(a) => (a, false),
        DebugCommand::Workers { config } => {
            let config = crate::cli::bake::load_config_file(config.as_deref())?;
            return Ok(workers(&config));
        }
        DebugCommand::Builders { builder } => return builders(builder.as_deref()),
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
fn workers(config: &crate::config::Config) -> Output {
    let platforms = engine::settings::worker_platforms(config);
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

/// `bake debug builders`: every builder in buildx's store plus `default` (and `--builder`
/// when it names an endpoint), the one a build would use marked `*`, each node with its
/// platforms (the store's marked `*`, then the workers') and BuildKit version, like
/// `docker buildx ls`.
fn builders(flag: Option<&str>) -> miette::Result<Output> {
    use crate::engine::remote::{self, Selection};
    let environment = remote::Environment::from_process();
    let selected = match remote::select(flag, &environment)? {
        Selection::Embedded => None,
        Selection::Remote(builder, _) => Some(builder),
    };
    let mut builders: Vec<(String, Result<remote::Builder, String>)> =
        remote::instances(&environment)?
            .into_iter()
            .map(|(name, builder)| (name, builder.map_err(|e| e.to_string())))
            .collect();
    if !builders
        .iter()
        .any(|(name, _)| name == remote::DEFAULT_BUILDER)
    {
        let default =
            remote::resolve(remote::DEFAULT_BUILDER, &environment).map_err(|e| e.to_string());
        builders.push((remote::DEFAULT_BUILDER.to_owned(), default));
    }
    if let Some(builder) = &selected
        && !builders.iter().any(|(name, _)| *name == builder.name)
    {
        builders.push((builder.name.clone(), Ok(builder.clone())));
    }
    let mut text = String::from("NAME/NODE\tDRIVER/ENDPOINT\tSTATUS\tBUILDKIT\tPLATFORMS\n");
    let mark = |name: &str| {
        if selected.as_ref().is_some_and(|b| b.name == name) {
            " *"
        } else {
            ""
        }
    };
    text.push_str(&format!(
        "(embedded){}\tbake\trunning\t-\t{}\n",
        if selected.is_none() { " *" } else { "" },
        crate::engine::settings::worker_platforms(&crate::cli::bake::load_config_file(None)?)
            .iter()
            .map(|w| w.platform.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (name, builder) in &builders {
        match builder {
            Err(error) => text.push_str(&format!("{name}{}\t-\terror: {error}\t\t\n", mark(name))),
            Ok(builder) => {
                text.push_str(&format!("{name}{}\t{}\t\t\t\n", mark(name), builder.driver));
                for node in remote::inspect(builder)? {
                    // Compat: `docker buildx ls` marks the store's platforms with `*` and
                    // lists the workers' other platforms after them.
                    let mut platforms: Vec<String> =
                        node.configured.iter().map(|p| format!("{p}*")).collect();
                    let (status, version) = match &node.answer {
                        Ok((workers, version)) => {
                            platforms.extend(
                                workers
                                    .iter()
                                    .filter(|p| {
                                        !node.configured.iter().any(|c| {
                                            c.clone().normalize() == (*p).clone().normalize()
                                        })
                                    })
                                    .map(ToString::to_string),
                            );
                            (
                                "running".to_owned(),
                                version.clone().unwrap_or_else(|| "-".to_owned()),
                            )
                        }
                        Err(error) => (format!("error: {error}"), "-".to_owned()),
                    };
                    let platforms = platforms.join(", ");
                    text.push_str(&format!(
                        "  \\_ {}\t{}\t{status}\t{version}\t{platforms}\n",
                        node.name, node.address
                    ));
                }
            }
        }
    }
    Ok(Output {
        stdout: Some(align(&text)),
        failed: false,
    })
}

/// Aligns tab-separated columns with three spaces between them.
fn align(text: &str) -> String {
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}
