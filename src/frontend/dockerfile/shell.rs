//! Shell-word expansion as the Dockerfile builder does it (not a shell): quotes, escapes,
//! `$VAR`, `${VAR}` and the `${VAR<modifier>word}` forms, plus word splitting.
//!
//! Compat: buildkit frontend/dockerfile/shell/lex.go (behaviour mirrored, code our own).

use std::collections::{BTreeMap, BTreeSet};

/// An error in a word: unbalanced quotes, a bad `${}` or a `${VAR?message}` that fired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    /// What went wrong, lowercase.
    pub message: String,
}

fn fail<T>(message: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError {
        message: message.into(),
    })
}

/// Variables visible to an expansion.
pub trait Vars {
    /// Returns the value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Vars for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Vars::get(self.as_slice(), name)
    }
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded text, quotes removed.
    pub result: String,
    /// The text split into words on unquoted blanks (blanks from variables split too); empty
    /// from [`expand_text`].
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but not set.
    pub unmatched: BTreeSet<String>,
}

/// Expands `word` with `vars`, using `escape` as the escape character.
///
/// # Errors
/// Returns an error for unbalanced quotes, malformed `${…}` and `${VAR?message}`.
pub fn expand(
    word: &str,
    vars: &(impl Vars + ?Sized),
    escape: char,
) -> Result<Expansion, ShellError> {
    expand_with(word, vars, escape, true)
}

/// [`expand`] without the word splitting: [`Expansion::words`] is left empty. For callers
/// that only want the text (most instructions), as splitting allocates every word.
///
/// # Errors
/// As [`expand`].
pub fn expand_text(
    word: &str,
    vars: &(impl Vars + ?Sized),
    escape: char,
) -> Result<Expansion, ShellError> {
    expand_with(word, vars, escape, false)
}

