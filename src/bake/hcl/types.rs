//! HCL type expressions (`string`, `list(number)`, `object({a=string})`, ...) and cty's
//! conversion rules between values. Used by typed variables and `convert()`.

use std::fmt;

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::{Map, Number, Value};

/// A cty type as written in a `type =` attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `any`
    Any,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `tuple([T, ...])`
    Tuple(Vec<Type>),
    /// `object({name = T, ...})`, attributes in written order.
    Object(Vec<(String, Type)>),
}

/// Parses a type expression from the AST of a `type =` attribute or `convert()` argument.
pub(crate) fn from_expr(expr: &Expression) -> Result<Type, String> {
    match expr {
        Expression::Variable(ident) => match ident.as_str() {
            "string" => Ok(Type::String),
            "number" => Ok(Type::Number),
            "bool" => Ok(Type::Bool),
            "any" => Ok(Type::Any),
            "list" | "set" | "map" | "tuple" | "object" => Err(format!(
                "the `{}` type constructor requires one argument specifying the element type",
                ident.as_str()
            )),
            other => Err(format!(
                "the keyword `{other}` is not a valid type specification"
            )),
        },
        Expression::Parenthesis(inner) => from_expr(inner.inner()),
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let args: Vec<&Expression> = call.args.iter().collect();
            let [arg] = args.as_slice() else {
                return Err(format!(
                    "the `{name}` type constructor requires one argument"
                ));
            };
            match name {
                "list" => Ok(Type::List(Box::new(from_expr(arg)?))),
                "set" => Ok(Type::Set(Box::new(from_expr(arg)?))),
                "map" => Ok(Type::Map(Box::new(from_expr(arg)?))),
                "tuple" => match arg {
                    Expression::Array(items) => items
                        .iter()
                        .map(from_expr)
                        .collect::<Result<_, _>>()
                        .map(Type::Tuple),
                    _ => Err(
                        "the `tuple` type constructor requires a list of element types".to_owned(),
                    ),
                },
                "object" => match arg {
                    Expression::Object(items) => {
                        let mut attrs: Vec<(String, Type)> = Vec::new();
                        for (key, value) in items.iter() {
                            let name = match key {
                                ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                                ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                                ObjectKey::Expression(Expression::Variable(ident)) => {
                                    ident.as_str().to_owned()
                                }
                                _ => {
                                    return Err("object type attribute names must be identifiers"
                                        .to_owned());
                                }
                            };
                            if attrs.iter().any(|(n, _)| *n == name) {
                                return Err(format!("duplicate object attribute `{name}`"));
                            }
                            attrs.push((name, from_expr(value.expr())?));
                        }
                        Ok(Type::Object(attrs))
                    }
                    _ => Err(
                        "the `object` type constructor requires an object of attribute types"
                            .to_owned(),
                    ),
                },
                other => Err(format!(
                    "the keyword `{other}` is not a valid type constructor"
                )),
            }
        }
        _ => Err("a type expression is required, e.g. `string` or `list(number)`".to_owned()),
    }
}

