//! The `type=gha` cache backend against a local GitHub Actions cache service (support `gha`:
//! both protocol versions, blobs on disk, token and immutability checks).

use std::collections::BTreeMap;
use std::io::Read;

use bake::cache::gha::GhaRemote;
use bake::cache::remote::Remote;
use bake::digest::Digest;

use crate::support::gha::{GhaServer, token};

fn remote(server: &GhaServer, token: &str, version: &str, scope: &str) -> GhaRemote {
    let attrs: BTreeMap<String, String> = [
        ("url", server.url.as_str()),
        ("token", token),
        ("version", version),
        ("scope", scope),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    GhaRemote::from_attrs(&attrs, &|_| None).unwrap()
}

fn read_all(mut reader: Box<dyn Read + Send>) -> Vec<u8> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    bytes
}

/// Blobs round-trip, an existing blob is kept, and a manifest written twice reads back as
/// the second, under BuildKit's keys.
fn round_trip(version: &str) {
    let main = token(&[("refs/heads/main", 3)]);
    let server = GhaServer::start(&[&main]);
    let remote = remote(&server, &main, version, "app");

    let small = b"layer bytes".to_vec();
    // Bigger than one upload chunk: several PATCH ranges (v1) or Azure blocks (v2).
    let big: Vec<u8> = (0..19 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    for blob in [&small, &big] {
        let digest = Digest::of(blob);
        assert!(!remote.has_blob(&digest).unwrap());
        assert!(remote.get_blob(&digest).unwrap().is_none());
        remote
            .put_blob(
                &digest,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                blob.len() as u64,
                &mut &blob[..],
            )
            .unwrap();
        assert!(remote.has_blob(&digest).unwrap());
        assert_eq!(&read_all(remote.get_blob(&digest).unwrap().unwrap()), blob);
    }
    // The service refuses a second entry under the same key; the backend takes that as done.
    let uploads = server.count("PATCH ") + server.count("PUT /blob/");
    let digest = Digest::of(&small);
    remote
        .put_blob(&digest, "", small.len() as u64, &mut &small[..])
        .unwrap();
    assert_eq!(server.count("PATCH ") + server.count("PUT /blob/"), uploads);

    assert!(remote.get_manifest("app").unwrap().is_none());
    remote
        .put_manifest(
            "app",
            "application/vnd.buildkit.cacheconfig.v0",
            br#"{"n":1}"#,
        )
        .unwrap();
    remote
        .put_manifest(
            "app",
            "application/vnd.buildkit.cacheconfig.v0",
            br#"{"n":2}"#,
        )
        .unwrap();
    let (media_type, bytes) = remote.get_manifest("app").unwrap().unwrap();
    assert_eq!(bytes, br#"{"n":2}"#);
    assert_eq!(media_type, "application/vnd.buildkit.cacheconfig.v0");

    let index = GhaRemote::manifest_key("app", "refs/heads/main");
    assert_eq!(
        server.keys(),
        [
            format!("buildkit-blob-1-{}", Digest::of(&small)),
            format!("buildkit-blob-1-{}", Digest::of(&big)),
            format!("{index}#1"),
            format!("{index}#2"),
        ]
    );
}

#[test]
fn gha_v2_stores_blobs_and_manifests_with_buildkits_keys() {
    round_trip("2");
}

#[test]
fn gha_v1_stores_blobs_and_manifests_with_buildkits_keys() {
    round_trip("1");
}

#[test]
fn gha_reads_the_default_branch_scope_and_writes_its_own() {
    let main = token(&[("refs/heads/main", 3)]);
    let feature = token(&[("refs/heads/main", 1), ("refs/heads/feature", 3)]);
    let server = GhaServer::start(&[&main, &feature]);
    remote(&server, &main, "2", "buildkit")
        .put_manifest("buildkit", "", br#"{"from":"main"}"#)
        .unwrap();

    // A branch build finds the default branch's cache before it has its own...
    let branch = remote(&server, &feature, "2", "buildkit");
    let (_, bytes) = branch.get_manifest("buildkit").unwrap().unwrap();
    assert_eq!(bytes, br#"{"from":"main"}"#);
    // ...then prefers its own once written, under its own scope's key.
    branch
        .put_manifest("buildkit", "", br#"{"from":"feature"}"#)
        .unwrap();
    assert_eq!(
        branch.get_manifest("buildkit").unwrap().unwrap().1,
        br#"{"from":"feature"}"#
    );
    let own = GhaRemote::manifest_key("buildkit", "refs/heads/feature");
    assert!(
        server.keys().contains(&format!("{own}#1")),
        "{:?}",
        server.keys()
    );
    // The default branch still reads its own.
    assert_eq!(
        remote(&server, &main, "2", "buildkit")
            .get_manifest("buildkit")
            .unwrap()
            .unwrap()
            .1,
        br#"{"from":"main"}"#
    );
}

#[test]
fn gha_manifest_number_held_by_a_dead_writer_is_skipped_after_the_wait() {
    let main = token(&[("refs/heads/main", 3)]);
    let server = GhaServer::start(&[&main]);
    let index = GhaRemote::manifest_key("buildkit", "refs/heads/main");
    server.hold(&format!("{index}#1"), "refs/heads/main");
    let remote = remote(&server, &main, "2", "buildkit");
    let started = std::time::Instant::now();
    remote.put_manifest("buildkit", "", b"{}").unwrap();
    // go-actions-cache waits out 15s for the holder, then takes the next number.
    assert!(started.elapsed() >= std::time::Duration::from_secs(14));
    assert_eq!(server.keys(), [format!("{index}#2")]);
    assert_eq!(remote.get_manifest("buildkit").unwrap().unwrap().1, b"{}");
}

#[test]
fn gha_refused_token_is_an_error_naming_the_cache() {
    let good = token(&[("refs/heads/main", 3)]);
    let other = token(&[("refs/heads/other", 3)]);
    let server = GhaServer::start(&[&good]);
    for version in ["1", "2"] {
        let error = remote(&server, &other, version, "app")
            .get_manifest("app")
            .unwrap_err()
            .to_string();
        assert!(error.contains("gha cache (scope `app`"), "{error}");
        assert!(error.contains("401"), "{error}");
        assert!(error.contains("refused the token"), "{error}");
    }
}

#[test]
fn gha_unreachable_service_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let good = token(&[("refs/heads/main", 3)]);
    let attrs: BTreeMap<String, String> = [
        ("url", format!("http://127.0.0.1:{port}/")),
        ("token", good),
        ("timeout", "2s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let remote = GhaRemote::from_attrs(&attrs, &|_| None).unwrap();
    let error = remote.has_blob(&Digest::of(b"x")).unwrap_err().to_string();
    assert!(error.contains("cannot reach"), "{error}");
}
