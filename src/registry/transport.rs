//! HTTP to registries: which endpoints serve a registry (mirrors first for pulls), one `ureq`
//! agent per TLS setting, and requests that answer `401` challenges with basic credentials or
//! scoped bearer tokens, cached per host and scope. Part of `registry`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use ureq::http::Response;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::auth::{Challenge, Credentials, DockerConfig, parse_challenge};
use super::error::{Error, Result};
use super::options::HostOptions;
use super::reference::{DOCKER_HUB, DOCKER_HUB_API, is_localhost};

/// One place a registry's API answers: the registry itself or one of its mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// The host and port dialled.
    pub(crate) host: String,
    /// A repository prefix a mirror serves the registry under (`proxy.docker.io/`), or empty.
    pub(crate) prefix: String,
    /// Whether this is a mirror (errors there fall through to the next endpoint).
    pub(crate) mirror: bool,
}

impl Endpoint {
    /// Returns `scheme://host/v2/<prefix><repository>/<rest>`.
    pub(crate) fn url(&self, repository: &str, rest: &str) -> String {
        format!(
            "{}://{}/v2/{}{}/{}",
            self.scheme, self.host, self.prefix, repository, rest
        )
    }

    /// Resolves an upload `Location` header against this endpoint.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}://{}{}", self.scheme, self.host, location)
        }
    }

    /// Returns the name credentials for this endpoint are stored under.
    fn credential_host(&self) -> &str {
        if self.host == DOCKER_HUB_API {
            DOCKER_HUB
        } else {
            &self.host
        }
    }
}

/// Agents, credentials and the token cache shared by every request of a client.
#[derive(Debug)]
pub(crate) struct Transport {
    hosts: BTreeMap<String, HostOptions>,
    config: DockerConfig,
    agents: Mutex<HashMap<String, Agent>>,
    /// `(host, scopes)` → `Authorization` value; basic credentials use an empty scope.
    authorizations: Mutex<HashMap<(String, String), Arc<str>>>,
}