impl Type {
    /// Converts a value to this type the way cty's `convert` does.
    pub(crate) fn convert(&self, value: Value) -> Result<Value, String> {
        // Compat: go-cty convert — null converts to a null of any type.
        if value.is_null() {
            return Ok(Value::Null);
        }
        match self {
            Type::Any => Ok(value),
            Type::String => value_to_string(&value)
                .map(Value::String)
                .ok_or_else(|| "a string is required".to_owned()),
            Type::Number => match &value {
                Value::Number(_) => Ok(value),
                Value::String(s) => parse_number(s)
                    .map(Value::Number)
                    .ok_or_else(|| "a number is required".to_owned()),
                _ => Err("a number is required".to_owned()),
            },
            Type::Bool => match &value {
                Value::Bool(_) => Ok(value),
                // Compat: go-cty convert accepts "1"/"0" as well as "true"/"false".
                Value::String(s) if s == "true" || s == "1" => Ok(Value::Bool(true)),
                Value::String(s) if s == "false" || s == "0" => Ok(Value::Bool(false)),
                _ => Err("a bool is required".to_owned()),
            },
            Type::List(elem) => match value {
                Value::Array(items) => convert_items(elem, items).map(Value::Array),
                _ => Err(format!("{self} required")),
            },
            Type::Set(elem) => match value {
                Value::Array(items) => {
                    let mut out: Vec<Value> = Vec::new();
                    for item in convert_items(elem, items)? {
                        if !out.contains(&item) {
                            out.push(item);
                        }
                    }
                    sort_set(&mut out);
                    Ok(Value::Array(out))
                }
                _ => Err(format!("{self} required")),
            },
            Type::Map(elem) => match value {
                Value::Object(items) => {
                    let mut out = Map::new();
                    for (k, v) in items {
                        let v = elem.convert(v).map_err(|e| format!("element {k:?}: {e}"))?;
                        out.insert(k, v);
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(format!("{self} required")),
            },
            Type::Tuple(elems) => match value {
                Value::Array(items) if items.len() == elems.len() => elems
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| t.convert(v).map_err(|e| format!("element {i}: {e}")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array),
                Value::Array(items) => Err(format!(
                    "tuple with {} elements required, got {}",
                    elems.len(),
                    items.len()
                )),
                _ => Err(format!("{self} required")),
            },
            Type::Object(attrs) => match value {
                Value::Object(mut items) => {
                    let mut out = Map::new();
                    for (name, t) in attrs {
                        let v = items
                            .shift_remove(name)
                            .ok_or_else(|| format!("attribute {name:?} is required"))?;
                        let v = t
                            .convert(v)
                            .map_err(|e| format!("attribute {name:?}: {e}"))?;
                        out.insert(name.clone(), v);
                    }
                    Ok(Value::Object(out))
                }
                _ => Err(format!("{self} required")),
            },
        }
    }

    /// Whether this is `string`, `number` or `bool`.
    fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }
}

fn convert_items(elem: &Type, items: Vec<Value>) -> Result<Vec<Value>, String> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| elem.convert(v).map_err(|e| format!("element {i}: {e}")))
        .collect()
}

/// Orders set elements deterministically: cty iterates string and number sets in
/// ascending order, everything else we order by its JSON text.
pub(crate) fn sort_set(items: &mut [Value]) {
    items.sort_by(|a, b| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => sort_key(a).cmp(&sort_key(b)),
    });
}

fn sort_key(v: &Value) -> (u8, String) {
    let rank = match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    (rank, serde_json::to_string(v).unwrap_or_default())
}

impl fmt::Display for Type {
    // Compat: hcl typeexpr.TypeString — no spaces, object attributes sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Any => f.write_str("any"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Object(attrs) => {
                let mut sorted: Vec<&(String, Type)> = attrs.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                f.write_str("object({")?;
                for (i, (name, t)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={t}")?;
                }
                f.write_str("})")
            }
        }
    }
}

/// Makes a number from an f64, integral when the value is whole and fits (None for NaN/inf).
pub(crate) fn f64_to_number(f: f64) -> Option<Number> {
    if !f.is_finite() {
        return None;
    }
    if f.fract() == 0.0 {
        if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
            return Some(Number::from(f as i64));
        }
        if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
            return Some(Number::from(f as u64));
        }
    }
    Number::from_f64(f)
}

/// Parses a cty number from a string (decimal or exponent notation; no NaN, inf or hex).
pub(crate) fn parse_number(s: &str) -> Option<Number> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        || !t.chars().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Number::from(i));
    }
    if let Ok(u) = t.parse::<u64>() {
        return Some(Number::from(u));
    }
    t.parse::<f64>().ok().and_then(f64_to_number)
}

