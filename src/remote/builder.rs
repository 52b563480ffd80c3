//! Which BuildKit a build goes to: `--builder`, `BUILDX_BUILDER`, buildx's builder store
//! (`$BUILDX_CONFIG` or `~/.docker/buildx`: `current` and `instances/NAME`) and direct
//! endpoints (`unix://`, `tcp://`, `docker://`). Part of `remote`.
//!
//! Reads only the files it is pointed at; every input comes in through [`Environment`], so
//! the rules are unit-tested without touching the real home directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest as _;

use crate::platform::Platform;
use crate::remote::error::{Error, Result};

/// The Docker engine address when neither `DOCKER_HOST` nor a docker context names one.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// The name buildx gives the Docker engine of the current docker context.
pub const DEFAULT_BUILDER: &str = "default";

/// What builder selection reads from the process environment.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `BUILDX_BUILDER`.
    pub buildx_builder: Option<String>,
    /// `BUILDX_CONFIG`.
    pub buildx_config: Option<PathBuf>,
    /// `DOCKER_CONFIG`.
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `HOME`.
    pub home: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables from this process's environment (empty values count as unset).
    pub fn from_process() -> Self {
        let text = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            buildx_builder: text("BUILDX_BUILDER"),
            buildx_config: text("BUILDX_CONFIG").map(PathBuf::from),
            docker_config: text("DOCKER_CONFIG").map(PathBuf::from),
            docker_host: text("DOCKER_HOST"),
            home: text("HOME").map(PathBuf::from),
        }
    }

    /// Returns buildx's state directory.
    // Compat: buildx confutil.ConfigDir: `BUILDX_CONFIG`, else `<docker config dir>/buildx`.
    pub fn buildx_dir(&self) -> Option<PathBuf> {
        self.buildx_config
            .clone()
            .or_else(|| self.docker_dir().map(|dir| dir.join("buildx")))
    }

    fn docker_dir(&self) -> Option<PathBuf> {
        self.docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".docker")))
    }

    /// The engine a `docker` builder named after a docker context talks to.
    fn docker_context_host(&self, context: &str) -> Result<String> {
        if context == DEFAULT_BUILDER {
            return Ok(self
                .docker_host
                .clone()
                .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned()));
        }
        // Compat: docker's context store keeps `contexts/meta/<sha256(name)>/meta.json`.
        let id = hex::encode(sha2::Sha256::digest(context.as_bytes()));
        let path = self
            .docker_dir()
            .unwrap_or_default()
            .join("contexts/meta")
            .join(id)
            .join("meta.json");
        let text = std::fs::read_to_string(&path).map_err(|_| Error::UnknownDockerContext {
            context: context.to_owned(),
        })?;
        let meta: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| Error::StoreFile {
                path: path.clone(),
                source,
            })?;
        meta["Endpoints"]["docker"]["Host"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::UnknownDockerContext {
                context: context.to_owned(),
            })
    }
}

/// How bake reaches a BuildKit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// The Docker engine's embedded BuildKit, through the engine API's `/grpc` and `/session`.
    Docker,
    /// A `buildkitd` listening on a unix socket or TCP (optionally TLS).
    Remote,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Docker => "docker",
            Driver::Remote => "remote",
        })
    }
}

/// A socket address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Address {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl Address {
    /// Parses `unix:///path` or `tcp://host:port`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(path) = text.strip_prefix("unix://") {
            (!path.is_empty()).then(|| Address::Unix(PathBuf::from(path)))
        } else if let Some(host) = text.strip_prefix("tcp://") {
            let host = host.trim_end_matches('/');
            (!host.is_empty()).then(|| Address::Tcp(host.to_owned()))
        } else {
            None
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Tcp(host) => write!(f, "tcp://{host}"),
        }
    }
}

/// TLS settings of a remote node (buildx's `cacert`, `cert`, `key`, `servername` driver
/// options).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tls {
    /// The CA that signs the daemon's certificate (default: the system roots).
    pub ca: Option<PathBuf>,
    /// The client certificate.
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// The name the daemon's certificate must carry (default: the endpoint's host).
    pub server_name: Option<String>,
}

/// One BuildKit of a builder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// The node's name.
    pub name: String,
    /// Where it listens (for the docker driver: the engine's API socket).
    pub address: Address,
    /// The platforms the store lists for it (empty: whatever its workers report).
    pub platforms: Vec<Platform>,
    /// TLS, for a `tcp://` remote node.
    pub tls: Option<Tls>,
}

