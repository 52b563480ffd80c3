//! `bake --print` on a generated 250-service monorepo (each service a 2-way matrix that
//! inherits a two-level chain and calls a user function: 500 targets), the shape of
//! `../shared/bench/gen_monorepo.py`. Targets: under 25 ms median and under 20 MiB peak
//! memory for the release binary (buildx: about 580 ms and 71 MiB on the same file).
//!
//! Last run (load average about 2): binary 17.3 ms fastest, 19.7 ms median, 14.1 MiB peak;
//! library 10.8 ms fastest, 12.2 ms median. Under load from other builds (load average 1–7): binary 16.8–28 ms
//! fastest, 24.9–31 ms median, 13.4 MiB peak RSS; library 11.4–14.4 ms fastest, 17–25 ms
//! median; 64 M instructions under callgrind (116 M before mimalloc and the copy removals).
//!
//! Run with `cargo bench --bench print`; it prints the binary's peak RSS at the end.
#![allow(unsafe_code, reason = "getrusage has no safe std wrapper")]
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Writes the generated bake file into a fresh directory and returns it.
fn generate(services: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "bake-bench-print-{services}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines: Vec<String> = [
        r#"variable "REGISTRY" { default = "ghcr.io/acme" }"#,
        r#"variable "VERSION" { default = "1.0.0" }"#,
        r#"variable "PLATFORMS" { default = "linux/amd64" }"#,
        r#"function "img" {"#,
        "  params = [svc, flavor]",
        r#"  result = ["${REGISTRY}/${svc}:${VERSION}-${flavor}", "${REGISTRY}/${svc}:${flavor}"]"#,
        "}",
        r#"target "_base" {"#,
        r#"  context = ".""#,
        r#"  args = { BASE = "debian:12", VERSION = VERSION }"#,
        r#"  labels = { "org.opencontainers.image.version" = VERSION }"#,
        "}",
        r#"target "_team" {"#,
        r#"  inherits = ["_base"]"#,
        r#"  platforms = split(",", PLATFORMS)"#,
        "}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut names = Vec::new();
    for i in 0..services {
        let svc = format!("svc{i:04}");
        lines.push(format!("target \"{svc}\" {{"));
        lines.push(format!("  name = \"{svc}-${{flavor}}\""));
        lines.push(r#"  matrix = { flavor = ["slim", "full"] }"#.to_owned());
        lines.push(r#"  inherits = ["_team"]"#.to_owned());
        lines.push(format!("  dockerfile = \"services/{svc}/Dockerfile\""));
        lines.push("  target = flavor".to_owned());
        lines.push(format!("  tags = img(\"{svc}\", flavor)"));
        lines.push(format!(
            "  args = {{ SERVICE = \"{svc}\", FLAVOR = upper(flavor) }}"
        ));
        if i % 3 == 0 {
            lines.push(r#"  contexts = { shared = "target:shared" }"#.to_owned());
        }
        lines.push("}".to_owned());
        names.push(format!("\"{svc}\""));
    }
    lines.push(
        "target \"shared\" {\n  inherits = [\"_base\"]\n  dockerfile = \"shared/Dockerfile\"\n}"
            .to_owned(),
    );
    lines.push(format!(
        "group \"default\" {{\n  targets = [{}]\n}}",
        names.join(", ")
    ));
    std::fs::write(dir.join("docker-bake.hcl"), lines.join("\n") + "\n").unwrap();
    dir
}

fn monorepo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| generate(250))
}

fn run_binary(dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_bake"))
        .arg("--print")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.len() > 100_000);
}

/// The release binary end to end, as a user runs it (process start included).
#[divan::bench(sample_count = 30)]
fn binary_print_250_services() {
    run_binary(monorepo());
}

/// The library pipeline alone: parse, evaluate, resolve, render.
#[divan::bench(sample_count = 30)]
fn library_print_250_services() -> String {
    let dir = monorepo();
    let text = std::fs::read_to_string(dir.join("docker-bake.hcl")).unwrap();
    let inputs = bake::bake::Inputs {
        files: vec![bake::diag::SourceFile::new("docker-bake.hcl", text)],
        local_platform: "linux/amd64".to_owned(),
        ..bake::bake::Inputs::default()
    };
    let resolved = bake::bake::load(&inputs).unwrap();
    assert_eq!(resolved.targets.len(), 501);
    bake::bake::print::print(&resolved)
}

fn main() {
    divan::main();
    run_binary(monorepo());
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; getrusage only writes into it.
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    if status == 0 {
        // SAFETY: getrusage returned 0, so it initialised the struct.
        let usage = unsafe { usage.assume_init() };
        println!(
            "peak RSS of `bake --print` (250 services, 500 targets): {:.1} MiB",
            usage.ru_maxrss as f64 / 1024.0
        );
    }
    let _ = std::fs::remove_dir_all(monorepo());
}
