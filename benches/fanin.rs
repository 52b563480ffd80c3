//! `bake --print` on a fan-in chain of `target:` links: target `i` links every earlier
//! target, the shape of `../shared/bench/gen_fanin.py`. Walking every path through such a
//! chain is exponential (buildx never finishes at 50 targets); resolving each linked target
//! once keeps it linear in the links. Target: under 100 ms for the release binary at 50 and
//! at 200 targets.
//!
//! Last run (load average about 3): 50 targets 7.6 ms fastest, 9.3 ms median; 200 targets
//! (a 500 KB bake file, mostly parsing) 51 ms fastest, 67 ms median. Before each linked
//! target was walked once, 20 targets took 1.1 s (debug build) and 50 never finished.
//!
//! Run with `cargo bench --bench fanin`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes a chain of `targets` targets and their Dockerfiles into a fresh directory.
fn generate(targets: usize) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("bake-bench-fanin-{targets}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = vec![
        r#"variable "BASE" { default = "docker-image://127.0.0.1:5055/busybox:latest" }"#
            .to_owned(),
        format!(
            "group \"default\" {{\n  targets = [\"p{}\"]\n}}",
            targets - 1
        ),
    ];
    for i in 0..targets {
        let copies: String = (0..i)
            .map(|j| format!("COPY --from=ref_p{j} /srv/marker /refs/p{j}\n"))
            .collect();
        std::fs::write(
            dir.join(format!("Dockerfile.p{i}")),
            format!("FROM base AS stage\nWORKDIR /srv\nRUN echo p{i} > /srv/marker\n{copies}"),
        )
        .unwrap();
        let mut contexts: Vec<String> = (0..i)
            .map(|j| format!("ref_p{j} = \"target:p{j}\""))
            .collect();
        contexts.push("base = BASE".to_owned());
        lines.push(format!(
            "target \"p{i}\" {{\n  context = \".\"\n  dockerfile = \"Dockerfile.p{i}\"\n  contexts = {{ {} }}\n}}",
            contexts.join(", ")
        ));
    }
    std::fs::write(dir.join("docker-bake.hcl"), lines.join("\n") + "\n").unwrap();
    dir
}

fn run_binary(dir: &Path, targets: usize) {
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
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&format!("\"p{}\": {{", targets - 1)));
}

/// The release binary end to end, as a user runs it (process start included).
#[divan::bench(args = [50, 200], sample_count = 20)]
fn binary_print_fanin(bencher: divan::Bencher, targets: usize) {
    let dir = generate(targets);
    bencher.bench(|| run_binary(&dir, targets));
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    divan::main();
}
