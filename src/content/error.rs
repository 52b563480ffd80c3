//! The errors of the content store, shared by the blob files and the metadata database.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on the store failed.
    #[error("failed to {action} `{path}`")]
    Io {
        /// What was being done (`create`, `write`, `rename`, ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The written bytes did not hash to the digest the caller expected; nothing was stored.
    #[error("blob digest mismatch: expected `{expected}`, got `{actual}`")]
    DigestMismatch {
        /// The digest the caller announced.
        expected: Digest,
        /// The digest of the bytes actually read.
        actual: Digest,
    },
    /// A blob is not in the store.
    #[error("blob `{0}` not found in the content store")]
    NotFound(Digest),
    /// The metadata database failed.
    #[error("failed to {action} in metadata database `{path}`")]
    Database {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A digest stored in the database could not be parsed back.
    #[error("metadata database holds an invalid digest `{0}`")]
    BadDigest(String),
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;
