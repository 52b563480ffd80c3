//! Benchmark: pulling a 200 MiB image (four 50 MiB uncompressed layers) from a loopback
//! `docker-registry` into a fresh content store, against copying the same bytes on disk.
//! Run with `cargo bench --bench pull`; prints MiB/s for both.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports"
)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use bake::content::Store;
use bake::digest::Digest;
use bake::registry::{Client, ClientOptions, Reference};

#[path = "../tests/it/support/registry.rs"]
#[expect(dead_code, reason = "shared with the tests; the bench uses part of it")]
mod registry;

/// Finds an executable on `PATH` (the launcher's one dependency on the test support).
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

const LAYERS: usize = 4;
const LAYER_SIZE: usize = 50 << 20;

fn main() {
    let Some(server) = registry::TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(ClientOptions {
        docker_config: Some(dir.path().join("config.json")),
        ..ClientOptions::default()
    })
    .unwrap();
    let seed = Store::open(dir.path().join("seed")).unwrap();
    let target: Reference = format!("{}/big:1", server.host).parse().unwrap();
    let mut layers = Vec::new();
    // Cheap, incompressible-looking bytes: a xorshift stream.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..LAYERS {
        let mut bytes = vec![0u8; LAYER_SIZE];
        for chunk in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let digest = seed.write(&bytes).unwrap();
        client
            .push_blob(&target, &digest, bytes.len() as u64, &seed, None)
            .unwrap();
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest.to_string(), "size": bytes.len(),
        }));
    }
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = seed.write(config).unwrap();
    client
        .push_blob(&target, &config_digest, config.len() as u64, &seed, None)
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": layers,
    }))
    .unwrap();
    client
        .push_manifest(
            &target,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .unwrap();
    let total = (LAYERS * LAYER_SIZE) as f64 / f64::from(1 << 20);

    let store = Store::open(dir.path().join("pulled")).unwrap();
    let start = Instant::now();
    client
        .pull(&target, &"linux/amd64".parse().unwrap(), &store)
        .unwrap();
    let pull = start.elapsed().as_secs_f64();

    // Disk speed on the same filesystem: write, fsync and hash the same bytes once.
    let start = Instant::now();
    for (index, layer) in layers.iter().enumerate() {
        let digest: Digest = layer["digest"].as_str().unwrap().parse().unwrap();
        let bytes = std::fs::read(seed.blob_path(&digest)).unwrap();
        let path = dir.path().join(format!("copy-{index}"));
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&bytes).unwrap();
        file.sync_all().unwrap();
        assert_eq!(Digest::of(&bytes), digest);
    }
    let copy = start.elapsed().as_secs_f64();
    println!(
        "pull {total:.0} MiB from loopback registry: {pull:.2} s ({:.0} MiB/s); \
         read+hash+write+fsync on disk: {copy:.2} s ({:.0} MiB/s)",
        total / pull,
        total / copy
    );
}
