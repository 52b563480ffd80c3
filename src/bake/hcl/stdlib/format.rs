//! `format` and `formatlist`: cty's printf dialect (`%s %d %f %q %v %t %x %X %o %b %e
//! %g %%`, flags, width, precision and `%[n]` argument indexes).

use hcl::Value;

use crate::bake::hcl::stdlib::args::{CallError, arg_str, failed};
use crate::bake::hcl::stdlib::encoding::encode_json;
use crate::bake::hcl::stdlib::strings::graphemes;
use crate::bake::hcl::types::{parse_number, value_to_string};

/// One parsed `%` directive.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

pub(super) fn format(args: Vec<Value>) -> Result<Value, CallError> {
    let fmt = arg_str(&args, 0)?;
    let rest = args.get(1..).unwrap_or_default();
    format_values(fmt, rest).map(Value::String).map_err(failed)
}

pub(super) fn formatlist(args: Vec<Value>) -> Result<Value, CallError> {
    let fmt = arg_str(&args, 0)?;
    let rest = args.get(1..).unwrap_or_default();
    let mut len: Option<(usize, usize)> = None;
    for (i, v) in rest.iter().enumerate() {
        let Value::Array(items) = v else { continue };
        match len {
            Some((l, j)) if l != items.len() => {
                return Err(CallError::Argument {
                    index: i + 1,
                    message: format!(
                        "argument {} has length {}, which is inconsistent with argument {} of length {l}",
                        i + 1,
                        items.len(),
                        j + 1
                    ),
                });
            }
            Some(_) => {}
            None => len = Some((items.len(), i)),
        }
    }
    // Compat: go-cty FormatList — with no list arguments there is exactly one result.
    let count = len.map_or(1, |(l, _)| l);
    let mut out = Vec::with_capacity(count);
    for row in 0..count {
        let row_args: Vec<Value> = rest
            .iter()
            .map(|v| match v {
                Value::Array(items) => items.get(row).cloned().unwrap_or(Value::Null),
                other => other.clone(),
            })
            .collect();
        let s = format_values(fmt, &row_args)
            .map_err(|e| failed(format!("error on format iteration {row}: {e}")))?;
        out.push(Value::String(s));
    }
    Ok(Value::Array(out))
}

/// Formats `args` according to `fmt`.
fn format_values(fmt: &str, args: &[Value]) -> Result<String, String> {
    let chars: Vec<(usize, char)> = fmt.char_indices().collect();
    let mut out = String::new();
    let mut next_arg = 0usize;
    let mut max_used = 0usize;
    let mut i = 0usize;
    while let Some(&(offset, c)) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.get(i) {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            i += 1;
        }
        if let Some(&(_, '[')) = chars.get(i) {
            let start = i + 1;
            let mut end = start;
            while chars.get(end).is_some_and(|(_, d)| d.is_ascii_digit()) {
                end += 1;
            }
            let digits: String = chars
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|(_, d)| d)
                .collect();
            match (digits.parse::<usize>(), chars.get(end)) {
                (Ok(n), Some((_, ']'))) if n >= 1 => next_arg = n - 1,
                _ => return Err(format!("invalid argument index at offset {offset}")),
            }
            i = end + 1;
        }
        let digits = |i: &mut usize| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.get(*i).and_then(|(_, d)| d.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                *i += 1;
            }
            n
        };
        spec.width = digits(&mut i);
        if let Some(&(_, '.')) = chars.get(i) {
            i += 1;
            spec.precision = Some(digits(&mut i).unwrap_or(0));
        }
        let Some(&(_, verb)) = chars.get(i) else {
            return Err(format!(
                "format string ends with an incomplete directive at offset {offset}"
            ));
        };
        i += 1;
        spec.verb = verb;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let end = chars.get(i).map_or(fmt.len(), |(o, _)| *o);
        let raw = fmt.get(offset..end).unwrap_or_default();
        if !"vtbdoxXeEfgGsq".contains(verb) {
            return Err(format!(
                "unsupported format verb '{verb}' in {raw:?} at offset {offset}"
            ));
        }
        let Some(arg) = args.get(next_arg) else {
            return Err(format!(
                "not enough arguments for {raw:?} at {offset}: need index {} but have {} total",
                next_arg + 1,
                args.len()
            ));
        };
        next_arg += 1;
        max_used = max_used.max(next_arg);
        let text = format_one(&spec, arg)
            .map_err(|e| format!("unsupported value for {raw:?} at {offset}: {e}"))?;
        out.push_str(&text);
    }
    // Compat: go-cty format — unused arguments are an error, to catch mistakes.
    if max_used < args.len() {
        if max_used == 0 {
            return Err("too many arguments; no verbs in format string".to_owned());
        }
        return Err(format!(
            "too many arguments; only {max_used} used by format string"
        ));
    }
    Ok(out)
}

