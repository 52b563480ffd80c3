//! Encoding, hashing and identifier functions (`jsonencode`, `csvdecode`, `base64*`,
//! `urlencode`, `md5`/`sha*`, `bcrypt`, `uuidv4`/`uuidv5`, `rsadecrypt`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hcl::{Map, Value};
use md5::Digest as _;

use crate::bake::hcl::stdlib::args::{CallError, arg_int, arg_str, bad, failed};
use crate::bake::hcl::types::{f64_to_number, number_to_string};

pub(super) fn base64encode(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::String(STANDARD.encode(arg_str(&args, 0)?)))
}

pub(super) fn base64decode(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    let bytes = STANDARD
        .decode(s)
        .map_err(|_| bad(0, format!("failed to decode base64 data `{s}`")))?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| {
        bad(
            0,
            "the result of decoding the provided string is not valid UTF-8",
        )
    })
}

pub(super) fn urlencode(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: Go url.QueryEscape — space becomes `+`, only `-_.~` and alphanumerics stay.
    let mut out = String::new();
    for b in arg_str(&args, 0)?.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(Value::String(out))
}

fn hex(bytes: &[u8]) -> Value {
    Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn md5(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(hex(&md5::Md5::digest(arg_str(&args, 0)?.as_bytes())))
}

pub(super) fn sha1(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(hex(&sha1::Sha1::digest(arg_str(&args, 0)?.as_bytes())))
}

pub(super) fn sha256(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(hex(&sha2::Sha256::digest(arg_str(&args, 0)?.as_bytes())))
}

pub(super) fn sha512(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(hex(&sha2::Sha512::digest(arg_str(&args, 0)?.as_bytes())))
}

pub(super) fn bcrypt(args: Vec<Value>) -> Result<Value, CallError> {
    if args.len() > 2 {
        return Err(CallError::Arity {
            expected: "1 or 2".to_owned(),
            got: args.len(),
        });
    }
    let cost = if args.len() == 2 {
        arg_int(&args, 1)?
    } else {
        10
    };
    let cost = u32::try_from(cost)
        .ok()
        .filter(|c| (4..=31).contains(c))
        .ok_or_else(|| bad(1, "bcrypt cost must be between 4 and 31"))?;
    // Compat: go-cty-funcs uses Go's bcrypt, which writes the `$2a$` prefix.
    ::bcrypt::hash_with_result(arg_str(&args, 0)?, cost)
        .map(|h| Value::String(h.format_for_version(::bcrypt::Version::TwoA)))
        .map_err(|e| failed(format!("error occurred generating password: {e}")))
}

pub(super) fn uuidv4(_args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::String(uuid::Uuid::new_v4().to_string()))
}

pub(super) fn uuidv5(args: Vec<Value>) -> Result<Value, CallError> {
    let ns = arg_str(&args, 0)?;
    let namespace = match ns {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other)
            .map_err(|_| bad(0, format!("uuidv5() doesn't support namespace `{other}`")))?,
    };
    Ok(Value::String(
        uuid::Uuid::new_v5(&namespace, arg_str(&args, 1)?.as_bytes()).to_string(),
    ))
}

pub(super) fn rsadecrypt(_args: Vec<Value>) -> Result<Value, CallError> {
    Err(failed("rsadecrypt is not supported"))
}

pub(super) fn jsonencode(args: Vec<Value>) -> Result<Value, CallError> {
    let mut out = String::new();
    encode_json(args.first().unwrap_or(&Value::Null), &mut out);
    Ok(Value::String(out))
}

/// Compact JSON with sorted object keys, as cty's `jsonencode` produces.
pub(super) fn encode_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_to_string(n)),
        Value::String(s) => encode_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_json_string(k, out);
                out.push(':');
                encode_json(item, out);
            }
            out.push('}');
        }
    }
}

/// Compat: Go encoding/json — HTML-sensitive characters and U+2028/9 are escaped.
fn encode_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(super) fn jsondecode(args: Vec<Value>) -> Result<Value, CallError> {
    let json: serde_json::Value = serde_json::from_str(arg_str(&args, 0)?)
        .map_err(|e| bad(0, format!("invalid JSON: {e}")))?;
    json_to_value(json).ok_or_else(|| failed("JSON number out of range"))
}

