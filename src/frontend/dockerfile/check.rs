//! Build checks (lint rules): the rule table with BuildKit's exact names, descriptions and
//! URLs, the `# check=` configuration, and the [`CheckReport`] that `--call=check` prints.
//! The rules fire from the parser, [`super::instructions`] and [`super::convert`], in the same
//! order BuildKit reports them.
//!
//! Compat: buildkit frontend/dockerfile/linter (ruleset.go, linter.go ParseLintOptions).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// One lint rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Rule name, e.g. `StageNameCasing`.
    pub name: &'static str,
    /// One-sentence description.
    pub description: &'static str,
    /// Documentation URL (may be empty).
    pub url: &'static str,
    /// Off unless enabled with `experimental=`.
    pub experimental: bool,
}

macro_rules! rules {
    ($($ident:ident = $name:literal, $description:literal, $slug:literal, $experimental:literal;)*) => {
        $(
            #[doc = concat!("The `", $name, "` rule.")]
            pub const $ident: Rule = Rule {
                name: $name,
                description: $description,
                url: if $slug.is_empty() { "" } else { concat!("https://docs.docker.com/go/dockerfile/rule/", $slug, "/") },
                experimental: $experimental,
            };
        )*
        /// Every rule, in BuildKit's table order.
        pub const ALL_RULES: &[Rule] = &[$($ident),*];
    };
}

rules! {
    STAGE_NAME_CASING = "StageNameCasing", "Stage names should be lowercase", "stage-name-casing", false;
    FROM_AS_CASING = "FromAsCasing", "The 'as' keyword should match the case of the 'from' keyword", "from-as-casing", false;
    NO_EMPTY_CONTINUATION = "NoEmptyContinuation", "Empty continuation lines will become errors in a future release", "no-empty-continuation", false;
    CONSISTENT_INSTRUCTION_CASING = "ConsistentInstructionCasing", "All commands within the Dockerfile should use the same casing (either upper or lower)", "consistent-instruction-casing", false;
    DUPLICATE_STAGE_NAME = "DuplicateStageName", "Stage names should be unique", "duplicate-stage-name", false;
    RESERVED_STAGE_NAME = "ReservedStageName", "Reserved words should not be used as stage names", "reserved-stage-name", false;
    JSON_ARGS_RECOMMENDED = "JSONArgsRecommended", "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals", "json-args-recommended", false;
    MAINTAINER_DEPRECATED = "MaintainerDeprecated", "The MAINTAINER instruction is deprecated, use a label instead to define an image author", "maintainer-deprecated", false;
    UNDEFINED_ARG_IN_FROM = "UndefinedArgInFrom", "FROM command must use declared ARGs", "undefined-arg-in-from", false;
    WORKDIR_RELATIVE_PATH = "WorkdirRelativePath", "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes", "workdir-relative-path", false;
    UNDEFINED_VAR = "UndefinedVar", "Variables should be defined before their use", "undefined-var", false;
    MULTIPLE_INSTRUCTIONS_DISALLOWED = "MultipleInstructionsDisallowed", "Multiple instructions of the same type should not be used in the same stage", "multiple-instructions-disallowed", false;
    LEGACY_KEY_VALUE_FORMAT = "LegacyKeyValueFormat", "Legacy key/value format with whitespace separator should not be used", "legacy-key-value-format", false;
    INVALID_BASE_IMAGE_PLATFORM = "InvalidBaseImagePlatform", "Base image platform does not match expected target platform", "", false;
    REDUNDANT_TARGET_PLATFORM = "RedundantTargetPlatform", "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior", "redundant-target-platform", false;
    SECRETS_USED_IN_ARG_OR_ENV = "SecretsUsedInArgOrEnv", "Sensitive data should not be used in the ARG or ENV commands", "secrets-used-in-arg-or-env", false;
    INVALID_DEFAULT_ARG_IN_FROM = "InvalidDefaultArgInFrom", "Default value for global ARG results in an empty or invalid base image name", "invalid-default-arg-in-from", false;
    FROM_PLATFORM_FLAG_CONST_DISALLOWED = "FromPlatformFlagConstDisallowed", "FROM --platform flag should not use a constant value", "from-platform-flag-const-disallowed", false;
    COPY_IGNORED_FILE = "CopyIgnoredFile", "Attempting to Copy file that is excluded by .dockerignore", "copy-ignored-file", true;
    INVALID_DEFINITION_DESCRIPTION = "InvalidDefinitionDescription", "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.", "invalid-definition-description", true;
    EXPOSE_PROTO_CASING = "ExposeProtoCasing", "Protocol in EXPOSE instruction should be lowercase", "expose-proto-casing", false;
    EXPOSE_INVALID_FORMAT = "ExposeInvalidFormat", "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release", "expose-invalid-format", false;
}

/// The `# check=` / `BUILDKIT_DOCKERFILE_CHECK` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// `skip=all`.
    pub skip_all: bool,
    /// `skip=A,B`.
    pub skip: BTreeSet<String>,
    /// `experimental=all`.
    pub experimental_all: bool,
    /// `experimental=A,B`.
    pub experimental: BTreeSet<String>,
    /// `error=true`: any warning fails the check.
    pub error: bool,
}

