//! The HCL standard library bake exposes (go-cty stdlib, go-cty-funcs and bake's own
//! additions): 106 functions, looked up by name. Part of stage 1 (bake files → targets).
//!
//! `try`, `can` and `convert` take unevaluated expressions or type expressions, so the
//! evaluator handles them itself; they are listed in [`NAMES`] for suggestions only.

mod args;
mod collections;
mod encoding;
mod format;
mod net;
mod numeric;
mod semver;
mod sets;
mod strings;
mod time;

use hcl::{Number, Value};

use crate::bake::hcl::types::{parse_number, value_to_string};

pub(crate) use self::args::{CallError, snap};
pub(crate) use self::sets::{SET_FUNCTIONS, to_set};

/// Every function name bake knows, sorted.
pub(crate) const NAMES: &[&str] = &[
    "absolute",
    "add",
    "and",
    "base64decode",
    "base64encode",
    "basename",
    "bcrypt",
    "byteslen",
    "bytesslice",
    "can",
    "ceil",
    "chomp",
    "chunklist",
    "cidrhost",
    "cidrnetmask",
    "cidrsubnet",
    "cidrsubnets",
    "coalesce",
    "coalescelist",
    "compact",
    "concat",
    "contains",
    "convert",
    "csvdecode",
    "dirname",
    "distinct",
    "divide",
    "element",
    "equal",
    "flatten",
    "floor",
    "format",
    "formatdate",
    "formatlist",
    "formattimestamp",
    "greaterthan",
    "greaterthanorequalto",
    "hasindex",
    "homedir",
    "indent",
    "index",
    "indexof",
    "int",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lessthan",
    "lessthanorequalto",
    "log",
    "lookup",
    "lower",
    "max",
    "md5",
    "merge",
    "min",
    "modulo",
    "multiply",
    "negate",
    "not",
    "notequal",
    "or",
    "parseint",
    "pow",
    "range",
    "regex",
    "regex_replace",
    "regexall",
    "replace",
    "reverse",
    "reverselist",
    "rsadecrypt",
    "sanitize",
    "semvercmp",
    "sethaselement",
    "setintersection",
    "setproduct",
    "setsubtract",
    "setsymmetricdifference",
    "setunion",
    "sha1",
    "sha256",
    "sha512",
    "signum",
    "slice",
    "sort",
    "split",
    "strlen",
    "substr",
    "subtract",
    "timeadd",
    "timestamp",
    "title",
    "trim",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "try",
    "unixtimestampparse",
    "upper",
    "urlencode",
    "uuidv4",
    "uuidv5",
    "values",
    "zipmap",
];

/// What a parameter accepts; arguments are converted to it before the call, as cty does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    /// A string; numbers and bools convert to their string form.
    Str,
    /// A number; numeric strings convert.
    Num,
    /// A bool; `"true"`/`"false"` convert.
    Bool,
    /// Any non-null value.
    Any,
    /// Any value, null included.
    Nullable,
    /// A list, tuple or set (an array).
    List,
    /// A list of strings; elements convert like [`P::Str`].
    StrList,
    /// A map or object.
    Object,
}

/// The implementation of one function, called with converted arguments.
type Impl = fn(Vec<Value>) -> Result<Value, CallError>;

/// One function's signature.
struct Spec {
    params: &'static [P],
    variadic: Option<P>,
    imp: Impl,
}

const fn fixed(params: &'static [P], imp: Impl) -> Spec {
    Spec {
        params,
        variadic: None,
        imp,
    }
}

const fn var(params: &'static [P], variadic: P, imp: Impl) -> Spec {
    Spec {
        params,
        variadic: Some(variadic),
        imp,
    }
}

