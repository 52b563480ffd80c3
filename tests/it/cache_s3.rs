//! The `type=s3` cache backend against a real S3 API (moto_server on 127.0.0.1): blobs,
//! manifests, BuildKit's key layout, credentials (with moto's IAM checks on) and error
//! messages; then `cache-to`/`cache-from type=s3` through the `bake` binary.

use std::collections::BTreeMap;
use std::io::Read;

use bake::cache::remote::Remote;
use bake::cache::s3::S3Remote;
use bake::digest::Digest;
use futures_util::StreamExt as _;
use object_store::ObjectStore as _;

use crate::support::moto::Moto;

fn attrs(moto: &Moto, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut attrs: BTreeMap<String, String> = [
        ("bucket", moto.bucket.as_str()),
        ("endpoint_url", moto.endpoint.as_str()),
        ("use_path_style", "true"),
        ("region", "us-east-1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in extra {
        attrs.insert((*k).to_owned(), (*v).to_owned());
    }
    attrs
}

fn keyed(moto: &Moto, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all = attrs(moto, extra);
    all.insert("access_key_id".into(), moto.access_key_id.clone());
    all.insert("secret_access_key".into(), moto.secret_access_key.clone());
    all
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// An independent client for the bucket and a runtime to drive it.
fn client(moto: &Moto) -> (object_store::aws::AmazonS3, tokio::runtime::Runtime) {
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(&moto.bucket)
        .with_region("us-east-1")
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_access_key_id(&moto.access_key_id)
        .with_secret_access_key(&moto.secret_access_key)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (store, runtime)
}

/// Every key in the bucket, listed by an independent client.
fn list(moto: &Moto) -> Vec<String> {
    let (store, runtime) = client(moto);
    let mut keys: Vec<String> = runtime.block_on(async {
        store
            .list(None)
            .map(|meta| meta.unwrap().location.to_string())
            .collect()
            .await
    });
    keys.sort();
    keys
}

fn read_all(mut reader: Box<dyn Read + Send>) -> Vec<u8> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).unwrap();
    bytes
}

#[test]
fn s3_stores_blobs_and_replaces_manifests_in_buildkits_layout() {
    let Some(moto) = Moto::start() else { return };
    let remote = S3Remote::from_attrs(
        &keyed(&moto, &[("prefix", "team/"), ("name", "main;pr-7")]),
        &no_env,
    )
    .unwrap();
    assert_eq!(remote.names(), ["main", "pr-7"]);

    let small = b"a small layer".to_vec();
    // Bigger than one upload part, so it goes up as a multipart upload.
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
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
    let wrong_size = remote.put_blob(&Digest::of(b"zz"), "", 5, &mut &b"zz"[..]);
    assert!(
        wrong_size
            .unwrap_err()
            .to_string()
            .contains("2 bytes, 5 expected"),
        "a short blob is not uploaded"
    );

    assert!(remote.get_manifest("main").unwrap().is_none());
    let index = "application/vnd.oci.image.index.v1+json";
    remote
        .put_manifest("main", index, b"{\"first\":1}")
        .unwrap();
    remote
        .put_manifest("main", index, b"{\"second\":2}")
        .unwrap();
    let (media_type, bytes) = remote.get_manifest("main").unwrap().unwrap();
    assert_eq!(media_type, index);
    assert_eq!(bytes, b"{\"second\":2}");

    let keys = list(&moto);
    let expected = [
        format!("team/blobs/{}", Digest::of(&big)),
        format!("team/blobs/{}", Digest::of(&small)),
        "team/manifests/main".to_owned(),
    ];
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(keys, expected, "{}", moto.log());

    // Another client with the prefixes spelled differently addresses the same objects.
    let same = S3Remote::from_attrs(
        &keyed(
            &moto,
            &[
                ("blobs_prefix", "team/blobs/"),
                ("manifests_prefix", "team/manifests/"),
            ],
        ),
        &no_env,
    )
    .unwrap();
    assert!(same.has_blob(&Digest::of(&small)).unwrap());
    assert_eq!(
        same.get_manifest("main").unwrap().unwrap().1,
        b"{\"second\":2}"
    );
}

