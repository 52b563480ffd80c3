//! Why a remote build failed. Part of `remote`.

use std::path::PathBuf;

/// Everything that can go wrong choosing, reaching or using a BuildKit daemon.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// `--builder` (or `BUILDX_BUILDER`, or buildx's `current`) names no builder.
    #[error("no builder `{name}` found; the builders are: {known}")]
    #[diagnostic(
        code(remote::unknown_builder),
        help(
            "name one of them, an endpoint (`unix:///run/buildkit/buildkitd.sock`, `tcp://host:1234`, `docker://`), or leave `--builder` out to build in-process"
        )
    )]
    UnknownBuilder {
        /// The name as given.
        name: String,
        /// The known names, formatted.
        known: String,
    },
    /// A docker builder names a docker context that does not exist.
    #[error("docker context `{context}` not found")]
    #[diagnostic(code(remote::docker_context))]
    UnknownDockerContext {
        /// The context name.
        context: String,
    },
    /// An endpoint is not `unix://`, `tcp://` or `docker://`.
    #[error("unsupported builder endpoint `{endpoint}`")]
    #[diagnostic(
        code(remote::endpoint),
        help("use `unix:///path`, `tcp://host:port` or `docker://`")
    )]
    Endpoint {
        /// The endpoint as written.
        endpoint: String,
    },
    /// A store instance uses a driver bake does not speak.
    #[error("builder `{builder}` uses the `{driver}` driver, which bake cannot use")]
    #[diagnostic(
        code(remote::driver),
        help(
            "bake reaches `remote` (buildkitd) and `docker` (the engine's BuildKit) builders; point a `remote` builder at the daemon's address instead"
        )
    )]
    Driver {
        /// The builder.
        builder: String,
        /// Its driver.
        driver: String,
    },
    /// A store instance has no nodes.
    #[error("builder `{builder}` has no nodes")]
    #[diagnostic(code(remote::driver))]
    NoNodes {
        /// The builder.
        builder: String,
    },
    /// A store file cannot be read.
    #[error("failed to read `{}`", path.display())]
    #[diagnostic(code(remote::store))]
    ReadStore {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A store file does not parse.
    #[error("`{}` is not a buildx store file", path.display())]
    #[diagnostic(code(remote::store))]
    StoreFile {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The daemon cannot be reached.
    #[error("cannot reach builder `{builder}` at `{address}`")]
    #[diagnostic(code(remote::connect))]
    Connect {
        /// The builder.
        builder: String,
        /// The node's address.
        address: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A TLS file cannot be used.
    #[error("builder `{builder}`: invalid TLS setting `{what}`")]
    #[diagnostic(
        code(remote::tls),
        help("check the node's `cacert`, `cert`, `key` and `servername` driver options")
    )]
    Tls {
        /// The builder.
        builder: String,
        /// Which setting.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A control-API call failed.
    #[error("builder `{builder}`: {call} failed: {message}")]
    #[diagnostic(code(remote::call))]
    Call {
        /// The builder.
        builder: String,
        /// The RPC.
        call: &'static str,
        /// The daemon's message.
        message: String,
    },
    /// The build failed on the daemon.
    #[error("target `{target}`: {message}")]
    #[diagnostic(code(remote::solve))]
    Solve {
        /// The target.
        target: String,
        /// The daemon's error.
        message: String,
    },
    /// The request uses something a remote build does not carry.
    #[error("target `{target}`: {what} is not supported with builder `{builder}`")]
    #[diagnostic(
        code(remote::unsupported),
        help("build this target with the embedded solver (leave `--builder` out)")
    )]
    Unsupported {
        /// The target.
        target: String,
        /// The builder.
        builder: String,
        /// What is missing.
        what: String,
    },
    /// The target asks for attestations the builder cannot attach.
    #[error("target `{target}` on builder `{builder}`: {reason}")]
    #[diagnostic(
        code(remote::attest),
        help(
            "drop the target's `attest` entries, or switch them off with `type=provenance,disabled=true` / `type=sbom,disabled=true`"
        )
    )]
    Attest {
        /// The target.
        target: String,
        /// The builder.
        builder: String,
        /// Why the builder cannot attach them.
        reason: String,
    },
    /// A secret or SSH agent the target names cannot be provided.
    #[error("target `{target}`: {message}")]
    #[diagnostic(code(remote::session))]
    Session {
        /// The target.
        target: String,
        /// What is missing and where it was looked for.
        message: String,
    },
    /// The Docker config that holds registry credentials cannot be used.
    #[error("cannot use the registry credentials: {0}")]
    #[diagnostic(
        code(remote::credentials),
        help("fix or move the Docker config (`DOCKER_CONFIG`, `~/.docker/config.json`)")
    )]
    Credentials(crate::registry::Error),
    /// Writing an export failed.
    #[error("target `{target}`: failed to write `{}`", path.display())]
    #[diagnostic(code(remote::export))]
    Export {
        /// The target.
        target: String,
        /// The destination.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The build was cancelled.
    #[error("build cancelled")]
    #[diagnostic(code(remote::cancelled))]
    Cancelled,
    /// The async runtime could not start.
    #[error("failed to start the async runtime")]
    #[diagnostic(code(remote::runtime))]
    Runtime(#[source] std::io::Error),
}

/// Result alias for the remote back end.
pub type Result<T> = std::result::Result<T, Error>;

/// A failed call's message with the transport errors under it (a TLS alert, a reset), which
/// tonic keeps as sources behind a bare "transport error".
pub(crate) fn status_text(status: &tonic::Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
