//! The main `bake` command: gather inputs from flags, files and the environment, call
//! `bake::load`/`bake::define`, and print the result.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bake::print::{self, ListFormat};
use crate::bake::{self, Diagnostic, Error, Inputs};
use crate::cli::args::Args;
use crate::cli::call::{self, CallSpec};
use crate::plan::{self, Call};
use crate::platform::Platform;

/// What a command produced: text for stdout, and whether it must exit non-zero anyway
/// (checks that found problems still print their findings).
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Text for stdout.
    pub(crate) stdout: Option<String>,
    /// Exit 1 after printing.
    pub(crate) failed: bool,
}

fn truthy(value: Option<&String>) -> bool {
    value.is_some_and(|v| crate::buildflags::parse_bool(v).unwrap_or(false))
}

/// Builds the override list the flags imply, the way buildx appends them to `--set`.
fn overrides(args: &Args, call: &CallSpec) -> Vec<String> {
    let mut out = args.set.clone();
    if args.load {
        out.push("*.load=true".to_owned());
    }
    if args.push {
        out.push("*.push=true".to_owned());
    }
    if let Some(no_cache) = args.no_cache {
        out.push(format!("*.no-cache={no_cache}"));
    }
    if let Some(pull) = args.pull {
        out.push(format!("*.pull={pull}"));
    }
    for (kind, value) in [("sbom", &args.sbom), ("provenance", &args.provenance)] {
        if let Some(value) = value {
            let attest = match crate::buildflags::parse_bool(value) {
                Some(enabled) => format!("type={kind},disabled={}", !enabled),
                None => format!("type={kind},{value}"),
            };
            out.push(format!("*.attest={attest}"));
        }
    }
    if call.name != "build" {
        out.push(format!("*.call={}", call.name));
    }
    out
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>, Error> {
    vars.iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
            _ => Err(Error::one(
                Diagnostic::new(
                    "bake::var",
                    format!("invalid `--var {entry}`: expected `NAME=VALUE`"),
                )
                .help("write variables as `--var TAG=1.0`"),
            )),
        })
        .collect()
}

fn parse_list(spec: &str) -> Result<(String, ListFormat), Error> {
    let mut kind = String::new();
    let mut format = ListFormat::Table;
    for field in spec.split(',') {
        match field.split_once('=') {
            None => kind = field.to_owned(),
            Some(("type", value)) => kind = value.to_owned(),
            Some(("format", "json")) => format = ListFormat::Json,
            Some(("format", "table")) => format = ListFormat::Table,
            _ => {
                return Err(Error::one(Diagnostic::new("bake::list", format!("invalid `--list` value `{spec}`"))
                    .help("use `--list=targets`, `--list=variables` or `--list=type=targets,format=json`")));
            }
        }
    }
    if kind != "targets" && kind != "variables" {
        return Err(Error::one(
            Diagnostic::new("bake::list", format!("unknown `--list` type `{kind}`"))
                .help("use `targets` or `variables`"),
        ));
    }
    Ok((kind, format))
}

/// Collects the inputs to `bake::load` from the flags, the environment and the files.
pub(crate) fn inputs(args: &Args, cwd: &Path, call: &CallSpec) -> Result<Inputs, Error> {
    let process_env: BTreeMap<String, String> = std::env::vars().collect();
    let env = if truthy(process_env.get("BUILDX_BAKE_DISABLE_VARS_ENV_LOOKUP")) {
        process_env
            .iter()
            .filter(|(k, _)| *k == "SOURCE_DATE_EPOCH")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    } else {
        process_env.clone()
    };
    let names = bake::files::discover(
        &args.files,
        process_env.get("BUILDX_BAKE_FILE").map(String::as_str),
        process_env
            .get("BUILDX_BAKE_PATH_SEPARATOR")
            .map(String::as_str),
        cwd,
    )?;
    let files = bake::files::read(&names, cwd)?;
    Ok(Inputs {
        files,
        targets: args.targets.clone(),
        overrides: overrides(args, call),
        env,
        vars: parse_vars(&args.var)?,
        cwd: Some(cwd.to_path_buf()),
        local_platform: Platform::host().to_string(),
    })
}

