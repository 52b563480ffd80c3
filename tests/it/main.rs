#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]
//! Integration tests: one binary, one module per topic.

mod architecture;
mod book;
mod conformance;
mod errors;
mod examples;
mod executor;
mod layer;
mod print;
mod schema;
mod store;
mod support;
