//! Compose variable interpolation (`$VAR`, `${VAR:-default}`, `${VAR:?err}`, `$$`, ...), as
//! the compose-spec defines it and compose-go's `template` package implements it.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpError {
    /// A `$` that starts no valid substitution (`$1`, `${}`, an unclosed `${`).
    Invalid,
    /// `${VAR:?message}` / `${VAR?message}` with `VAR` missing.
    Required {
        /// The variable's name.
        name: String,
        /// The user's message after `?` (interpolated).
        message: String,
    },
}

impl InterpError {
    /// The lowercase message for a diagnostic about `text`.
    pub(crate) fn message(&self, text: &str) -> String {
        match self {
            InterpError::Invalid => format!("invalid interpolation format in `{text}`"),
            InterpError::Required { name, message } if message.is_empty() => {
                format!("required variable `{name}` is missing a value")
            }
            InterpError::Required { name, message } => {
                format!("required variable `{name}` is missing a value: {message}")
            }
        }
    }
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// Index (relative to `s`) of the `}` closing a `${` whose body starts at `s`; only `${`
/// opens a nested level, as in compose-go.
// Compat: compose-go template getFirstBraceClosingIndex.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        } else if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Substitutes every variable reference in `text`; unset variables without a default become
/// empty (compose only warns).
// Compat: compose-go template.Substitute.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&text[literal_start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let body_start = i + 2;
                let close = closing_brace(&text[body_start..]).ok_or(InterpError::Invalid)?;
                let body = &text[body_start..body_start + close];
                out.push_str(&braced(body, lookup)?);
                i = body_start + close + 1;
            }
            Some(&c) if is_name_start(c) => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && is_name_char(bytes[end]) {
                    end += 1;
                }
                out.push_str(&lookup(&text[start..end]).unwrap_or_default());
                i = end;
            }
            _ => return Err(InterpError::Invalid),
        }
        literal_start = i;
    }
    out.push_str(&text[literal_start..]);
    Ok(out)
}

/// Evaluates the inside of `${...}`.
fn braced(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpError> {
    let bytes = body.as_bytes();
    if bytes.first().is_none_or(|&c| !is_name_start(c)) {
        return Err(InterpError::Invalid);
    }
    let name_end = bytes
        .iter()
        .position(|&c| !is_name_char(c))
        .unwrap_or(bytes.len());
    let name = &body[..name_end];
    let rest = &body[name_end..];
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut chars = rest.chars();
    let op = chars.next().ok_or(InterpError::Invalid)?;
    let arg = chars.as_str();
    // With `:` an empty value counts as missing; without it only an unset one does.
    let present = match &value {
        Some(v) => !colon || !v.is_empty(),
        None => false,
    };
    match op {
        '-' if present => Ok(value.unwrap_or_default()),
        '-' => interpolate(arg, lookup),
        '+' if present => interpolate(arg, lookup),
        '+' => Ok(String::new()),
        '?' if present => Ok(value.unwrap_or_default()),
        '?' => Err(InterpError::Required {
            name: name.to_owned(),
            message: interpolate(arg, lookup)?,
        }),
        _ => Err(InterpError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, InterpError> {
        let lookup = |name: &str| match name {
            "SET" => Some("val".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        interpolate(text, &lookup)
    }

    #[test]
    fn plain_forms() {
        assert_eq!(run("a $SET b").unwrap(), "a val b");
        assert_eq!(run("${SET}x").unwrap(), "valx");
        assert_eq!(run("$SET.x").unwrap(), "val.x");
        assert_eq!(run("$UNSET|${UNSET}").unwrap(), "|");
        assert_eq!(run("$$SET $$").unwrap(), "$SET $");
        assert_eq!(run("no dollars").unwrap(), "no dollars");
    }

    #[test]
    fn defaults() {
        assert_eq!(run("${UNSET:-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(run("${SET:-d}").unwrap(), "val");
        assert_eq!(run("${UNSET-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY-d}").unwrap(), "");
        assert_eq!(run("${UNSET:-${ALSO:-x}}").unwrap(), "x");
        assert_eq!(run("${UNSET:-${SET}-y}z").unwrap(), "val-yz");
        assert_eq!(run("${UNSET:-a b}").unwrap(), "a b");
    }

    #[test]
    fn alternatives() {
        assert_eq!(run("${SET:+alt}").unwrap(), "alt");
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${UNSET+alt}").unwrap(), "");
    }

    #[test]
    fn required() {
        assert_eq!(run("${SET:?boom}").unwrap(), "val");
        assert_eq!(run("${EMPTY?boom}").unwrap(), "");
        let err = run("${EMPTY:?need ${SET}}").unwrap_err();
        assert_eq!(
            err,
            InterpError::Required {
                name: "EMPTY".into(),
                message: "need val".into()
            }
        );
        assert_eq!(
            err.message("x"),
            "required variable `EMPTY` is missing a value: need val"
        );
        assert!(matches!(
            run("${UNSET?}"),
            Err(InterpError::Required { .. })
        ));
    }

    #[test]
    fn invalid() {
        for text in ["$", "a $1", "${", "${}", "${1A}", "${A:}", "${A*x}", "${A"] {
            assert_eq!(run(text), Err(InterpError::Invalid), "{text}");
        }
    }
}
