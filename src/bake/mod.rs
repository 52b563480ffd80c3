//! Bake files in, resolved targets out. Stages 1–2: parse, evaluate, merge, resolve.
//!
//! May import `diag`, `platform` and `buildflags`. Never touches the solver, the network or
//! any file it is not given: this module is pure, so `--print` needs nothing else.
//!
//! [`load`] runs the whole stage: Compose files first, then every HCL and JSON file merged
//! as one body on top (so HCL wins over Compose), then [`resolve::resolve`].

#![expect(
    clippy::result_large_err,
    reason = "a diagnostic carries its message, span, label, help and severity inline; one is \
              built at most a few times per load, so its size on the error path does not matter"
)]

mod compose;
pub mod error;
mod fasthash;
pub mod files;
pub(crate) mod hcl;
mod inputs;
mod merge;
pub mod model;
mod overrides;
pub mod print;
pub mod resolve;
pub mod schema;
mod tabwriter;

pub use self::error::{Diagnostic, Error};
pub use self::files::Format;
pub use self::inputs::Inputs;
pub use self::model::{Group, Target, Variable};
pub use self::resolve::{Config, Resolved};

/// What the files define, before any target is requested (`--list`).
#[derive(Debug, Clone, Default)]
pub struct Definition {
    /// Targets and groups.
    pub config: Config,
    /// Declared variables with their values.
    pub variables: Vec<Variable>,
    /// Problems that do not stop the load (shown on stderr), such as ignored attributes.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and evaluates every file into targets, groups and variables.
pub fn define(inputs: &Inputs) -> Result<Definition, Error> {
    let mut compose_files = Vec::new();
    let mut hcl_files = Vec::new();
    for file in &inputs.files {
        match Format::of(&file.name) {
            Format::Compose => compose_files.push(file.clone()),
            Format::Hcl => hcl_files.push((file.clone(), false)),
            Format::Json => hcl_files.push((file.clone(), true)),
            Format::Unknown => {
                if compose::looks_like_compose(&file.text) {
                    compose_files.push(file.clone());
                } else if hcl::body::parse_hcl(0, file).is_ok()
                    || serde_json::from_str::<serde_json::Value>(&file.text).is_err()
                {
                    hcl_files.push((file.clone(), false));
                } else {
                    hcl_files.push((file.clone(), true));
                }
            }
        }
    }
    let mut config = Config::default();
    if !compose_files.is_empty() {
        let mut env = inputs.env.clone();
        env.extend(inputs.vars.clone());
        let composed = compose::parse(&compose_files, &env, inputs.cwd.as_deref())?;
        config.extend(Config::new(composed.targets, composed.groups));
    }
    let mut variables = Vec::new();
    let mut warnings = Vec::new();
    if !hcl_files.is_empty() {
        let (decoded, vars, found) = hcl::load(&hcl_files, inputs)?;
        config.extend(decoded);
        variables = vars;
        warnings = found;
    }
    Ok(Definition {
        config,
        variables,
        warnings,
    })
}

/// Loads bake files and resolves the requested targets: the whole of stages 1–2.
pub fn load(inputs: &Inputs) -> Result<Resolved, Error> {
    load_with_warnings(inputs).map(|(resolved, _)| resolved)
}

/// Loads like [`load`], also returning the warnings met on the way, for the caller to show.
pub fn load_with_warnings(inputs: &Inputs) -> Result<(Resolved, Vec<Diagnostic>), Error> {
    let definition = define(inputs)?;
    let resolved = resolve::resolve(
        &definition.config,
        &inputs.targets,
        &inputs.overrides,
        &inputs.env,
    )?;
    Ok((resolved, definition.warnings))
}
