//! Tests for the function table and argument conversion.

use super::{CallError, NAMES, call};
use hcl::Value;

#[test]
fn names_are_complete_and_sorted() {
    assert_eq!(NAMES.len(), 106);
    assert!(
        NAMES.windows(2).all(|w| w[0] < w[1]),
        "NAMES must be sorted and unique"
    );
}

#[test]
fn every_name_is_callable_except_evaluator_forms() {
    for name in NAMES {
        let result = call(name, vec![]);
        if matches!(*name, "try" | "can" | "convert") {
            assert_eq!(result, Err(CallError::Unknown), "{name}");
        } else {
            assert_ne!(result, Err(CallError::Unknown), "{name}");
        }
    }
    assert_eq!(call("nope", vec![]), Err(CallError::Unknown));
}

#[test]
fn arity_errors_describe_the_signature() {
    assert_eq!(
        call("upper", vec![]),
        Err(CallError::Arity {
            expected: "1".to_owned(),
            got: 0
        })
    );
    assert_eq!(
        call("join", vec![]),
        Err(CallError::Arity {
            expected: "at least 2".to_owned(),
            got: 0
        })
    );
}

#[test]
fn arguments_convert_cty_style() {
    assert_eq!(call("upper", vec![1.5.into()]), Ok("1.5".into()));
    assert_eq!(call("upper", vec![false.into()]), Ok("FALSE".into()));
    assert_eq!(call("add", vec!["1.5".into(), 1.into()]), Ok(2.5.into()));
    assert_eq!(call("not", vec!["false".into()]), Ok(true.into()));
    assert_eq!(call("not", vec!["1".into()]), Ok(false.into()));
    assert!(call("not", vec!["yes".into()]).is_err());
    assert!(matches!(
        call("add", vec![true.into(), 1.into()]),
        Err(CallError::Argument { index: 0, .. })
    ));
    assert!(matches!(
        call("upper", vec![Value::Array(vec![])]),
        Err(CallError::Argument { index: 0, .. })
    ));
    assert!(matches!(
        call("keys", vec![Value::Null]),
        Err(CallError::Argument { index: 0, .. })
    ));
    assert!(matches!(
        call("sort", vec![Value::Array(vec![Value::Array(vec![])])]),
        Err(CallError::Argument { index: 0, .. })
    ));
    assert_eq!(
        call("sort", vec![Value::Array(vec![2.into(), true.into()])]),
        Ok(Value::Array(vec!["2".into(), "true".into()]))
    );
}
