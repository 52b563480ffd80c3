//! `type=gha`: a build cache in the GitHub Actions cache service, with BuildKit's keys so the
//! two can find each other's entries: blobs under `buildkit-blob-1-<digest>`, the manifest of
//! scope `s` under `index-<s>-1-<8 hex of the token's write scope>#<n>`. Part of `cache`; a
//! [`Remote`].
//!
//! Entries in that service never change once written. A blob that exists is simply kept; a
//! manifest is written under the next free `#<n>` and read back as the newest entry whose key
//! starts with `index-…#`, the service's prefix lookup.

mod client;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::cache::remote::{Remote, RemoteError, Result};
use crate::cache::s3::config::{EnvLookup, parse_go_bool, parse_go_duration};
use crate::cache::s3::sniff_media_type;
use crate::digest::Digest;

use client::{Client, Reservation};

/// How long a manifest key held by another writer is waited for before the next number is
/// taken.
// Compat: buildkit gha Finalize passes 15s to go-actions-cache SaveMutable.
const MANIFEST_FORCE_TIMEOUT: Duration = Duration::from_secs(15);

/// The checked options of one `type=gha` cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GhaOptions {
    /// The cache's name within the repository (`scope`, default `buildkit`).
    pub scope: String,
    /// The cache service URL (`url`/`url_v2`, else `ACTIONS_CACHE_URL`/`ACTIONS_RESULTS_URL`).
    pub url: String,
    /// The runner's token (`token`, else `ACTIONS_RUNTIME_TOKEN`).
    pub token: String,
    /// The protocol: 1 (`_apis/artifactcache`) or 2 (Twirp `CacheService`).
    pub version: u32,
    /// How long one request may keep retrying (`timeout`, default 10m).
    pub timeout: Duration,
}

/// The attributes `type=gha` reads; any other one is an error naming it.
const KNOWN: &[&str] = &["scope", "url", "url_v2", "token", "version", "timeout"];

impl GhaOptions {
    /// Checks the attributes of a `type=gha` entry, filling in what the Actions runner's
    /// environment gives.
    ///
    /// # Errors
    ///
    /// An unknown attribute, no token or URL, or a malformed version or timeout.
    // Compat: buildx addGithubToken (util/buildflags/cache.go) fills `token`, `url`, `url_v2`
    // and `version` from the environment; buildkit gha getConfig (cache/remotecache/gha/gha.go)
    // picks the URL and protocol.
    pub fn from_attrs(attrs: &BTreeMap<String, String>, env: EnvLookup<'_>) -> Result<Self> {
        crate::cache::remote::check_attributes("gha", attrs, KNOWN)?;
        let attr = |key: &str| attrs.get(key).filter(|v| !v.is_empty()).cloned();
        let env = |key: &str| env(key).filter(|v| !v.is_empty());
        let mut version = match attr("version") {
            Some(text) => text.parse::<u32>().map_err(|_| {
                RemoteError::message(format!(
                    "gha cache: version `{text}` is not a positive integer (1 or 2)"
                ))
            })?,
            None if env("ACTIONS_CACHE_SERVICE_V2")
                .and_then(|v| parse_go_bool(&v))
                .unwrap_or(false) =>
            {
                2
            }
            None => 0,
        };
        let token = attr("token")
            .or_else(|| env("ACTIONS_RUNTIME_TOKEN"))
            .ok_or_else(|| {
                RemoteError::message(
                    "gha cache: no token (set token= or run inside GitHub Actions, which sets ACTIONS_RUNTIME_TOKEN)",
                )
            })?;
        let url_v2 =
            attr("url_v2").or_else(|| (version == 2).then(|| env("ACTIONS_RESULTS_URL")).flatten());
        let url_v1 = attr("url")
            .or_else(|| env("ACTIONS_CACHE_URL"))
            .or_else(|| env("ACTIONS_RESULTS_URL"));
        let url = match url_v2 {
            Some(url) if version != 1 => {
                version = 2;
                url
            }
            _ => url_v1.ok_or_else(|| {
                RemoteError::message(
                    "gha cache: no cache service URL (set url=/url_v2= or run inside GitHub Actions, which sets ACTIONS_RESULTS_URL)",
                )
            })?,
        };
        if version == 0 {
            // Compat: buildkit's guess for clients that do not say.
            version = if url.contains("results-receiver.actions.githubusercontent.com") {
                2
            } else {
                1
            };
        }
        if version > 2 {
            return Err(RemoteError::message(format!(
                "gha cache: version {version} is not a cache service version (1 or 2)"
            )));
        }
        let timeout = match attr("timeout") {
            None => Duration::from_secs(600),
            Some(text) => parse_go_duration(&text).ok_or_else(|| {
                RemoteError::message(format!(
                    "gha cache: timeout `{text}` is not a duration (e.g. `10m`)"
                ))
            })?,
        };
        Ok(Self {
            scope: attr("scope").unwrap_or_else(|| "buildkit".to_owned()),
            url,
            token,
            version,
            timeout,
        })
    }
}

