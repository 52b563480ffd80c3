//! The GitHub Actions cache service as BuildKit's client (`tonistiigi/go-actions-cache`)
//! speaks it: look an entry up by key (exact, then newest by prefix), reserve a key, upload,
//! commit. Version 1 is the `_apis/artifactcache` REST service with chunked `PATCH` uploads;
//! version 2 is the Twirp JSON service `github.actions.results.api.v1.CacheService`, whose
//! uploads and downloads go to signed Azure Blob URLs. Part of `cache::gha`.

use std::io::Read;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use ureq::Agent;
use ureq::http::Response;

use crate::cache::remote::{RemoteError, Result};

/// Uploads go in pieces this big: `PATCH` ranges in version 1, Azure blocks in version 2.
const CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// The Azure Blob REST version the signed URLs are spoken to with.
const AZURE_VERSION: &str = "2020-10-02";

/// An entry the service found for a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key it was stored under (the lookup may have matched by prefix).
    pub(crate) key: String,
    /// Where its bytes download from.
    pub(crate) url: String,
}

/// What reserving a key gave.
pub(crate) enum Reservation {
    /// The key is ours to upload to.
    Reserved(Upload),
    /// Someone stored (or is storing) this key already: entries never change.
    Exists,
}

/// A reserved key: where its bytes go and how it is committed.
pub(crate) enum Upload {
    /// Version 1: the numeric cache id.
    V1(u64),
    /// Version 2: the signed Azure Blob URL and the key to finalize.
    V2 { url: String, key: String },
}

/// One connection to the cache service.
pub(crate) struct Client {
    /// The service URL, ending in `/`.
    base: String,
    token: String,
    v2: bool,
    timeout: Duration,
    agent: Agent,
}

impl Client {
    /// A client for the service at `url`, speaking version 2 when `v2`.
    pub(crate) fn new(url: &str, token: &str, v2: bool, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(timeout))
            .user_agent(concat!("bake/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            base: format!("{}/", url.trim_end_matches('/')),
            token: token.to_owned(),
            v2,
            timeout,
            agent,
        }
    }

    /// Finds the entry for the first of `keys` that matches, exactly or else by prefix (the
    /// newest such entry), in the scopes the token may read.
    pub(crate) fn lookup(&self, keys: &[String], version: &str) -> Result<Option<Entry>> {
        if self.v2 {
            let body = json!({"key": keys[0], "restore_keys": keys, "version": version});
            let answer: V2Download = self
                .twirp("GetCacheEntryDownloadURL", &body)
                .map_err(Failure::into_error)?;
            return Ok(answer.ok.then_some(Entry {
                key: answer.matched_key,
                url: answer.signed_download_url,
            }));
        }
        let url = format!(
            "{}_apis/artifactcache/cache?keys={}&version={version}",
            self.base,
            percent_encoding::utf8_percent_encode(&keys.join(","), QUERY)
        );
        let what = format!("looking up `{}`", keys[0]);
        let response = self.retrying(&what, || self.v1_request(self.agent.get(&url)).call())?;
        let response = check(response).map_err(|f| f.into_error().context(&what))?;
        if response.status() == 204 {
            return Ok(None);
        }
        let answer: V1Entry = read_json(response, "cache lookup")?;
        Ok((!answer.cache_key.is_empty()).then_some(Entry {
            key: answer.cache_key,
            url: answer.archive_location,
        }))
    }

