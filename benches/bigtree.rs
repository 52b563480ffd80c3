//! Big build contexts with the release binary: a generated context of 20,000 small files,
//! `COPY src /src` and a RUN that lists it, with a `type=local` output and with a
//! `type=cacheonly` one. Each output is timed cold (fresh state root and destination), warm
//! (nothing changed) and after one file changed (its content rewritten before each sample).
//!
//! Aims on the 2-core development machine: warm with `type=cacheonly` under 0.2 s, warm with
//! the local export under 0.5 s, one file changed under 1 s. Needs root and `runc`; run with
//! `cargo bench --bench bigtree`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout and fails loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use divan::Bencher;

#[path = "common/mod.rs"]
mod common;
use common::scratch;

fn main() {
    common::main_if_builds("bigtree");
}

/// Files in the generated context: `DIRS` directories of `FILES_PER_DIR` files each.
const DIRS: usize = 200;
const FILES_PER_DIR: usize = 100;

/// Writes the project for `output` (`local` or `cacheonly`) once: the bake file, the
/// Dockerfile and `src/` with the generated files.
fn project(output: &str) -> PathBuf {
    let dir = scratch().join(output);
    if dir.exists() {
        return dir;
    }
    for d in 0..DIRS {
        let sub = dir.join(format!("src/d{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..FILES_PER_DIR {
            std::fs::write(sub.join(format!("f{f:03}.txt")), format!("file {d} {f}\n")).unwrap();
        }
    }
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM base\nCOPY src /src\nRUN find /src -type f | wc -l > /count\n",
    )
    .unwrap();
    let output = match output {
        "local" => "type=local,dest=out",
        _ => "type=cacheonly",
    };
    std::fs::write(
        dir.join("docker-bake.hcl"),
        format!(
            "variable \"BASE\" {{}}\ntarget \"default\" {{\n  contexts = {{ base = BASE }}\n  output = [\"{output}\"]\n}}\n"
        ),
    )
    .unwrap();
    dir
}

fn bake(dir: &Path, root: &Path) {
    common::bake(dir, root, &[], &[]);
}

/// A fresh state root and no previous export for every sample.
fn cold(bencher: Bencher, output: &str) {
    let dir = project(output);
    bencher
        .with_inputs(|| {
            let _ = std::fs::remove_dir_all(dir.join("out"));
            tempfile::tempdir_in(scratch()).unwrap()
        })
        .bench_values(|root| {
            bake(&dir, root.path());
            root
        });
}

/// One primed root; every sample rebuilds with nothing changed.
fn warm(bencher: Bencher, output: &str) {
    let dir = project(output);
    let root = scratch().join(format!("{output}-warm-root"));
    bake(&dir, &root);
    bencher.bench(|| bake(&dir, &root));
}

/// One primed root; before every sample one file gets new content.
fn one_changed(bencher: Bencher, output: &str) {
    static EDITS: AtomicU64 = AtomicU64::new(0);
    let dir = project(output);
    let root = scratch().join(format!("{output}-changed-root"));
    bake(&dir, &root);
    let file = dir.join("src/d100/f050.txt");
    bencher
        .with_inputs(|| {
            let edit = EDITS.fetch_add(1, Ordering::Relaxed);
            std::fs::write(&file, format!("edit {edit}\n")).unwrap();
        })
        .bench_values(|()| bake(&dir, &root));
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn local_cold(bencher: Bencher) {
    cold(bencher, "local");
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn local_warm(bencher: Bencher) {
    warm(bencher, "local");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn local_one_changed(bencher: Bencher) {
    one_changed(bencher, "local");
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn cacheonly_cold(bencher: Bencher) {
    cold(bencher, "cacheonly");
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn cacheonly_warm(bencher: Bencher) {
    warm(bencher, "cacheonly");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn cacheonly_one_changed(bencher: Bencher) {
    one_changed(bencher, "cacheonly");
}
