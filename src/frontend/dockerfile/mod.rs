//! The Dockerfile front end: parser, instructions, shell-word expansion, checks and conversion
//! to a build graph. Layer 2: may import `graph`, `oci`, `platform`, `digest` and `diag`; never
//! the solver or any back end. Pure: text and options in, a [`crate::graph::Definition`] and an
//! image config out; base-image metadata comes through [`ImageResolver`].
//!
//! Entry points: [`convert`] (build graph of a target), [`check()`] (`--call=check`; rules in [`mod@check`]),
//! [`outline`] and [`targets`] (`--call=outline|targets`).

// Errors carry the whole source for their diagnostic; they happen at most once per conversion,
// so their size on the error path does not matter.
#![allow(clippy::result_large_err)]

pub mod check;
mod commands;
mod convert;
mod copy;
mod dispatch;
mod error;
mod go_format;
pub mod instructions;
mod options;
mod outline;
pub mod parser;
mod reference;
mod run;
pub mod shell;
mod stage;
mod step;

pub use check::CheckReport;
pub use convert::{check, convert};
pub use error::{Error, Result};
pub use options::{
    ConvertOptions, Converted, DockerIgnore, ImageResolver, NamedContext, ResolvedImage,
};
pub use outline::{Outline, OutlineArg, TargetInfo, Targets, outline, targets};
