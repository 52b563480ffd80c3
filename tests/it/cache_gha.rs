//! The `type=gha` cache backend against a local GitHub Actions cache service (support `gha`:
//! both protocol versions, blobs on disk, token and immutability checks); then
//! `cache-to`/`cache-from type=gha` through the `bake` binary, configured as on a runner.

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

/// A cold build exports `type=gha,scope=app,mode=max` with `env` (the runner's variables),
/// a copy of the project on a fresh root imports it and runs nothing, and the service holds
/// BuildKit's keys: one per layer blob and the scope's manifest, a bare cache config.
fn through_bake(version: &str, env: &[(&str, &str)]) {
    use crate::cache_export::{DOCKERFILE, bake_with_env, can_run, project};
    if !can_run() {
        return;
    }
    let main = token(&[("refs/heads/main", 3)]);
    let server = GhaServer::start(&[&main]);
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.replace("{url}", &server.url)))
        .collect();
    env.push(("ACTIONS_RUNTIME_TOKEN".to_owned(), main.clone()));
    let scratch = tempfile::tempdir().unwrap();
    let first = project(&scratch.path().join("a/project"), DOCKERFILE);
    let cold = bake_with_env(
        &first,
        &scratch.path().join("root-a"),
        &["*.cache-to=type=gha,scope=app,mode=max".to_owned()],
        &env,
    );
    assert_eq!(cold.cached, 0, "{}", cold.stderr);
    assert!(cold.ran >= 5, "{}", cold.stderr);
    assert!(
        cold.stderr
            .contains(&format!("to type=gha,scope=app,version={version} as `app`")),
        "{}",
        cold.stderr
    );
    assert!(!cold.stderr.contains("WARNING"), "{}", cold.stderr);

    // The protocol the runner's variables chose is the one spoken.
    let (spoken, other) = match version {
        "1" => ("_apis/artifactcache", "CacheService"),
        _ => ("CacheService", "_apis/artifactcache"),
    };
    assert!(server.count(spoken) > 0 && server.count(other) == 0);
    let (_, manifest) = remote(&server, &main, version, "app")
        .get_manifest("app")
        .unwrap()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert!(config.get("mediaType").is_none(), "not an OCI manifest");
    assert!(config["records"].as_array().unwrap().len() >= 5, "{config}");
    let mut expected: Vec<String> = config["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            assert!(layer["annotations"]["diffID"].is_string(), "{layer}");
            format!("buildkit-blob-1-{}", layer["blob"].as_str().unwrap())
        })
        .collect();
    expected.push(format!(
        "{}#1",
        GhaRemote::manifest_key("app", "refs/heads/main")
    ));
    expected.sort();
    expected.dedup();
    let mut keys = server.keys();
    keys.sort();
    assert_eq!(keys, expected, "no config blob, nothing else");

    let second = scratch.path().join("elsewhere/checkout");
    crate::support::copy_tree(&first, &second, &["out"]);
    let warm = bake_with_env(
        &second,
        &scratch.path().join("root-b"),
        &["*.cache-from=type=gha,scope=app".to_owned()],
        &env,
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran, "{}", warm.stderr);
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("out/r")).unwrap();
    assert_eq!(bytes(&first), bytes(&second), "the RUN did not run again");
}

#[test]
fn gha_v2_cache_through_bake_makes_a_fresh_root_run_nothing() {
    through_bake(
        "2",
        &[
            ("ACTIONS_RESULTS_URL", "{url}"),
            ("ACTIONS_CACHE_URL", "http://127.0.0.1:1/not-this-one/"),
            ("ACTIONS_CACHE_SERVICE_V2", "True"),
        ],
    );
}

#[test]
fn gha_v1_cache_through_bake_makes_a_fresh_root_run_nothing() {
    through_bake("1", &[("ACTIONS_CACHE_URL", "{url}")]);
}

#[test]
fn gha_unreachable_cache_through_bake_is_a_warning() {
    use crate::cache_export::{bake_with_env, can_run, project};
    if !can_run() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = [
        (
            "ACTIONS_RESULTS_URL".to_owned(),
            format!("http://127.0.0.1:{port}/"),
        ),
        ("ACTIONS_CACHE_SERVICE_V2".to_owned(), "true".to_owned()),
        (
            "ACTIONS_RUNTIME_TOKEN".to_owned(),
            token(&[("refs/heads/main", 3)]),
        ),
    ];
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("p"), "FROM base\nRUN echo hi > /hi\n");
    let built = bake_with_env(
        &dir,
        &scratch.path().join("root"),
        &[
            "*.cache-from=type=gha,scope=app,timeout=2s".to_owned(),
            "*.cache-to=type=gha,scope=app,timeout=2s,ignore-error=true".to_owned(),
        ],
        &env,
    );
    assert!(
        built.stderr.contains(
            "WARNING: cache-from `type=gha,scope=app,version=2` was not imported: gha cache (scope `app`"
        ),
        "{}",
        built.stderr
    );
    assert!(
        built
            .stderr
            .contains(&format!("cannot reach http://127.0.0.1:{port}")),
        "{}",
        built.stderr
    );
    assert!(
        built.stderr.contains(
            "cache-to `type=gha,scope=app,version=2` of target `default` failed and is ignored (`ignore-error=true`): gha cache"
        ),
        "{}",
        built.stderr
    );
    assert!(built.ran >= 1 && built.cached == 0, "{}", built.stderr);
}
