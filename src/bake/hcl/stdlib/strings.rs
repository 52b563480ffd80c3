//! String functions (`upper`, `substr`, `split`, `regex`, `replace`, ...) and bake's path
//! helpers (`basename`, `dirname`, `sanitize`, `homedir`).
//!
//! cty counts Unicode grapheme clusters; without the full segmentation tables we
//! approximate them: combining marks, variation selectors, emoji modifiers, ZWJ
//! sequences and CRLF stay attached to the preceding character.

use hcl::{Map, Value};
use regex::Regex;

use crate::bake::hcl::stdlib::args::{CallError, arg_int, arg_list, arg_str, bad, failed};

fn string(s: impl Into<String>) -> Result<Value, CallError> {
    Ok(Value::String(s.into()))
}

/// Whether `c` extends the preceding grapheme cluster.
fn extends(c: char) -> bool {
    matches!(u32::from(c),
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200C | 0x20D0..=0x20FF
        | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F)
}

/// Splits a string into (approximate) grapheme clusters.
pub(super) fn graphemes(s: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in s.char_indices() {
        let joined = match prev {
            None => true,
            Some('\r') => c == '\n',
            Some('\u{200D}') => true,
            Some(_) => extends(c) || c == '\u{200D}',
        };
        if !joined {
            out.push(&s[start..i]);
            start = i;
        }
        prev = Some(c);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

pub(super) fn upper(args: Vec<Value>) -> Result<Value, CallError> {
    string(arg_str(&args, 0)?.to_uppercase())
}

pub(super) fn lower(args: Vec<Value>) -> Result<Value, CallError> {
    string(arg_str(&args, 0)?.to_lowercase())
}

pub(super) fn title(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: Go strings.Title — a letter is capitalised after any separator; ASCII
    // letters, digits and `_` are not separators, other non-ASCII runes only when spaces.
    let mut out = String::new();
    let mut prev_sep = true;
    for c in arg_str(&args, 0)?.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        };
    }
    string(out)
}

pub(super) fn strlen(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::from(graphemes(arg_str(&args, 0)?).len()))
}

pub(super) fn reverse(args: Vec<Value>) -> Result<Value, CallError> {
    string(
        graphemes(arg_str(&args, 0)?)
            .into_iter()
            .rev()
            .collect::<String>(),
    )
}

pub(super) fn substr(args: Vec<Value>) -> Result<Value, CallError> {
    let chars: Vec<&str> = graphemes(arg_str(&args, 0)?);
    let len = i64::try_from(chars.len()).map_err(|_| failed("string too long"))?;
    let mut offset = arg_int(&args, 1)?;
    let length = arg_int(&args, 2)?;
    // Compat: go-cty Substr — a negative offset counts from the end and clamps at the
    // start; a negative length means "to the end".
    if offset < 0 {
        // Compat: go-cty Substr never short-circuits a zero length for a negative
        // offset, and its seek loop then returns the whole remainder.
        let rest = length <= 0;
        offset = (offset + len).max(0);
        if rest {
            let tail = chars.get(offset as usize..).unwrap_or_default();
            return string(tail.concat());
        }
    }
    if offset >= len {
        return string("");
    }
    let end = if length < 0 {
        len
    } else {
        offset.saturating_add(length).min(len)
    };
    string(
        chars
            .get(offset as usize..end as usize)
            .unwrap_or_default()
            .concat(),
    )
}

pub(super) fn byteslen(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::from(arg_str(&args, 0)?.len()))
}

pub(super) fn bytesslice(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    let offset = arg_int(&args, 1)?;
    let length = arg_int(&args, 2)?;
    let len = s.len() as i64;
    if offset < 0 || offset > len {
        return Err(bad(1, "offset out of bounds"));
    }
    if length < 0 || offset + length > len {
        return Err(bad(2, "length out of bounds"));
    }
    s.get(offset as usize..(offset + length) as usize)
        .map(Value::from)
        .ok_or_else(|| failed("slice would split a multi-byte character"))
}

pub(super) fn chomp(args: Vec<Value>) -> Result<Value, CallError> {
    string(arg_str(&args, 0)?.trim_end_matches(['\r', '\n']))
}