#[test]
fn s3_blobs_older_than_touch_refresh_are_refreshed_on_export() {
    use object_store::ObjectStoreExt as _;
    let Some(moto) = Moto::start() else { return };
    let remote = S3Remote::from_attrs(&keyed(&moto, &[("touch_refresh", "1s")]), &no_env).unwrap();
    let digest = Digest::of(b"old layer");
    remote
        .put_blob(&digest, "", 9, &mut &b"old layer"[..])
        .unwrap();
    let (store, runtime) = client(&moto);
    let path = object_store::path::Path::parse(remote.blob_key(&digest)).unwrap();
    let before = runtime.block_on(store.head(&path)).unwrap().last_modified;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(remote.has_blob(&digest).unwrap());
    let after = runtime.block_on(store.head(&path)).unwrap().last_modified;
    assert!(after > before, "{before} -> {after}");
    assert_eq!(
        &read_all(remote.get_blob(&digest).unwrap().unwrap()),
        b"old layer"
    );
    assert_eq!(
        list(&moto),
        [remote.blob_key(&digest)],
        "no scratch copy is left"
    );
}

#[test]
fn s3_credentials_come_from_the_environment_and_profiles() {
    let Some(moto) = Moto::start_with_iam() else {
        return;
    };
    let manifest = b"{\"layers\":[]}";
    let env_keys = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some(moto.access_key_id.clone()),
        "AWS_SECRET_ACCESS_KEY" => Some(moto.secret_access_key.clone()),
        _ => None,
    };
    let remote = S3Remote::from_attrs(&attrs(&moto, &[]), &env_keys).unwrap();
    remote.put_manifest("env", "", manifest).unwrap();

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id = AKIAWRONGWRONGWRONG1\naws_secret_access_key = nope\n\
             [ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.access_key_id, moto.secret_access_key
        ),
    )
    .unwrap();
    let home_path = home.path().to_str().unwrap().to_owned();
    let profile = |name: &str| match name {
        "HOME" => Some(home_path.clone()),
        "AWS_PROFILE" => Some("ci".to_owned()),
        _ => None,
    };
    let remote = S3Remote::from_attrs(&attrs(&moto, &[]), &profile).unwrap();
    let (media_type, bytes) = remote.get_manifest("env").unwrap().unwrap();
    assert_eq!(bytes, manifest);
    // Stored with no content type, it reads back as BuildKit's bare cache config.
    assert_eq!(media_type, "application/vnd.buildkit.cacheconfig.v0");

    // The default profile's key is unknown to the server: the error says who was refused.
    let default_profile = |name: &str| (name == "HOME").then(|| home_path.clone());
    let remote = S3Remote::from_attrs(&attrs(&moto, &[]), &default_profile).unwrap();
    let error = remote.get_manifest("env").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("bucket `bake-cache` refused"), "{text}");
    assert!(text.contains("AKIAWRONGWRONGWRONG1"), "{text}");
    assert!(text.contains("AWS profile `default`"), "{text}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the cause is kept"
    );
}

#[test]
fn s3_missing_bucket_is_an_error_naming_it() {
    let Some(moto) = Moto::start() else { return };
    let mut entry = keyed(&moto, &[]);
    entry.insert("bucket".into(), "no-such-bucket".into());
    let remote = S3Remote::from_attrs(&entry, &no_env).unwrap();
    let error = remote.get_manifest("buildkit").unwrap_err().to_string();
    assert!(
        error.contains("bucket `no-such-bucket` does not exist"),
        "{error}"
    );
    let error = remote
        .put_manifest("buildkit", "application/json", b"{}")
        .unwrap_err()
        .to_string();
    assert!(error.contains("no-such-bucket"), "{error}");
}

