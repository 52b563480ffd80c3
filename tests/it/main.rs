//! Integration tests: one binary, one module per topic.

mod architecture;
mod check;
mod dockerfile_errors;
mod graph;