pub(super) fn indent(args: Vec<Value>) -> Result<Value, CallError> {
    let spaces = arg_int(&args, 0)?;
    let pad = " ".repeat(usize::try_from(spaces).unwrap_or(0));
    string(arg_str(&args, 1)?.replace('\n', &format!("\n{pad}")))
}

pub(super) fn trim(args: Vec<Value>) -> Result<Value, CallError> {
    let cutset: Vec<char> = arg_str(&args, 1)?.chars().collect();
    string(arg_str(&args, 0)?.trim_matches(cutset.as_slice()))
}

pub(super) fn trimprefix(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    string(s.strip_prefix(arg_str(&args, 1)?).unwrap_or(s))
}

pub(super) fn trimsuffix(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    string(s.strip_suffix(arg_str(&args, 1)?).unwrap_or(s))
}

pub(super) fn trimspace(args: Vec<Value>) -> Result<Value, CallError> {
    string(arg_str(&args, 0)?.trim())
}

pub(super) fn split(args: Vec<Value>) -> Result<Value, CallError> {
    let sep = arg_str(&args, 0)?;
    let s = arg_str(&args, 1)?;
    // Compat: Go strings.Split — an empty separator splits into characters.
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(Value::from).collect()
    };
    Ok(Value::Array(parts))
}

pub(super) fn join(args: Vec<Value>) -> Result<Value, CallError> {
    let sep = arg_str(&args, 0)?;
    let mut parts: Vec<&str> = Vec::new();
    for i in 1..args.len() {
        for item in arg_list(&args, i)? {
            match item {
                Value::String(s) => parts.push(s),
                _ => return Err(bad(i, "a string is required")),
            }
        }
    }
    string(parts.join(sep))
}

pub(super) fn replace(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    let search = arg_str(&args, 1)?;
    let with = arg_str(&args, 2)?;
    // Compat: Terraform replace — a search string wrapped in slashes is a regex.
    if search.len() > 1 && search.starts_with('/') && search.ends_with('/') {
        let re = compile(&search[1..search.len() - 1], 1)?;
        return string(re.replace_all(s, with));
    }
    string(s.replace(search, with))
}

pub(super) fn regex_replace(args: Vec<Value>) -> Result<Value, CallError> {
    let re = compile(arg_str(&args, 1)?, 1)?;
    string(re.replace_all(arg_str(&args, 0)?, arg_str(&args, 2)?))
}

fn compile(pattern: &str, index: usize) -> Result<Regex, CallError> {
    Regex::new(pattern).map_err(|e| bad(index, format!("invalid regular expression pattern: {e}")))
}

/// How a pattern's captures turn into a value (go-cty `regex` result shapes).
enum Shape {
    Whole,
    List,
    Named(Vec<String>),
}

fn shape(re: &Regex) -> Result<Shape, CallError> {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        Ok(Shape::Whole)
    } else if names.iter().all(Option::is_none) {
        Ok(Shape::List)
    } else if names.iter().all(Option::is_some) {
        Ok(Shape::Named(
            names.into_iter().flatten().map(str::to_owned).collect(),
        ))
    } else {
        Err(bad(
            0,
            "invalid regular expression pattern: can't mix both named and unnamed capture groups",
        ))
    }
}

fn captures_value(shape: &Shape, caps: &regex::Captures<'_>) -> Value {
    let group = |i: usize| {
        caps.get(i)
            .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()))
    };
    match shape {
        Shape::Whole => group(0),
        Shape::List => Value::Array((1..caps.len()).map(group).collect()),
        Shape::Named(names) => {
            let mut map = Map::new();
            for name in names {
                let v = caps
                    .name(name)
                    .map_or(Value::Null, |m| Value::String(m.as_str().to_owned()));
                map.insert(name.clone(), v);
            }
            Value::Object(map)
        }
    }
}

pub(super) fn regex(args: Vec<Value>) -> Result<Value, CallError> {
    let re = compile(arg_str(&args, 0)?, 0)?;
    let shape = shape(&re)?;
    let caps = re
        .captures(arg_str(&args, 1)?)
        .ok_or_else(|| failed("pattern did not match any part of the given string"))?;
    Ok(captures_value(&shape, &caps))
}