    /// Reserves `key` for an upload.
    pub(crate) fn reserve(&self, key: &str, version: &str) -> Result<Reservation> {
        let body = json!({"key": key, "version": version});
        let what = format!("reserving `{key}`");
        if self.v2 {
            return match self.twirp::<V2Create>("CreateCacheEntry", &body) {
                Ok(answer) if answer.ok => Ok(Reservation::Reserved(Upload::V2 {
                    url: answer.signed_upload_url,
                    key: key.to_owned(),
                })),
                // Compat: @actions/cache treats `ok: false` as "another job may be creating
                // this cache", the same as a key that exists.
                Ok(_) => Ok(Reservation::Exists),
                Err(Failure::Exists) => Ok(Reservation::Exists),
                Err(Failure::Other(error)) => Err(error.context(&what)),
            };
        }
        let url = format!("{}_apis/artifactcache/caches", self.base);
        let response = self.retrying(&what, || {
            self.v1_request(self.agent.post(&url))
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes())
        })?;
        match check(response) {
            Ok(response) => {
                let answer: V1Reserve = read_json(response, "cache reservation")?;
                Ok(Reservation::Reserved(Upload::V1(answer.cache_id)))
            }
            Err(Failure::Exists) => Ok(Reservation::Exists),
            Err(Failure::Other(error)) => Err(error.context(&what)),
        }
    }

    /// Uploads `size` bytes from `reader` to a reserved key and commits it.
    pub(crate) fn upload(
        &self,
        upload: &Upload,
        version: &str,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let mut buffer = vec![0u8; CHUNK_SIZE];
        let mut offset = 0u64;
        let mut blocks = Vec::new();
        loop {
            let filled = fill(reader, &mut buffer)
                .map_err(|error| RemoteError::new("reading the data to upload", error))?;
            if filled == 0 && offset > 0 {
                break;
            }
            let chunk = &buffer[..filled];
            match upload {
                Upload::V1(id) => {
                    if filled > 0 {
                        self.v1_patch(*id, offset, chunk)?;
                    }
                }
                Upload::V2 { url, .. } => {
                    // A blob small enough for one request goes up whole (Put Blob).
                    if offset == 0 && filled < buffer.len() {
                        self.azure_put(url, None, chunk)?;
                    } else if filled > 0 {
                        let id = base64::engine::general_purpose::STANDARD
                            .encode(format!("{:032}", blocks.len()));
                        self.azure_put(url, Some(&id), chunk)?;
                        blocks.push(id);
                    }
                }
            }
            offset += filled as u64;
            if filled < buffer.len() {
                break;
            }
        }
        if offset != size {
            return Err(RemoteError::message(format!(
                "the data to upload gave {offset} bytes, {size} expected"
            )));
        }
        match upload {
            Upload::V1(id) => {
                let url = format!("{}_apis/artifactcache/caches/{id}", self.base);
                let body = json!({"size": size}).to_string();
                let response = self.retrying("committing the upload", || {
                    self.v1_request(self.agent.post(&url))
                        .header("Content-Type", "application/json")
                        .send(body.as_bytes())
                })?;
                check(response).map_err(|f| f.into_error().context("committing the upload"))?;
            }
            Upload::V2 { url, key } => {
                if !blocks.is_empty() {
                    self.azure_block_list(url, &blocks)?;
                }
                let body = json!({"key": key, "size_bytes": size, "version": version});
                let answer: V2Finalize = self
                    .twirp("FinalizeCacheEntryUpload", &body)
                    .map_err(|f| f.into_error().context("finalizing the upload"))?;
                if !answer.ok {
                    return Err(RemoteError::message(format!(
                        "the cache service did not finalize `{key}`"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Opens the bytes of a found entry.
    pub(crate) fn download(&self, entry: &Entry) -> Result<Box<dyn Read + Send>> {
        let what = format!("downloading `{}`", entry.key);
        let response = self.retrying(&what, || {
            let request = self.agent.get(&entry.url);
            if self.v2 {
                request.header("x-ms-version", AZURE_VERSION).call()
            } else {
                request.call()
            }
        })?;
        let response = check(response).map_err(|f| f.into_error().context(&what))?;
        Ok(Box::new(response.into_body().into_reader()))
    }

    fn v1_request<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json;api-version=6.0-preview.1")
    }

    fn v1_patch(&self, id: u64, offset: u64, chunk: &[u8]) -> Result<()> {
        let url = format!("{}_apis/artifactcache/caches/{id}", self.base);
        let range = format!("bytes {offset}-{}/*", offset + chunk.len() as u64 - 1);
        let what = format!("uploading bytes {offset}.. of cache {id}");
        let response = self.retrying(&what, || {
            self.v1_request(self.agent.patch(&url))
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", &range)
                .send(chunk)
        })?;
        check(response).map_err(|f| f.into_error().context(&what))?;
        Ok(())
    }

    /// Put Blob (no block id) or Put Block to a signed Azure Blob URL.
    fn azure_put(&self, url: &str, block: Option<&str>, chunk: &[u8]) -> Result<()> {
        let target = match block {
            Some(id) => format!(
                "{url}&comp=block&blockid={}",
                percent_encoding::utf8_percent_encode(id, QUERY)
            ),
            None => url.to_owned(),
        };
        let what = "uploading to the cache's blob storage";
        let response = self.retrying(what, || {
            let request = self
                .agent
                .put(&target)
                .header("x-ms-version", AZURE_VERSION)
                .header("Content-Type", "application/octet-stream");
            let request = if block.is_none() {
                request.header("x-ms-blob-type", "BlockBlob")
            } else {
                request
            };
            request.send(chunk)
        })?;
        check(response).map_err(|f| f.into_error().context(what))?;
        Ok(())
    }

    /// Put Block List: the blob is the staged blocks in this order.
    fn azure_block_list(&self, url: &str, blocks: &[String]) -> Result<()> {
        let mut body = String::from(r#"<?xml version="1.0" encoding="utf-8"?><BlockList>"#);
        for id in blocks {
            body.push_str(&format!("<Latest>{id}</Latest>"));
        }
        body.push_str("</BlockList>");
        let target = format!("{url}&comp=blocklist");
        let what = "committing the blocks uploaded to the cache's blob storage";
        let response = self.retrying(what, || {
            self.agent
                .put(&target)
                .header("x-ms-version", AZURE_VERSION)
                .header("Content-Type", "application/xml")
                .send(body.as_bytes())
        })?;
        check(response).map_err(|f| f.into_error().context(what))?;
        Ok(())
    }

    /// Calls a Twirp JSON method of the version 2 cache service.
    fn twirp<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<T, Failure> {
        let url = format!(
            "{}twirp/github.actions.results.api.v1.CacheService/{method}",
            self.base
        );
        let text = body.to_string();
        let response = self
            .retrying(method, || {
                self.agent
                    .post(&url)
                    .header("Authorization", format!("Bearer {}", self.token))
                    .header("Content-Type", "application/json")
                    .send(text.as_bytes())
            })
            .map_err(Failure::Other)?;
        let response = check(response)?;
        read_json(response, method).map_err(Failure::Other)
    }

    /// Sends a request again while the service answers 429 (or 5xx), until the timeout.
    fn retrying(
        &self,
        what: &str,
        send: impl Fn() -> std::result::Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>> {
        let deadline = Instant::now() + self.timeout;
        let mut delay = Duration::from_millis(200);
        loop {
            let outcome = send();
            let again = match &outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    status == 429 || (500..600).contains(&status)
                }
                Err(ureq::Error::Io(_) | ureq::Error::Timeout(_)) => true,
                Err(_) => false,
            };
            if !again || Instant::now() + delay > deadline {
                return outcome.map_err(|error| {
                    RemoteError::new(format!("{what}: cannot reach {}", self.base), error)
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// Why a call failed: the key exists (not an error for immutable entries), or anything else.
enum Failure {
    Exists,
    Other(RemoteError),
}

impl Failure {
    fn into_error(self) -> RemoteError {
        match self {
            Self::Exists => RemoteError::message("the cache entry exists already"),
            Self::Other(error) => error,
        }
    }
}

trait Context {
    fn context(self, what: &str) -> RemoteError;
}

impl Context for RemoteError {
    fn context(self, what: &str) -> RemoteError {
        RemoteError {
            what: format!("{what}: {}", self.what),
            source: self.source,
        }
    }
}

/// Passes a 2xx response; turns anything else into a [`Failure`] with the service's message.
// Compat: go-actions-cache checkResponse: version 1 errors carry `message`/`typeKey`
// (`...AlreadyExistsException`), version 2 (Twirp) ones `code`/`msg` (`already_exists`).
fn check(response: Response<ureq::Body>) -> std::result::Result<Response<ureq::Body>, Failure> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let mut text = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(32 * 1024)
        .read_to_string(&mut text);
    #[derive(Deserialize, Default)]
    struct ErrorBody {
        #[serde(default)]
        message: String,
        #[serde(default, rename = "typeKey")]
        type_key: String,
        #[serde(default)]
        code: String,
        #[serde(default)]
        msg: String,
    }
    let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
    if body.code == "already_exists"
        || body.type_key.contains("AlreadyExists")
        || body.message.to_lowercase().contains("already exists")
    {
        return Err(Failure::Exists);
    }
    let detail = [body.message, body.msg, body.code]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| text.trim().chars().take(200).collect());
    let hint = match status {
        401 => " (the cache service refused the token: check `token` / ACTIONS_RUNTIME_TOKEN)",
        403 => " (the token may not write to this scope)",
        _ => "",
    };
    Err(Failure::Other(RemoteError::message(format!(
        "the cache service answered {status}: {detail}{hint}"
    ))))
}

fn read_json<T: for<'de> Deserialize<'de>>(
    response: Response<ureq::Body>,
    what: &str,
) -> Result<T> {
    let mut text = String::new();
    response
        .into_body()
        .into_reader()
        .take(1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|error| RemoteError::new(format!("reading the {what} answer"), error))?;
    serde_json::from_str(&text).map_err(|error| {
        RemoteError::new(
            format!(
                "the {what} answer is not what the cache service sends: `{}`",
                text.chars().take(200).collect::<String>()
            ),
            error,
        )
    })
}

/// Reads until `buffer` is full or the reader ends.
fn fill(reader: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Characters escaped in query values (keys hold `:` and `#`).
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Deserialize)]
struct V1Entry {
    #[serde(rename = "cacheKey", default)]
    cache_key: String,
    #[serde(rename = "archiveLocation", default)]
    archive_location: String,
}

#[derive(Deserialize)]
struct V1Reserve {
    #[serde(rename = "cacheId", alias = "cacheID")]
    cache_id: u64,
}

#[derive(Deserialize)]
struct V2Create {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    signed_upload_url: String,
}

#[derive(Deserialize)]
struct V2Finalize {
    #[serde(default)]
    ok: bool,
}

#[derive(Deserialize)]
struct V2Download {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    signed_download_url: String,
    #[serde(default)]
    matched_key: String,
}