/// A request to send, given the agent and the `Authorization` value to use (if any). Called
/// again after a challenge, so it must be able to rebuild its body.
pub(crate) type Send<'a> =
    dyn Fn(&Agent, Option<&str>) -> std::result::Result<Response<Body>, ureq::Error> + 'a;

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl Transport {
    pub(crate) fn new(hosts: BTreeMap<String, HostOptions>, config: DockerConfig) -> Self {
        Self {
            hosts,
            config,
            agents: Mutex::new(HashMap::new()),
            authorizations: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the endpoints for `registry`: its mirrors first when `pull`, then itself.
    // Compat: buildkit util/resolver NewRegistryConfig: mirrors (which may carry a path) come
    // before the registry, each with its own `[registry."mirror"]` options.
    pub(crate) fn endpoints(&self, registry: &str, pull: bool) -> Vec<Endpoint> {
        let mut endpoints = Vec::new();
        if pull && let Some(options) = self.hosts.get(registry) {
            for mirror in &options.mirrors {
                let mirror = mirror
                    .strip_prefix("https://")
                    .or_else(|| mirror.strip_prefix("http://"))
                    .unwrap_or(mirror)
                    .trim_end_matches('/');
                let (host, path) = mirror.split_once('/').unwrap_or((mirror, ""));
                endpoints.push(Endpoint {
                    scheme: self.scheme(host),
                    host: host.to_owned(),
                    prefix: if path.is_empty() {
                        String::new()
                    } else {
                        format!("{path}/")
                    },
                    mirror: true,
                });
            }
        }
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            registry
        };
        endpoints.push(Endpoint {
            scheme: self.scheme(registry),
            host: host.to_owned(),
            prefix: String::new(),
            mirror: false,
        });
        endpoints
    }

    fn scheme(&self, host: &str) -> &'static str {
        let options = self.hosts.get(host);
        // Diverges: BuildKit's `http` is tri-state; ours is a bool, so a loopback registry is
        // always plain HTTP unless `insecure` asks for TLS without verification.
        let http = options.is_some_and(|o| o.http)
            || (is_localhost(host) && !options.is_some_and(|o| o.insecure));
        if http { "http" } else { "https" }
    }

    /// Returns the agent for `host`, built once with its TLS options.
    pub(crate) fn agent(&self, host: &str) -> Result<Agent> {
        let mut agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(agent) = agents.get(host) {
            return Ok(agent.clone());
        }
        let options = self.hosts.get(host).cloned().unwrap_or_default();
        let mut tls = TlsConfig::builder().disable_verification(options.insecure);
        if !options.ca.is_empty() {
            // Diverges: BuildKit adds these to the system pool; we trust only them (plus
            // nothing else), which is what a private CA needs.
            let mut certificates = Vec::new();
            for path in &options.ca {
                let failed = |reason: String| Error::Certificate {
                    host: host.to_owned(),
                    path: path.clone(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
                let certificate = Certificate::from_pem(&pem).map_err(|e| failed(e.to_string()))?;
                certificates.push(certificate);
            }
            tls = tls.root_certs(RootCerts::new_with_certs(&certificates));
        }
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("bake/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8)
            .build()
            .into();
        agents.insert(host.to_owned(), agent.clone());
        Ok(agent)
    }

    /// Sends `request` to `endpoint`, answering one authentication challenge. `scopes` are the
    /// token scopes the operation needs; `name` (`registry/repository`) goes into errors.
    pub(crate) fn send(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
        name: &str,
        action: &'static str,
        request: &Send<'_>,
    ) -> Result<Response<Body>> {
        let agent = self.agent(&endpoint.host)?;
        let connect = |source| Error::Connect {
            action,
            host: endpoint.host.clone(),
            source: Box::new(source),
        };
        let scope_key = scopes.join(" ");
        let cached = self.cached(&endpoint.host, &scope_key);
        let response = request(&agent, cached.as_deref()).map_err(connect)?;
        if response.status() != 401 {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(parse_challenge)
            .next();
        let Some(challenge) = challenge else {
            return Err(self.unauthorized(endpoint, name, false));
        };
        let credentials = self.config.credentials(endpoint.credential_host())?;
        let (key, authorization) = match challenge {
            Challenge::Basic => {
                let Some(Credentials::Basic { username, password }) = &credentials else {
                    return Err(self.unauthorized(endpoint, name, credentials.is_some()));
                };
                let pair = format!("{username}:{}", password.expose());
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                );
                (String::new(), value)
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(scope) = scope
                    && !wanted.contains(&scope)
                {
                    wanted.push(scope);
                }
                let token = self.fetch_token(
                    &agent,
                    endpoint,
                    name,
                    &realm,
                    service.as_deref(),
                    &wanted,
                    credentials.as_ref(),
                )?;
                (scope_key, format!("Bearer {token}"))
            }
        };
        let retried = request(&agent, Some(&authorization)).map_err(connect)?;
        if retried.status() == 401 {
            return Err(self.unauthorized(endpoint, name, credentials.is_some()));
        }
        self.authorizations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((endpoint.host.clone(), key), authorization.into());
        Ok(retried)
    }

    fn cached(&self, host: &str, scope_key: &str) -> Option<Arc<str>> {
        let cache = self
            .authorizations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(&(host.to_owned(), scope_key.to_owned()))
            .or_else(|| cache.get(&(host.to_owned(), String::new())))
            .cloned()
    }

    /// Gets a bearer token from `realm` for `scopes`.
    // Compat: distribution's token flow: GET with basic credentials (or anonymously), or the
    // OAuth POST with a refresh token when Docker stored an identity token.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the challenge's parts"
    )]
    fn fetch_token(
        &self,
        agent: &Agent,
        endpoint: &Endpoint,
        name: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let realm_host = realm
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(realm)
            .to_owned();
        let connect = |source| Error::Connect {
            action: "get a token from",
            host: realm_host.clone(),
            source: Box::new(source),
        };
        let response = match credentials {
            Some(Credentials::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", token.expose().to_owned()),
                    ("client_id", "bake".to_owned()),
                    ("scope", scopes.join(" ")),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_owned()));
                }
                agent.post(realm).send_form(form).map_err(connect)?
            }
            _ => {
                let mut request = agent.get(realm);
                if let Some(service) = service {
                    request = request.query("service", service);
                }
                for scope in scopes {
                    request = request.query("scope", scope);
                }
                if let Some(Credentials::Basic { username, password }) = credentials {
                    let pair = format!("{username}:{}", password.expose());
                    request = request.header(
                        "Authorization",
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(pair)
                        ),
                    );
                }
                request.call().map_err(connect)?
            }
        };
        match response.status().as_u16() {
            200 => {}
            401 | 403 => return Err(self.unauthorized(endpoint, name, credentials.is_some())),
            status => {
                return Err(Error::Status {
                    action: "get a token for",
                    name: name.to_owned(),
                    status,
                    message: String::new(),
                });
            }
        }
        let mut body = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|error| Error::Connect {
                action: "read a token from",
                host: realm_host.clone(),
                source: Box::new(ureq::Error::Io(error)),
            })?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|source| Error::BadDocument {
                what: "token response",
                reference: name.to_owned(),
                source,
            })?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| self.unauthorized(endpoint, name, credentials.is_some()))
    }

    fn unauthorized(&self, endpoint: &Endpoint, name: &str, had_credentials: bool) -> Error {
        let host = endpoint.credential_host();
        let path = self.config.path().display();
        let hint = if had_credentials {
            format!("check the credentials for `{host}` in `{path}`")
        } else {
            format!("no credentials for `{host}` in `{path}`; add them with `docker login {host}`")
        };
        Error::Unauthorized {
            name: name.to_owned(),
            hint,
        }
    }
}