/// One scope the runtime token grants: a git ref and read (1) / write (2) bits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenScope {
    /// The ref whose caches this is (`refs/heads/main`).
    #[serde(rename = "Scope")]
    pub scope: String,
    /// 1 = read, 2 = write, 3 = both.
    #[serde(rename = "Permission")]
    pub permission: u32,
}

/// Reads the scopes out of the runner's token (a JWT whose `ac` claim lists them) and checks
/// it has not expired. The signature is the service's business, as in BuildKit's client.
// Compat: go-actions-cache New (cache.go): `ac`, `exp`, `nbf` claims.
pub fn token_scopes(token: &str) -> Result<Vec<TokenScope>> {
    let bad = |why: &str| {
        RemoteError::message(format!(
            "gha cache: the token is not a GitHub Actions runtime token: {why}"
        ))
    };
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| bad("it is not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("its payload is not base64"))?;
    #[derive(Deserialize)]
    struct Claims {
        ac: Option<String>,
        exp: Option<f64>,
    }
    let claims: Claims =
        serde_json::from_slice(&bytes).map_err(|_| bad("its payload is not JSON"))?;
    let access = claims.ac.ok_or_else(|| bad("it has no `ac` claim"))?;
    if let Some(expires) = claims.exp {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        if now > expires {
            return Err(RemoteError::message(format!(
                "gha cache: the token expired {} s ago",
                (now - expires) as u64
            )));
        }
    }
    serde_json::from_str(&access).map_err(|_| bad("its `ac` claim is not a scope list"))
}

/// The first 8 hex digits of sha256 of a scope, the part of the index key that keeps
/// branches apart.
fn scope_hash(scope: &str) -> String {
    hex::encode(Sha256::digest(scope.as_bytes()))[..8].to_owned()
}

/// The version string every key is stored with.
// Compat: go-actions-cache `version()` hashes a constant, not the key.
fn key_version() -> String {
    hex::encode(Sha256::digest(b"|go-actionscache-1.0"))
}

/// A build cache in the GitHub Actions cache service.
pub struct GhaRemote {
    options: GhaOptions,
    scopes: Vec<TokenScope>,
    client: Client,
}

impl std::fmt::Debug for GhaRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GhaRemote")
            .field("scope", &self.options.scope)
            .field("url", &self.options.url)
            .field("version", &self.options.version)
            .finish_non_exhaustive()
    }
}

impl GhaRemote {
    /// Parses a `type=gha` entry and reads its token (no request is made yet).
    ///
    /// # Errors
    ///
    /// Bad attributes (see [`GhaOptions::from_attrs`]) or a token that is not a runtime token.
    pub fn from_attrs(attrs: &BTreeMap<String, String>, env: EnvLookup<'_>) -> Result<Self> {
        Self::new(GhaOptions::from_attrs(attrs, env)?)
    }

    /// A backend for `options`.
    ///
    /// # Errors
    ///
    /// A token that is not a runtime token or has expired.
    pub fn new(options: GhaOptions) -> Result<Self> {
        let scopes = token_scopes(&options.token)?;
        let client = Client::new(
            &options.url,
            &options.token,
            options.version == 2,
            options.timeout,
        );
        Ok(Self {
            options,
            scopes,
            client,
        })
    }

    /// The manifest names this entry reads and writes: its `scope` (as [`S3Remote::names`]
    /// gives the `name`s of an S3 entry).
    ///
    /// [`S3Remote::names`]: crate::cache::s3::S3Remote::names
    pub fn names(&self) -> &[String] {
        std::slice::from_ref(&self.options.scope)
    }

    /// The cache key of blob `digest`.
    pub fn blob_key(digest: &Digest) -> String {
        format!("buildkit-blob-1-{digest}")
    }

    /// The key prefix of manifest `name` as seen from token scope `scope`; entries add `#<n>`.
    pub fn manifest_key(name: &str, scope: &str) -> String {
        format!("index-{name}-1-{}", scope_hash(scope))
    }

    /// The scope exports write to: the last one the token may write, as BuildKit picks it.
    fn write_scope(&self) -> &str {
        self.scopes
            .iter()
            .rev()
            .find(|s| s.permission & 2 != 0)
            .map_or("", |s| s.scope.as_str())
    }

