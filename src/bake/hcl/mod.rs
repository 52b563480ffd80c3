//! HCL and HCL-JSON bake files: parsing with byte spans and evaluation of variables,
//! functions, blocks, `matrix` and cross-target references. Stage 1.

pub(crate) mod body;
pub(crate) mod decode;
pub(crate) mod eval;
pub(crate) mod fields;
pub(crate) mod stdlib;
pub(crate) mod types;

use std::collections::BTreeMap;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::inputs::Inputs;
use crate::bake::model::Variable;
use crate::bake::resolve::Config;
use crate::diag::SourceFile;

/// Parses and evaluates HCL (`false`) and JSON (`true`) files as one body, returning the
/// targets and groups, the variables and the warnings.
pub(crate) fn load(
    files: &[(SourceFile, bool)],
    inputs: &Inputs,
) -> Result<(Config, Vec<Variable>, Vec<Diagnostic>), Error> {
    let sources: Vec<SourceFile> = files.iter().map(|(f, _)| f.clone()).collect();
    let json: Vec<bool> = files.iter().map(|(_, j)| *j).collect();
    let mut bodies = Vec::new();
    let mut problems = Vec::new();
    for (index, (file, is_json)) in files.iter().enumerate() {
        let parsed = if *is_json {
            body::parse_json(index, file)
        } else {
            body::parse_hcl(index, file)
        };
        match parsed {
            Ok(body) => bodies.push(body),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(Error {
            diagnostics: problems,
        });
    }
    let options = decode::Options {
        env: inputs.env.clone(),
        vars: inputs.vars.clone(),
        builtins: BTreeMap::from([
            ("BAKE_CMD_CONTEXT".to_owned(), "cwd://".to_owned()),
            (
                "BAKE_LOCAL_PLATFORM".to_owned(),
                inputs.local_platform.clone(),
            ),
        ]),
    };
    let decoded = decode::decode(&sources, &json, &bodies, &options)?;
    Ok((
        Config::new(decoded.targets, decoded.groups),
        decoded.variables,
        decoded.warnings,
    ))
}