/// Returns the working directory as a diagnostic-friendly result.
pub(crate) fn current_dir() -> Result<std::path::PathBuf, Error> {
    std::env::current_dir().map_err(|error| {
        Error::one(Diagnostic::new(
            "bake::cwd",
            format!("cannot read the current directory: {error}"),
        ))
    })
}

/// Parses `--call` (or `--check`).
pub(crate) fn call_spec(args: &Args) -> Result<CallSpec, Error> {
    call::parse(if args.check { "check" } else { &args.call })
}

/// Runs `bake` with parsed arguments.
pub(crate) fn run(args: &Args) -> miette::Result<Output> {
    let cwd = current_dir()?;
    let spec = call_spec(args)?;
    let inputs = inputs(args, &cwd, &spec)?;
    if let Some(list) = &args.list {
        let (kind, format) = parse_list(list)?;
        let definition = bake::define(&inputs)?;
        let text = match kind.as_str() {
            "variables" => print::list_variables(&definition.variables, format),
            _ => print::list_targets(&definition.config, format),
        };
        return Ok(Output {
            stdout: Some(text),
            failed: false,
        });
    }
    let resolved = bake::load(&inputs)?;
    if args.print {
        let text = print::print(&resolved);
        // The process ends right after printing: freeing thousands of small allocations
        // one by one would only delay the exit (measured: ~5% of `--print`).
        std::mem::forget(resolved);
        std::mem::forget(inputs);
        return Ok(Output {
            stdout: Some(text),
            failed: false,
        });
    }
    let plan = plan::plan(&resolved, &cwd)?;
    if plan.requests.iter().any(|r| r.call != Call::Build) {
        let (text, failed) = call::run(&resolved, &plan.requests, &spec)?;
        return Ok(Output {
            stdout: Some(text),
            failed,
        });
    }
    build(args, &plan, &inputs)
}

/// The state root: `--root`, else `/var/lib/bake` as root, else the XDG data directory.
fn state_root(args: &Args) -> std::path::PathBuf {
    if let Some(root) = &args.root {
        return root.clone();
    }
    if rustix::process::geteuid().is_root() {
        return "/var/lib/bake".into();
    }
    match (std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME")) {
        (Some(data), _) => std::path::PathBuf::from(data).join("bake"),
        (None, Some(home)) => std::path::PathBuf::from(home).join(".local/share/bake"),
        (None, None) => std::env::temp_dir().join("bake"),
    }
}

/// Builds every target and runs its exporters, with progress on stderr.
#[expect(clippy::print_stderr, reason = "the CLI owns stderr")]
fn build(args: &Args, plan: &plan::Plan, inputs: &Inputs) -> miette::Result<Output> {
    let options = crate::engine::build::BuildOptions {
        root: state_root(args),
        runtime: "runc".into(),
        max_parallelism: std::thread::available_parallelism().map_or(1, usize::from),
        source_date_epoch: inputs
            .env
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse().ok()),
    };
    let printer =
        crate::cli::progress::Printer::new(crate::cli::progress::Mode::parse(&args.progress));
    let reports = crate::engine::build::build(plan, &options, &printer)?;
    let mut metadata = serde_json::Map::new();
    for report in &reports {
        if report.cache_only {
            // Compat: buildx's warning when a target has no output.
            eprintln!(
                "WARNING: No output specified for target `{}`. Build result will only remain in the build cache.",
                report.target
            );
        }
        metadata.insert(
            report.target.clone(),
            serde_json::to_value(&report.metadata).unwrap_or_default(),
        );
    }
    if let Some(path) = &args.metadata_file {
        let text = print::to_go_json(&metadata);
        std::fs::write(path, text).map_err(|error| {
            Error::one(Diagnostic::new(
                "bake::metadata",
                format!("failed to write `{path}`: {error}"),
            ))
        })?;
    }
    Ok(Output {
        stdout: None,
        failed: false,
    })
}
