//! HCL and HCL-JSON bake files: parsing with byte spans and evaluation of variables,
//! functions, blocks, `matrix` and cross-target references. Stage 1.

pub(crate) mod stdlib;
pub(crate) mod types;
