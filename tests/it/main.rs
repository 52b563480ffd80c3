//! Integration tests: one binary, one module per topic.

mod architecture;
mod check;
mod graph;
