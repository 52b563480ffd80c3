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
    /// A size (`shm-size`, `resources.memory`) that is not a byte count with a unit.
    #[error("`{value}` is not a size: expected bytes with an optional unit such as `96m` or `2g`")]
    BadSize {
        /// The rejected text.
        value: String,
    },
    /// A `ulimits` entry that is not `name=soft[:hard]` with a known name.
    #[error("ulimit `{value}`: {reason}")]
    BadUlimit {
        /// The rejected entry.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A cpuset (`resources.cpuset-cpus`, `resources.cpuset-mems`) that is not a list of
    /// numbers and ranges.
    #[error("`{value}` is not a cpuset: expected numbers and ranges such as `0-3,6`")]
    BadCpuset {
        /// The rejected text.
        value: String,
    },
}

/// Result alias for spec parsing.
pub type Result<T> = std::result::Result<T, Error>;