/// Converts decoded JSON into an HCL value, keeping whole numbers integral.
pub(super) fn json_to_value(json: serde_json::Value) -> Option<Value> {
    Some(match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Number(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => hcl::Number::from(i),
            (_, Some(u)) => hcl::Number::from(u),
            _ => f64_to_number(n.as_f64()?)?,
        }),
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(json_to_value)
                .collect::<Option<Vec<_>>>()?,
        ),
        serde_json::Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k, json_to_value(v)?);
            }
            Value::Object(out)
        }
    })
}

pub(super) fn csvdecode(args: Vec<Value>) -> Result<Value, CallError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(arg_str(&args, 0)?.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(failed("missing header line")),
        Some(r) => r.map_err(|e| failed(format!("failed to parse CSV: {e}")))?,
    };
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| failed(format!("failed to parse CSV: {e}")))?;
        let mut row = Map::new();
        for (name, field) in header.iter().zip(record.iter()) {
            row.insert(name.to_owned(), Value::String(field.to_owned()));
        }
        rows.push(Value::Object(row));
    }
    Ok(Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::call;
    use hcl::Value;

    fn s(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Ok(Value::String(s)) => s,
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    #[test]
    fn base64_and_url() {
        assert_eq!(s("base64encode", vec!["hello".into()]), "aGVsbG8=");
        assert_eq!(s("base64decode", vec!["aGVsbG8=".into()]), "hello");
        assert!(call("base64decode", vec!["!!".into()]).is_err());
        assert!(call("base64decode", vec!["/w==".into()]).is_err());
        assert_eq!(s("urlencode", vec!["a b&c/é~".into()]), "a+b%26c%2F%C3%A9~");
    }

    #[test]
    fn hashes() {
        assert_eq!(
            s("md5", vec!["hello".into()]),
            "5d41402abc4b2a76b9719d911017c592"
        );
        assert_eq!(
            s("sha1", vec!["hello".into()]),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
        assert_eq!(
            s("sha256", vec!["hello".into()]),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(s("sha512", vec!["hello".into()]).starts_with("9b71d224bd62f378"));
        assert!(call("md5", vec![Value::Null]).is_err());
    }

    #[test]
    fn bcrypt_and_uuids() {
        let h = s("bcrypt", vec!["pw".into(), 4.into()]);
        assert!(h.starts_with("$2a$04$"), "{h}");
        assert!(::bcrypt::verify("pw", &h).unwrap_or(false));
        assert!(call("bcrypt", vec!["pw".into(), 3.into()]).is_err());
        assert!(call("bcrypt", vec!["pw".into(), 4.into(), 4.into()]).is_err());
        let v4 = s("uuidv4", vec![]);
        assert_eq!(v4.len(), 36);
        assert_eq!(v4.as_bytes()[14], b'4');
        assert_eq!(
            s("uuidv5", vec!["dns".into(), "www.example.com".into()]),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
        assert_eq!(
            s(
                "uuidv5",
                vec![
                    "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    "www.example.com".into()
                ]
            ),
            "2ed6657d-e927-568b-95e1-2665a8aea6a2"
        );
        assert!(call("uuidv5", vec!["nope".into(), "x".into()]).is_err());
        assert!(call("rsadecrypt", vec!["x".into(), "y".into()]).is_err());
    }

    #[test]
    fn json() {
        let v = call(
            "jsondecode",
            vec![r#"{"b":[1,2.5,"x<"],"a":null,"c":true}"#.into()],
        )
        .expect("valid JSON");
        assert_eq!(
            s("jsonencode", vec![v]),
            r#"{"a":null,"b":[1,2.5,"x\u003c"],"c":true}"#
        );
        assert_eq!(s("jsonencode", vec![Value::Null]), "null");
        assert_eq!(s("jsonencode", vec!["a\"\n".into()]), r#""a\"\n""#);
        assert!(call("jsondecode", vec!["{".into()]).is_err());
        assert_eq!(call("jsondecode", vec!["4".into()]), Ok(4.into()));
    }

    #[test]
    fn csv() {
        let v = call("csvdecode", vec!["a,b\n1,\"x,y\"\n3,4\n".into()]).expect("valid CSV");
        assert_eq!(
            s("jsonencode", vec![v]),
            r#"[{"a":"1","b":"x,y"},{"a":"3","b":"4"}]"#
        );
        assert!(call("csvdecode", vec!["".into()]).is_err());
        assert!(call("csvdecode", vec!["a,b\n1\n".into()]).is_err());
        assert_eq!(
            call("csvdecode", vec!["a,b\n".into()]),
            Ok(Value::Array(vec![]))
        );
    }
}
