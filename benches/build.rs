//! Real builds with the release binary (process start, solve, runc, export), on the shapes of
//! `../shared/bench/`:
//!
//! - `local_*`: BuildKit's "BuildLocal" benchmark (base image, `COPY foo /etc/foo`,
//!   `RUN cp /etc/foo /etc/bar`, `FROM scratch`, `COPY --from`), cold (fresh state root) and
//!   warm (same root, nothing changed). buildx + buildkitd: 0.33 s cold, 0.11 s warm here.
//! - `fanin_20_cold`: 20 targets in a chain, target i linking every earlier one through
//!   `target:` contexts and copying a file from each (`gen_fanin.py 20`; BuildKit fails it
//!   with a gRPC message-size error).
//! - `monorepo_*`: 8 services sharing a stage with RUN steps, OCI tarball outputs, cold and
//!   warm (buildx: about 4 s cold, 0.8 s warm). Aim: warm under 100 ms.
//! - `example_monorepo_*`: `examples/bake/monorepo` (its OS image built from busybox-static
//!   by bake), for the host's platform and for `linux/amd64,linux/arm64` (the arm64 half under
//!   QEMU, with Debian's arm64 busybox that `.ci/run` unpacks into `target/tmp/arm64`), cold
//!   and warm: the difference is what the second platform costs.
//!
//! Inputs live in `fixtures/bench/`; the base image is the busybox OCI layout in
//! `fixtures/base/busybox`. Needs root and `runc`; run with `cargo bench --bench build`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout and fails loudly"
)]

use std::path::{Path, PathBuf};

use divan::Bencher;

#[path = "common/mod.rs"]
mod common;
use common::{repo, scratch};

fn main() {
    common::main_if_builds("build");
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies `fixtures/bench/<name>` into the scratch directory once.
fn project(name: &str) -> PathBuf {
    let dir = scratch().join(name);
    if !dir.exists() {
        copy_tree(&repo().join("fixtures/bench").join(name), &dir);
    }
    dir
}

/// Writes the fan-in chain of `../shared/bench/gen_fanin.py n`: target `p{i}` links every
/// earlier target and copies its marker; only the last one has an output.
fn fanin(n: usize) -> PathBuf {
    let dir = scratch().join(format!("fanin-{n}"));
    if dir.exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let mut hcl = format!(
        "variable \"BASE\" {{}}\ngroup \"default\" {{\n  targets = [\"p{}\"]\n}}\n",
        n - 1
    );
    for i in 0..n {
        let mut dockerfile =
            format!("FROM base AS stage\nWORKDIR /srv\nRUN echo p{i} > /srv/marker\n");
        let mut contexts = Vec::new();
        for j in 0..i {
            dockerfile.push_str(&format!("COPY --from=ref_p{j} /srv/marker /refs/p{j}\n"));
            contexts.push(format!("ref_p{j} = \"target:p{j}\""));
        }
        contexts.push("base = BASE".to_owned());
        std::fs::write(dir.join(format!("Dockerfile.p{i}")), dockerfile).unwrap();
        hcl.push_str(&format!(
            "target \"p{i}\" {{\n  context = \".\"\n  dockerfile = \"Dockerfile.p{i}\"\n  contexts = {{ {} }}\n",
            contexts.join(", ")
        ));
        if i == n - 1 {
            hcl.push_str(&format!("  output = [\"type=local,dest=out/p{i}\"]\n"));
        }
        hcl.push_str("}\n");
    }
    std::fs::write(dir.join("docker-bake.hcl"), hcl).unwrap();
    dir
}

/// `examples/bake/monorepo`, copied into the scratch directory once.
fn example_monorepo() -> PathBuf {
    let dir = scratch().join("example-monorepo");
    if !dir.exists() {
        copy_tree(&repo().join("examples/bake/monorepo"), &dir);
    }
    dir
}

/// The variables that make the example monorepo build for amd64 and arm64.
fn two_platforms() -> Vec<(&'static str, String)> {
    let arm64 = repo().join("target/tmp/arm64/root/bin");
    assert!(
        arm64.join("busybox").is_file(),
        "the two-platform benchmarks need Debian's arm64 busybox in {} (run .ci/run once)",
        arm64.display()
    );
    vec![
        ("PLATFORMS", "linux/amd64,linux/arm64".to_owned()),
        ("BUSYBOX_ARM64_DIR", arm64.display().to_string()),
    ]
}

/// Runs the release binary in `dir` on state root `root`, as a user would, with bake file
/// variables `env`.
fn bake_with(dir: &Path, root: &Path, env: &[(&str, String)]) {
    // The monorepo example reads busybox from outside its directory, as a user grants.
    let allow = vec![
        "--allow=fs.read=/bin".to_owned(),
        format!(
            "--allow=fs.read={}",
            repo().join("target/tmp/arm64").display()
        ),
    ];
    common::bake(dir, root, &allow, env);
}

/// A fresh state root per sample; the directory is removed after timing.
fn cold(bencher: Bencher, dir: PathBuf) {
    cold_with(bencher, dir, &[]);
}

/// [`cold`] with bake file variables.
fn cold_with(bencher: Bencher, dir: PathBuf, env: &[(&str, String)]) {
    bencher
        .with_inputs(|| tempfile::tempdir_in(scratch()).unwrap())
        .bench_values(|root| {
            bake_with(&dir, root.path(), env);
            root
        });
}

/// One root, primed by a first build; every sample then rebuilds with nothing changed.
fn warm(bencher: Bencher, dir: PathBuf, name: &str) {
    warm_with(bencher, dir, name, &[]);
}

/// [`warm`] with bake file variables.
fn warm_with(bencher: Bencher, dir: PathBuf, name: &str, env: &[(&str, String)]) {
    let root = scratch().join(format!("{name}-warm-root"));
    bake_with(&dir, &root, env);
    bencher.bench(|| bake_with(&dir, &root, env));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn local_cold(bencher: Bencher) {
    cold(bencher, project("local"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn local_warm(bencher: Bencher) {
    warm(bencher, project("local"), "local");
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn fanin_20_cold(bencher: Bencher) {
    cold(bencher, fanin(20));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn monorepo_cold(bencher: Bencher) {
    cold(bencher, project("monorepo"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn monorepo_warm(bencher: Bencher) {
    warm(bencher, project("monorepo"), "monorepo");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn example_monorepo_host_cold(bencher: Bencher) {
    cold(bencher, example_monorepo());
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn example_monorepo_two_platforms_cold(bencher: Bencher) {
    cold_with(bencher, example_monorepo(), &two_platforms());
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn example_monorepo_two_platforms_warm(bencher: Bencher) {
    warm_with(
        bencher,
        example_monorepo(),
        "example-monorepo-two",
        &two_platforms(),
    );
}