fn format_one(spec: &Spec, arg: &Value) -> Result<String, String> {
    if arg.is_null() && spec.verb != 'v' {
        return Err("null value cannot be formatted".to_owned());
    }
    let body = match spec.verb {
        'v' => match arg {
            Value::String(s) if !spec.sharp => s.clone(),
            // Compat: go-cty formats `%v` numbers with big.Float Text('g', -1).
            Value::Number(n) if !spec.sharp => general_form(
                n.as_f64().unwrap_or(0.0),
                None,
                false,
                n.as_f64() < Some(0.0),
            ),
            _ => {
                let mut s = String::new();
                encode_json(arg, &mut s);
                s
            }
        },
        's' | 'q' => {
            let s = value_to_string(arg).ok_or("a string is required")?;
            // Compat: go-cty only truncates for a positive precision.
            let s = match spec.precision {
                Some(p) if p > 0 => graphemes(&s).into_iter().take(p).collect(),
                _ => s,
            };
            if spec.verb == 'q' {
                let mut quoted = String::new();
                encode_json(&Value::String(s), &mut quoted);
                quoted
            } else {
                s
            }
        }
        't' => match arg {
            Value::Bool(b) => b.to_string(),
            Value::String(s) if s == "true" || s == "1" => "true".to_owned(),
            Value::String(s) if s == "false" || s == "0" => "false".to_owned(),
            _ => return Err("a bool is required".to_owned()),
        },
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = to_f64(arg)?;
            if n.fract() != 0.0 {
                return Err("an integer is required".to_owned());
            }
            let mag = n.abs();
            let digits = if mag < 1.8e19 {
                let m = mag as u64;
                match spec.verb {
                    'b' => format!("{m:b}"),
                    'o' => format!("{}{m:o}", if spec.sharp { "0" } else { "" }),
                    'x' => format!("{}{m:x}", if spec.sharp { "0x" } else { "" }),
                    'X' => format!("{}{m:X}", if spec.sharp { "0X" } else { "" }),
                    _ => m.to_string(),
                }
            } else {
                format!("{mag}")
            };
            return Ok(pad_number(spec, signed(spec, n < 0.0, digits)));
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let n = to_f64(arg)?;
            let mag = n.abs();
            let digits = match spec.verb {
                'f' | 'F' => format!("{mag:.*}", spec.precision.unwrap_or(6)),
                'e' | 'E' => exp_form(mag, spec.precision.unwrap_or(6), spec.verb == 'E'),
                _ => general_form(mag, spec.precision, spec.verb == 'G', false),
            };
            return Ok(pad_number(spec, signed(spec, n < 0.0, digits)));
        }
        other => return Err(format!("unsupported format verb '{other}'")),
    };
    Ok(pad(spec, body))
}

fn to_f64(arg: &Value) -> Result<f64, String> {
    let n = match arg {
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_number(s),
        _ => None,
    };
    n.and_then(|n| n.as_f64())
        .ok_or_else(|| "a number is required".to_owned())
}

fn signed(spec: &Spec, negative: bool, digits: String) -> String {
    if negative {
        format!("-{digits}")
    } else if spec.plus {
        format!("+{digits}")
    } else if spec.space {
        format!(" {digits}")
    } else {
        digits
    }
}

/// Go's `%e`: mantissa with `precision` decimals, exponent signed with ≥ 2 digits.
fn exp_form(mag: f64, precision: usize, upper: bool) -> String {
    let s = format!("{mag:.precision$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{:02}", exp.abs())
}