/// Where a builder was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `--builder`.
    Flag,
    /// `BUILDX_BUILDER`.
    Environment,
    /// buildx's `current` file.
    Current,
}

/// A BuildKit builder: its driver and nodes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Builder {
    /// The builder's name (an endpoint given directly is its own name).
    pub name: String,
    /// How it is reached.
    pub driver: Driver,
    /// Its nodes, in the store's order.
    pub nodes: Vec<Node>,
}

/// The outcome of builder selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// No builder named anywhere: bake's own in-process solver.
    Embedded,
    /// A BuildKit daemon, and where it was named.
    Remote(Builder, Origin),
}

/// buildx's `instances/NAME` file.
// Compat: buildx store.NodeGroup (store/nodegroup.go).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawInstance {
    name: String,
    driver: String,
    #[serde(default)]
    nodes: Option<Vec<RawNode>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNode {
    name: String,
    endpoint: String,
    #[serde(default)]
    platforms: Option<Vec<RawPlatform>>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// buildx's `current` file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawCurrent {
    #[serde(default)]
    name: String,
}

/// Chooses the builder: `flag` (`--builder`), else `BUILDX_BUILDER`, else buildx's current
/// builder; none of them means the embedded solver.
///
/// # Errors
/// [`Error::UnknownBuilder`] for a name that is neither an endpoint, a store instance nor
/// `default`; store files that do not parse; drivers bake cannot reach.
// Compat: buildx builder.New: flag, then BUILDX_BUILDER, then the store's current instance.
pub fn select(flag: Option<&str>, environment: &Environment) -> Result<Selection> {
    let named = match (flag, &environment.buildx_builder) {
        (Some(name), _) => Some((name.to_owned(), Origin::Flag)),
        (None, Some(name)) => Some((name.clone(), Origin::Environment)),
        (None, None) => current(environment)?.map(|name| (name, Origin::Current)),
    };
    let Some((name, origin)) = named else {
        return Ok(Selection::Embedded);
    };
    Ok(Selection::Remote(resolve(&name, environment)?, origin))
}

/// The instance named in buildx's `current` file, if it names one.
fn current(environment: &Environment) -> Result<Option<String>> {
    let Some(dir) = environment.buildx_dir() else {
        return Ok(None);
    };
    let path = dir.join("current");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let current: RawCurrent =
        serde_json::from_str(&text).map_err(|source| Error::StoreFile { path, source })?;
    // An empty name is buildx's "the docker context's engine": bake keeps its own solver
    // unless a builder is named.
    Ok(Some(current.name).filter(|name| !name.is_empty()))
}

/// Turns a name or an endpoint into a builder.
pub fn resolve(name: &str, environment: &Environment) -> Result<Builder> {
    if let Some(builder) = endpoint(name, environment)? {
        return Ok(builder);
    }
    if let Some((_, builder)) = instances(environment)?
        .into_iter()
        .find(|(instance, _)| instance == name)
    {
        return builder;
    }
    if name == DEFAULT_BUILDER {
        return docker(DEFAULT_BUILDER, DEFAULT_BUILDER, environment);
    }
    Err(Error::UnknownBuilder {
        name: name.to_owned(),
        known: known_names(environment),
    })
}

/// The names `--builder` accepts besides endpoints, for error messages.
fn known_names(environment: &Environment) -> String {
    let mut names: Vec<String> = instances(environment)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    names.push(format!("`{DEFAULT_BUILDER}` (the Docker engine)"));
    names.join(", ")
}

/// A builder for an endpoint given directly: `docker://[HOST]`, `unix:///...docker.sock`
/// (an engine), other `unix://` and `tcp://` addresses (a buildkitd).
fn endpoint(text: &str, environment: &Environment) -> Result<Option<Builder>> {
    if let Some(rest) = text.strip_prefix("docker://") {
        let host = if rest.is_empty() {
            environment
                .docker_host
                .clone()
                .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned())
        } else {
            rest.to_owned()
        };
        return Ok(Some(docker_at(text, &host)?));
    }
    let Some(address) = Address::parse(text) else {
        if text.contains("://") {
            return Err(Error::Endpoint {
                endpoint: text.to_owned(),
            });
        }
        return Ok(None);
    };
    // An engine's API socket is named docker.sock; a buildkitd's is buildkitd.sock.
    let is_engine = matches!(&address, Address::Unix(path) if path.file_name().is_some_and(|n| n == "docker.sock"));
    if is_engine {
        return Ok(Some(docker_at(text, text)?));
    }
    Ok(Some(Builder {
        name: text.to_owned(),
        driver: Driver::Remote,
        nodes: vec![Node {
            name: text.to_owned(),
            address,
            platforms: Vec::new(),
            tls: None,
        }],
    }))
}

