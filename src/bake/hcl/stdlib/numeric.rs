//! Numeric, comparison and logical functions (`add`, `max`, `range`, `and`, ...).

use hcl::Value;

use crate::bake::hcl::stdlib::args::{
    CallError, arg_bool, arg_f64, arg_int, arg_str, bad, failed, num,
};

/// Both arguments as integers, when both are whole and fit in i64.
fn ints(args: &[Value]) -> Option<(i64, i64)> {
    match (args.first(), args.get(1)) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => Some((a.as_i64()?, b.as_i64()?)),
        _ => None,
    }
}

/// Applies an integer operation when possible (exact), falling back to f64.
fn arith(
    args: &[Value],
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Result<Value, CallError> {
    if let Some(r) = ints(args).and_then(|(a, b)| int_op(a, b)) {
        return Ok(Value::from(r));
    }
    num(float_op(arg_f64(args, 0)?, arg_f64(args, 1)?))
}

pub(super) fn add(args: Vec<Value>) -> Result<Value, CallError> {
    arith(&args, i64::checked_add, |a, b| a + b)
}

pub(super) fn subtract(args: Vec<Value>) -> Result<Value, CallError> {
    arith(&args, i64::checked_sub, |a, b| a - b)
}

pub(super) fn multiply(args: Vec<Value>) -> Result<Value, CallError> {
    arith(&args, i64::checked_mul, |a, b| a * b)
}

pub(super) fn divide(args: Vec<Value>) -> Result<Value, CallError> {
    if arg_f64(&args, 1)? == 0.0 {
        return Err(failed("can't divide by zero"));
    }
    num(arg_f64(&args, 0)? / arg_f64(&args, 1)?)
}

pub(super) fn modulo(args: Vec<Value>) -> Result<Value, CallError> {
    if arg_f64(&args, 1)? == 0.0 {
        return Err(failed("can't use modulo by zero"));
    }
    // Compat: go-cty Modulo — the result takes the sign of the dividend (truncated).
    arith(&args, i64::checked_rem, |a, b| a % b)
}

pub(super) fn negate(args: Vec<Value>) -> Result<Value, CallError> {
    num(-arg_f64(&args, 0)?)
}

pub(super) fn absolute(args: Vec<Value>) -> Result<Value, CallError> {
    num(arg_f64(&args, 0)?.abs())
}

fn compare(args: &[Value], op: fn(f64, f64) -> bool) -> Result<Value, CallError> {
    Ok(Value::Bool(op(arg_f64(args, 0)?, arg_f64(args, 1)?)))
}

pub(super) fn greaterthan(args: Vec<Value>) -> Result<Value, CallError> {
    compare(&args, |a, b| a > b)
}

pub(super) fn greaterthanorequalto(args: Vec<Value>) -> Result<Value, CallError> {
    compare(&args, |a, b| a >= b)
}

pub(super) fn lessthan(args: Vec<Value>) -> Result<Value, CallError> {
    compare(&args, |a, b| a < b)
}

pub(super) fn lessthanorequalto(args: Vec<Value>) -> Result<Value, CallError> {
    compare(&args, |a, b| a <= b)
}

pub(super) fn and(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::Bool(arg_bool(&args, 0)? && arg_bool(&args, 1)?))
}

pub(super) fn or(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::Bool(arg_bool(&args, 0)? || arg_bool(&args, 1)?))
}

pub(super) fn not(args: Vec<Value>) -> Result<Value, CallError> {
    Ok(Value::Bool(!arg_bool(&args, 0)?))
}

pub(super) fn int(args: Vec<Value>) -> Result<Value, CallError> {
    num(arg_f64(&args, 0)?.trunc())
}

pub(super) fn ceil(args: Vec<Value>) -> Result<Value, CallError> {
    num(arg_f64(&args, 0)?.ceil())
}

pub(super) fn floor(args: Vec<Value>) -> Result<Value, CallError> {
    num(arg_f64(&args, 0)?.floor())
}

pub(super) fn signum(args: Vec<Value>) -> Result<Value, CallError> {
    let n = arg_f64(&args, 0)?;
    Ok(Value::from(if n > 0.0 {
        1
    } else if n < 0.0 {
        -1
    } else {
        0
    }))
}

pub(super) fn pow(args: Vec<Value>) -> Result<Value, CallError> {
    num(arg_f64(&args, 0)?.powf(arg_f64(&args, 1)?))
}

pub(super) fn log(args: Vec<Value>) -> Result<Value, CallError> {
    // Compat: go-cty Log — float64 math.Log(num) / math.Log(base).
    num(arg_f64(&args, 0)?.ln() / arg_f64(&args, 1)?.ln())
}

