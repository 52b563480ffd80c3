//! The errors of the registry client, shared by authentication, transport, pull and push.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::registry::reference::ParseReferenceError;

/// Errors of the registry client. Messages never contain a password or token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference does not parse.
    #[error(transparent)]
    Reference(#[from] ParseReferenceError),
    /// The registry asked for credentials we do not have, or refused the ones we sent.
    #[error("unauthorized: authentication required for `{name}` ({hint})")]
    Unauthorized {
        /// `registry/repository`.
        name: String,
        /// What to check: which credentials were used and where they came from.
        hint: String,
    },
    /// The registry understood the credentials but denied the operation.
    #[error("denied: access to `{name}` was refused by the registry: {message}")]
    Denied {
        /// `registry/repository`.
        name: String,
        /// The registry's own message.
        message: String,
    },
    /// A manifest or blob does not exist.
    #[error("{what} not found: `{reference}`")]
    NotFound {
        /// `manifest` or `blob`.
        what: &'static str,
        /// The reference or `name@digest` asked for.
        reference: String,
    },
    /// The registry answered with a status this operation does not expect.
    #[error("failed to {action} `{name}`: the registry answered {status}{message}")]
    Status {
        /// What was being done (`fetch manifest`, `upload blob`, ...).
        action: &'static str,
        /// `registry/repository` or `name@digest`.
        name: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error text, `: `-prefixed, or empty.
        message: String,
    },
    /// The registry could not be reached, or the connection failed mid-transfer.
    #[error("failed to {action} `{host}`")]
    Connect {
        /// What was being done.
        action: &'static str,
        /// The host (and port) dialled.
        host: String,
        /// The transport error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// A manifest, index or config does not parse.
    #[error("failed to parse {what} of `{reference}`")]
    BadDocument {
        /// `manifest`, `index`, `image config`, `token response`.
        what: &'static str,
        /// The reference it came from.
        reference: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A document has a media type this client cannot use.
    #[error("unsupported media type `{media_type}` for `{reference}`")]
    MediaType {
        /// The media type.
        media_type: String,
        /// The reference.
        reference: String,
    },
    /// A downloaded document does not hash to the digest that named it.
    #[error("`{reference}` does not match its digest: got `{actual}`")]
    DigestMismatch {
        /// The reference (with the expected digest).
        reference: String,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A manifest or index is larger than any sane one.
    #[error("{what} of `{reference}` is larger than {limit} bytes")]
    TooLarge {
        /// `manifest` or `index`.
        what: &'static str,
        /// The reference.
        reference: String,
        /// The limit.
        limit: u64,
    },
    /// No manifest of an index matches the requested platform.
    #[error("no image for platform `{platform}` in `{reference}` (found: {available})")]
    NoPlatform {
        /// The requested platform.
        platform: String,
        /// The reference.
        reference: String,
        /// The platforms the index lists.
        available: String,
    },
    /// A Docker `config.json` is unreadable or malformed.
    #[error("failed to read registry credentials from `{path}`: {reason}")]
    Credentials {
        /// The config file.
        path: PathBuf,
        /// What is wrong (never the secret itself).
        reason: String,
    },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper `{helper}` (configured in `{path}`) failed: {reason}")]
    CredentialHelper {
        /// The helper program.
        helper: String,
        /// The config file that names it.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A CA certificate file from the host options is unreadable or not PEM.
    #[error("failed to load CA certificate `{path}` for registry `{host}`: {reason}")]
    Certificate {
        /// The registry host.
        host: String,
        /// The certificate file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading a blob from, or writing one to, the content store failed.
    #[error("failed to store `{reference}` in the content store")]
    Content {
        /// The blob's `name@digest`.
        reference: String,
        /// The store's error.
        #[source]
        source: Box<crate::content::Error>,
    },
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;