fn expand_with(
    word: &str,
    vars: &(impl Vars + ?Sized),
    escape: char,
    split: bool,
) -> Result<Expansion, ShellError> {
    // Most words have nothing to expand: no variable, quote or escape. The lexer would copy
    // them unchanged and split them on blanks, so do just that.
    if !word.contains(['$', '\'', '"', escape]) {
        return Ok(Expansion {
            result: word.to_owned(),
            words: if split {
                word.split_whitespace().map(str::to_owned).collect()
            } else {
                Vec::new()
            },
            ..Expansion::default()
        });
    }
    let mut lexer = Lexer {
        text: word,
        position: 0,
        escape,
        vars,
        split,
        matched: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let (result, words) = lexer.until(None, false).map_err(|e| ShellError {
        message: format!("failed to process `{word}`: {}", e.message),
    })?;
    Ok(Expansion {
        result,
        words,
        matched: lexer.matched,
        unmatched: lexer.unmatched,
    })
}

/// Word accumulator that splits on blanks the way buildkit's `wordsStruct` does.
#[derive(Default)]
struct Words {
    /// False when the caller does not want words: every method is then a no-op.
    enabled: bool,
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    fn add_char(&mut self, c: char) {
        if !self.enabled {
            return;
        }
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        if !self.enabled {
            return;
        }
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        text.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'v, V: Vars + ?Sized> {
    /// The word; `position` is a byte offset into it, always on a character boundary.
    text: &'v str,
    position: usize,
    escape: char,
    vars: &'v V,
    /// Whether to split the result into words (see [`expand_text`]).
    split: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<V: Vars + ?Sized> Lexer<'_, V> {
    fn peek(&self) -> Option<char> {
        self.text
            .get(self.position..)
            .and_then(|rest| rest.chars().next())
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if let Some(c) = c {
            self.position += c.len_utf8();
        }
        c
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(value) => {
                self.matched.insert(name.to_owned());
                Some(value.to_owned())
            }
            None => {
                self.unmatched.insert(name.to_owned());
                None
            }
        }
    }

    /// Reads up to `stop` (consumed) or the end; `raw_escapes` keeps escape characters.
    fn until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::new(self.split);
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    words.add_string(&value);
                    result.push_str(&value);
                }
                '\'' => {
                    let value = self.single_quoted()?;
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                '"' => {
                    let value = self.double_quoted(raw_escapes)?;
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(stop) => fail(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ShellError> {
        self.next();
        let mut result = String::new();
        loop {
            match self.next() {
                None => {
                    return fail(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => return Ok(result),
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quoted(&mut self, raw_escapes: bool) -> Result<String, ShellError> {
        self.next();
        let mut result = String::new();
        loop {
            match self.peek() {
                None => {
                    return fail(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => {
                    self.next();
                    return Ok(result);
                }
                Some('$') => result.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        if raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            // Only `"`, `$` and the escape character itself can be escaped.
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.next();
                                result.push(next);
                            }
                            Some(_) => {
                                if !raw_escapes {
                                    result.push(c);
                                }
                            }
                        }
                    } else {
                        result.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return fail("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return fail("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => match self.next() {
                Some(modifier @ ('+' | '-' | '?')) => self.modifier(&name, modifier, true),
                Some(other) => fail(format!("unsupported modifier (:{other}) in substitution")),
                None => fail("syntax error: missing '}'"),
            },
            Some(modifier @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(&name, modifier, false),
            Some('/') => self.replace(&name),
            Some(other) => fail(format!("unsupported modifier ({other}) in substitution")),
            None => fail("syntax error: missing '}'"),
        }
    }

    fn modifier(
        &mut self,
        name: &str,
        modifier: char,
        null_is_unset: bool,
    ) -> Result<String, ShellError> {
        let raw = modifier == '#' || modifier == '%';
        let word = match self.until(Some('}'), raw) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return fail("syntax error: missing '}'"),
            Err(error) => return Err(error),
        };
        let value = self.lookup(name);
        let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
        match modifier {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => match value {
                None => fail(format!(
                    "{name}: {}",
                    or_default(word, "is not allowed to be unset")
                )),
                Some(v) if null_is_unset && v.is_empty() => fail(format!(
                    "{name}: {}",
                    or_default(word, "is not allowed to be empty")
                )),
                Some(v) => Ok(v),
            },
            _ => {
                let value = value.unwrap_or_default();
                let (greedy, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest.to_owned()),
                    None => (false, word),
                };
                if modifier == '#' {
                    trim_prefix(&pattern, &value, greedy)
                } else {
                    trim_suffix(&pattern, &value, greedy)
                }
            }
        }
    }

    fn replace(&mut self, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.until(Some('/'), true) {
            Ok((pattern, _)) => pattern,
            Err(_) if self.peek().is_none() => return fail("syntax error: missing '/' in ${}"),
            Err(error) => return Err(error),
        };
        let replacement = match self.until(Some('}'), true) {
            Ok((replacement, _)) => replacement,
            Err(_) if self.peek().is_none() => return fail("syntax error: missing '}'"),
            Err(error) => return Err(error),
        };
        let value = self.lookup(name).unwrap_or_default();
        let regex = pattern_regex(&pattern, true, false)?;
        Ok(if all {
            regex
                .replace_all(&value, regex::NoExpand(&replacement))
                .into_owned()
        } else {
            regex
                .replacen(&value, 1, regex::NoExpand(&replacement))
                .into_owned()
        })
    }
}

fn or_default(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_owned()
    } else {
        word
    }
}

/// Turns a shell pattern (`*`, `?`, `\` escapes; no brackets) into a regex.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, ShellError> {
    let mut out = String::from(if anchored { "^" } else { "" });
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => match chars.next() {
                // `\}` and `\/` inside ${} are escapes of the ${} syntax, not of the pattern.
                Some(next @ ('}' | '/')) => out.push_str(&regex::escape(&next.to_string())),
                Some(next @ ('*' | '?' | '\\')) => out.push_str(&regex::escape(&next.to_string())),
                Some(next) => {
                    return fail(format!(
                        "invalid pattern ({pattern}) in substitution: invalid escape '\\{next}'"
                    ));
                }
                None => {
                    return fail(format!(
                        "invalid pattern ({pattern}) in substitution: trailing escape"
                    ));
                }
            },
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex::Regex::new(&format!("(?s){out}")).map_err(|e| ShellError {
        message: format!("invalid pattern ({pattern}) in substitution: {e}"),
    })
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let regex = pattern_regex(pattern, greedy, true)?;
    Ok(match regex.find(value) {
        Some(found) => value[found.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// Trims a suffix by reversing both the value and the pattern (keeping escapes in front of
/// what they escape), which turns a rightmost match into a leftmost one.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ShellError> {
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some(next) => tokens.push(format!("\\{next}")),
                None => tokens.push("\\".to_owned()),
            },
            _ => tokens.push(c.to_string()),
        }
    }
    let reversed_pattern: String = tokens.into_iter().rev().collect();
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed_pattern, &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("A", "a b"), ("E", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn words_split_on_blanks_from_variables_but_not_quotes() {
        let expansion = expand("x $A \"$A\"", &vars(), '\\').expect("expands");
        assert_eq!(expansion.words, ["x", "a", "b", "a b"]);
        assert_eq!(expansion.result, "x a b a b");
    }

    #[test]
    fn matched_and_unmatched_are_recorded() {
        let expansion = expand("$A$E$NOPE", &vars(), '\\').expect("expands");
        assert!(expansion.unmatched.contains("NOPE"));
        assert_eq!(expansion.matched.len(), 2);
    }

    fn table_vars() -> BTreeMap<String, String> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("KOREAN", "한국어"),
            ("NULL", ""),
            ("SPACED", "a  b"),
            ("FILE", "archive.tar.gz"),
            ("URL", "https://example.com/a/b"),
            ("NUM", "42"),
            ("under_score", "u"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn expansion_table_matches_buildkit() {
        let table = include_str!("../../../fixtures/shell/expand.txt");
        let vars = table_vars();
        let mut failures = Vec::new();
        let mut rows = 0;
        for line in table.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            rows += 1;
            let (input, expected) = line.rsplit_once(" |").expect("row has ` | `");
            let expected = expected.trim();
            let actual = match expand(input.trim(), &vars, '\\') {
                Ok(expansion) => expansion.result,
                Err(_) => "error".to_owned(),
            };
            // The text-only form must agree on everything but the words.
            let text_only = expand_text(input.trim(), &vars, '\\').map(|mut e| {
                e.words = Vec::new();
                e
            });
            let full = expand(input.trim(), &vars, '\\').map(|mut e| {
                e.words = Vec::new();
                e
            });
            if text_only != full {
                failures.push(format!("{input:?}: expand_text differs from expand"));
            }
            if actual != expected {
                failures.push(format!("{input:?}: expected {expected:?}, got {actual:?}"));
            }
        }
        assert!(rows >= 100, "only {rows} rows");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn errors_do_not_panic() {
        for input in [
            "${",
            "${A",
            "'",
            "\"",
            "${:}",
            "${A:x}",
            "${A/",
            "${A?boom}x",
            "${NOPE?}",
        ] {
            let _ = expand(input, &vars(), '\\');
        }
        assert!(expand("${NOPE?custom}", &vars(), '\\').is_err());
    }
}
