//! Registry credentials and challenges: reading `config.json` (`auths`, `credsStore`,
//! `credHelpers` through `docker-credential-<name> get`) and parsing `WWW-Authenticate`.
//! Part of `registry`.
//!
//! Secrets live in [`Secret`], whose `Debug` prints `[redacted]`, so no error or log line can
//! carry a password or token by accident.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::error::{Error, Result};

/// The key Docker stores Hub credentials under.
// Compat: docker/cli registry.IndexServer.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A password, token or other secret: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the secret itself, for building a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth refresh token (`identitytoken`, or a helper's `<token>` user).
    IdentityToken(Secret),
}

/// Where credentials come from: a Docker `config.json`.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    file: ConfigFile,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperOutput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    secret: String,
}

impl DockerConfig {
    /// Returns the config file Docker would use: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("config.json"),
            _ => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".docker")
                .join("config.json"),
        }
    }

    /// Loads `path`; a missing file means no credentials, a malformed one is an error.
    pub fn load(path: &Path) -> Result<Self> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Credentials {
                path: path.to_owned(),
                reason: format!("it is not valid JSON: {source}"),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(error) => {
                return Err(Error::Credentials {
                    path: path.to_owned(),
                    reason: format!("it cannot be read: {error}"),
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Returns the config file's path, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the credentials for `registry` (`docker.io`, `127.0.0.1:5000`), if any.
    // Compat: docker/cli configfile.GetAuthConfig: a credHelpers entry, else credsStore, else
    // `auths`.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>> {
        let key = if registry == super::reference::DOCKER_HUB {
            DOCKER_HUB_KEY
        } else {
            registry
        };
        if let Some(helper) = self.file.cred_helpers.get(registry) {
            return self.run_helper(helper, key);
        }
        if let Some(helper) = &self.file.creds_store
            && let Some(found) = self.run_helper(helper, key)?
        {
            return Ok(Some(found));
        }
        let entry = self.file.auths.iter().find_map(|(name, entry)| {
            (normalize_auth_key(name) == normalize_auth_key(key)).then_some(entry)
        });
        entry.map(|entry| self.decode(entry)).transpose()
    }

    fn decode(&self, entry: &AuthEntry) -> Result<Credentials> {
        if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Credentials::IdentityToken(Secret::new(token)));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || Error::Credentials {
                path: self.path.clone(),
                reason: "an `auth` value is not base64 of `user:password`".to_owned(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (username, password) = text.split_once(':').ok_or_else(bad)?;
            return Ok(Credentials::Basic {
                username: username.to_owned(),
                password: Secret::new(password),
            });
        }
        Ok(Credentials::Basic {
            username: entry.username.clone().unwrap_or_default(),
            password: Secret::new(entry.password.clone().unwrap_or_default()),
        })
    }

    /// Runs `docker-credential-<helper> get` with the server URL on stdin.
    fn run_helper(&self, helper: &str, server: &str) -> Result<Option<Credentials>> {
        let program = format!("docker-credential-{helper}");
        let failed = |reason: String| Error::CredentialHelper {
            helper: program.clone(),
            path: self.path.clone(),
            reason,
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| failed(format!("it cannot be started: {error}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits early closes its stdin; its exit status tells what happened.
            let _ = stdin.write_all(server.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|error| failed(format!("it did not finish: {error}")))?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            // Compat: docker-credential-helpers credentials.ErrCredentialsNotFound.
            if message.contains("credentials not found") {
                return Ok(None);
            }
            return Err(failed(format!("it exited with {}", output.status)));
        }
        let parsed: HelperOutput = serde_json::from_slice(&output.stdout)
            .map_err(|_| failed("its output is not the expected JSON".to_owned()))?;
        Ok(Some(if parsed.username == "<token>" {
            Credentials::IdentityToken(Secret::new(parsed.secret))
        } else {
            Credentials::Basic {
                username: parsed.username,
                password: Secret::new(parsed.secret),
            }
        }))
    }
}

/// Strips scheme and path, so `https://host/v1/` and `host` name the same registry.
// Compat: docker/cli configfile ConvertToHostname.
fn normalize_auth_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if host == "index.docker.io" || host == "registry-1.docker.io" {
        super::reference::DOCKER_HUB
    } else {
        host
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm=…`.
    Basic,
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to pass back.
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value; unknown schemes give `None`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let parameters = parse_parameters(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: parameters.get("realm")?.clone(),
            service: parameters.get("service").cloned(),
            scope: parameters.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// Parses `key="value", key=value` pairs, honouring quotes and backslash escapes.
fn parse_parameters(text: &str) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned();
        }
        parameters.insert(key, value);
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).expect("write");
        let config = DockerConfig::load(&path).expect("load");
        (dir, config)
    }

    #[test]
    fn auths_decode_base64_and_plain_fields() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        let (_dir, config) = config(&format!(
            r#"{{"auths":{{"https://127.0.0.1:5000/v1/":{{"auth":"{auth}"}},
                "https://index.docker.io/v1/":{{"username":"bob","password":"pw"}}}}}}"#
        ));
        let found = config.credentials("127.0.0.1:5000").expect("lookup");
        assert_eq!(
            found,
            Some(Credentials::Basic {
                username: "alice".to_owned(),
                password: Secret::new("s3cret"),
            })
        );
        assert!(matches!(
            config.credentials("docker.io").expect("lookup"),
            Some(Credentials::Basic { username, .. }) if username == "bob"
        ));
        assert_eq!(config.credentials("other.io").expect("lookup"), None);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let credentials = Credentials::Basic {
            username: "alice".to_owned(),
            password: Secret::new("s3cret"),
        };
        let (_dir, config) = config(r#"{"auths":{"h":{"password":"s3cret"}}}"#);
        for text in [format!("{credentials:?}"), format!("{config:?}")] {
            assert!(!text.contains("s3cret"), "{text}");
        }
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let (_dir, config) = config(r#"{"credHelpers":{"h":"bake-test-none"}}"#);
        let error = config.credentials("h").expect_err("no such helper");
        assert!(
            error
                .to_string()
                .contains("docker-credential-bake-test-none"),
            "{error}"
        );
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_owned(),
                service: Some("registry.docker.io".to_owned()),
                scope: Some("repository:library/busybox:pull".to_owned()),
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }
}
