//! The error every spec parser returns, shared by the CSV splitter and the spec types.

/// Why a spec string or object could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The CSV text itself is malformed (an unterminated or stray quote).
    #[error("invalid CSV in `{input}`: {reason}")]
    Csv {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field is not a `key=value` pair.
    #[error("invalid value `{field}`: expected `key=value`")]
    NotKeyValue {
        /// The offending field.
        field: String,
    },
    /// A required `type=` is missing.
    #[error("`type` is required in `{input}`")]
    MissingType {
        /// The text that was parsed.
        input: String,
    },
    /// A field has a value that is not allowed.
    #[error("invalid value `{value}` for `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The rejected value.
        value: String,
        /// What is allowed instead.
        reason: String,
    },
    /// A key that this kind of spec does not know.
    #[error("unexpected key `{key}` in `{input}`")]
    UnknownKey {
        /// The key.
        key: String,
        /// The text that was parsed.
        input: String,
    },
}

/// Result alias for spec parsing.
pub type Result<T> = std::result::Result<T, Error>;
