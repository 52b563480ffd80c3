//! `type=s3`: a build cache in an S3 bucket (AWS, or any S3 API such as MinIO through
//! `endpoint_url`), laid out as BuildKit lays it out so one bucket lists the same way:
//! blobs at `<prefix><blobs_prefix><digest>`, manifests at `<prefix><manifests_prefix><name>`.
//! Part of `cache`; a [`Remote`].
//!
//! The client is `object_store`, which is async: the backend keeps one current-thread tokio
//! runtime and blocks on it, so the rest of the cache code stays blocking.

pub mod config;

use std::io::Read;
use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ClientOptions, ObjectStore, ObjectStoreExt as _,
    PutOptions, PutPayload, RetryConfig,
};
use tokio::io::AsyncWriteExt as _;
use tokio::runtime::Runtime;

use crate::cache::remote::{Remote, RemoteError, Result};
use crate::digest::Digest;

pub use config::{EnvLookup, S3Options, StaticCredentials};

/// The media type BuildKit stores S3 and GitHub Actions cache manifests as: the bare cache
/// config JSON, with no OCI wrapper.
pub const CACHE_CONFIG_MEDIA_TYPE: &str = "application/vnd.buildkit.cacheconfig.v0";

/// Environment variables handed to the S3 client for the credential providers it runs itself
/// (web identity, ECS/EKS container credentials, instance metadata).
const PROVIDER_VARIABLES: &[&str] = &[
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL_STS",
];

/// Blobs up to this size go up in one PUT; larger ones as a multipart upload of parts this big.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// A build cache in an S3 bucket.
#[derive(Debug)]
pub struct S3Remote {
    options: S3Options,
    store: Arc<AmazonS3>,
    runtime: Arc<Runtime>,
}

impl S3Remote {
    /// Parses a `type=s3` entry's attributes and connects (lazily: no request is made yet).
    ///
    /// # Errors
    ///
    /// Bad attributes (see [`S3Options::from_attrs`]) or a client that cannot be built.
    pub fn from_attrs(
        attrs: &std::collections::BTreeMap<String, String>,
        env: EnvLookup<'_>,
    ) -> Result<Self> {
        Self::new(S3Options::from_attrs(attrs, env)?, env)
    }

