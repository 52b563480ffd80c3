//! The errors of the Dockerfile front end: every one points at the offending text.

use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// An error found while parsing or converting a Dockerfile.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Text that is not valid Dockerfile syntax.
    #[error("{message}")]
    #[diagnostic(code(dockerfile::syntax))]
    Syntax {
        /// What is wrong, lowercase.
        message: String,
        /// How to fix it, if known.
        #[help]
        help: Option<String>,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// Where.
        #[label("here")]
        span: SourceSpan,
    },
    /// A keyword that is not one of the 18 instructions.
    #[error("unknown instruction `{name}`")]
    #[diagnostic(code(dockerfile::unknown_instruction))]
    UnknownInstruction {
        /// The keyword as written.
        name: String,
        /// A suggestion such as "did you mean `RUN`?".
        #[help]
        help: Option<String>,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The keyword.
        #[label("not a Dockerfile instruction")]
        span: SourceSpan,
    },
    /// A `--flag` the instruction does not take.
    #[error("unknown flag `--{flag}` for `{instruction}`")]
    #[diagnostic(code(dockerfile::unknown_flag))]
    UnknownFlag {
        /// The instruction, upper case.
        instruction: String,
        /// The flag name without dashes.
        flag: String,
        /// The flags the instruction takes.
        #[help]
        help: Option<String>,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The flag.
        #[label("unknown flag")]
        span: SourceSpan,
    },
    /// A flag or option with a value it does not accept.
    #[error("invalid value for `{flag}`: {message}")]
    #[diagnostic(code(dockerfile::invalid_flag))]
    InvalidFlag {
        /// The flag or option.
        flag: String,
        /// Why the value is wrong.
        message: String,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The flag.
        #[label("invalid value")]
        span: SourceSpan,
    },
    /// A heredoc whose terminator never appears.
    #[error("unterminated heredoc `{name}`")]
    #[diagnostic(
        code(dockerfile::unterminated_heredoc),
        help("end the heredoc with a line holding only `{name}`")
    )]
    UnterminatedHeredoc {
        /// The delimiter word.
        name: String,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The instruction that opened it.
        #[label("heredoc starts here")]
        span: SourceSpan,
    },
    /// A `# syntax=` directive naming an external front end.
    #[error("unsupported front end `{image}`")]
    #[diagnostic(
        code(dockerfile::unsupported_syntax),
        help(
            "only the built-in front end (`docker/dockerfile:1`) is supported; remove the directive or set `BUILDKIT_SYNTAX=dockerfile.v0`"
        )
    )]
    UnsupportedSyntax {
        /// The frontend image.
        image: String,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The directive, when it came from one (not from `BUILDKIT_SYNTAX`).
        #[label("external front ends are not supported")]
        span: Option<SourceSpan>,
    },
    /// A stage, target or variable problem found while converting.
    #[error("{message}")]
    #[diagnostic(code(dockerfile::convert))]
    Convert {
        /// What is wrong, lowercase.
        message: String,
        /// How to fix it, if known.
        #[help]
        help: Option<String>,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// Where, when a location is known.
        #[label("here")]
        span: Option<SourceSpan>,
    },
    /// A `--target` that names no stage.
    #[error("target stage `{target}` could not be found")]
    #[diagnostic(code(dockerfile::unknown_target))]
    UnknownTarget {
        /// The requested target.
        target: String,
        /// Nearby stage names.
        #[help]
        help: Option<String>,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
    },
    /// Stages that depend on each other in a loop.
    #[error("circular dependency detected on stage `{stage}`")]
    #[diagnostic(code(dockerfile::stage_cycle))]
    Cycle {
        /// A stage on the cycle.
        stage: String,
        /// The Dockerfile.
        #[source_code]
        src: NamedSource<Arc<str>>,
        /// The instruction closing the loop.
        #[label("this refers back to a stage that depends on it")]
        span: SourceSpan,
    },
}

/// Returns the closest candidate within fewer than three edits (and fewer edits than `value`
/// has chars).
// Compat: buildkit util/suggest Search (Levenshtein distance, case-insensitive option).
pub(crate) fn suggest<'a>(
    value: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<String> {
    let limit = value.chars().count().min(3).checked_sub(1)?;
    crate::diag::suggest(value, candidates, !case_sensitive, |_| limit).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("RUM", ["RUN", "COPY"], false), Some("RUN".into()));
        assert_eq!(suggest("NOT_DEFINED", ["DEFINED", "PATH"], true), None);
    }
}
