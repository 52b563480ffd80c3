//! Bake files in, resolved targets out. Stages 1–2: parse, evaluate, merge, resolve.
//!
//! May import `diag`, `platform` and `buildflags`. Never touches the solver, the network or
//! any file it is not given: this module is pure, so `--print` needs nothing else.

pub(crate) mod compose;
pub mod error;
pub(crate) mod hcl;
mod merge;
pub mod model;