    /// Builds the client for `options`; `env` feeds the credential providers the client runs.
    ///
    /// # Errors
    ///
    /// An endpoint or key the client rejects, or a runtime that cannot start.
    pub fn new(options: S3Options, env: EnvLookup<'_>) -> Result<Self> {
        install_tls_provider();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&options.bucket)
            .with_region(&options.region)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_allow_http(true),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            });
        for variable in PROVIDER_VARIABLES {
            if let Some(value) = env(variable).filter(|v| !v.is_empty())
                && let Ok(key) = variable.to_ascii_lowercase().parse::<AmazonS3ConfigKey>()
            {
                builder = builder.with_config(key, value);
            }
        }
        if let Some(credentials) = &options.credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
            if let Some(token) = &credentials.session_token {
                builder = builder.with_token(token);
            }
        }
        builder = match (&options.endpoint_url, options.use_path_style) {
            (Some(endpoint), true) => builder.with_endpoint(endpoint.trim_end_matches('/')),
            (Some(endpoint), false) => builder
                .with_endpoint(virtual_host_endpoint(endpoint, &options.bucket)?)
                .with_virtual_hosted_style_request(true),
            (None, true) => builder,
            // Compat: BuildKit's SDK addresses AWS buckets by host name unless told otherwise.
            (None, false) => builder
                .with_endpoint(format!(
                    "https://{}.s3.{}.amazonaws.com",
                    options.bucket, options.region
                ))
                .with_virtual_hosted_style_request(true),
        };
        let store = builder.build().map_err(|error| {
            RemoteError::new(
                format!(
                    "s3 cache: cannot set up a client for bucket `{}`",
                    options.bucket
                ),
                error,
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| RemoteError::new("s3 cache: cannot start its I/O runtime", error))?;
        Ok(Self {
            options,
            store: Arc::new(store),
            runtime: Arc::new(runtime),
        })
    }

    /// The manifest names an export writes (every one) and an import reads (the first that
    /// exists).
    pub fn names(&self) -> &[String] {
        &self.options.names
    }

    /// The object key of blob `digest`.
    pub fn blob_key(&self, digest: &Digest) -> String {
        format!(
            "{}{}{digest}",
            self.options.prefix, self.options.blobs_prefix
        )
    }

    /// The object key of manifest `name`.
    pub fn manifest_key(&self, name: &str) -> String {
        format!(
            "{}{}{name}",
            self.options.prefix, self.options.manifests_prefix
        )
    }

    /// `s3://bucket/prefix`, for messages.
    fn location(&self) -> String {
        format!("s3://{}/{}", self.options.bucket, self.options.prefix)
    }

    fn path(&self, key: &str) -> Result<Path> {
        Path::parse(key).map_err(|error| {
            RemoteError::new(
                format!(
                    "s3 cache: `{key}` cannot be an object key in {}",
                    self.location()
                ),
                error,
            )
        })
    }

    /// Turns a client error into one that names the object and the bucket, and says plainly
    /// when the bucket itself is missing or the credentials are refused.
    fn failure(&self, doing: &str, key: &str, error: object_store::Error) -> RemoteError {
        let bucket = &self.options.bucket;
        let text = format!("{error:?}");
        let endpoint = self.options.endpoint_url.as_deref().unwrap_or("AWS S3");
        let hint = if text.contains("NoSuchBucket") {
            format!(": bucket `{bucket}` does not exist at {endpoint}")
        } else if matches!(
            error,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch")
        {
            let who = self.options.credentials.as_ref().map_or_else(
                || "the AWS credential providers".to_owned(),
                |c| format!("access key `{}` from {}", c.access_key_id, c.origin),
            );
            format!(": bucket `{bucket}` refused {who}")
        } else {
            String::new()
        };
        RemoteError::new(
            format!("s3 cache: {doing} `{key}` in s3://{bucket}{hint}"),
            error,
        )
    }

    /// Whether `error` says the object (not the bucket) is missing.
    fn is_missing_object(error: &object_store::Error) -> bool {
        matches!(error, object_store::Error::NotFound { .. })
            && !format!("{error:?}").contains("NoSuchBucket")
    }

    /// Copies a blob out and back so its last-modified time is now: S3 refuses a copy onto
    /// the same key that changes nothing, and lifecycle rules expire by that time.
    // Compat: buildkit s3 `touch` (cache/remotecache/s3/s3.go) refreshes blobs older than
    // `touch_refresh` on export; it copies in place with replaced metadata, which
    // object_store's copy cannot ask for, so this copies through a sibling key.
    fn touch(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let scratch = self.path(&format!("{key}.touch"))?;
        self.runtime.block_on(async {
            self.store
                .copy(&path, &scratch)
                .await
                .map_err(|e| self.failure("refreshing", key, e))?;
            let result = self
                .store
                .copy(&scratch, &path)
                .await
                .map_err(|e| self.failure("refreshing", key, e));
            let _ = self.store.delete(&scratch).await;
            result
        })
    }
}

impl Remote for S3Remote {
    fn describe(&self) -> String {
        let mut text = format!(
            "type=s3,bucket={},region={}",
            self.options.bucket, self.options.region
        );
        if let Some(endpoint) = &self.options.endpoint_url {
            text.push_str(&format!(",endpoint_url={endpoint}"));
        }
        if !self.options.prefix.is_empty() {
            text.push_str(&format!(",prefix={}", self.options.prefix));
        }
        text.push_str(&format!(",name={}", self.options.names.join(";")));
        text
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let key = self.blob_key(digest);
        let path = self.path(&key)?;
        let meta = match self.runtime.block_on(self.store.head(&path)) {
            Ok(meta) => meta,
            Err(error) if Self::is_missing_object(&error) => return Ok(false),
            Err(error) => return Err(self.failure("looking up", &key, error)),
        };
        let age = SystemTime::now()
            .duration_since(SystemTime::from(meta.last_modified))
            .unwrap_or_default();
        if age > self.options.touch_refresh {
            self.touch(&key)?;
        }
        Ok(true)
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>> {
        let key = self.blob_key(digest);
        let path = self.path(&key)?;
        match self.runtime.block_on(self.store.get(&path)) {
            Ok(result) => Ok(Some(Box::new(BlobReader {
                runtime: Arc::clone(&self.runtime),
                stream: result.into_stream(),
                chunk: Bytes::new(),
                what: format!("s3://{}/{key}", self.options.bucket),
            }))),
            Err(error) if Self::is_missing_object(&error) => Ok(None),
            Err(error) => Err(self.failure("reading", &key, error)),
        }
    }

    fn put_blob(
        &self,
        digest: &Digest,
        media_type: &str,
        size: u64,
        blob: &mut dyn Read,
    ) -> Result<()> {
        let key = self.blob_key(digest);
        let path = self.path(&key)?;
        let attributes = content_type(media_type);
        let mut buffer = vec![0u8; PART_SIZE];
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store) as _, path, PART_SIZE)
            .with_max_concurrency(self.options.upload_parallelism)
            .with_attributes(attributes);
        let mut written = 0u64;
        loop {
            let read = blob.read(&mut buffer).map_err(|error| {
                RemoteError::new(format!("s3 cache: reading blob {digest} to upload"), error)
            })?;
            if read == 0 {
                break;
            }
            written += read as u64;
            if let Err(error) = self.runtime.block_on(writer.write_all(&buffer[..read])) {
                let _ = self.runtime.block_on(writer.abort());
                return Err(self.failure("uploading", &key, io_to_store(error)));
            }
        }
        if written != size {
            let _ = self.runtime.block_on(writer.abort());
            return Err(RemoteError::message(format!(
                "s3 cache: blob {digest} gave {written} bytes, {size} expected; not uploaded"
            )));
        }
        self.runtime
            .block_on(writer.shutdown())
            .map_err(|error| self.failure("uploading", &key, io_to_store(error)))
    }

    fn get_manifest(&self, name: &str) -> Result<Option<(String, Vec<u8>)>> {
        let key = self.manifest_key(name);
        let path = self.path(&key)?;
        let result = self.runtime.block_on(async {
            let result = self.store.get(&path).await?;
            let stored = result
                .attributes
                .get(&Attribute::ContentType)
                .map(|value| value.as_ref().to_owned());
            Ok::<_, object_store::Error>((stored, result.bytes().await?))
        });
        match result {
            Ok((stored, bytes)) => {
                let media_type = stored
                    .filter(|t| !is_generic_content_type(t))
                    .unwrap_or_else(|| sniff_media_type(&bytes));
                Ok(Some((media_type, bytes.to_vec())))
            }
            Err(error) if Self::is_missing_object(&error) => Ok(None),
            Err(error) => Err(self.failure("reading manifest", &key, error)),
        }
    }

    fn put_manifest(&self, name: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let key = self.manifest_key(name);
        let path = self.path(&key)?;
        let options = PutOptions {
            attributes: content_type(media_type),
            ..PutOptions::default()
        };
        // One PUT replaces the object whole: readers see the old manifest or the new one.
        self.runtime
            .block_on(
                self.store
                    .put_opts(&path, PutPayload::from(bytes.to_vec()), options),
            )
            .map(|_| ())
            .map_err(|error| self.failure("writing manifest", &key, error))
    }
}

