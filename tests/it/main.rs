#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly"
)]
//! Integration tests: one binary, one module per topic.

mod annotations;
mod architecture;
mod bigtree;
mod bigtree_edits;
mod book;
mod build;
mod cache_export;
mod cache_gha;
mod cache_mounts;
mod cache_s3;
mod call;
mod check;
mod config;
mod config_help;
mod conformance;
mod crash;
mod dockerfile_errors;
mod emulation;
mod entitlements;
mod errors;
mod examples;
mod execop;
mod executor;
mod export;
mod failures;
mod fileop;
mod git_context;
mod graph;
mod http_context;
mod layer;
mod multiplatform;
mod output;
mod platform_select;
mod print;
mod rebuild;
mod registry;
mod registry_build;
mod registry_errors;
mod registry_push;
mod remote_build;
mod remote_contexts;
mod remote_monorepo;
mod remote_nodes;
mod remote_output;
mod remote_session;
mod remote_tls;
mod run_limits;
mod schema;
mod signals;
mod solver;
mod source;
mod store;
mod support;
