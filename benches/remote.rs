//! The shapes of `benches/build.rs` built on the Docker engine's BuildKit with
//! `--builder docker://`, the release binary as the client: what bake costs as a client of a
//! daemon (process start, connecting, the session and its file sync, the daemon's solve,
//! moving exports into place, `docker save` for OCI archives).
//!
//! - `engine_local_*`: BuildKit's "BuildLocal" shape (base image, `COPY`, `RUN cp`,
//!   `FROM scratch`, `COPY --from`), `type=local` output.
//! - `engine_monorepo_*`: 8 services sharing a stage, OCI tarball outputs (one solve each,
//!   the archive written by bake from the engine's `docker save`).
//!
//! `*_warm` rebuilds with nothing changed (the daemon's cache answers every step);
//! `*_cold` first empties the engine's build cache (`docker builder prune -af`, not timed).
//! The base is the busybox OCI layout in `fixtures/base/busybox`, which bake loads into the
//! engine for each build. Needs a Docker engine on `/var/run/docker.sock`; run with
//! `cargo bench --bench remote`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout and fails loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use divan::Bencher;

#[path = "common/mod.rs"]
#[allow(
    dead_code,
    reason = "the in-process runner there is not used by a daemon's benchmark"
)]
mod common;
use common::{base, repo, scratch};

fn main() {
    let engine = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !engine {
        eprintln!("skipping remote benchmarks: the Docker engine does not answer `docker info`");
        return;
    }
    divan::main();
}

/// Copies `fixtures/bench/<name>` into the scratch directory once.
fn project(name: &str) -> PathBuf {
    let dir = scratch().join(format!("engine-{name}"));
    if !dir.exists() {
        let status = Command::new("cp")
            .arg("-r")
            .arg(repo().join("fixtures/bench").join(name))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    dir
}

/// Runs the release binary in `dir` against the engine; it must succeed.
fn bake(dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(["--builder", "docker://", "--progress=plain"])
        .current_dir(dir)
        .env("BASE", base())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bake failed in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn prune() {
    let status = Command::new("docker")
        .args(["builder", "prune", "-af"])
        .output()
        .unwrap();
    assert!(status.status.success());
}

fn cold(bencher: Bencher, dir: PathBuf) {
    bencher.with_inputs(prune).bench_values(|()| bake(&dir));
}

fn warm(bencher: Bencher, dir: PathBuf) {
    bake(&dir);
    bencher.bench(|| bake(&dir));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn engine_local_cold(bencher: Bencher) {
    cold(bencher, project("local"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn engine_local_warm(bencher: Bencher) {
    warm(bencher, project("local"));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn engine_monorepo_cold(bencher: Bencher) {
    cold(bencher, project("monorepo"));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn engine_monorepo_warm(bencher: Bencher) {
    warm(bencher, project("monorepo"));
}