/// Reads a registry error body (`{"errors":[{"code":…,"message":…}]}`) into `: code: message`
/// text for an error, or nothing.
pub(crate) fn error_message(response: Response<Body>) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let mut body = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(64 << 10)
        .read_to_end(&mut body);
    match serde_json::from_slice::<Errors>(&body) {
        Ok(parsed) if !parsed.errors.is_empty() => {
            let parts: Vec<String> = parsed
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code.to_lowercase(), e.message))
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(hosts: &[(&str, HostOptions)]) -> Transport {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DockerConfig::load(&dir.path().join("none.json")).expect("config");
        Transport::new(
            hosts
                .iter()
                .map(|(host, options)| ((*host).to_owned(), options.clone()))
                .collect(),
            config,
        )
    }

    #[test]
    fn mirrors_come_first_and_keep_their_path() {
        let options = HostOptions {
            mirrors: vec![
                "mirror.local:5000".to_owned(),
                "core.harbor.domain/proxy.docker.io".to_owned(),
            ],
            ..HostOptions::default()
        };
        let transport = transport(&[
            ("docker.io", options),
            (
                "mirror.local:5000",
                HostOptions {
                    http: true,
                    ..HostOptions::default()
                },
            ),
        ]);
        let endpoints = transport.endpoints("docker.io", true);
        let urls: Vec<String> = endpoints
            .iter()
            .map(|e| e.url("library/busybox", "manifests/latest"))
            .collect();
        assert_eq!(
            urls,
            [
                "http://mirror.local:5000/v2/library/busybox/manifests/latest",
                "https://core.harbor.domain/v2/proxy.docker.io/library/busybox/manifests/latest",
                "https://registry-1.docker.io/v2/library/busybox/manifests/latest",
            ]
        );
        assert_eq!(transport.endpoints("docker.io", false).len(), 1);
    }

    #[test]
    fn loopback_defaults_to_http() {
        let transport = transport(&[(
            "localhost:5443",
            HostOptions {
                insecure: true,
                ..HostOptions::default()
            },
        )]);
        assert_eq!(
            transport.endpoints("127.0.0.1:5000", false)[0].scheme,
            "http"
        );
        assert_eq!(
            transport.endpoints("localhost:5443", false)[0].scheme,
            "https"
        );
        assert_eq!(transport.endpoints("reg.io", false)[0].scheme, "https");
        let endpoint = &transport.endpoints("127.0.0.1:5000", false)[0];
        assert_eq!(
            endpoint.absolute("/v2/a/blobs/uploads/x?_state=y"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=y"
        );
    }
}
