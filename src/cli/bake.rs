//! The main `bake` command: gather inputs from flags, files and the environment, call
//! `bake::load`/`bake::define`, and print the result.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bake::print::{self, ListFormat};
use crate::bake::{self, Diagnostic, Error, Inputs};
use crate::cli::args::Args;
use crate::cli::call::{self, CallSpec};
use crate::cli::report::draw;
use crate::config::Config;
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
    let files = match crate::cli::remote::definition_url(args) {
        Some(url) => crate::cli::remote::read_files(args, url, cwd)?,
        None => {
            let names = bake::files::discover(
                &args.files,
                process_env.get("BUILDX_BAKE_FILE").map(String::as_str),
                process_env
                    .get("BUILDX_BAKE_PATH_SEPARATOR")
                    .map(String::as_str),
                cwd,
            )?;
            bake::files::read(&names, cwd)?
        }
    };
    Ok(Inputs {
        files,
        targets: crate::cli::remote::targets(args),
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
        for warning in &definition.warnings {
            draw(warning);
        }
        let text = match kind.as_str() {
            "variables" => print::list_variables(&definition.variables, format),
            _ => print::list_targets(&definition.config, format),
        };
        return Ok(Output {
            stdout: Some(text),
            failed: false,
        });
    }
    let (mut resolved, warnings) = bake::load_with_warnings(&inputs)?;
    for warning in &warnings {
        draw(warning);
    }
    let remote = crate::cli::remote::definition_url(args);
    if let Some(url) = remote {
        crate::cli::remote::default_contexts(&mut resolved, url);
    }
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
    if let Some(url) = remote {
        crate::cli::remote::subdir_contexts(&mut resolved, url);
    }
    let plan = plan::plan(&resolved, &cwd)?;
    // Checked on the paths the bake file names, before git and HTTP inputs become
    // checkouts in the state root.
    let plan = if plan.requests.iter().all(|r| r.call == Call::Build) {
        grant(args, &cwd, plan)?
    } else {
        plan
    };
    let plan = crate::cli::remote::fetch_inputs(args, plan)?;
    if plan.requests.iter().any(|r| r.call != Call::Build) {
        let (text, failed) = call::run(&resolved, &plan.requests, &spec)?;
        return Ok(Output {
            stdout: Some(text),
            failed,
        });
    }
    let selection = crate::engine::remote::select(
        args.builder.as_deref(),
        &crate::engine::remote::Environment::from_process(),
    )?;
    let remote = match selection {
        crate::engine::remote::Selection::Embedded => None,
        crate::engine::remote::Selection::Remote(builder, _) => Some(builder),
    };
    for warning in ignored(&resolved, remote.is_some()) {
        warn(&warning);
    }
    for warning in unknown_entitlements(&resolved) {
        warn(&warning);
    }
    if let Some(builder) = &remote {
        // The daemon keeps its own state and reads its own config.
        for (flag, set) in [
            ("--root", args.root.is_some()),
            ("--config", args.config.is_some()),
        ] {
            if set {
                warn(&format!(
                    "`{flag}` is not used with builder `{}`: the BuildKit daemon keeps its own state and configuration",
                    builder.name
                ));
            }
        }
        let mut granted: Vec<&str> = plan
            .requests
            .iter()
            .flat_map(|r| r.entitlements.iter().map(String::as_str))
            .collect();
        granted.sort_unstable();
        granted.dedup();
        if !granted.is_empty() {
            warn(&format!(
                "entitlements `{}` are not sent to a remote builder: the daemon decides on its own",
                granted.join("`, `")
            ));
        }
    }
    match remote {
        Some(builder) => build_remote(args, &plan, &builder),
        None => build(args, &plan, &inputs),
    }
}

