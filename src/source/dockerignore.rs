//! `.dockerignore` files and the pattern matcher behind them. Part of `source`.
//!
//! The semantics are moby's `patternmatcher`, not gitignore's: patterns are anchored at the
//! context root, `*` and `?` never cross `/`, `**` does, a pattern that matches a parent
//! directory excludes everything below it, and later `!` patterns re-include. Inside brackets
//! only `^` negates (`!` is a literal member), and there is no brace alternation. `globset` and
//! `ignore` get five of these wrong (`../shared/research/crates.md` §5), so we translate each
//! pattern to a regex the way moby does.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::error::{Error, Result};

/// Returns the ignore file that applies to a build: `<Dockerfile>.dockerignore` next to the
/// Dockerfile when it exists, otherwise `.dockerignore` at the context root, otherwise `None`.
// Compat: buildkit frontend/dockerui (Client.ReadEntrypoint / dockerignore lookup): the
// Dockerfile-specific `<name>.dockerignore`, next to the Dockerfile, wins over the context's.
pub fn ignore_file_for(context: &Path, dockerfile: Option<&Path>) -> Option<PathBuf> {
    if let Some(dockerfile) = dockerfile {
        let dockerfile = if dockerfile.is_absolute() {
            dockerfile.to_owned()
        } else {
            context.join(dockerfile)
        };
        if let Some(name) = dockerfile.file_name() {
            let mut specific = name.to_os_string();
            specific.push(".dockerignore");
            let specific = dockerfile.with_file_name(specific);
            if specific.is_file() {
                return Some(specific);
            }
        }
    }
    let default = context.join(".dockerignore");
    default.is_file().then_some(default)
}

/// Reads and parses the ignore file chosen by [`ignore_file_for`]; no file means no patterns.
pub fn load(context: &Path, dockerfile: Option<&Path>) -> Result<Vec<String>> {
    let Some(path) = ignore_file_for(context, dockerfile) else {
        return Ok(Vec::new());
    };
    let text = std::fs::read(&path).map_err(|source| Error::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

/// Parses `.dockerignore` text into cleaned patterns (`!` kept as a prefix).
///
/// Lines starting with `#` are comments; blank lines are skipped; each pattern is trimmed,
/// cleaned like Go's `filepath.Clean` and loses a leading `/` (so `/foo` and `./foo` both mean
/// `foo`).
// Compat: moby patternmatcher/ignorefile ReadAll.
pub fn parse(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    for line in text.lines() {
        // The comment check happens before trimming, as in moby: ` # x` is a pattern.
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = if pattern.is_empty() {
            String::new()
        } else {
            clean(pattern)
        };
        if cleaned.len() > 1 && cleaned.starts_with('/') {
            cleaned.remove(0);
        }
        patterns.push(if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        });
    }
    patterns
}

/// Cleans a slash-separated path lexically, as Go's `path/filepath.Clean` does on Unix.
pub use crate::path::clean;

/// How one pattern is matched; the non-regex kinds are moby's fast paths and are kept because
/// they change results at the edges (`**foo` is a plain suffix test there).
#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// Compiles one cleaned pattern; a leading `!` makes it an exclusion (a re-include).
    // Compat: moby patternmatcher NewPatternMatcher + Pattern.compile.
    pub fn new(pattern: &str) -> Result<Self> {
        let trimmed = pattern.trim();
        let bad = |reason: &'static str| Error::BadPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let cleaned = clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(bad("`!` alone excludes nothing")),
            Some(rest) => (true, rest.to_owned()),
            None => (false, cleaned),
        };
        check_syntax(&text).map_err(bad)?;
        let kind = compile(&text).map_err(|_| bad("not a valid pattern"))?;
        Ok(Self {
            text,
            exclusion,
            kind,
        })
    }

    /// Returns the pattern without its `!`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Returns true for a `!` pattern.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Returns true when the pattern matches `path` itself (a slash-separated relative path).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| rest == path)
            }
            Kind::Regex(regex) => regex.is_match(path),
        }
    }

    /// Returns true when the pattern matches `path` or one of its parent directories.
    pub fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches(path) {
            return true;
        }
        let mut end = 0;
        while let Some(offset) = path[end..].find('/') {
            end += offset;
            if self.matches(&path[..end]) {
                return true;
            }
            end += 1;
        }
        false
    }
}

