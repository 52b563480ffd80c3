//! HCL and HCL-JSON bake files: parsing with byte spans and evaluation of variables,
//! functions, blocks, `matrix` and cross-target references. Stage 1.

pub(crate) mod body;
pub(crate) mod decode;
pub(crate) mod eval;
pub(crate) mod fields;
pub(crate) mod stdlib;
pub(crate) mod types;