    fn error(&self, error: RemoteError) -> RemoteError {
        RemoteError {
            what: format!(
                "gha cache (scope `{}`, {}): {}",
                self.options.scope, self.options.url, error.what
            ),
            source: error.source,
        }
    }

    /// The entry stored exactly under `key`, if any.
    fn exact(&self, key: &str) -> Result<Option<client::Entry>> {
        let version = key_version();
        let found = self
            .client
            .lookup(&[key.to_owned()], &version)
            .map_err(|e| self.error(e))?;
        // A lookup also matches by prefix: only the exact key is this blob.
        Ok(found.filter(|entry| entry.key == key))
    }
}

impl Remote for GhaRemote {
    fn describe(&self) -> String {
        format!(
            "type=gha,scope={},version={}",
            self.options.scope, self.options.version
        )
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.exact(&Self::blob_key(digest))?.is_some())
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send>>> {
        let Some(entry) = self.exact(&Self::blob_key(digest))? else {
            return Ok(None);
        };
        self.client
            .download(&entry)
            .map(Some)
            .map_err(|e| self.error(e))
    }

    fn put_blob(
        &self,
        digest: &Digest,
        _media_type: &str,
        size: u64,
        blob: &mut dyn Read,
    ) -> Result<()> {
        let key = Self::blob_key(digest);
        let version = key_version();
        match self
            .client
            .reserve(&key, &version)
            .map_err(|e| self.error(e))?
        {
            // Compat: buildkit gha Finalize ignores os.ErrExist: the same digest is the same blob.
            Reservation::Exists => Ok(()),
            Reservation::Reserved(upload) => self
                .client
                .upload(&upload, &version, size, blob)
                .map_err(|e| self.error(e)),
        }
    }

    fn get_manifest(&self, name: &str) -> Result<Option<(String, Vec<u8>)>> {
        // The branch's own scope first, then the ones it may read (the default branch).
        let write = self.write_scope().to_owned();
        let mut scopes = vec![write.clone()];
        scopes.extend(
            self.scopes
                .iter()
                .map(|s| s.scope.clone())
                .filter(|s| *s != write),
        );
        let version = key_version();
        for scope in scopes {
            let prefix = format!("{}#", Self::manifest_key(name, &scope));
            let Some(entry) = self
                .client
                .lookup(std::slice::from_ref(&prefix), &version)
                .map_err(|e| self.error(e))?
            else {
                continue;
            };
            if !entry.key.starts_with(&prefix) {
                continue;
            }
            let mut bytes = Vec::new();
            self.client
                .download(&entry)
                .map_err(|e| self.error(e))?
                .read_to_end(&mut bytes)
                .map_err(|e| self.error(RemoteError::new(format!("reading `{}`", entry.key), e)))?;
            return Ok(Some((sniff_media_type(&bytes), bytes)));
        }
        Ok(None)
    }