#[test]
fn s3_unreachable_endpoint_is_an_error_not_a_hang() {
    // A port nothing listens on: the error names the bucket and comes back quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let entry: BTreeMap<String, String> = [
        ("bucket", "b"),
        ("endpoint_url", &format!("http://127.0.0.1:{port}")),
        ("use_path_style", "true"),
        ("access_key_id", "AKIA"),
        ("secret_access_key", "s"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let started = std::time::Instant::now();
    let remote = S3Remote::from_attrs(&entry, &no_env).unwrap();
    let error = remote.get_manifest("buildkit").unwrap_err().to_string();
    assert!(error.contains("s3://b"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(90));
}

/// The AWS variables that give bake's process the server's keys.
fn aws_env(moto: &Moto) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), moto.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            moto.secret_access_key.clone(),
        ),
    ]
}

/// The object `key` of the bucket, read by an independent client.
fn object(moto: &Moto, key: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt as _;
    let (store, runtime) = client(moto);
    let path = object_store::path::Path::parse(key).unwrap();
    runtime
        .block_on(async { store.get(&path).await.unwrap().bytes().await })
        .unwrap()
        .to_vec()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn s3_cache_through_bake_makes_a_fresh_root_run_nothing() {
    use crate::cache_export::{DOCKERFILE, bake_with_env, can_run, project};
    if !can_run() {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let first = project(&scratch.path().join("a/project"), DOCKERFILE);
    let entry = format!(
        "type=s3,bucket={},endpoint_url={},use_path_style=true,region=us-east-1,prefix=ci/",
        moto.bucket, moto.endpoint
    );
    let cold = bake_with_env(
        &first,
        &scratch.path().join("root-a"),
        &[format!("*.cache-to={entry},name=main;pr-1,mode=max")],
        &aws_env(&moto),
    );
    assert_eq!(cold.cached, 0, "{}", cold.stderr);
    assert!(cold.ran >= 5, "{}", cold.stderr);
    assert!(
        cold.stderr.contains("exporting cache to S3"),
        "{}",
        cold.stderr
    );
    assert!(!cold.stderr.contains("WARNING"), "{}", cold.stderr);

    // BuildKit's layout: layer blobs under blobs/, the bare cache config under every name.
    let keys = list(&moto);
    let manifest = object(&moto, "ci/manifests/main");
    assert_eq!(object(&moto, "ci/manifests/pr-1"), manifest);
    let config: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert!(config.get("mediaType").is_none(), "not an OCI manifest");
    assert!(config["records"].as_array().unwrap().len() >= 5, "{config}");
    let layers = config["layers"].as_array().unwrap();
    let mut blobs: Vec<String> = layers
        .iter()
        .map(|layer| {
            let annotations = &layer["annotations"];
            assert!(
                annotations["diffID"]
                    .as_str()
                    .unwrap()
                    .starts_with("sha256:")
            );
            assert!(annotations["size"].as_u64().unwrap() > 0);
            assert!(annotations["mediaType"].as_str().unwrap().contains("layer"));
            format!("ci/blobs/{}", layer["blob"].as_str().unwrap())
        })
        .collect();
    blobs.sort();
    blobs.dedup();
    let mut expected = blobs.clone();
    expected.extend([
        "ci/manifests/main".to_owned(),
        "ci/manifests/pr-1".to_owned(),
    ]);
    expected.sort();
    assert_eq!(keys, expected, "no config blob, nothing else");
    for key in &blobs {
        let digest = key.trim_start_matches("ci/blobs/");
        assert_eq!(Digest::of(&object(&moto, key)).to_string(), digest);
    }

    // A checkout elsewhere on a fresh root, reading the first name that exists.
    let second = scratch.path().join("elsewhere/checkout");
    crate::support::copy_tree(&first, &second, &["out"]);
    let warm = bake_with_env(
        &second,
        &scratch.path().join("root-b"),
        &[format!("*.cache-from={entry},name=nosuch;pr-1")],
        &aws_env(&moto),
    );
    assert_eq!(warm.ran, 0, "{}", warm.stderr);
    assert_eq!(warm.cached, cold.ran, "{}", warm.stderr);
    assert!(
        warm.stderr.contains("records imported from `pr-1`"),
        "{}",
        warm.stderr
    );
    let bytes = |dir: &std::path::Path| std::fs::read(dir.join("out/r")).unwrap();
    assert_eq!(bytes(&first), bytes(&second), "the RUN did not run again");
}

#[test]
fn s3_unreachable_cache_is_a_warning_and_bad_attributes_fail_before_the_build() {
    use crate::cache_export::{bake_with_env, base, can_run, project};
    if !can_run() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("p"), "FROM base\nRUN echo hi > /hi\n");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let entry = format!("type=s3,bucket=gone,endpoint_url={endpoint},use_path_style=true");
    let env = [
        ("AWS_ACCESS_KEY_ID".to_owned(), "AKIAUNREACHABLE".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "s".to_owned()),
    ];
    let built = bake_with_env(
        &dir,
        &scratch.path().join("root"),
        &[
            format!("*.cache-from={entry}"),
            format!("*.cache-to={entry},ignore-error=true"),
        ],
        &env,
    );
    let describe =
        format!("type=s3,bucket=gone,region=us-east-1,endpoint_url={endpoint},name=buildkit");
    assert!(
        built.stderr.contains(&format!(
            "WARNING: cache-from `{describe}` was not imported: s3 cache: reading manifest `manifests/buildkit` in s3://gone"
        )),
        "{}",
        built.stderr
    );
    assert!(
        built.stderr.contains(&format!(
            "cache-to `{describe}` of target `default` failed and is ignored (`ignore-error=true`): s3 cache:"
        )),
        "{}",
        built.stderr
    );
    assert!(built.ran >= 1 && built.cached == 0, "{}", built.stderr);

    // The backend rejects an attribute it does not know, before anything builds.
    let args: Vec<String> = vec![
        "--root".into(),
        scratch.path().join("root").display().to_string(),
        "--set".into(),
        format!("*.cache-to={entry},uploads=8"),
    ];
    let output = crate::support::bake(&dir, &args, &[("BASE".to_owned(), base())], None);
    let stderr = String::from_utf8_lossy(&output.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("engine::cache"), "{stderr}");
    assert!(
        stderr.contains("s3 cache: unknown attribute `uploads`"),
        "{stderr}"
    );
}

#[test]
fn s3_credentials_reach_bake_through_the_aws_environment() {
    use crate::cache_export::{bake_with_env, can_run, project};
    if !can_run() {
        return;
    }
    // With IAM checks on, moto refuses blob keys (see support::moto), so this reads a
    // manifest only: the right keys find none, the wrong ones are refused by name.
    let Some(moto) = Moto::start_with_iam() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let dir = project(&scratch.path().join("p"), "FROM base\nRUN echo hi > /hi\n");
    let set = format!(
        "*.cache-from=type=s3,bucket={},endpoint_url={},use_path_style=true",
        moto.bucket, moto.endpoint
    );
    let good = bake_with_env(
        &dir,
        &scratch.path().join("root"),
        std::slice::from_ref(&set),
        &aws_env(&moto),
    );
    assert!(
        good.stderr.contains("no cache manifest `buildkit`"),
        "{}",
        good.stderr
    );
    let wrong = [
        (
            "AWS_ACCESS_KEY_ID".to_owned(),
            "AKIAWRONGWRONGWRONG1".to_owned(),
        ),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "nope".to_owned()),
    ];
    let refused = bake_with_env(&dir, &scratch.path().join("root"), &[set], &wrong);
    assert!(
        refused
            .stderr
            .contains("refused access key `AKIAWRONGWRONGWRONG1` from AWS_ACCESS_KEY_ID"),
        "{}",
        refused.stderr
    );
}