pub(super) fn regexall(args: Vec<Value>) -> Result<Value, CallError> {
    let re = compile(arg_str(&args, 0)?, 0)?;
    let shape = shape(&re)?;
    Ok(Value::Array(
        re.captures_iter(arg_str(&args, 1)?)
            .map(|caps| captures_value(&shape, &caps))
            .collect(),
    ))
}

pub(super) fn sanitize(args: Vec<Value>) -> Result<Value, CallError> {
    string(
        arg_str(&args, 0)?
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>(),
    )
}

pub(super) fn homedir(_args: Vec<Value>) -> Result<Value, CallError> {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() => string(home),
        _ => Err(failed(
            "cannot determine the home directory: $HOME is not set",
        )),
    }
}

pub(super) fn basename(args: Vec<Value>) -> Result<Value, CallError> {
    string(path_base(arg_str(&args, 0)?))
}

pub(super) fn dirname(args: Vec<Value>) -> Result<Value, CallError> {
    string(path_dir(arg_str(&args, 0)?))
}

/// Go `path.Base`.
fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Go `path.Dir`.
fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    crate::path::clean(dir)
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::{CallError, call};
    use hcl::Value;

    fn s(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Ok(Value::String(s)) => s,
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    fn strs(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::from(*s)).collect())
    }

    #[test]
    fn case_functions() {
        assert_eq!(s("upper", vec!["abc".into()]), "ABC");
        assert_eq!(s("lower", vec!["ABC".into()]), "abc");
        assert_eq!(
            s("title", vec!["hello wORLD-foo_bar".into()]),
            "Hello WORLD-Foo_bar"
        );
        assert_eq!(s("upper", vec![true.into()]), "TRUE");
        assert!(matches!(
            call("upper", vec![Value::Null]),
            Err(CallError::Argument { index: 0, .. })
        ));
        assert!(call("lower", vec![strs(&["a"])]).is_err());
    }

    #[test]
    fn lengths_and_slices() {
        assert_eq!(call("strlen", vec!["héllo".into()]), Ok(Value::from(5)));
        assert_eq!(call("byteslen", vec!["héllo".into()]), Ok(Value::from(6)));
        assert_eq!(
            s("bytesslice", vec!["hello".into(), 1.into(), 3.into()]),
            "ell"
        );
        assert!(call("bytesslice", vec!["hello".into(), 4.into(), 3.into()]).is_err());
        assert_eq!(s("reverse", vec!["abc".into()]), "cba");
        assert_eq!(s("reverse", vec!["ae\u{301}\r\n".into()]), "\r\ne\u{301}a");
        assert_eq!(
            call("strlen", vec!["e\u{301}👍🏽👨\u{200D}👩".into()]),
            Ok(Value::from(3))
        );
        assert_eq!(
            s("substr", vec!["xe\u{301}y".into(), 1.into(), 1.into()]),
            "e\u{301}"
        );
        assert_eq!(
            s("substr", vec!["hello world".into(), 1.into(), 4.into()]),
            "ello"
        );
        assert_eq!(
            s("substr", vec!["hello".into(), (-3).into(), (-1).into()]),
            "llo"
        );
        assert_eq!(
            s("substr", vec!["hello".into(), (-9).into(), 2.into()]),
            "he"
        );
        assert_eq!(s("substr", vec!["hello".into(), 9.into(), 2.into()]), "");
        assert_eq!(s("substr", vec!["hello".into(), 1.into(), 0.into()]), "");
        assert_eq!(
            s("substr", vec!["hello".into(), (-2).into(), 0.into()]),
            "lo"
        );
        assert_eq!(
            s("substr", vec!["héllo".into(), 1.into(), 100.into()]),
            "éllo"
        );
        assert!(call("substr", vec!["x".into(), "a".into(), 1.into()]).is_err());
    }

    #[test]
    fn trimming() {
        assert_eq!(s("chomp", vec!["a\n\r\n".into()]), "a");
        assert_eq!(s("indent", vec![2.into(), "a\nb".into()]), "a\n  b");
        assert_eq!(s("trim", vec!["?!a!?".into(), "!?".into()]), "a");
        assert_eq!(s("trimprefix", vec!["foobar".into(), "foo".into()]), "bar");
        assert_eq!(s("trimprefix", vec!["foobar".into(), "x".into()]), "foobar");
        assert_eq!(s("trimsuffix", vec!["foobar".into(), "bar".into()]), "foo");
        assert_eq!(s("trimspace", vec!["  a b\n".into()]), "a b");
    }

    #[test]
    fn split_join_replace() {
        assert_eq!(
            call("split", vec![",".into(), "a,b,,c".into()]),
            Ok(strs(&["a", "b", "", "c"]))
        );
        assert_eq!(call("split", vec![",".into(), "".into()]), Ok(strs(&[""])));
        assert_eq!(
            s(
                "join",
                vec!["-".into(), strs(&["a", "b"]), Value::Array(vec![1.into()])]
            ),
            "a-b-1"
        );
        assert!(matches!(
            call("join", vec!["-".into()]),
            Err(CallError::Arity { .. })
        ));
        assert!(call("join", vec!["-".into(), "a".into()]).is_err());
        assert_eq!(
            s("replace", vec!["a.b.c".into(), ".".into(), "-".into()]),
            "a-b-c"
        );
        assert_eq!(
            s(
                "replace",
                vec!["hello world".into(), "/w(or)ld/".into(), "$1".into()]
            ),
            "hello or"
        );
        assert_eq!(
            s(
                "regex_replace",
                vec!["a1b22".into(), "[0-9]+".into(), "#".into()]
            ),
            "a#b#"
        );
        assert!(call("regex_replace", vec!["a".into(), "(".into(), "".into()]).is_err());
    }

    #[test]
    fn regex_shapes() {
        assert_eq!(
            call("regex", vec!["[a-z]+".into(), "12abc3".into()]),
            Ok("abc".into())
        );
        assert_eq!(
            call("regex", vec!["(\\d+)-(\\d+)".into(), "a 10-20".into()]),
            Ok(strs(&["10", "20"]))
        );
        let Ok(Value::Object(named)) = call(
            "regex",
            vec!["(?P<k>\\w+)=(?P<v>\\w+)".into(), "a=b".into()],
        ) else {
            panic!("named groups give an object");
        };
        assert_eq!(named.get("k"), Some(&Value::from("a")));
        assert_eq!(named.get("v"), Some(&Value::from("b")));
        assert!(call("regex", vec!["x".into(), "abc".into()]).is_err());
        assert!(call("regex", vec!["(?P<a>x)(y)".into(), "xy".into()]).is_err());
        assert_eq!(
            call("regexall", vec!["\\d".into(), "a1b2".into()]),
            Ok(strs(&["1", "2"]))
        );
        assert_eq!(
            call("regexall", vec!["z".into(), "a1b2".into()]),
            Ok(Value::Array(vec![]))
        );
    }

    #[test]
    fn bake_helpers() {
        assert_eq!(s("sanitize", vec!["a.b/c:d_e-f".into()]), "a_b_c_d_e-f");
        assert_eq!(s("basename", vec!["/a/b/c.txt".into()]), "c.txt");
        assert_eq!(s("basename", vec!["/a/b/".into()]), "b");
        assert_eq!(s("basename", vec!["".into()]), ".");
        assert_eq!(s("basename", vec!["///".into()]), "/");
        assert_eq!(s("dirname", vec!["/a/b/c.txt".into()]), "/a/b");
        assert_eq!(s("dirname", vec!["c.txt".into()]), ".");
        assert_eq!(s("dirname", vec!["/c".into()]), "/");
        assert_eq!(s("dirname", vec!["a/../b/c".into()]), "b");
        assert!(call("homedir", vec![]).is_ok() || std::env::var("HOME").is_err());
        assert!(matches!(
            call("homedir", vec!["x".into()]),
            Err(CallError::Arity { .. })
        ));
    }
}
