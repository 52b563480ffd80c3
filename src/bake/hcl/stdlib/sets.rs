//! Set functions. cty sets are unordered; we return lists without duplicates, ordered
//! the way cty iterates sets (strings and numbers ascending).

use hcl::Value;

use crate::bake::hcl::stdlib::args::{CallError, arg_list, failed};
use crate::bake::hcl::types::sort_set;

/// Turns list arguments into sets: a common element type (strings win over numbers and
/// bools, as cty unification does), duplicates removed.
fn as_sets(lists: &[&[Value]]) -> Vec<Vec<Value>> {
    let any_string = lists
        .iter()
        .flat_map(|l| l.iter())
        .any(|v| matches!(v, Value::String(_)));
    lists
        .iter()
        .map(|l| {
            let mut set: Vec<Value> = Vec::new();
            for v in l.iter() {
                let v = match v {
                    Value::Number(_) | Value::Bool(_) if any_string => Value::String(
                        crate::bake::hcl::types::value_to_string(v).unwrap_or_default(),
                    ),
                    other => other.clone(),
                };
                if !set.contains(&v) {
                    set.push(v);
                }
            }
            set
        })
        .collect()
}

/// The functions whose result is a set, whatever their arguments.
pub(crate) const SET_FUNCTIONS: &[&str] = &[
    "setintersection",
    "setsubtract",
    "setsymmetricdifference",
    "setunion",
];

/// Converts a list or tuple to a set: one element type, no duplicates, in set order.
pub(crate) fn to_set(list: &[Value]) -> Vec<Value> {
    let mut set = as_sets(&[list]).remove(0);
    sort_set(&mut set);
    set
}

fn lists(args: &[Value]) -> Result<Vec<&[Value]>, CallError> {
    (0..args.len()).map(|i| arg_list(args, i)).collect()
}

fn finish(mut set: Vec<Value>) -> Result<Value, CallError> {
    sort_set(&mut set);
    Ok(Value::Array(set))
}

pub(super) fn sethaselement(args: Vec<Value>) -> Result<Value, CallError> {
    let needle = args.get(1).unwrap_or(&Value::Null);
    Ok(Value::Bool(arg_list(&args, 0)?.contains(needle)))
}

pub(super) fn setunion(args: Vec<Value>) -> Result<Value, CallError> {
    let mut out: Vec<Value> = Vec::new();
    for set in as_sets(&lists(&args)?) {
        for v in set {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    finish(out)
}

pub(super) fn setintersection(args: Vec<Value>) -> Result<Value, CallError> {
    let sets = as_sets(&lists(&args)?);
    let mut iter = sets.into_iter();
    let mut out = iter.next().unwrap_or_default();
    for set in iter {
        out.retain(|v| set.contains(v));
    }
    finish(out)
}

pub(super) fn setsubtract(args: Vec<Value>) -> Result<Value, CallError> {
    let sets = as_sets(&lists(&args)?);
    let mut iter = sets.into_iter();
    let mut out = iter.next().unwrap_or_default();
    let other = iter.next().unwrap_or_default();
    out.retain(|v| !other.contains(v));
    finish(out)
}

pub(super) fn setsymmetricdifference(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: go-cty — elements that appear in an odd number of the given sets.
    let mut out: Vec<Value> = Vec::new();
    for set in as_sets(&lists(&args)?) {
        for v in set {
            if let Some(pos) = out.iter().position(|x| *x == v) {
                out.remove(pos);
            } else {
                out.push(v);
            }
        }
    }
    finish(out)
}

pub(super) fn setproduct(args: Vec<Value>) -> Result<Value, CallError> {
    if args.len() < 2 {
        return Err(failed("at least two arguments are required"));
    }
    let mut product: Vec<Vec<Value>> = vec![Vec::new()];
    for list in lists(&args)? {
        let mut next = Vec::with_capacity(product.len() * list.len());
        for prefix in &product {
            for v in list {
                let mut row = prefix.clone();
                row.push(v.clone());
                next.push(row);
            }
        }
        product = next;
    }
    Ok(Value::Array(
        product.into_iter().map(Value::Array).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::{CallError, call};
    use hcl::Value;

    fn strs(v: &[&str]) -> Value {
        Value::Array(v.iter().map(|s| Value::from(*s)).collect())
    }

    #[test]
    fn set_algebra() {
        assert_eq!(
            call("setunion", vec![strs(&["b", "a"]), strs(&["c", "a"])]),
            Ok(strs(&["a", "b", "c"]))
        );
        assert_eq!(
            call("setunion", vec![strs(&["a"]), Value::Array(vec![1.into()])]),
            Ok(strs(&["1", "a"]))
        );
        assert_eq!(
            call(
                "setintersection",
                vec![strs(&["a", "b"]), strs(&["b", "c"])]
            ),
            Ok(strs(&["b"]))
        );
        assert_eq!(
            call("setsubtract", vec![strs(&["a", "b", "c"]), strs(&["b"])]),
            Ok(strs(&["a", "c"]))
        );
        assert_eq!(
            call(
                "setsymmetricdifference",
                vec![strs(&["a", "b"]), strs(&["b", "c"])]
            ),
            Ok(strs(&["a", "c"]))
        );
        assert_eq!(
            call("sethaselement", vec![strs(&["a"]), "a".into()]),
            Ok(true.into())
        );
        assert_eq!(
            call(
                "setunion",
                vec![Value::Array(vec![10.into(), 9.into(), 10.into()])]
            ),
            Ok(Value::Array(vec![9.into(), 10.into()]))
        );
        assert!(matches!(
            call("setunion", vec![]),
            Err(CallError::Arity { .. })
        ));
        assert!(call("setunion", vec!["a".into()]).is_err());
        assert!(call("setsubtract", vec![strs(&["a"])]).is_err());
    }

    #[test]
    fn product() {
        assert_eq!(
            call("setproduct", vec![strs(&["a", "b"]), strs(&["1"])]),
            Ok(Value::Array(vec![strs(&["a", "1"]), strs(&["b", "1"])]))
        );
        assert_eq!(
            call("setproduct", vec![strs(&["a"]), strs(&[])]),
            Ok(Value::Array(vec![]))
        );
        assert!(call("setproduct", vec![strs(&["a"])]).is_err());
    }
}