/// Go's `%g`: `%e` when the exponent is below -4 or at least the precision (6 for the
/// shortest form), `%f` otherwise, without trailing zeros.
fn general_form(x: f64, precision: Option<usize>, upper: bool, negative: bool) -> String {
    let mag = x.abs();
    let sign = if negative { "-" } else { "" };
    if mag == 0.0 {
        return format!("{sign}0");
    }
    // The shortest digits that round-trip, or `precision` significant digits.
    let sci = match precision {
        Some(p) => format!("{mag:.*e}", p.max(1) - 1),
        None => format!("{mag:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let limit = precision.map_or(6, |p| p.max(1) as i32);
    if exp < -4 || exp >= limit {
        let mantissa = if mantissa.contains('.') && precision.is_some() {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        let letter = if upper { 'E' } else { 'e' };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}{letter}{esign}{:02}", exp.abs());
    }
    let decimals = (digits.len() as i32 - 1 - exp).max(0) as usize;
    let fixed = format!("{mag:.decimals$}");
    let fixed = if fixed.contains('.') {
        fixed.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        fixed
    };
    format!("{sign}{fixed}")
}

fn pad(spec: &Spec, body: String) -> String {
    let len = graphemes(&body).len();
    match spec.width {
        Some(w) if w > len => {
            let fill = (if spec.zero { "0" } else { " " }).repeat(w - len);
            if spec.minus {
                body + &fill
            } else {
                fill + &body
            }
        }
        _ => body,
    }
}

/// Pads a number, putting zero padding between the sign and the digits.
fn pad_number(spec: &Spec, body: String) -> String {
    let len = graphemes(&body).len();
    match spec.width {
        Some(w) if w > len && spec.zero && !spec.minus => {
            let (sign, digits) = match body.chars().next() {
                Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_owned()),
                _ => (String::new(), body),
            };
            format!("{sign}{}{digits}", "0".repeat(w - len))
        }
        _ => pad(spec, body),
    }
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::call;
    use hcl::Value;

    fn f(fmt: &str, args: Vec<Value>) -> String {
        let mut all = vec![Value::from(fmt)];
        all.extend(args);
        match call("format", all) {
            Ok(Value::String(s)) => s,
            other => panic!("format {fmt:?}: unexpected {other:?}"),
        }
    }

    fn n(x: f64) -> Value {
        Value::Number(hcl::Number::from_f64(x).expect("finite"))
    }

    #[test]
    fn verbs() {
        assert_eq!(f("%03d", vec![7.into()]), "007");
        assert_eq!(f("%d", vec!["12".into()]), "12");
        assert_eq!(
            f("%+d|%5d|%-5d|", vec![3.into(), (-42).into(), 1.into()]),
            "+3|  -42|1    |"
        );
        assert_eq!(f("%05d", vec![(-42).into()]), "-0042");
        assert_eq!(f("%s-%s", vec!["a".into(), 1.into()]), "a-1");
        assert_eq!(
            f("%.2s|%5s|%-4s|", vec!["abc".into(), "x".into(), "y".into()]),
            "ab|    x|y   |"
        );
        assert_eq!(f("%f", vec![n(1.5)]), "1.500000");
        assert_eq!(f("%.2f", vec![n(1.23456)]), "1.23");
        assert_eq!(f("%8.3f", vec![n(1.23456)]), "   1.235");
        assert_eq!(f("%e", vec![n(1234.5678)]), "1.234568e+03");
        assert_eq!(f("%.1E", vec![n(0.00012)]), "1.2E-04");
        assert_eq!(f("%g", vec![n(1.5)]), "1.5");
        assert_eq!(f("%g", vec![n(1e-7)]), "1e-07");
        assert_eq!(f("%g", vec![1_000_000.into()]), "1e+06");
        assert_eq!(f("%.3g", vec![n(1234.5)]), "1.23e+03");
        assert_eq!(f("%v", vec![1_000_000.into()]), "1e+06");
        assert_eq!(f("%v", vec![123_456.into()]), "123456");
        assert_eq!(f("%v", vec![n(-0.5)]), "-0.5");
        assert_eq!(f("%v|%#v", vec![Value::Null, Value::Null]), "null|null");
        assert_eq!(f("%05s|%.0s", vec!["ab".into(), "cd".into()]), "000ab|cd");
        assert_eq!(f("%q", vec!["a\"b\n<".into()]), "\"a\\\"b\\n\\u003c\"");
        assert_eq!(
            f("%v %v %v", vec!["s".into(), 1.into(), true.into()]),
            "s 1 true"
        );
        assert_eq!(
            f("%v", vec![Value::Array(vec![1.into(), "a".into()])]),
            "[1,\"a\"]"
        );
        assert_eq!(f("%#v", vec!["s".into()]), "\"s\"");
        assert_eq!(f("%t", vec![true.into()]), "true");
        assert_eq!(
            f(
                "%x %X %o %b",
                vec![255.into(), 255.into(), 8.into(), 5.into()]
            ),
            "ff FF 10 101"
        );
        assert_eq!(f("%#x", vec![255.into()]), "0xff");
        assert_eq!(f("100%%", vec![]), "100%");
        assert_eq!(f("%[2]s %[1]s %s", vec!["a".into(), "b".into()]), "b a b");
        assert_eq!(f("héllo %s", vec!["w".into()]), "héllo w");
    }

    #[test]
    fn errors() {
        assert!(call("format", vec!["%s".into()]).is_err());
        assert!(call("format", vec!["%s".into(), "a".into(), "b".into()]).is_err());
        assert!(call("format", vec!["%d".into(), n(1.5)]).is_err());
        assert!(call("format", vec!["%d".into(), "x".into()]).is_err());
        assert!(call("format", vec!["%s".into(), Value::Null]).is_err());
        assert!(call("format", vec!["%s".into(), Value::Array(vec![])]).is_err());
        assert!(call("format", vec!["%t".into(), 1.into()]).is_err());
        assert!(call("format", vec!["%y".into(), 1.into()]).is_err());
        assert!(call("format", vec!["%".into()]).is_err());
        assert!(call("format", vec![]).is_err());
    }

    #[test]
    fn formatlist() {
        let strs = |v: &[&str]| Value::Array(v.iter().map(|s| Value::from(*s)).collect());
        assert_eq!(
            call(
                "formatlist",
                vec!["%s=%s".into(), strs(&["a", "b"]), "x".into()]
            ),
            Ok(strs(&["a=x", "b=x"]))
        );
        assert_eq!(
            call(
                "formatlist",
                vec!["%s-%s".into(), strs(&["a", "b"]), strs(&["1", "2"])]
            ),
            Ok(strs(&["a-1", "b-2"]))
        );
        assert_eq!(call("formatlist", vec!["x".into()]), Ok(strs(&["x"])));
        assert!(
            call(
                "formatlist",
                vec!["%s%s".into(), strs(&["a"]), strs(&["1", "2"])]
            )
            .is_err()
        );
        assert!(call("formatlist", vec!["%s".into(), Value::Null]).is_err());
    }
}