pub(super) fn max(args: Vec<Value>) -> Result<Value, CallError> {
    extreme(&args, f64::max)
}

pub(super) fn min(args: Vec<Value>) -> Result<Value, CallError> {
    extreme(&args, f64::min)
}

fn extreme(args: &[Value], pick: fn(f64, f64) -> f64) -> Result<Value, CallError> {
    if args.is_empty() {
        return Err(failed("must pass at least one number"));
    }
    let mut best = arg_f64(args, 0)?;
    for i in 1..args.len() {
        best = pick(best, arg_f64(args, i)?);
    }
    num(best)
}

pub(super) fn parseint(args: Vec<Value>) -> Result<Value, CallError> {
    let s = arg_str(&args, 0)?;
    let base = arg_int(&args, 1)?;
    if !(2..=62).contains(&base) {
        return Err(bad(
            1,
            "base must be a whole number between 2 and 62 inclusive",
        ));
    }
    let invalid = || bad(0, format!("cannot parse {s:?} as a base {base} integer"));
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let mut acc: i128 = 0;
    for c in digits.chars() {
        // Compat: go big.Int SetString — bases up to 36 are case-insensitive,
        // above that uppercase letters are 36..61.
        let d = match c {
            '0'..='9' => c as i128 - '0' as i128,
            'a'..='z' => c as i128 - 'a' as i128 + 10,
            'A'..='Z' if base <= 36 => c as i128 - 'A' as i128 + 10,
            'A'..='Z' => c as i128 - 'A' as i128 + 36,
            _ => return Err(invalid()),
        };
        if d >= i128::from(base) {
            return Err(invalid());
        }
        acc = acc
            .checked_mul(i128::from(base))
            .and_then(|a| a.checked_add(d))
            .ok_or_else(|| failed(format!("{s:?} is too large")))?;
    }
    let acc = if negative { -acc } else { acc };
    match i64::try_from(acc) {
        Ok(v) => Ok(Value::from(v)),
        Err(_) => num(acc as f64),
    }
}