/// An ordered list of patterns: the last one that matches a path (or a parent) decides.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles patterns as [`parse`] returns them.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let patterns = patterns
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| !p.trim().is_empty())
            .map(Pattern::new)
            .collect::<Result<_>>()?;
        Ok(Self { patterns })
    }

    /// Returns true when there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Returns true when some pattern is a `!` re-include, which forces walks into excluded
    /// directories (something below may come back).
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(Pattern::is_exclusion)
    }

    /// Returns true when `path` (slash-separated, relative to the context) is excluded.
    // Compat: moby patternmatcher MatchesOrParentMatches: a pattern is only evaluated when it
    // could change the current answer.
    pub fn excludes(&self, path: &str) -> bool {
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.matches_or_parent(path) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// Rejects what Go's `filepath.Match` calls `ErrBadPattern`: unclosed or empty brackets, bad
/// ranges and a trailing backslash.
fn check_syntax(pattern: &str) -> std::result::Result<(), &'static str> {
    let mut chars = pattern.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            // The guard consumes the escaped character, so it is never read as syntax.
            '\\' if chars.next().is_none() => return Err("ends with an unescaped `\\`"),
            '[' => {
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut members = 0;
                loop {
                    let Some(member) = chars.next() else {
                        return Err("has an unclosed `[`");
                    };
                    if member == ']' && members > 0 {
                        break;
                    }
                    let low = match member {
                        ']' => return Err("has an empty `[]`"),
                        '\\' => chars.next().ok_or("has an unclosed `[`")?,
                        other => other,
                    };
                    members += 1;
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        let high = match chars.next() {
                            Some('\\') => chars.next().ok_or("has an unclosed `[`")?,
                            Some(']') | None => return Err("has a range without an end"),
                            Some(other) => other,
                        };
                        if high < low {
                            return Err("has a range whose end is before its start");
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Translates a pattern to a matcher kind.
// Compat: moby patternmatcher Pattern.compile (Unix separator).
fn compile(pattern: &str) -> std::result::Result<Kind, regex::Error> {
    #[derive(PartialEq)]
    enum Mode {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut regex = String::from("^");
    let mut mode = Mode::Exact;
    let mut chars = pattern.chars().peekable();
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is treated as `**`: the slash is part of what `**` may swallow.
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if mode == Mode::Exact {
                        mode = Mode::Prefix;
                    } else {
                        regex.push_str(".*");
                        mode = Mode::Regex;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    mode = Mode::Regex;
                }
                if first {
                    mode = Mode::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                mode = Mode::Regex;
            }
            '?' => {
                regex.push_str("[^/]");
                mode = Mode::Regex;
            }
            // Regex metacharacters with no meaning in filepath.Match. `&` and `~` are ours:
            // the Rust regex crate gives `&&`/`~~` meaning inside classes, RE2 does not.
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' | '&' | '~' => {
                regex.push('\\');
                regex.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    // Diverges: moby copies `\x` into the regex verbatim, so `\n` would mean a
                    // newline; we always mean the literal character, as filepath.Match does.
                    regex.push_str(&regex::escape(&next.to_string()));
                    mode = Mode::Regex;
                }
                None => regex.push_str("\\\\"),
            },
            '[' | ']' => {
                regex.push(ch);
                mode = Mode::Regex;
            }
            other => regex.push(other),
        }
        first = false;
    }
    Ok(match mode {
        Mode::Exact => Kind::Exact,
        Mode::Prefix => Kind::Prefix,
        Mode::Suffix => Kind::Suffix,
        Mode::Regex => {
            regex.push('$');
            Kind::Regex(Regex::new(&regex)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go_filepath_clean() {
        for (input, expected) in [
            ("", "."),
            ("./foo", "foo"),
            ("/foo/./bar/", "/foo/bar"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("a//b/", "a/b"),
            ("..", ".."),
        ] {
            assert_eq!(clean(input), expected, "clean({input:?})");
        }
    }

    #[test]
    fn parse_skips_comments_and_blank_lines_and_strips_roots() {
        let text = "\u{feff}# comment\n\n  /foo/./bar/ \n!./baz\n ! qux\n#x\n*.log\n";
        assert_eq!(parse(text), ["foo/bar", "!baz", "!qux", "*.log"]);
    }

    #[test]
    fn lone_bang_and_unclosed_bracket_are_errors() {
        assert!(Pattern::new("!").is_err());
        let error = Pattern::new("a[b").expect_err("unclosed");
        assert!(error.to_string().contains("`a[b`"), "{error}");
        assert!(Pattern::new("[]a]").is_err());
        assert!(Pattern::new("[z-a]").is_err());
        assert!(Pattern::new("a\\").is_err());
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), "a\n").expect("write");
        let dockerfile = Path::new("build/app.Dockerfile");
        assert_eq!(
            ignore_file_for(dir.path(), Some(dockerfile)),
            Some(dir.path().join(".dockerignore"))
        );
        std::fs::create_dir(dir.path().join("build")).expect("mkdir");
        std::fs::write(dir.path().join("build/app.Dockerfile.dockerignore"), "b\n").expect("w");
        assert_eq!(
            ignore_file_for(dir.path(), Some(dockerfile)),
            Some(dir.path().join("build/app.Dockerfile.dockerignore"))
        );
        assert_eq!(load(dir.path(), Some(dockerfile)).expect("load"), ["b"]);
        assert_eq!(load(dir.path(), None).expect("load"), ["a"]);
    }
}
