//! The only place front ends meet back ends: a [`BuildRequest`] goes through the Dockerfile
//! front end, the solver and the exporters here, and `--call=check|outline|targets` and
//! `bake debug graph` stop after the front end. Layer 5.
//!
//! May import `plan`, `frontend`, `graph`, `solver`, `ops`, `source`, `cache`, `exporter`,
//! `executor`, `config`, `progress` and the leaves; never `cli`.

pub mod build;
mod cache;
mod cache_mount;
mod combine;
mod entitlements;
mod error;
mod export;
pub mod fetch;
pub mod gc;
pub mod layers;
mod lower;
pub mod remote;
mod request;
mod resolver;
mod session;
pub mod settings;
mod solve;

use serde::Serialize;

use crate::frontend::dockerfile::{self, CheckReport, Outline, Targets};
use crate::graph::Definition;
use crate::plan::{BuildRequest, Call};

pub use error::{Error, SolveError, StepFailed};
pub use export::{BuildReport, ignored_attributes};
pub use request::{convert_options, convert_options_with, dockerfile};
pub use resolver::Resolver;

/// Registering QEMU's `binfmt_misc` handlers on the host (`bake setup emulation`).
pub use crate::ops::emulation::setup;

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, Error>;

/// What a `--call` method returned for one request.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CallResult {
    /// `check` (BuildKit's `lint`).
    Check(CheckReport),
    /// `outline`.
    Outline(Outline),
    /// `targets`.
    Targets(Targets),
}

impl CallResult {
    /// Whether the call reports a failure, which makes bake exit non-zero unless
    /// `ignorestatus` is set.
    // Compat: buildx exits 1 when a lint result has any warning or an error, whether or not
    // `# check=error=true` made BuildKit treat the warnings as errors.
    pub fn failed(&self) -> bool {
        match self {
            CallResult::Check(report) => report.error.is_some() || !report.warnings.is_empty(),
            CallResult::Outline(_) | CallResult::Targets(_) => false,
        }
    }
}

/// Runs a frontend method (`check`, `outline`, `targets`) for one request.
pub fn call(request: &BuildRequest) -> Result<CallResult> {
    let file = dockerfile(request)?;
    let options = convert_options(request)?;
    Ok(match request.call {
        Call::Lint | Call::Build => {
            CallResult::Check(dockerfile::check(&file, &options).map_err(Box::new)?)
        }
        Call::Outline => {
            CallResult::Outline(dockerfile::outline(&file, &options).map_err(Box::new)?)
        }
        Call::Targets => CallResult::Targets(dockerfile::targets(&file).map_err(Box::new)?),
    })
}

/// Lowers one request's Dockerfile to its build graph (`bake debug graph`).
pub fn graph(request: &BuildRequest) -> Result<Definition> {
    let file = dockerfile(request)?;
    let options = convert_options(request)?;
    Ok(dockerfile::convert(&file, &options)
        .map_err(Box::new)?
        .definition)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::diag::SourceFile;
    use crate::plan::{self, Dockerfile};

    fn request(text: &str) -> BuildRequest {
        BuildRequest {
            dockerfile: Dockerfile::Inline(text.to_owned()),
            call: Call::Lint,
            ..crate::engine::lower::tests::request("app", None, &[])
        }
    }

    #[test]
    fn check_finds_warnings_in_inline_dockerfiles() {
        let result = call(&request("FROM scratch\nCMD a\nCMD b\n")).unwrap();
        assert!(result.failed());
        let json = serde_json::to_value(&result).unwrap();
        assert!(json["warnings"].as_array().is_some_and(|w| !w.is_empty()));
    }

    #[test]
    fn graph_lowers_the_target_stage() {
        let definition = graph(&request(
            "FROM scratch AS a\nFROM scratch\nCOPY --from=a / /\n",
        ))
        .unwrap();
        assert!(serde_json::to_string(&definition).unwrap().len() > 10);
    }

    #[test]
    fn oci_layout_digests_reach_the_front_end_with_their_at_sign() {
        let layout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/base/busybox");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap())
                .unwrap();
        let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let mut with_layout = request("FROM base\n");
        with_layout.named_contexts.insert(
            "base".to_owned(),
            plan::NamedContext::OciLayout {
                path: layout.clone(),
                reference: Some(digest.clone()),
            },
        );
        let options = convert_options(&with_layout).unwrap();
        assert_eq!(
            options.named_contexts["base"],
            dockerfile::NamedContext::OciLayout {
                path: layout.display().to_string(),
                reference: Some(format!("@{digest}")),
            }
        );
        let file = SourceFile::new("Dockerfile", "FROM base\n");
        let converted = dockerfile::convert(&file, &options).unwrap();
        let json = serde_json::to_string(&converted.definition).unwrap();
        assert!(
            json.contains(&format!("oci-layout://{}@{digest}", layout.display())),
            "{json}"
        );
        assert_eq!(
            converted.image.config.cmd.as_deref(),
            Some(&["/bin/sh".to_owned()][..]),
            "the layout's config carries over"
        );
    }

    #[test]
    fn missing_dockerfile_is_a_clear_error() {
        let mut missing = request("");
        missing.dockerfile = Dockerfile::File("/nonexistent/Dockerfile".into());
        assert!(matches!(call(&missing), Err(Error::ReadDockerfile { .. })));
    }
}
