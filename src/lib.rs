//! # bake
//!
//! Reads the build files people already have (`docker-bake.hcl`, `docker-bake.json`,
//! `compose.yaml`) and builds every image they describe, in this process, with no Docker or
//! BuildKit daemon.
//!
//! This file is the architecture map. Each stage has one entry function, takes the previous
//! stage's output by reference and returns a new value:
//!
//! ```text
//!  bake files ─► bake::load ─► Resolved ─► plan::plan ─► Plan (BuildRequest per target × platform)
//!  HCL/JSON/     parse, eval,  (--print)                   │
//!  Compose       merge, resolve                            │  engine, for each request:
//!                                                          ▼
//!                frontend::dockerfile::convert ─► graph::Definition        (debug graph)
//!                                                          │
//!                                                          ▼
//!                solver::Solver::solve ─► SolveResult       each vertex runs through ops/*,
//!                  ▲ cache::import (keys)                   which use executor, source, snapshot
//!                                                          │
//!                                                          ▼
//!                exporter::export, cache::export ─► ExportReport
//! ```
//!
//! Stages and the modules that own them (layers, lowest first; a module imports only from
//! its own or lower layers, an arrow shows the direction within a layer, and
//! `tests/it/architecture.rs` enforces the table). Inside a module, files import each other
//! one way too: the same test rejects any cycle between files.
//!
//! | layer | modules |
//! | --- | --- |
//! | 0 leaf | [`diag`], [`digest`], [`path`], [`platform`], [`progress`], [`buildflags`], [`oci`], [`config`] |
//! | 1 contract | [`graph`] |
//! | 2 front ends | [`bake`] → [`plan`]; [`frontend`] |
//! | 2 storage | [`content`] → [`snapshot`], [`registry`]; [`executor`] |
//! | 3 engine core | [`solver`] |
//! | 4 back ends | [`source`] → [`ops`]; [`cache`]; [`exporter`] → [`remote`] |
//! | 5 wiring | [`engine`] → [`cli`] → `main.rs` |
//!
//! 1. `bake::load` turns bake files into `bake::Resolved` targets; `bake::print` renders
//!    them exactly as `docker buildx bake --print` does.
//! 2. [`plan::plan`] turns them into one [`plan::BuildRequest`] per target and platform;
//!    [`plan::entitlements`] lists what they need beyond the working directory and `--allow`.
//! 3. [`frontend::dockerfile`] lowers a Dockerfile to a `graph::Definition`.
//! 4. [`engine`] runs the definitions: the [`solver`] schedules their vertices through
//!    [`ops`], and [`exporter`] writes the results. With `--builder`, [`remote`] sends the
//!    same build requests to a BuildKit daemon instead, and its progress comes back as the
//!    same events.
//!
//! The OCI image documents (descriptors, manifests, indexes, the image config, media types
//! and choosing an index entry for a platform) live only in [`oci`]: registry pulls,
//! `oci-layout://` sources and exporters all read and write those types.
//!
//! Only [`cli`] writes to stdout and stderr.

pub mod bake;
pub mod buildflags;
pub mod cache;
pub mod cli;
pub mod config;
pub mod content;
pub mod diag;
pub mod digest;
pub mod engine;
pub mod executor;
pub mod exporter;
pub mod frontend;
pub mod graph;
pub mod oci;
pub mod ops;
pub mod path;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod registry;
pub mod remote;
pub mod snapshot;
pub mod solver;
pub mod source;