fn docker_at(name: &str, host: &str) -> Result<Builder> {
    let address = Address::parse(host).ok_or_else(|| Error::Endpoint {
        endpoint: host.to_owned(),
    })?;
    Ok(Builder {
        name: name.to_owned(),
        driver: Driver::Docker,
        nodes: vec![Node {
            name: name.to_owned(),
            address,
            platforms: Vec::new(),
            tls: None,
        }],
    })
}

/// The docker builder for a docker context (or a host URL, as buildx accepts both).
fn docker(name: &str, context: &str, environment: &Environment) -> Result<Builder> {
    let host = if Address::parse(context).is_some() {
        context.to_owned()
    } else {
        environment.docker_context_host(context)?
    };
    let mut builder = docker_at(name, &host)?;
    builder.nodes[0].name = name.to_owned();
    Ok(builder)
}

/// Every instance in buildx's store by name, sorted, each with the builder or why bake
/// cannot use it (a driver it does not speak, an endpoint it cannot parse).
///
/// # Errors
/// A file under `instances/` that is not a builder instance.
pub fn instances(environment: &Environment) -> Result<Vec<(String, Result<Builder>)>> {
    let Some(dir) = environment.buildx_dir() else {
        return Ok(Vec::new());
    };
    let Ok(listing) = std::fs::read_dir(dir.join("instances")) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in listing.flatten() {
        let path = entry.path();
        if path.is_file() {
            let raw = read_instance(&path)?;
            out.push((raw.name.clone(), instance(raw, environment)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn read_instance(path: &Path) -> Result<RawInstance> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadStore {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::StoreFile {
        path: path.to_owned(),
        source,
    })
}

fn instance(raw: RawInstance, environment: &Environment) -> Result<Builder> {
    let driver = match raw.driver.as_str() {
        "remote" => Driver::Remote,
        "docker" => Driver::Docker,
        other => {
            return Err(Error::Driver {
                builder: raw.name,
                driver: other.to_owned(),
            });
        }
    };
    let mut nodes = Vec::new();
    for node in raw.nodes.unwrap_or_default() {
        let platforms = node
            .platforms
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let text = match &p.variant {
                    Some(variant) if !variant.is_empty() => {
                        format!("{}/{}/{variant}", p.os, p.architecture)
                    }
                    _ => format!("{}/{}", p.os, p.architecture),
                };
                text.parse().ok()
            })
            .collect();
        let options = node.driver_opts.unwrap_or_default();
        let (address, tls) = match driver {
            Driver::Docker => {
                let docker = docker(&node.name, &node.endpoint, environment)?;
                (docker.nodes[0].address.clone(), None)
            }
            Driver::Remote => {
                let address = Address::parse(&node.endpoint).ok_or_else(|| Error::Endpoint {
                    endpoint: node.endpoint.clone(),
                })?;
                (address, tls(&options))
            }
        };
        nodes.push(Node {
            name: node.name,
            address,
            platforms,
            tls,
        });
    }
    if nodes.is_empty() {
        return Err(Error::NoNodes { builder: raw.name });
    }
    Ok(Builder {
        name: raw.name,
        driver,
        nodes,
    })
}

/// The TLS settings of a remote node's driver options, if it has any.
// Compat: buildx driver/remote factory: `cacert`, `cert`, `key`, `servername`.
fn tls(options: &BTreeMap<String, String>) -> Option<Tls> {
    let path = |key: &str| options.get(key).map(PathBuf::from);
    let tls = Tls {
        ca: path("cacert"),
        cert: path("cert"),
        key: path("key"),
        server_name: options.get("servername").cloned(),
    };
    (tls != Tls::default()).then_some(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(
        instances: &[(&str, &str)],
        current: Option<&str>,
    ) -> (tempfile::TempDir, Environment) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("instances")).unwrap();
        for (name, text) in instances {
            std::fs::write(dir.path().join("instances").join(name), text).unwrap();
        }
        if let Some(current) = current {
            std::fs::write(dir.path().join("current"), current).unwrap();
        }
        let environment = Environment {
            buildx_config: Some(dir.path().to_owned()),
            ..Environment::default()
        };
        (dir, environment)
    }

    const REMOTE: &str = r#"{"Name":"farm","Driver":"remote","Nodes":[
        {"Name":"farm0","Endpoint":"tcp://10.0.0.1:1234","Platforms":[{"architecture":"amd64","os":"linux"}],
         "DriverOpts":{"cacert":"/c/ca.pem","cert":"/c/cert.pem","key":"/c/key.pem","servername":"bk"}},
        {"Name":"farm1","Endpoint":"unix:///run/buildkit/buildkitd.sock","Platforms":[{"architecture":"arm64","os":"linux"}]}
    ],"Dynamic":false}"#;

    #[test]
    fn nothing_named_means_the_embedded_solver() {
        let (_dir, environment) = store(&[("farm", REMOTE)], None);
        assert_eq!(select(None, &environment).unwrap(), Selection::Embedded);
    }

    #[test]
    fn flag_wins_over_environment_and_current() {
        let (_dir, mut environment) = store(&[("farm", REMOTE)], Some(r#"{"Name":"x"}"#));
        environment.buildx_builder = Some("nope".into());
        let Selection::Remote(builder, origin) = select(Some("farm"), &environment).unwrap() else {
            panic!("remote expected")
        };
        assert_eq!((builder.name.as_str(), origin), ("farm", Origin::Flag));
        assert_eq!(builder.nodes.len(), 2);
        assert_eq!(
            builder.nodes[0].tls,
            Some(Tls {
                ca: Some("/c/ca.pem".into()),
                cert: Some("/c/cert.pem".into()),
                key: Some("/c/key.pem".into()),
                server_name: Some("bk".into()),
            })
        );
        assert_eq!(builder.nodes[1].platforms[0].to_string(), "linux/arm64");
        assert_eq!(
            builder.nodes[1].address,
            Address::Unix("/run/buildkit/buildkitd.sock".into())
        );
    }

    #[test]
    fn current_file_selects_its_instance_and_an_empty_name_does_not() {
        let (_dir, environment) = store(
            &[("farm", REMOTE)],
            Some(r#"{"Key":"unix:///var/run/docker.sock","Name":"farm","Global":false}"#),
        );
        assert!(matches!(
            select(None, &environment).unwrap(),
            Selection::Remote(_, Origin::Current)
        ));
        let (_dir, environment) = store(&[("farm", REMOTE)], Some(r#"{"Name":""}"#));
        assert_eq!(select(None, &environment).unwrap(), Selection::Embedded);
    }

    #[test]
    fn unknown_builder_lists_the_known_ones() {
        let (_dir, environment) = store(&[("farm", REMOTE)], None);
        let error = select(Some("nope"), &environment).unwrap_err().to_string();
        assert!(error.contains("`nope`"), "{error}");
        let Error::UnknownBuilder { known, .. } = select(Some("nope"), &environment).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(known, "`farm`, `default` (the Docker engine)");
    }

    #[test]
    fn endpoints_pick_their_driver() {
        let environment = Environment {
            docker_host: Some("unix:///tmp/d.sock".into()),
            ..Environment::default()
        };
        let docker = resolve("docker://", &environment).unwrap();
        assert_eq!(docker.driver, Driver::Docker);
        assert_eq!(docker.nodes[0].address, Address::Unix("/tmp/d.sock".into()));
        let engine = resolve("unix:///var/run/docker.sock", &environment).unwrap();
        assert_eq!(engine.driver, Driver::Docker);
        let buildkitd = resolve("unix:///run/buildkit/buildkitd.sock", &environment).unwrap();
        assert_eq!(buildkitd.driver, Driver::Remote);
        let tcp = resolve("tcp://127.0.0.1:1234", &environment).unwrap();
        assert_eq!(tcp.nodes[0].address, Address::Tcp("127.0.0.1:1234".into()));
        assert!(matches!(
            resolve("ssh://host", &environment),
            Err(Error::Endpoint { .. })
        ));
        let default = resolve("default", &environment).unwrap();
        assert_eq!(
            default.nodes[0].address,
            Address::Unix("/tmp/d.sock".into())
        );
    }

    #[test]
    fn docker_instances_resolve_their_context() {
        let docker =
            r#"{"Name":"eng","Driver":"docker","Nodes":[{"Name":"eng","Endpoint":"default"}]}"#;
        let (_dir, environment) = store(&[("eng", docker)], None);
        let builder = resolve("eng", &environment).unwrap();
        assert_eq!(
            builder.nodes[0].address,
            Address::Unix("/var/run/docker.sock".into())
        );
        let container = r#"{"Name":"bc","Driver":"docker-container","Nodes":[{"Name":"bc0","Endpoint":"default"}]}"#;
        let (_dir, environment) = store(&[("bc", container)], None);
        assert!(matches!(
            resolve("bc", &environment),
            Err(Error::Driver { .. })
        ));
    }
}
