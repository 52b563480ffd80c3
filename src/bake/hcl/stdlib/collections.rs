//! Collection functions over lists, tuples, maps and objects (`length`, `lookup`,
//! `merge`, `flatten`, `slice`, ...).

use hcl::{Map, Value};

use crate::bake::hcl::stdlib::args::{
    CallError, arg_int, arg_list, arg_obj, arg_str, bad, display, failed, take,
};

pub(super) fn length(args: Vec<Value>) -> Result<Value, CallError> {
    let n = match args.first() {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(o)) => o.len(),
        _ => return Err(bad(0, "collection must be a list, a map or a tuple")),
    };
    Ok(Value::from(n))
}

/// An object's entries in key order, which is how cty iterates maps and objects.
fn sorted_entries(obj: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = obj.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

pub(super) fn keys(args: Vec<Value>) -> Result<Value, CallError> {
    let obj = arg_obj(&args, 0)?;
    Ok(Value::Array(
        sorted_entries(obj)
            .into_iter()
            .map(|(k, _)| Value::String(k.clone()))
            .collect(),
    ))
}

pub(super) fn values(args: Vec<Value>) -> Result<Value, CallError> {
    let obj = arg_obj(&args, 0)?;
    Ok(Value::Array(
        sorted_entries(obj)
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

pub(super) fn lookup(mut args: Vec<Value>) -> Result<Value, CallError> {
    if args.len() > 3 {
        return Err(CallError::Arity {
            expected: "2 or 3".to_owned(),
            got: args.len(),
        });
    }
    let key = arg_str(&args, 1)?.to_owned();
    if let Some(v) = arg_obj(&args, 0)?.get(&key) {
        return Ok(v.clone());
    }
    if args.len() == 3 {
        return Ok(take(&mut args, 2));
    }
    Err(bad(0, format!("the given object has no attribute {key:?}")))
}

pub(super) fn element(args: Vec<Value>) -> Result<Value, CallError> {
    let list = arg_list(&args, 0)?;
    let i = arg_int(&args, 1)?;
    if i < 0 {
        return Err(bad(1, "cannot use element function with a negative index"));
    }
    if list.is_empty() {
        return Err(bad(0, "cannot use element function with an empty list"));
    }
    // Compat: go-cty Element wraps the index around the list length.
    let idx = (i as u64 % list.len() as u64) as usize;
    Ok(list.get(idx).cloned().unwrap_or(Value::Null))
}

/// Looks up `key` in a list (by whole-number index) or an object (by string key).
fn subscript<'a>(collection: &'a Value, key: &Value) -> Option<&'a Value> {
    match collection {
        Value::Array(a) => {
            let i = match key {
                Value::Number(n) => n.as_i64()?,
                Value::String(s) => s.parse::<i64>().ok()?,
                _ => return None,
            };
            a.get(usize::try_from(i).ok()?)
        }
        Value::Object(o) => match key {
            Value::String(s) => o.get(s),
            Value::Number(_) | Value::Bool(_) => o.get(&display(key)),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn index(args: Vec<Value>) -> Result<Value, CallError> {
    match (args.first(), args.get(1)) {
        (Some(c @ (Value::Array(_) | Value::Object(_))), Some(k)) => subscript(c, k)
            .cloned()
            .ok_or_else(|| failed("invalid index")),
        _ => Err(bad(0, "collection must be a list, a map or a tuple")),
    }
}

pub(super) fn hasindex(args: Vec<Value>) -> Result<Value, CallError> {
    match (args.first(), args.get(1)) {
        (Some(c @ (Value::Array(_) | Value::Object(_))), Some(k)) => {
            Ok(Value::Bool(subscript(c, k).is_some()))
        }
        _ => Err(bad(0, "collection must be a list, a map or a tuple")),
    }
}

pub(super) fn indexof(args: Vec<Value>) -> Result<Value, CallError> {
    let Some(Value::Array(list)) = args.first() else {
        return Err(bad(0, "argument must be a list or tuple"));
    };
    if list.is_empty() {
        return Err(failed("cannot search an empty list"));
    }
    let needle = args.get(1).unwrap_or(&Value::Null);
    list.iter()
        .position(|v| v == needle)
        .map(Value::from)
        .ok_or_else(|| failed("item not found"))
}

pub(super) fn coalesce(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: go-cty Coalesce unifies the argument types, so mixing strings with
    // numbers or bools yields the string form.
    let any_string = args.iter().any(|v| matches!(v, Value::String(_)));
    let all_primitive = args.iter().all(|v| {
        matches!(
            v,
            Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_)
        )
    });
    for v in args {
        if v.is_null() {
            continue;
        }
        if any_string && all_primitive {
            return Ok(Value::String(display_plain(&v)));
        }
        return Ok(v);
    }
    Err(failed("no non-null arguments"))
}

fn display_plain(v: &Value) -> String {
    crate::bake::hcl::types::value_to_string(v).unwrap_or_default()
}

pub(super) fn coalescelist(args: Vec<Value>) -> Result<Value, CallError> {
    for (i, v) in args.into_iter().enumerate() {
        match v {
            Value::Null => {}
            Value::Array(a) if a.is_empty() => {}
            Value::Array(_) => return Ok(v),
            _ => return Err(bad(i, "coalescelist arguments must be lists or tuples")),
        }
    }
    Err(failed("no non-null arguments"))
}

pub(super) fn compact(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: go-cty Compact takes list(string): elements convert, nulls are dropped.
    let mut out = Vec::new();
    for (i, v) in arg_list(&args, 0)?.iter().enumerate() {
        if v.is_null() {
            continue;
        }
        let s = crate::bake::hcl::types::value_to_string(v)
            .ok_or_else(|| bad(0, format!("element {i}: a string is required")))?;
        if !s.is_empty() {
            out.push(Value::String(s));
        }
    }
    Ok(Value::Array(out))
}

pub(super) fn concat(args: Vec<Value>) -> Result<Value, CallError> {
    if args.is_empty() {
        return Err(failed("at least one argument is required"));
    }
    let mut out = Vec::new();
    for v in args {
        if let Value::Array(a) = v {
            out.extend(a);
        }
    }
    Ok(Value::Array(out))
}

pub(super) fn contains(args: Vec<Value>) -> Result<Value, CallError> {
    let needle = args.get(1).unwrap_or(&Value::Null);
    Ok(Value::Bool(arg_list(&args, 0)?.contains(needle)))
}

pub(super) fn distinct(args: Vec<Value>) -> Result<Value, CallError> {
    let mut out: Vec<Value> = Vec::new();
    for v in arg_list(&args, 0)? {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(Value::Array(out))
}

pub(super) fn chunklist(args: Vec<Value>) -> Result<Value, CallError> {
    let list = arg_list(&args, 0)?;
    let size = arg_int(&args, 1)?;
    if list.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    if size < 0 {
        return Err(bad(1, "the size argument must be positive"));
    }
    if size == 0 {
        return Ok(Value::Array(vec![Value::Array(list.to_vec())]));
    }
    Ok(Value::Array(
        list.chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
}

pub(super) fn flatten(args: Vec<Value>) -> Result<Value, CallError> {
    fn walk(items: &[Value], out: &mut Vec<Value>) {
        for v in items {
            match v {
                Value::Array(inner) => walk(inner, out),
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    walk(arg_list(&args, 0)?, &mut out);
    Ok(Value::Array(out))
}

pub(super) fn slice(args: Vec<Value>) -> Result<Value, CallError> {
    let list = arg_list(&args, 0)?;
    let start = arg_int(&args, 1)?;
    let end = arg_int(&args, 2)?;
    if start < 0 {
        return Err(bad(1, "start index must not be less than zero"));
    }
    if start > list.len() as i64 {
        return Err(bad(
            1,
            "start index must not be greater than the length of the list",
        ));
    }
    if end < 0 {
        return Err(bad(2, "end index must not be less than zero"));
    }
    if end > list.len() as i64 {
        return Err(bad(
            2,
            "end index must not be greater than the length of the list",
        ));
    }
    if start > end {
        return Err(bad(1, "start index must not be greater than end index"));
    }
    Ok(Value::Array(
        list.get(start as usize..end as usize)
            .unwrap_or_default()
            .to_vec(),
    ))
}

pub(super) fn sort(args: Vec<Value>) -> Result<Value, CallError> {
    let mut items = arg_list(&args, 0)?.to_vec();
    items.sort_by(|a, b| match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    });
    Ok(Value::Array(items))
}

pub(super) fn reverselist(args: Vec<Value>) -> Result<Value, CallError> {
    let mut items = arg_list(&args, 0)?.to_vec();
    items.reverse();
    Ok(Value::Array(items))
}

pub(super) fn zipmap(args: Vec<Value>) -> Result<Value, CallError> {
    let keys = arg_list(&args, 0)?;
    let values = arg_list(&args, 1)?;
    if keys.len() != values.len() {
        return Err(failed(format!(
            "number of keys ({}) does not match number of values ({})",
            keys.len(),
            values.len()
        )));
    }
    let mut out = Map::new();
    for (k, v) in keys.iter().zip(values) {
        let Value::String(k) = k else {
            return Err(bad(0, "keys must be strings"));
        };
        out.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(out))
}

pub(super) fn merge(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: go-cty Merge — when every argument is null the result is null.
    if !args.is_empty() && args.iter().all(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut out = Map::new();
    for (i, v) in args.into_iter().enumerate() {
        match v {
            Value::Null => {}
            Value::Object(o) => out.extend(o),
            other => {
                return Err(bad(
                    i,
                    format!(
                        "arguments must be maps or objects, got {:?}",
                        crate::bake::hcl::types::type_name(&other)
                    ),
                ));
            }
        }
    }
    // Compat: go-cty objects and maps iterate in key order.
    out.sort_keys();
    Ok(Value::Object(out))
}

pub(super) fn equal(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::Bool(args.first() == args.get(1)))
}

pub(super) fn notequal(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::Bool(args.first() != args.get(1)))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::{CallError, call};
    use hcl::{Map, Value};

    fn list(v: Vec<Value>) -> Value {
        Value::Array(v)
    }

    fn strs(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::from(*s)).collect())
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<Map<_, _>>(),
        )
    }

    #[test]
    fn length_keys_values() {
        assert_eq!(call("length", vec![strs(&["a", "b"])]), Ok(2.into()));
        assert_eq!(call("length", vec![obj(&[("a", 1.into())])]), Ok(1.into()));
        assert!(call("length", vec!["abcd".into()]).is_err());
        assert!(call("length", vec![Value::Null]).is_err());
        assert!(call("length", vec![1.into()]).is_err());
        let o = obj(&[("b", 2.into()), ("a", 1.into())]);
        assert_eq!(call("keys", vec![o.clone()]), Ok(strs(&["a", "b"])));
        assert_eq!(call("values", vec![o]), Ok(list(vec![1.into(), 2.into()])));
        assert!(call("keys", vec![strs(&[])]).is_err());
    }

    #[test]
    fn lookup_element_index() {
        let o = obj(&[("a", 1.into())]);
        assert_eq!(call("lookup", vec![o.clone(), "a".into()]), Ok(1.into()));
        assert_eq!(
            call("lookup", vec![o.clone(), "b".into(), "d".into()]),
            Ok("d".into())
        );
        assert!(call("lookup", vec![o.clone(), "b".into()]).is_err());
        assert!(matches!(
            call("lookup", vec![o.clone(), "b".into(), 1.into(), 2.into()]),
            Err(CallError::Arity { .. })
        ));
        let l = strs(&["a", "b", "c"]);
        assert_eq!(call("element", vec![l.clone(), 4.into()]), Ok("b".into()));
        assert!(call("element", vec![strs(&[]), 0.into()]).is_err());
        assert!(call("element", vec![l.clone(), (-1).into()]).is_err());
        assert_eq!(call("index", vec![l.clone(), 2.into()]), Ok("c".into()));
        assert_eq!(call("index", vec![o.clone(), "a".into()]), Ok(1.into()));
        assert!(call("index", vec![l.clone(), 3.into()]).is_err());
        assert_eq!(call("hasindex", vec![l.clone(), 2.into()]), Ok(true.into()));
        assert_eq!(call("hasindex", vec![o, "z".into()]), Ok(false.into()));
        assert_eq!(call("indexof", vec![l.clone(), "b".into()]), Ok(1.into()));
        assert!(call("indexof", vec![l, "z".into()]).is_err());
        assert!(call("indexof", vec![strs(&[]), "z".into()]).is_err());
        assert!(call("indexof", vec!["abc".into(), "z".into()]).is_err());
    }

    #[test]
    fn coalescing() {
        assert_eq!(
            call("coalesce", vec![Value::Null, "a".into()]),
            Ok("a".into())
        );
        assert_eq!(call("coalesce", vec![1.into(), "a".into()]), Ok("1".into()));
        assert_eq!(call("coalesce", vec![Value::Null, 2.into()]), Ok(2.into()));
        assert!(call("coalesce", vec![Value::Null]).is_err());
        assert_eq!(
            call("coalescelist", vec![strs(&[]), strs(&["x"])]),
            Ok(strs(&["x"]))
        );
        assert!(call("coalescelist", vec![strs(&[])]).is_err());
        assert!(call("coalescelist", vec!["a".into()]).is_err());
        assert_eq!(
            call(
                "compact",
                vec![list(vec!["a".into(), "".into(), Value::Null, 1.into()])]
            ),
            Ok(strs(&["a", "1"]))
        );
        assert!(call("compact", vec![list(vec![strs(&[])])]).is_err());
    }

    #[test]
    fn list_shaping() {
        assert_eq!(
            call("concat", vec![strs(&["a"]), strs(&["b", "c"])]),
            Ok(strs(&["a", "b", "c"]))
        );
        assert!(call("concat", vec![]).is_err());
        assert!(call("concat", vec!["a".into()]).is_err());
        assert_eq!(
            call("contains", vec![strs(&["a"]), "a".into()]),
            Ok(true.into())
        );
        assert_eq!(
            call("contains", vec![list(vec![1.into()]), "1".into()]),
            Ok(false.into())
        );
        assert_eq!(
            call("distinct", vec![strs(&["b", "a", "b"])]),
            Ok(strs(&["b", "a"]))
        );
        assert_eq!(
            call("chunklist", vec![strs(&["a", "b", "c"]), 2.into()]),
            Ok(list(vec![strs(&["a", "b"]), strs(&["c"])]))
        );
        assert!(call("chunklist", vec![strs(&["a"]), (-1).into()]).is_err());
        assert_eq!(
            call(
                "flatten",
                vec![list(vec![
                    strs(&["a"]),
                    list(vec![strs(&["b"])]),
                    "c".into()
                ])]
            ),
            Ok(strs(&["a", "b", "c"]))
        );
        assert_eq!(
            call("slice", vec![strs(&["a", "b", "c"]), 1.into(), 3.into()]),
            Ok(strs(&["b", "c"]))
        );
        assert!(call("slice", vec![strs(&["a"]), 0.into(), 2.into()]).is_err());
        assert!(call("slice", vec![strs(&["a"]), 1.into(), 0.into()]).is_err());
        assert!(call("slice", vec![strs(&["a"]), 2.into(), 2.into()]).is_err());
        assert!(call("slice", vec![strs(&["a"]), (-1).into(), 1.into()]).is_err());
        assert_eq!(
            call("chunklist", vec![strs(&[]), 0.into()]),
            Ok(Value::Array(vec![]))
        );
        assert_eq!(
            call(
                "sort",
                vec![list(vec!["b".into(), "a".into(), 10.into(), 9.into()])]
            ),
            Ok(strs(&["10", "9", "a", "b"]))
        );
        assert!(call("sort", vec![list(vec![Value::Null])]).is_err());
        assert_eq!(
            call("reverselist", vec![strs(&["a", "b"])]),
            Ok(strs(&["b", "a"]))
        );
        assert_eq!(
            call(
                "zipmap",
                vec![strs(&["a", "b"]), list(vec![1.into(), 2.into()])]
            ),
            Ok(obj(&[("a", 1.into()), ("b", 2.into())]))
        );
        assert!(call("zipmap", vec![strs(&["a"]), strs(&[])]).is_err());
    }

    #[test]
    fn merge_and_equality() {
        let merged = call(
            "merge",
            vec![
                obj(&[("b", 1.into()), ("a", 1.into())]),
                Value::Null,
                obj(&[("b", 2.into())]),
            ],
        );
        assert_eq!(merged, Ok(obj(&[("a", 1.into()), ("b", 2.into())])));
        assert!(call("merge", vec!["x".into()]).is_err());
        assert_eq!(call("merge", vec![]), Ok(obj(&[])));
        assert_eq!(call("merge", vec![Value::Null]), Ok(Value::Null));
        assert_eq!(call("equal", vec![1.into(), 1.into()]), Ok(true.into()));
        assert_eq!(
            call("equal", vec![Value::Null, Value::Null]),
            Ok(true.into())
        );
        assert_eq!(call("equal", vec![1.into(), "1".into()]), Ok(false.into()));
        assert_eq!(call("notequal", vec![1.into(), 2.into()]), Ok(true.into()));
        assert!(matches!(
            call("equal", vec![1.into()]),
            Err(CallError::Arity { .. })
        ));
    }
}