/// The signature table; `None` for names bake does not know or the evaluator implements.
fn spec(name: &str) -> Option<Spec> {
    use P::*;
    use collections as c;
    use encoding as e;
    use numeric as n;
    use strings as s;
    Some(match name {
        "absolute" => fixed(&[Num], n::absolute),
        "add" => fixed(&[Num, Num], n::add),
        "and" => fixed(&[Bool, Bool], n::and),
        "base64decode" => fixed(&[Str], e::base64decode),
        "base64encode" => fixed(&[Str], e::base64encode),
        "basename" => fixed(&[Str], s::basename),
        "bcrypt" => var(&[Str], Num, e::bcrypt),
        "byteslen" => fixed(&[Str], s::byteslen),
        "bytesslice" => fixed(&[Str, Num, Num], s::bytesslice),
        "ceil" => fixed(&[Num], n::ceil),
        "chomp" => fixed(&[Str], s::chomp),
        "chunklist" => fixed(&[List, Num], c::chunklist),
        "cidrhost" => fixed(&[Str, Num], net::cidrhost),
        "cidrnetmask" => fixed(&[Str], net::cidrnetmask),
        "cidrsubnet" => fixed(&[Str, Num, Num], net::cidrsubnet),
        "cidrsubnets" => var(&[Str], Num, net::cidrsubnets),
        "coalesce" => var(&[], Nullable, c::coalesce),
        "coalescelist" => var(&[], Nullable, c::coalescelist),
        "compact" => fixed(&[List], c::compact),
        "concat" => var(&[], List, c::concat),
        "contains" => fixed(&[List, Nullable], c::contains),
        "csvdecode" => fixed(&[Str], e::csvdecode),
        "dirname" => fixed(&[Str], s::dirname),
        "distinct" => fixed(&[List], c::distinct),
        "divide" => fixed(&[Num, Num], n::divide),
        "element" => fixed(&[List, Num], c::element),
        "equal" => fixed(&[Nullable, Nullable], c::equal),
        "flatten" => fixed(&[List], c::flatten),
        "floor" => fixed(&[Num], n::floor),
        "format" => var(&[Str], Nullable, format::format),
        "formatdate" => fixed(&[Str, Str], time::formatdate),
        "formatlist" => var(&[Str], Nullable, format::formatlist),
        "formattimestamp" => fixed(&[Str, Any], time::formattimestamp),
        "greaterthan" => fixed(&[Num, Num], n::greaterthan),
        "greaterthanorequalto" => fixed(&[Num, Num], n::greaterthanorequalto),
        "hasindex" => fixed(&[Any, Nullable], c::hasindex),
        "homedir" => fixed(&[], s::homedir),
        "indent" => fixed(&[Num, Str], s::indent),
        "index" => fixed(&[Any, Any], c::index),
        "indexof" => fixed(&[Any, Nullable], c::indexof),
        "int" => fixed(&[Num], n::int),
        "join" => var(&[Str, StrList], StrList, s::join),
        "jsondecode" => fixed(&[Str], e::jsondecode),
        "jsonencode" => fixed(&[Nullable], e::jsonencode),
        "keys" => fixed(&[Object], c::keys),
        "length" => fixed(&[Any], c::length),
        "lessthan" => fixed(&[Num, Num], n::lessthan),
        "lessthanorequalto" => fixed(&[Num, Num], n::lessthanorequalto),
        "log" => fixed(&[Num, Num], n::log),
        "lookup" => var(&[Object, Str], Nullable, c::lookup),
        "lower" => fixed(&[Str], s::lower),
        "max" => var(&[], Num, n::max),
        "md5" => fixed(&[Str], e::md5),
        "merge" => var(&[], Nullable, c::merge),
        "min" => var(&[], Num, n::min),
        "modulo" => fixed(&[Num, Num], n::modulo),
        "multiply" => fixed(&[Num, Num], n::multiply),
        "negate" => fixed(&[Num], n::negate),
        "not" => fixed(&[Bool], n::not),
        "notequal" => fixed(&[Nullable, Nullable], c::notequal),
        "or" => fixed(&[Bool, Bool], n::or),
        "parseint" => fixed(&[Str, Num], n::parseint),
        "pow" => fixed(&[Num, Num], n::pow),
        "range" => var(&[], Num, n::range),
        "regex" => fixed(&[Str, Str], s::regex),
        "regex_replace" => fixed(&[Str, Str, Str], s::regex_replace),
        "regexall" => fixed(&[Str, Str], s::regexall),
        "replace" => fixed(&[Str, Str, Str], s::replace),
        "reverse" => fixed(&[Str], s::reverse),
        "reverselist" => fixed(&[List], c::reverselist),
        "rsadecrypt" => fixed(&[Str, Str], e::rsadecrypt),
        "sanitize" => fixed(&[Str], s::sanitize),
        "semvercmp" => fixed(&[Str, Str], semver::semvercmp),
        "sethaselement" => fixed(&[List, Nullable], sets::sethaselement),
        "setintersection" => var(&[List], List, sets::setintersection),
        "setproduct" => var(&[], List, sets::setproduct),
        "setsubtract" => fixed(&[List, List], sets::setsubtract),
        "setsymmetricdifference" => var(&[List], List, sets::setsymmetricdifference),
        "setunion" => var(&[List], List, sets::setunion),
        "sha1" => fixed(&[Str], e::sha1),
        "sha256" => fixed(&[Str], e::sha256),
        "sha512" => fixed(&[Str], e::sha512),
        "signum" => fixed(&[Num], n::signum),
        "slice" => fixed(&[List, Num, Num], c::slice),
        "sort" => fixed(&[StrList], c::sort),
        "split" => fixed(&[Str, Str], s::split),
        "strlen" => fixed(&[Str], s::strlen),
        "substr" => fixed(&[Str, Num, Num], s::substr),
        "subtract" => fixed(&[Num, Num], n::subtract),
        "timeadd" => fixed(&[Str, Str], time::timeadd),
        "timestamp" => fixed(&[], time::timestamp),
        "title" => fixed(&[Str], s::title),
        "trim" => fixed(&[Str, Str], s::trim),
        "trimprefix" => fixed(&[Str, Str], s::trimprefix),
        "trimspace" => fixed(&[Str], s::trimspace),
        "trimsuffix" => fixed(&[Str, Str], s::trimsuffix),
        "unixtimestampparse" => fixed(&[Num], time::unixtimestampparse),
        "upper" => fixed(&[Str], s::upper),
        "urlencode" => fixed(&[Str], e::urlencode),
        "uuidv4" => fixed(&[], e::uuidv4),
        "uuidv5" => fixed(&[Str, Str], e::uuidv5),
        "values" => fixed(&[Object], c::values),
        "zipmap" => fixed(&[StrList, List], c::zipmap),
        _ => return None,
    })
}