pub(super) fn range(args: Vec<Value>) -> Result<Value, CallError> {
    let (start, limit, step) = match args.len() {
        1 => {
            let limit = arg_f64(&args, 0)?;
            (0.0, limit, if limit < 0.0 { -1.0 } else { 1.0 })
        }
        2 | 3 => {
            let (s, l) = (arg_f64(&args, 0)?, arg_f64(&args, 1)?);
            let step = if args.len() == 3 {
                arg_f64(&args, 2)?
            } else if s > l {
                -1.0
            } else {
                1.0
            };
            (s, l, step)
        }
        got => {
            return Err(CallError::Arity {
                expected: "1 to 3".to_owned(),
                got,
            });
        }
    };
    if step == 0.0 {
        return Err(bad(2, "step must not be zero"));
    }
    // Compat: go-cty Range rejects a step that moves away from the limit.
    if step < 0.0 && limit > start {
        return Err(bad(1, "end must be less than start when step is negative"));
    }
    if step > 0.0 && limit < start {
        return Err(bad(
            1,
            "end must be greater than start when step is positive",
        ));
    }
    let mut out = Vec::new();
    let mut v = start;
    while (step > 0.0 && v < limit) || (step < 0.0 && v > limit) {
        // Compat: go-cty Range caps the result size.
        if out.len() >= 1024 {
            return Err(failed(
                "more than 1024 values were generated; either decrease the difference \
                 between start and end or use a smaller step",
            ));
        }
        out.push(num(v)?);
        v += step;
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::{CallError, call};
    use hcl::Value;

    fn n(f: f64) -> Value {
        Value::Number(hcl::Number::from_f64(f).expect("finite"))
    }

    fn ok(name: &str, args: Vec<Value>) -> Value {
        call(name, args).expect("call succeeds")
    }

    #[test]
    fn arithmetic_keeps_integers() {
        assert_eq!(ok("add", vec![3.into(), 1.into()]), Value::from(4));
        assert_eq!(ok("add", vec!["3".into(), 1.into()]), Value::from(4));
        assert_eq!(ok("subtract", vec![3.into(), 5.into()]), Value::from(-2));
        assert_eq!(ok("multiply", vec![3.into(), n(1.5)]), n(4.5));
        assert_eq!(ok("divide", vec![3.into(), 2.into()]), n(1.5));
        assert_eq!(ok("divide", vec![4.into(), 2.into()]), Value::from(2));
        assert_eq!(ok("add", vec![n(0.1), n(0.2)]), n(0.3));
        assert_eq!(ok("divide", vec![1.into(), 3.into()]), n(1.0 / 3.0));
        assert_eq!(ok("modulo", vec![(-7).into(), 3.into()]), Value::from(-1));
        assert_eq!(ok("negate", vec![5.into()]), Value::from(-5));
        assert_eq!(ok("absolute", vec![(-5).into()]), Value::from(5));
        assert!(matches!(
            call("divide", vec![1.into(), 0.into()]),
            Err(CallError::Failed(_))
        ));
        assert!(call("modulo", vec![1.into(), 0.into()]).is_err());
        assert!(matches!(
            call("add", vec![1.into(), "x".into()]),
            Err(CallError::Argument { index: 1, .. })
        ));
        assert!(matches!(
            call("add", vec![1.into()]),
            Err(CallError::Arity { got: 1, .. })
        ));
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(
            ok("greaterthan", vec![2.into(), 1.into()]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("greaterthanorequalto", vec![1.into(), 1.into()]),
            Value::Bool(true)
        );
        assert_eq!(ok("lessthan", vec![2.into(), 1.into()]), Value::Bool(false));
        assert_eq!(
            ok("lessthanorequalto", vec![1.into(), 1.into()]),
            Value::Bool(true)
        );
        assert_eq!(
            ok("and", vec![true.into(), "false".into()]),
            Value::Bool(false)
        );
        assert_eq!(ok("or", vec![false.into(), true.into()]), Value::Bool(true));
        assert_eq!(ok("not", vec![true.into()]), Value::Bool(false));
        assert!(call("not", vec!["yes".into()]).is_err());
        assert!(call("and", vec![Value::Null, true.into()]).is_err());
    }

    #[test]
    fn rounding_and_math() {
        assert_eq!(ok("int", vec![n(-3.7)]), Value::from(-3));
        assert_eq!(ok("ceil", vec![n(1.2)]), Value::from(2));
        assert_eq!(ok("floor", vec![n(-1.2)]), Value::from(-2));
        assert_eq!(ok("signum", vec![n(-0.5)]), Value::from(-1));
        assert_eq!(ok("signum", vec![0.into()]), Value::from(0));
        assert_eq!(ok("pow", vec![2.into(), 10.into()]), Value::from(1024));
        assert_eq!(ok("log", vec![16.into(), 2.into()]), Value::from(4));
        assert_eq!(
            ok("max", vec![1.into(), 9.into(), "3".into()]),
            Value::from(9)
        );
        assert_eq!(ok("min", vec![1.into(), n(-9.5)]), n(-9.5));
        assert!(call("max", vec![]).is_err());
        assert!(call("log", vec![0.into(), 2.into()]).is_err());
    }

    #[test]
    fn parseint_bases() {
        assert_eq!(
            ok("parseint", vec!["ff".into(), 16.into()]),
            Value::from(255)
        );
        assert_eq!(
            ok("parseint", vec!["-101".into(), 2.into()]),
            Value::from(-5)
        );
        assert_eq!(
            ok("parseint", vec!["FF".into(), 16.into()]),
            Value::from(255)
        );
        assert!(call("parseint", vec!["12".into(), 1.into()]).is_err());
        assert!(call("parseint", vec!["19".into(), 8.into()]).is_err());
        assert!(call("parseint", vec!["".into(), 10.into()]).is_err());
    }

    #[test]
    fn range_forms() {
        let ints = |v: &[i64]| Value::Array(v.iter().map(|i| Value::from(*i)).collect());
        assert_eq!(ok("range", vec![3.into()]), ints(&[0, 1, 2]));
        assert_eq!(ok("range", vec![1.into(), 4.into()]), ints(&[1, 2, 3]));
        assert_eq!(ok("range", vec![4.into(), 1.into()]), ints(&[4, 3, 2]));
        assert_eq!(
            ok("range", vec![0.into(), 10.into(), 4.into()]),
            ints(&[0, 4, 8])
        );
        assert_eq!(
            ok("range", vec![0.into(), 1.into(), n(0.5)]),
            Value::Array(vec![0.into(), n(0.5)])
        );
        assert!(call("range", vec![0.into(), 1.into(), 0.into()]).is_err());
        assert!(call("range", vec![0.into(), 5.into(), (-1).into()]).is_err());
        assert!(call("range", vec![5.into(), 0.into(), 1.into()]).is_err());
        assert_eq!(ok("range", vec![(-2).into()]), ints(&[0, -1]));
        assert_eq!(ok("range", vec![0.into()]), ints(&[]));
        assert!(matches!(
            call("range", vec![]),
            Err(CallError::Arity { got: 0, .. })
        ));
        assert!(call("range", vec![5000.into()]).is_err());
    }
}