/// The bake-level entitlement check: what the plan needs beyond the working directory and
/// `--allow` is asked for on a terminal, or refused (exit 1) in a non-interactive run. The
/// host network and insecure mode granted end up in every request's entitlements, where
/// the solver checks RUN steps against them.
fn grant(args: &Args, cwd: &Path, mut plan: plan::Plan) -> miette::Result<plan::Plan> {
    use crate::plan::entitlements::{self, Disk, PromptMode};
    use std::io::IsTerminal as _;
    let granted = entitlements::parse_allow(&args.allow, cwd, &Disk)?;
    let mut covered = granted.clone();
    let typed = entitlements::from_overrides(&args.set, cwd, &Disk);
    covered.fs_read.extend(typed.fs_read);
    covered.fs_write.extend(typed.fs_write);
    let missing = entitlements::missing(&plan.requests, cwd, &covered, &Disk);
    let enforce_fs = match std::env::var("BUILDX_BAKE_ENTITLEMENTS_FS") {
        Ok(value) if !value.is_empty() => {
            crate::buildflags::parse_bool(&value).ok_or_else(|| {
                Error::one(Diagnostic::new(
                    "bake::entitlements",
                    format!(
                        "invalid `BUILDX_BAKE_ENTITLEMENTS_FS` value `{value}`: expected a boolean"
                    ),
                ))
            })?
        }
        _ => true,
    };
    let mode = PromptMode {
        interactive: std::io::stdin().is_terminal()
            && std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        enforce_fs,
    };
    let command: Vec<String> = std::iter::once("bake".to_owned())
        .chain(std::env::args().skip(1))
        .collect();
    let go = entitlements::prompt(
        &missing,
        mode,
        &command,
        &mut std::io::stdin().lock(),
        &mut std::io::stderr().lock(),
    )
    .map_err(|error| {
        Error::one(Diagnostic::new(
            "bake::entitlements",
            format!("failed to ask for entitlements: {error}"),
        ))
    })?;
    if !go {
        return Err(entitlements::refusal(&missing).into());
    }
    let mut names = granted.solver_names();
    names.extend(missing.solver_names());
    for request in &mut plan.requests {
        request.entitlements.extend(names.iter().cloned());
        request.entitlements.sort();
        request.entitlements.dedup();
    }
    Ok(plan)
}

/// A target `entitlements` value bake does not grant (`device=...`), one line each.
fn unknown_entitlements(resolved: &bake::Resolved) -> Vec<String> {
    use crate::plan::entitlements::{NETWORK_HOST, SECURITY_INSECURE};
    let mut out = Vec::new();
    for (name, target) in &resolved.targets {
        for entitlement in &target.entitlements {
            if entitlement != NETWORK_HOST && entitlement != SECURITY_INSECURE {
                out.push(format!(
                    "`entitlements` value `{entitlement}` is ignored (target `{name}`): bake grants only `network.host` and `security.insecure`"
                ));
            }
        }
    }
    out
}

/// How long a cancelled build may take to stop (kill its containers, clean up) before bake
/// exits anyway: a step stuck where it does not poll the cancel flag must not make bake
/// ignore SIGTERM.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A flag set by the first Ctrl-C (or SIGTERM, SIGHUP: `ctrlc`'s `termination` feature sends
/// them to the same handler): the build stops starting steps and kills the running ones, so
/// containers and temp files are cleaned up, and bake exits at the latest after
/// [`CANCEL_GRACE`]; a second signal exits at once.
fn cancel_on_interrupt() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    // Its own record of signals: the cancel flag is also set when the progress reader goes
    // away, which must not turn the user's first signal into an immediate exit.
    let signalled = AtomicBool::new(false);
    // Only one handler can be installed per process; a second build in the same process
    // (tests) keeps the first, which is fine for a CLI.
    let _ = ctrlc::set_handler(move || {
        if signalled.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        handler_flag.store(true, Ordering::SeqCst);
        // stderr may be a closed pipe: a failed write must not end this thread, which has to
        // live to see a second signal.
        let _ = writeln!(
            std::io::stderr().lock(),
            "cancelling: stopping running steps (Ctrl-C again to exit at once)"
        );
        std::thread::spawn(|| {
            std::thread::sleep(CANCEL_GRACE);
            std::process::exit(130);
        });
    });
    flag
}

/// Writes a warning line to stderr; a closed stderr only loses the warning.
/// A target attribute bake does not act on: its name, why, and whether a target sets it.
type IgnoredAttribute = (&'static str, &'static str, fn(&bake::model::Target) -> bool);

/// What the build accepts but does not act on, one line per flag or attribute with the
/// targets that set it: nothing accepted is silently dropped. A remote build passes
/// `attest` on to the daemon, which judges it; `resources` only a remote build drops.
fn ignored(resolved: &bake::Resolved, remote: bool) -> Vec<String> {
    let mut out = Vec::new();
    let checks: [IgnoredAttribute; 2] = [
        ("attest", "bake does not produce attestations", |t| {
            t.attest.iter().any(|a| !a.disabled)
        }),
        (
            "resources",
            "a BuildKit daemon takes no cgroup limits for RUN steps",
            |t| t.resources.is_some(),
        ),
    ];
    for (attribute, why, set) in checks {
        if remote && attribute == "attest" {
            continue;
        }
        // The embedded solver applies them; a daemon has no attribute for them.
        if !remote && attribute == "resources" {
            continue;
        }
        let targets: Vec<String> = resolved
            .targets
            .iter()
            .filter(|(_, target)| set(target))
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        if !targets.is_empty() {
            out.push(format!(
                "`{attribute}` is ignored ({} {}): {why}",
                if targets.len() == 1 {
                    "target"
                } else {
                    "targets"
                },
                targets.join(", ")
            ));
        }
    }
    out
}

