//! The `.env` file format Compose reads: `KEY=VALUE` lines, `export` prefixes, `#` comments,
//! single quotes (literal) and double quotes (escapes, may span lines), and interpolation in
//! unquoted and double-quoted values.

use super::interpolate::{InterpError, interpolate};

/// Parses `.env` text into `(key, value)` pairs in file order. `lookup` resolves variables
/// used inside values and bare `KEY` lines; earlier keys of the file are visible too.
// Compat: compose-go dotenv.UnmarshalBytesWithLookup.
pub(crate) fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let line = rest[..line_end].trim();
        if line.is_empty() || line.starts_with('#') {
            rest = &rest[line_end..];
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map_or(line, str::trim_start)
            .to_owned();
        let Some(eq) = line.find('=') else {
            // A bare `KEY` copies the value from the environment, if it has one.
            let key = line.trim();
            check_key(key)?;
            if let Some(value) = lookup(key) {
                out.push((key.to_owned(), value));
            }
            rest = &rest[line_end..];
            continue;
        };
        let key = line[..eq].trim().to_owned();
        check_key(&key)?;
        // Work from the original text so quoted values may run over several lines.
        let start_in_rest = rest.find('=').map_or(line_end, |i| i + 1);
        let after = rest[start_in_rest..].trim_start_matches([' ', '\t']);
        let (raw, expand, consumed) = if let Some(body) = after.strip_prefix('\'') {
            let close = body
                .find('\'')
                .ok_or_else(|| format!("unterminated quoted value for `{key}`"))?;
            (body[..close].to_owned(), false, 1 + close + 1)
        } else if let Some(body) = after.strip_prefix('"') {
            let (value, used) = double_quoted(body)
                .ok_or_else(|| format!("unterminated quoted value for `{key}`"))?;
            (value, true, 1 + used)
        } else {
            let end = after.find('\n').unwrap_or(after.len());
            let mut value = &after[..end];
            // An inline comment needs whitespace before `#`.
            if let Some(pos) = value.find(" #").or_else(|| value.find("\t#")) {
                value = &value[..pos];
            }
            (value.trim().to_owned(), true, end)
        };
        let value = if expand {
            let local = |name: &str| {
                lookup(name).or_else(|| {
                    out.iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
            };
            interpolate(&raw, &local).map_err(|err| match err {
                InterpError::Invalid => {
                    format!("invalid interpolation format in the value of `{key}`")
                }
                other => other.message(&raw),
            })?
        } else {
            raw
        };
        out.retain(|(k, _)| k != &key);
        out.push((key, value));
        let consumed_total = (rest.len() - after.len()) + consumed;
        rest = &rest[consumed_total.min(rest.len())..];
        // Skip whatever follows a closing quote on the same line (a comment).
        let eol = rest.find('\n').map_or(rest.len(), |i| i + 1);
        rest = &rest[eol..];
    }
    Ok(out)
}

fn check_key(key: &str) -> Result<(), String> {
    let valid = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']'));
    if valid {
        Ok(())
    } else {
        Err(format!("invalid variable name `{key}`"))
    }
}

/// Reads a double-quoted body up to its closing quote; returns the unescaped text (with `\$`
/// kept as `$$` so interpolation yields a literal `$`) and the bytes used, quote included.
fn double_quoted(body: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '$')) => out.push_str("$$"),
                Some((_, other @ ('"' | '\\' | '\''))) => out.push(other),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            _ => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<(String, String)> {
        let lookup = |name: &str| (name == "HOME").then(|| "/home/me".to_owned());
        parse(text, &lookup).unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn basic_lines() {
        let text = "# comment\n\nA=1\nexport B = two \nC=x # note\nD=a#b\nE=\n";
        assert_eq!(
            run(text),
            vec![
                pair("A", "1"),
                pair("B", "two"),
                pair("C", "x"),
                pair("D", "a#b"),
                pair("E", "")
            ]
        );
    }

    #[test]
    fn quotes() {
        let text = "S='lit $HOME \\n'\nD=\"a\\nb \\\"q\\\" $HOME \\$X\" # c\nM=\"line1\nline2\"\nN=after\n";
        assert_eq!(
            run(text),
            vec![
                pair("S", "lit $HOME \\n"),
                pair("D", "a\nb \"q\" /home/me $X"),
                pair("M", "line1\nline2"),
                pair("N", "after"),
            ]
        );
    }

    #[test]
    fn interpolation_sees_earlier_keys_and_env() {
        let text = "A=x\nB=${A}-${HOME}-${NOPE:-d}\nHOME\nMISSING\n";
        assert_eq!(
            run(text),
            vec![
                pair("A", "x"),
                pair("B", "x-/home/me-d"),
                pair("HOME", "/home/me")
            ]
        );
    }

    #[test]
    fn errors() {
        let lookup = |_: &str| None;
        assert!(parse("A='open\n", &lookup).is_err());
        assert!(parse("BAD KEY=1\n", &lookup).is_err());
        assert!(
            parse("A=${B:?need b}\n", &lookup)
                .unwrap_err()
                .contains("need b")
        );
    }
}