/// Formats a number as cty does (`4`, `1.5`, `0.1`, big integers without exponent).
pub(crate) fn number_to_string(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        // Rust's f64 Display is the shortest round-trip form and never uses an exponent.
        // Negative zero prints as "0" in cty.
        Some(0.0) => "0".to_owned(),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

/// Converts a primitive to its cty string form; None for null and collections.
pub(crate) fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_to_string(n)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Parses a variable override from the environment or `--var`, as bake does.
pub(crate) fn parse_override(
    ty: Option<&Type>,
    default: &Value,
    raw: &str,
    is_json: bool,
) -> Result<Value, String> {
    match ty {
        Some(Type::Any) | None => match default {
            Value::Null | Value::String(_) => Ok(Value::String(raw.to_owned())),
            Value::Bool(_) => parse_primitive(&Type::Bool, raw),
            Value::Number(_) => parse_primitive(&Type::Number, raw),
            Value::Array(_) | Value::Object(_) => Err("unsupported type".to_owned()),
        },
        Some(ty) if is_json => {
            let json: serde_json::Value = serde_json::from_str(raw)
                .map_err(|e| format!("failed to parse JSON value {raw:?}: {e}"))?;
            let value = hcl::to_value(json).map_err(|e| e.to_string())?;
            ty.convert(value)
        }
        Some(ty) if ty.is_primitive() => parse_primitive(ty, raw),
        Some(Type::List(elem) | Type::Set(elem)) if elem.is_primitive() => {
            let items = csv_fields(raw, b',')?
                .iter()
                .map(|f| parse_primitive(elem, f))
                .collect::<Result<Vec<_>, _>>()?;
            Type::Set(elem.clone())
                .convert(Value::Array(items.clone()))
                .map(|set| match ty {
                    Some(Type::Set(_)) => set,
                    _ => Value::Array(items),
                })
        }
        Some(Type::Tuple(elems)) if elems.iter().all(Type::is_primitive) => {
            let fields = csv_fields(raw, b',')?;
            if fields.len() != elems.len() {
                return Err(format!(
                    "expected {} values for tuple, got {}",
                    elems.len(),
                    fields.len()
                ));
            }
            elems
                .iter()
                .zip(&fields)
                .map(|(t, f)| parse_primitive(t, f))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Some(Type::Map(elem)) if elem.is_primitive() => {
            let mut out = Map::new();
            for pair in csv_fields(raw, b',')? {
                let parts = csv_fields(&pair, b':')?;
                let [key, value] = parts.as_slice() else {
                    return Err(format!("expected key:value pair, got {pair:?}"));
                };
                out.insert(key.clone(), parse_primitive(elem, value)?);
            }
            Ok(Value::Object(out))
        }
        Some(_) => Err("unsupported type".to_owned()),
    }
}

/// Parses one primitive override value (Go `ParseBool` / `ParseFloat` rules).
fn parse_primitive(ty: &Type, raw: &str) -> Result<Value, String> {
    match ty {
        Type::Bool => match raw {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err(format!("failed to parse {raw:?} as bool")),
        },
        Type::Number => {
            let f: f64 = raw
                .parse()
                .map_err(|_| format!("failed to parse {raw:?} as number"))?;
            parse_number(raw)
                .or_else(|| f64_to_number(f))
                .map(Value::Number)
                .ok_or_else(|| format!("invalid number value {raw:?}"))
        }
        _ => Ok(Value::String(raw.to_owned())),
    }
}

/// Reads the first CSV record of `raw` (Go `encoding/csv` style; quotes allowed).
fn csv_fields(raw: &str, delimiter: u8) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(raw.as_bytes());
    match reader.records().next() {
        None => Ok(Vec::new()),
        Some(record) => record
            .map(|r| r.iter().map(str::to_owned).collect())
            .map_err(|e| format!("failed to parse CSV value {raw:?}: {e}")),
    }
}

/// Names the type of a value the way cty's error messages do.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "tuple",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Result<Type, String> {
        let expr: Expression = src.parse().expect("valid HCL expression");
        from_expr(&expr)
    }

    fn strs(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::from(*s)).collect())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn n(f: f64) -> Value {
        Value::Number(Number::from_f64(f).expect("finite"))
    }

    #[test]
    fn parses_type_expressions() {
        assert_eq!(ty("string"), Ok(Type::String));
        assert_eq!(ty("number"), Ok(Type::Number));
        assert_eq!(ty("bool"), Ok(Type::Bool));
        assert_eq!(ty("any"), Ok(Type::Any));
        assert_eq!(ty("list(string)"), Ok(Type::List(Box::new(Type::String))));
        assert_eq!(ty("set(number)"), Ok(Type::Set(Box::new(Type::Number))));
        assert_eq!(ty("map(bool)"), Ok(Type::Map(Box::new(Type::Bool))));
        assert_eq!(
            ty("tuple([string, number])"),
            Ok(Type::Tuple(vec![Type::String, Type::Number]))
        );
        assert_eq!(
            ty("object({b = list(bool), a = string})"),
            Ok(Type::Object(vec![
                ("b".to_owned(), Type::List(Box::new(Type::Bool))),
                ("a".to_owned(), Type::String)
            ]))
        );
        assert_eq!(ty("(string)"), Ok(Type::String));
        assert!(ty("strin").is_err_and(|e| e.contains("strin")));
        assert!(ty("list").is_err());
        assert!(ty("list(string, number)").is_err());
        assert!(ty("tuple(string)").is_err());
        assert!(ty("object([string])").is_err());
        assert!(ty("foo(string)").is_err_and(|e| e.contains("foo")));
        assert!(ty("\"string\"").is_err());
    }

    #[test]
    fn displays_type_expressions() {
        for src in [
            "string",
            "number",
            "bool",
            "any",
            "list(string)",
            "set(number)",
            "map(list(bool))",
            "tuple([string,number])",
            "object({a=string,b=list(bool)})",
        ] {
            assert_eq!(ty(src).map(|t| t.to_string()), Ok(src.to_owned()));
        }
        assert_eq!(
            ty("object({b = number, a = string})").map(|t| t.to_string()),
            Ok("object({a=string,b=number})".to_owned())
        );
    }

    #[test]
    fn converts_primitives() {
        assert_eq!(Type::String.convert(1.into()), Ok("1".into()));
        assert_eq!(Type::String.convert(n(1.5)), Ok("1.5".into()));
        assert_eq!(Type::String.convert(true.into()), Ok("true".into()));
        assert!(Type::String.convert(strs(&[])).is_err());
        assert_eq!(Type::Number.convert("42".into()), Ok(42.into()));
        assert_eq!(Type::Number.convert("0.5".into()), Ok(n(0.5)));
        assert_eq!(
            Type::Number.convert("x".into()),
            Err("a number is required".to_owned())
        );
        assert!(Type::Number.convert(true.into()).is_err());
        assert_eq!(Type::Bool.convert("true".into()), Ok(true.into()));
        assert_eq!(Type::Bool.convert("0".into()), Ok(false.into()));
        assert_eq!(
            Type::Bool.convert("yes".into()),
            Err("a bool is required".to_owned())
        );
        assert!(Type::Bool.convert(1.into()).is_err());
        assert_eq!(Type::Number.convert(Value::Null), Ok(Value::Null));
        assert_eq!(Type::Any.convert(strs(&["a"])), Ok(strs(&["a"])));
    }

    #[test]
    fn converts_collections() {
        let list_num = Type::List(Box::new(Type::Number));
        assert_eq!(
            list_num.convert(strs(&["1", "2"])),
            Ok(Value::Array(vec![1.into(), 2.into()]))
        );
        assert!(
            list_num
                .convert(strs(&["x"]))
                .is_err_and(|e| e.contains("element 0"))
        );
        assert!(list_num.convert("1".into()).is_err());
        let set_str = Type::Set(Box::new(Type::String));
        assert_eq!(
            set_str.convert(Value::Array(vec!["b".into(), "a".into(), "b".into()])),
            Ok(strs(&["a", "b"]))
        );
        let map_str = Type::Map(Box::new(Type::String));
        assert_eq!(
            map_str.convert(obj(&[("a", 1.into())])),
            Ok(obj(&[("a", "1".into())]))
        );
        assert!(map_str.convert(strs(&[])).is_err());
        assert!(map_str.convert(obj(&[("a", strs(&[]))])).is_err());
        let tuple = Type::Tuple(vec![Type::String, Type::Number]);
        assert_eq!(
            tuple.convert(Value::Array(vec![1.into(), "2".into()])),
            Ok(Value::Array(vec!["1".into(), 2.into()]))
        );
        assert!(tuple.convert(strs(&["a"])).is_err());
        assert!(tuple.convert(obj(&[])).is_err());
        let object = Type::Object(vec![
            ("a".to_owned(), Type::String),
            ("b".to_owned(), Type::Bool),
        ]);
        assert_eq!(
            object.convert(obj(&[
                ("b", "true".into()),
                ("a", 1.into()),
                ("c", 1.into())
            ])),
            Ok(obj(&[("a", "1".into()), ("b", true.into())]))
        );
        assert!(
            object
                .convert(obj(&[("a", 1.into())]))
                .is_err_and(|e| e.contains("\"b\""))
        );
        assert!(object.convert(strs(&[])).is_err());
    }

    #[test]
    fn number_and_value_strings() {
        assert_eq!(number_to_string(&Number::from(4)), "4");
        assert_eq!(number_to_string(&Number::from(-4)), "-4");
        assert_eq!(
            number_to_string(&Number::from(u64::MAX)),
            "18446744073709551615"
        );
        let f = |x: f64| number_to_string(&Number::from_f64(x).expect("finite"));
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(4.0), "4");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(1e21), "1000000000000000000000");
        assert_eq!(value_to_string(&"a".into()), Some("a".to_owned()));
        assert_eq!(value_to_string(&false.into()), Some("false".to_owned()));
        assert_eq!(value_to_string(&n(2.5)), Some("2.5".to_owned()));
        assert_eq!(value_to_string(&Value::Null), None);
        assert_eq!(value_to_string(&strs(&[])), None);
        assert_eq!(f64_to_number(3.0), Some(Number::from(3)));
        assert_eq!(f64_to_number(f64::NAN), None);
        assert_eq!(parse_number(" 12 "), Some(Number::from(12)));
        assert_eq!(parse_number("1e3"), Some(Number::from(1000)));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("0x10"), None);
        assert_eq!(parse_number("-"), None);
    }

    #[test]
    fn overrides_untyped() {
        let p = |default: Value, raw: &str| parse_override(None, &default, raw, false);
        assert_eq!(p(Value::Null, "x"), Ok("x".into()));
        assert_eq!(p("a".into(), "7070"), Ok("7070".into()));
        assert_eq!(p(3000.into(), "7070"), Ok(7070.into()));
        assert_eq!(p(3000.into(), "1.5"), Ok(n(1.5)));
        assert!(p(3000.into(), "x").is_err());
        assert!(p(3000.into(), "NaN").is_err());
        assert!(p(3000.into(), "inf").is_err());
        assert_eq!(p(true.into(), "0"), Ok(false.into()));
        assert_eq!(p(false.into(), "T"), Ok(true.into()));
        assert!(p(false.into(), "yes").is_err());
        assert_eq!(p(strs(&[]), "a,b"), Err("unsupported type".to_owned()));
        assert_eq!(p(obj(&[]), "a"), Err("unsupported type".to_owned()));
        // An untyped `_JSON` value is treated like a plain string.
        assert_eq!(
            parse_override(None, &"d".into(), "[1]", true),
            Ok("[1]".into())
        );
    }

    #[test]
    fn overrides_typed() {
        let p = |t: &str, raw: &str| parse_override(Some(&ty(t)?), &Value::Null, raw, false);
        assert_eq!(p("string", "a,b"), Ok("a,b".into()));
        assert_eq!(p("number", "12"), Ok(12.into()));
        assert!(p("number", "twelve").is_err());
        assert_eq!(p("bool", "TRUE"), Ok(true.into()));
        assert!(p("bool", "yes").is_err());
        assert_eq!(p("list(string)", "a,\"b,c\""), Ok(strs(&["a", "b,c"])));
        assert_eq!(p("list(string)", ""), Ok(strs(&[])));
        assert_eq!(
            p("list(number)", "1,2"),
            Ok(Value::Array(vec![1.into(), 2.into()]))
        );
        assert!(p("list(number)", "1,x").is_err());
        assert_eq!(p("set(string)", "b,a,b"), Ok(strs(&["a", "b"])));
        assert_eq!(
            p("tuple([string, number, bool])", "a,2,false"),
            Ok(Value::Array(vec!["a".into(), 2.into(), false.into()]))
        );
        assert!(p("tuple([string, number])", "a").is_err());
        assert_eq!(
            p("map(number)", "a:1,\"b:2\""),
            Ok(obj(&[("a", 1.into()), ("b", 2.into())]))
        );
        assert_eq!(
            p("map(string)", "url:\"http://x\""),
            Ok(obj(&[("url", "http://x".into())]))
        );
        assert!(p("map(string)", "novalue").is_err());
        assert_eq!(
            p("object({a = string})", "x"),
            Err("unsupported type".to_owned())
        );
        assert_eq!(
            p("list(list(string))", "x"),
            Err("unsupported type".to_owned())
        );
        // `any` behaves like an untyped variable.
        assert_eq!(
            parse_override(Some(&Type::Any), &5.into(), "6", false),
            Ok(6.into())
        );
    }

    #[test]
    fn overrides_json() {
        let p = |t: &str, raw: &str| parse_override(Some(&ty(t)?), &Value::Null, raw, true);
        assert_eq!(
            p("object({a = list(number)})", r#"{"a":["1",2],"z":true}"#),
            Ok(obj(&[("a", Value::Array(vec![1.into(), 2.into()]))]))
        );
        assert_eq!(p("list(string)", r#"["a","b"]"#), Ok(strs(&["a", "b"])));
        assert_eq!(p("number", "3"), Ok(3.into()));
        assert_eq!(p("string", r#""x""#), Ok("x".into()));
        assert!(p("list(string)", "a,b").is_err());
        assert!(p("number", r#""x""#).is_err());
    }
}