fn warn(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "WARNING: {text}");
}

/// Reads `--config`, or the file buildkitd would read, and prints its warnings.
fn load_config(args: &Args) -> Result<Config, crate::config::Error> {
    load_config_file(args.config.as_deref())
}

/// Reads `explicit` (`--config`), or the file buildkitd would read, and prints its warnings.
pub(crate) fn load_config_file(
    explicit: Option<&std::path::Path>,
) -> Result<Config, crate::config::Error> {
    let loaded = match explicit {
        Some(path) => crate::config::load(path, true)?,
        None => {
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
            let xdg = std::env::var_os("XDG_CONFIG_HOME").map(std::path::PathBuf::from);
            match crate::config::default_path(
                rustix::process::geteuid().is_root(),
                xdg.as_deref(),
                home.as_deref(),
            ) {
                Some(path) => crate::config::load(&path, false)?,
                None => crate::config::Loaded::default(),
            }
        }
    };
    for warning in &loaded.warnings {
        draw(warning);
    }
    if let Some(warning) = loaded.config.inert_warning() {
        draw(&warning);
    }
    Ok(loaded.config)
}

/// Builds every target and runs its exporters, with progress on stderr.
fn build(args: &Args, plan: &plan::Plan, inputs: &Inputs) -> miette::Result<Output> {
    let config = load_config(args)?;
    for warning in crate::engine::ignored_attributes(plan) {
        warn(&warning);
    }
    let with_platform = crate::engine::settings::with_worker_platform(plan, &config);
    let plan = with_platform.as_ref().unwrap_or(plan);
    crate::engine::settings::check_worker_platforms(plan, &config)?;
    let root = crate::engine::settings::state_root(args.root.as_deref(), &config);
    let cancel = cancel_on_interrupt();
    let options = crate::engine::build::BuildOptions {
        runtime: crate::engine::build::runc(&root, &config.runtime(), cancel.clone()),
        root: root.clone(),
        snapshotter: crate::engine::build::snapshotter(&config.worker.snapshotter),
        max_parallelism: config.worker.max_parallelism.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
        source_date_epoch: inputs
            .env
            .get("SOURCE_DATE_EPOCH")
            .and_then(|v| v.parse().ok()),
        cancel: cancel.clone(),
        registries: config.registry().clone(),
        insecure_entitlements: config.insecure_entitlements(),
    };
    let printer =
        crate::cli::progress::Printer::new(crate::cli::progress::Mode::parse(&args.progress)?)
            .with_cancel(cancel.clone());
    let reports = crate::engine::build::build(plan, options, &printer, &mut std::io::stdout());
    // A build whose progress could not be written fails even if it got to the end: the
    // caller saw neither its output nor its errors.
    let lost = printer.lost();
    // Ends the live view before anything else is written to stderr.
    drop(printer);
    let reports = reports?;
    // Compat: buildkitd collects garbage after builds; a failure here never fails the build.
    if let Err(error) = crate::engine::gc::collect_garbage(&root, &config.worker.gc) {
        warn(&error.to_string());
    }
    write_metadata(args, &reports)?;
    Ok(Output {
        stdout: None,
        failed: lost,
    })
}

/// Builds every target on a BuildKit daemon, with the same progress views and metadata.
fn build_remote(
    args: &Args,
    plan: &plan::Plan,
    builder: &crate::engine::remote::Builder,
) -> miette::Result<Output> {
    for warning in crate::engine::remote::ignored_attributes(plan, builder) {
        warn(&warning);
    }
    let cancel = cancel_on_interrupt();
    let printer =
        crate::cli::progress::Printer::new(crate::cli::progress::Mode::parse(&args.progress)?)
            .with_cancel(cancel.clone());
    let reports =
        crate::engine::remote::build(plan, builder, &printer, &cancel, &mut std::io::stdout());
    let lost = printer.lost();
    drop(printer);
    write_metadata(args, &reports?)?;
    Ok(Output {
        stdout: None,
        failed: lost,
    })
}

/// Warns about targets without output and writes `--metadata-file`.
fn write_metadata(args: &Args, reports: &[crate::engine::BuildReport]) -> miette::Result<()> {
    let mut metadata = serde_json::Map::new();
    for report in reports {
        for warning in &report.warnings {
            warn(warning);
        }
        if report.cache_only {
            // Compat: buildx's warning when a target has no output.
            warn(&format!(
                "No output specified for target `{}`. Build result will only remain in the build cache.",
                report.target
            ));
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
    Ok(())
}
