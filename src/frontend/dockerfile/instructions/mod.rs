//! Nodes → typed instructions grouped into stages: flag checking, argument forms (exec/shell,
//! `key=value`), `--mount` parsing, and the lint rules BuildKit reports while parsing.
//!
//! Compat: buildkit frontend/dockerfile/instructions (parse.go, bflag.go, commands_runmount.go).

mod flags;
mod parse;
mod types;

pub(crate) use flags::Context;
pub(crate) use parse::parse_instruction;
pub use parse::parse_instructions;
pub use types::{
    ArgDecl, Command, CommandLine, CopySpec, HealthSpec, INSTRUCTIONS, Instruction, KeyValue,
    MountSpec, MountType, Parsed, RunSpec, Stage,
};
