//! `kill -9` resilience: a `bake` process killed at a random moment must leave the state root
//! usable and no half-written output behind. Ten times on one root: start the BuildLocal-shape
//! build with an OCI tarball output, SIGKILL it after a random delay, check the output path,
//! then run the same build to completion and compare its manifest digest with a clean build in
//! a fresh root. The seed is printed; `BAKE_CRASH_SEED=<n>` replays a run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::busybox_base as base;
use crate::support::can_build as can_run;

const EPOCH: &str = "1700000000";
const ROUNDS: usize = 10;

/// The BuildLocal shape exporting an OCI tarball (reproducible with `SOURCE_DATE_EPOCH`).
fn project(dir: &Path) {
    support::copy_tree(&support::root().join("fixtures/build-e2e/local"), dir, &[]);
    std::fs::write(
        dir.join("docker-bake.hcl"),
        "variable \"BASE\" {}\ntarget \"default\" {\n  contexts = { base = BASE }\n  output = [\"type=oci,dest=out/img.tar,rewrite-timestamp=true\"]\n}\n",
    )
    .unwrap();
}

/// `bake` in `dir` on `root`, not yet waited for; stdout and stderr go to files in `dir` so a
/// killed process cannot block on a full pipe.
fn start(dir: &Path, root: &Path, no_cache: bool) -> std::process::Child {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bake"));
    command
        .arg("--root")
        .arg(root)
        .arg("--metadata-file")
        .arg(dir.join("metadata.json"))
        .arg("--progress=plain");
    if no_cache {
        command.arg("--no-cache");
    }
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("BASE", base())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
    command.spawn().unwrap()
}

/// Runs the build to completion and returns the image manifest digest.
fn build(dir: &Path, root: &Path) -> String {
    let _ = std::fs::remove_file(dir.join("metadata.json"));
    let status = start(dir, root, false).wait().unwrap();
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(status.success(), "{stderr}");
    let metadata: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json")).unwrap()).unwrap();
    metadata["default"]["containerimage.digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest in {metadata}"))
        .to_owned()
}

/// xorshift64*: enough randomness for kill moments without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1)
    }
}

#[test]
fn kill_9_at_random_moments_then_rebuild_gives_the_same_digest() {
    if !can_run() {
        return;
    }
    let seed = std::env::var("BAKE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill -9 test seed: BAKE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let scratch = tempfile::tempdir().unwrap();
    let reference_dir = scratch.path().join("reference");
    project(&reference_dir);
    let started = Instant::now();
    let reference = build(&reference_dir, &scratch.path().join("reference-root"));
    // A cold build is the longest a killed run can take; kill anywhere within it.
    let full = started.elapsed().max(Duration::from_millis(200));
    let reference_tar = std::fs::read(reference_dir.join("out/img.tar")).unwrap();

    let dir = scratch.path().join("project");
    project(&dir);
    let root = scratch.path().join("root");
    // How long the last build on `root` took; the first one is cold.
    let mut warm = full;
    for round in 0..ROUNDS {
        // Every other killed run ignores the cache, so kills land while steps run and their
        // results, cache records and blobs are written again; the others are killed within
        // a warm build's time (cache lookups and the export).
        let no_cache = round % 2 == 1;
        let window = if no_cache { full } else { warm };
        let delay = Duration::from_millis(rng.below(window.as_millis() as u64 + 1));
        let dest = dir.join("out/img.tar");
        let _ = std::fs::remove_file(&dest);
        let mut child = start(&dir, &root, no_cache);
        std::thread::sleep(delay);
        // SIGKILL; the process may already have finished, which is fine.
        let _ = child.kill();
        let status = child.wait().unwrap();
        eprintln!("round {round}: killed after {delay:?} (no-cache: {no_cache}), exit {status:?}");
        // A kill mid-export can leave the exporter's hidden temp sibling, never another name.
        for entry in std::fs::read_dir(dir.join("out")).into_iter().flatten() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name == "img.tar" || name.starts_with(".img.tar.tmp-"),
                "round {round}: unexpected {name} in the output directory"
            );
        }
        if dest.exists() {
            // Exporters write a temporary file and rename it, so what is there is whole.
            assert_eq!(
                std::fs::read(&dest).unwrap(),
                reference_tar,
                "round {round}: a partial or different file was left at {}",
                dest.display()
            );
        }

        let rebuild = Instant::now();
        let digest = build(&dir, &root);
        warm = rebuild.elapsed();
        assert_eq!(
            digest, reference,
            "round {round} (seed {seed}): the rebuild after kill -9 gave another image"
        );
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            reference_tar,
            "round {round}"
        );
    }
}
