//! The `type=s3` cache backend against a real S3 API (moto_server on 127.0.0.1): blobs,
//! manifests, BuildKit's key layout, credentials (with moto's IAM checks on) and error
//! messages.

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
