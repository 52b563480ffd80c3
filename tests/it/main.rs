//! Integration tests: one binary, one module per topic.

mod architecture;
mod conformance;
mod errors;
mod print;
mod support;