impl CheckConfig {
    /// Parses `skip=A,B;error=true;experimental=all`.
    ///
    /// # Errors
    /// Returns a message for an unknown key or a non-boolean `error` value.
    // Compat: buildkit linter.ParseLintOptions.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config = Self::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid check option `{part}`"))?;
            let list = || -> BTreeSet<String> {
                value
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect()
            };
            match key.trim().to_lowercase().as_str() {
                "skip" if value.trim() == "all" => config.skip_all = true,
                "skip" => config.skip.extend(list()),
                "experimental" if value.trim() == "all" => config.experimental_all = true,
                "experimental" => config.experimental.extend(list()),
                "error" => {
                    config.error = match value.trim().to_lowercase().as_str() {
                        "true" | "1" | "t" => true,
                        "false" | "0" | "f" => false,
                        other => return Err(format!("invalid boolean `{other}` for `error`")),
                    }
                }
                other => return Err(format!("unknown check option `{other}`")),
            }
        }
        Ok(config)
    }

    fn enabled(&self, rule: &Rule) -> bool {
        if rule.experimental {
            self.experimental_all || self.experimental.contains(rule.name)
        } else {
            !self.skip_all && !self.skip.contains(rule.name)
        }
    }
}

/// The result of `--call=check`, shaped like BuildKit's lint result JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Findings in the order BuildKit reports them.
    pub warnings: Vec<Warning>,
    /// A build error found while checking (the check still reports its warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BuildError>,
    /// `# check=error=true`: warnings make the check fail.
    #[serde(skip)]
    pub fail_on_warnings: bool,
}

impl CheckReport {
    /// Returns true when the check should exit non-zero.
    pub fn failed(&self) -> bool {
        self.error.is_some() || (self.fail_on_warnings && !self.warnings.is_empty())
    }
}

/// An error reported inside a [`CheckReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildError {
    /// The message.
    pub message: String,
    /// Where, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// Rule name.
    pub rule_name: String,
    /// Rule description.
    pub description: String,
    /// Rule documentation URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// This finding's message.
    pub detail: String,
    /// Where.
    pub location: Location,
}

/// Line ranges in the Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Ranges, usually one.
    pub ranges: Vec<LineRange>,
}

/// A range of lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRange {
    /// First line.
    pub start: LinePosition,
    /// Last line.
    pub end: LinePosition,
}

/// A line number (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePosition {
    /// The line.
    pub line: usize,
}

impl Location {
    /// Returns the location covering lines `start..=end`.
    pub fn lines(start: usize, end: usize) -> Self {
        Self {
            ranges: vec![LineRange {
                start: LinePosition { line: start },
                end: LinePosition { line: end },
            }],
        }
    }
}

/// Collects findings while a Dockerfile is parsed and converted.
#[derive(Debug, Clone, Default)]
pub struct Linter {
    config: CheckConfig,
    enabled: bool,
    warnings: Vec<Warning>,
}

impl Linter {
    /// Returns a linter that records nothing (plain builds).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Returns a linter with the given configuration.
    pub fn new(config: CheckConfig) -> Self {
        Self {
            config,
            enabled: true,
            warnings: Vec::new(),
        }
    }

    /// Records a finding of `rule` on lines `start..=end`, unless the rule is off.
    pub fn run(&mut self, rule: &Rule, lines: (usize, usize), detail: String) {
        if !self.enabled || !self.config.enabled(rule) {
            return;
        }
        self.warnings.push(Warning {
            rule_name: rule.name.to_owned(),
            description: rule.description.to_owned(),
            url: rule.url.to_owned(),
            detail,
            location: Location::lines(lines.0, lines.1),
        });
    }

    /// Returns the report of everything recorded.
    pub fn into_report(self) -> CheckReport {
        CheckReport {
            warnings: self.warnings,
            error: None,
            fail_on_warnings: self.config.error,
        }
    }
}

/// Returns true for ARG/ENV names that look like secrets.
// Compat: buildkit dockerfile2llb isSecretKey (token list and `public` allow-list).
pub(crate) fn is_secret_key(key: &str) -> bool {
    const SECRET: &[&str] = &[
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    if key.is_ascii() {
        // ASCII keys need no lowercased copy (every ENV and ARG is checked).
        let has = |words: &[&str]| {
            key.split('_')
                .any(|t| words.iter().any(|w| t.eq_ignore_ascii_case(w)))
        };
        return has(SECRET) && !has(&["public"]);
    }
    let lower = key.to_lowercase();
    let tokens: Vec<&str> = lower.split('_').collect();
    tokens.iter().any(|t| SECRET.contains(t)) && !tokens.contains(&"public")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive_parses_skip_error_and_experimental() {
        let config = CheckConfig::parse("skip=JSONArgsRecommended,MaintainerDeprecated;error=true")
            .expect("valid");
        assert!(config.error);
        assert!(!config.enabled(&JSON_ARGS_RECOMMENDED));
        assert!(config.enabled(&STAGE_NAME_CASING));
        assert!(!config.enabled(&COPY_IGNORED_FILE));
        assert!(CheckConfig::parse("bogus=1").is_err());
    }

    #[test]
    fn secret_keys_match_whole_tokens() {
        assert!(is_secret_key("AWS_SECRET_ACCESS_KEY"));
        assert!(is_secret_key("github_token"));
        assert!(!is_secret_key("PUBLIC_KEY"));
        assert!(!is_secret_key("KEYBOARD"));
    }
}