/// Calls the stdlib function `name` with already evaluated arguments.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Result<Value, CallError> {
    let spec = spec(name).ok_or(CallError::Unknown)?;
    let fixed = spec.params.len();
    let arity_ok = match spec.variadic {
        None => args.len() == fixed,
        Some(_) => args.len() >= fixed,
    };
    if !arity_ok {
        let expected = match spec.variadic {
            None => fixed.to_string(),
            Some(_) => format!("at least {fixed}"),
        };
        return Err(CallError::Arity {
            expected,
            got: args.len(),
        });
    }
    let args = args
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let kind = spec
                .params
                .get(index)
                .copied()
                .or(spec.variadic)
                .unwrap_or(P::Nullable);
            convert_arg(kind, value).map_err(|message| CallError::Argument { index, message })
        })
        .collect::<Result<Vec<_>, _>>()?;
    (spec.imp)(args)
}

/// Converts one argument to its parameter kind, cty-style.
fn convert_arg(kind: P, value: Value) -> Result<Value, String> {
    if value.is_null() {
        return if kind == P::Nullable {
            Ok(value)
        } else {
            Err("argument must not be null".to_owned())
        };
    }
    match kind {
        P::Nullable | P::Any => Ok(value),
        P::Str => value_to_string(&value)
            .map(Value::String)
            .ok_or_else(|| "a string is required".to_owned()),
        P::Num => to_number(&value)
            .map(Value::Number)
            .ok_or_else(|| "a number is required".to_owned()),
        P::Bool => to_bool(&value)
            .map(Value::Bool)
            .ok_or_else(|| "a bool is required".to_owned()),
        P::List => match value {
            Value::Array(_) => Ok(value),
            _ => Err("a list is required".to_owned()),
        },
        P::StrList => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    value_to_string(item)
                        .map(Value::String)
                        .ok_or_else(|| format!("element {i}: a string is required"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err("list of string required".to_owned()),
        },
        P::Object => match value {
            Value::Object(_) => Ok(value),
            _ => Err("a map or object is required".to_owned()),
        },
    }
}

/// A number from a number or a numeric string.
fn to_number(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// A bool from a bool or the strings `true`/`false`/`1`/`0`.
fn to_bool(value: &Value) -> Option<bool> {
    // Compat: go-cty convert (string → bool).
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "1" => Some(true),
        Value::String(s) if s == "false" || s == "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