/// Streams one object's body through blocking reads.
struct BlobReader {
    runtime: Arc<Runtime>,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    what: String,
}

impl Read for BlobReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(error)) => {
                    return Err(std::io::Error::other(format!(
                        "reading {}: {error}",
                        self.what
                    )));
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The host-addressed endpoint of `bucket` on `endpoint` (`https://minio:9000` →
/// `https://bucket.minio:9000`).
fn virtual_host_endpoint(endpoint: &str, bucket: &str) -> Result<String> {
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        RemoteError::message(format!(
            "s3 cache: endpoint_url `{endpoint}` has no scheme (http:// or https://)"
        ))
    })?;
    Ok(format!(
        "{scheme}://{bucket}.{}",
        rest.trim_end_matches('/')
    ))
}

fn content_type(media_type: &str) -> Attributes {
    let mut attributes = Attributes::new();
    if !media_type.is_empty() {
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(media_type.to_owned()),
        );
    }
    attributes
}

/// Content types that say nothing about a manifest (what BuildKit's uploads leave behind).
fn is_generic_content_type(content_type: &str) -> bool {
    matches!(
        content_type,
        "" | "application/octet-stream" | "binary/octet-stream" | "application/json" | "text/plain"
    )
}

/// A manifest's media type when the store kept none: its own `mediaType` field (an OCI
/// manifest or index), else BuildKit's bare cache config.
pub(crate) fn sniff_media_type(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Typed>(bytes)
        .ok()
        .and_then(|typed| typed.media_type)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| CACHE_CONFIG_MEDIA_TYPE.to_owned())
}

fn io_to_store(error: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(error),
    }
}

/// reqwest is built without a bundled TLS provider so that `ring`, which ureq already uses,
/// is the only one: install it as the process default once.
fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first; that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_buildkits_layout() {
        let env = |_: &str| None;
        let attrs = [
            ("bucket", "b"),
            ("region", "r"),
            ("prefix", "team/"),
            ("name", "main"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let remote = S3Remote::from_attrs(&attrs, &env).unwrap();
        let digest = Digest::of(b"x");
        assert_eq!(
            remote.blob_key(&digest),
            format!("team/blobs/sha256:{}", digest.hex())
        );
        assert_eq!(remote.manifest_key("main"), "team/manifests/main");
        assert_eq!(
            remote.describe(),
            "type=s3,bucket=b,region=r,prefix=team/,name=main"
        );
    }

    #[test]
    fn virtual_host_endpoints_put_the_bucket_in_the_host() {
        assert_eq!(
            virtual_host_endpoint("https://minio.local:9000/", "cache").unwrap(),
            "https://cache.minio.local:9000"
        );
        assert!(virtual_host_endpoint("minio.local", "cache").is_err());
    }

    #[test]
    fn media_types_are_sniffed_when_the_store_kept_none() {
        assert_eq!(
            sniff_media_type(br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            sniff_media_type(br#"{"layers":[],"records":[]}"#),
            CACHE_CONFIG_MEDIA_TYPE
        );
        assert!(is_generic_content_type("binary/octet-stream"));
    }
}