    // Compat: go-actions-cache SaveMutable: find the newest `<key>#<n>`, reserve `#<n+1>`;
    // when another writer holds it, wait 2s and look again, and after 15s take the next free
    // number. The media type is not stored: BuildKit's entries carry only the bytes.
    fn put_manifest(&self, name: &str, _media_type: &str, bytes: &[u8]) -> Result<()> {
        let base = Self::manifest_key(name, self.write_scope());
        let prefix = format!("{base}#");
        let version = key_version();
        let mut blocked = Duration::ZERO;
        'lookup: loop {
            let newest = self
                .client
                .lookup(std::slice::from_ref(&prefix), &version)
                .map_err(|e| self.error(e))?
                .filter(|entry| entry.key.starts_with(&prefix));
            let mut index: u64 = match newest {
                None => 0,
                Some(entry) => entry.key[prefix.len()..].parse().map_err(|_| {
                    self.error(RemoteError::message(format!(
                        "the manifest entry `{}` has no number after `#`",
                        entry.key
                    )))
                })?,
            };
            loop {
                index += 1;
                let key = format!("{prefix}{index}");
                match self
                    .client
                    .reserve(&key, &version)
                    .map_err(|e| self.error(e))?
                {
                    Reservation::Reserved(upload) => {
                        return self
                            .client
                            .upload(&upload, &version, bytes.len() as u64, &mut &bytes[..])
                            .map_err(|e| self.error(e));
                    }
                    Reservation::Exists if blocked <= MANIFEST_FORCE_TIMEOUT => {
                        blocked += Duration::from_secs(2);
                        std::thread::sleep(Duration::from_secs(2));
                        continue 'lookup;
                    }
                    Reservation::Exists => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map = attrs(pairs);
        move |key| map.get(key).cloned()
    }

    #[test]
    fn version_two_comes_from_the_runner_environment() {
        let env = env_of(&[
            ("ACTIONS_CACHE_SERVICE_V2", "True"),
            ("ACTIONS_RESULTS_URL", "https://results/"),
            ("ACTIONS_CACHE_URL", "https://v1/"),
            ("ACTIONS_RUNTIME_TOKEN", "t"),
        ]);
        let options = GhaOptions::from_attrs(&attrs(&[]), &env).unwrap();
        assert_eq!(
            (options.version, options.url.as_str()),
            (2, "https://results/")
        );
        assert_eq!(options.scope, "buildkit");
        assert_eq!(options.token, "t");
        assert_eq!(options.timeout, Duration::from_secs(600));

        let options = GhaOptions::from_attrs(&attrs(&[("version", "1")]), &env).unwrap();
        assert_eq!((options.version, options.url.as_str()), (1, "https://v1/"));
    }

    #[test]
    fn version_one_without_the_v2_switch() {
        let env = env_of(&[
            ("ACTIONS_CACHE_URL", "https://v1/"),
            ("ACTIONS_RESULTS_URL", "https://results/"),
            ("ACTIONS_RUNTIME_TOKEN", "t"),
        ]);
        let options =
            GhaOptions::from_attrs(&attrs(&[("scope", "app"), ("timeout", "30s")]), &env).unwrap();
        assert_eq!((options.version, options.url.as_str()), (1, "https://v1/"));
        assert_eq!(options.scope, "app");
        assert_eq!(options.timeout, Duration::from_secs(30));
        let options = GhaOptions::from_attrs(
            &attrs(&[(
                "url",
                "https://results-receiver.actions.githubusercontent.com/x/",
            )]),
            &env,
        )
        .unwrap();
        assert_eq!(options.version, 2);
    }

    #[test]
    fn missing_token_url_and_bad_values_are_errors() {
        let env = env_of(&[]);
        let error = GhaOptions::from_attrs(&attrs(&[("url", "http://x/")]), &env).unwrap_err();
        assert!(error.to_string().contains("no token"), "{error}");
        let error = GhaOptions::from_attrs(&attrs(&[("token", "t")]), &env).unwrap_err();
        assert!(
            error.to_string().contains("no cache service URL"),
            "{error}"
        );
        let base = [("token", "t"), ("url", "http://x/")];
        let with = |key, value| {
            let mut all = attrs(&base);
            all.insert(key, value);
            GhaOptions::from_attrs(&all, &env).unwrap_err().to_string()
        };
        assert!(with("version".into(), "two".into()).contains("not a positive integer"));
        assert!(with("version".into(), "3".into()).contains("version 3"));
        assert!(with("timeout".into(), "10".into()).contains("not a duration"));
        assert!(with("ghtoken".into(), "x".into()).contains("unknown attribute `ghtoken`"));
    }

    fn jwt(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            engine.encode(r#"{"alg":"RS256"}"#),
            engine.encode(claims)
        )
    }

    #[test]
    fn tokens_give_scopes_and_keys_follow_buildkit() {
        let token = jwt(
            r#"{"ac":"[{\"Scope\":\"refs/heads/main\",\"Permission\":1},{\"Scope\":\"refs/heads/pr\",\"Permission\":3}]","exp":9999999999}"#,
        );
        let scopes = token_scopes(&token).unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[1].scope, "refs/heads/pr");
        let remote = GhaRemote::new(GhaOptions {
            scope: "app".into(),
            url: "http://127.0.0.1:1/".into(),
            token,
            version: 2,
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        assert_eq!(remote.write_scope(), "refs/heads/pr");
        assert_eq!(remote.names(), ["app"]);
        let digest = Digest::of(b"x");
        assert_eq!(
            GhaRemote::blob_key(&digest),
            format!("buildkit-blob-1-sha256:{}", digest.hex())
        );
        let hash = &hex::encode(Sha256::digest(b"refs/heads/pr"))[..8];
        assert_eq!(
            GhaRemote::manifest_key("app", "refs/heads/pr"),
            format!("index-app-1-{hash}")
        );
        assert_eq!(
            key_version(),
            hex::encode(Sha256::digest(b"|go-actionscache-1.0"))
        );
    }

    #[test]
    fn expired_and_malformed_tokens_are_errors() {
        let expired = jwt(r#"{"ac":"[]","exp":1000}"#);
        assert!(
            token_scopes(&expired)
                .unwrap_err()
                .to_string()
                .contains("expired")
        );
        assert!(
            token_scopes("opaque")
                .unwrap_err()
                .to_string()
                .contains("not a JWT")
        );
        assert!(
            token_scopes(&jwt(r#"{"exp":9999999999}"#))
                .unwrap_err()
                .to_string()
                .contains("no `ac` claim")
        );
    }
}
