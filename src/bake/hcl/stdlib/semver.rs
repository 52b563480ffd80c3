//! bake's `semvercmp(version, constraint)`: Masterminds/semver v3 constraint checks
//! (`>= 1.2, < 2`, `~1.2`, `^1.2`, `1.2.x`, hyphen ranges, `||`).

use std::cmp::Ordering;
use std::sync::LazyLock;

use hcl::Value;
use regex::Regex;

use crate::bake::hcl::stdlib::args::{CallError, arg_str, bad};

/// A lenient semantic version as Masterminds `NewVersion` accepts it (`v1.2` → 1.2.0).
#[derive(Debug, Clone, PartialEq)]
struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
    )
    .expect("static version pattern compiles")
});

static CONSTRAINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:(!=|>=|=>|<=|=<|~>|>|<|=|~|\^)\s*)?v?([0-9xX*]+)(?:\.([0-9xX*]+))?(?:\.([0-9xX*]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    )
    .expect("static constraint pattern compiles")
});

static HYPHEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(v?[0-9xX*][0-9A-Za-z.+*-]*)\s+-\s+(v?[0-9xX*][0-9A-Za-z.+*-]*)")
        .expect("static hyphen pattern compiles")
});

fn parse_version(s: &str) -> Option<Version> {
    let caps = VERSION.captures(s.trim())?;
    let part =
        |i: usize| -> Option<u64> { caps.get(i).map_or(Some(0), |m| m.as_str().parse().ok()) };
    Some(Version {
        major: part(1)?,
        minor: part(2)?,
        patch: part(3)?,
        pre: caps.get(4).map_or(String::new(), |m| m.as_str().to_owned()),
    })
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn compare(a: &Version, b: &Version) -> Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| compare_pre(&a.pre, &b.pre))
}

/// One `op version` term; `*_wild` mark parts written as `x`/`*` or left out.
struct Term {
    op: String,
    v: Version,
    major_wild: bool,
    minor_wild: bool,
    patch_wild: bool,
}

fn parse_term(caps: &regex::Captures<'_>) -> Option<Term> {
    let wild = |i: usize| {
        caps.get(i)
            .is_none_or(|m| matches!(m.as_str(), "x" | "X" | "*"))
    };
    let num = |i: usize| -> Option<u64> {
        match caps.get(i) {
            Some(m) if !matches!(m.as_str(), "x" | "X" | "*") => m.as_str().parse().ok(),
            _ => Some(0),
        }
    };
    let major_wild = wild(2);
    let minor_wild = major_wild || wild(3);
    Some(Term {
        op: caps.get(1).map_or("=", |m| m.as_str()).to_owned(),
        v: Version {
            major: num(2)?,
            minor: num(3)?,
            patch: num(4)?,
            pre: caps.get(5).map_or(String::new(), |m| m.as_str().to_owned()),
        },
        major_wild,
        minor_wild,
        patch_wild: minor_wild || wild(4),
    })
}

impl Term {
    fn check(&self, v: &Version) -> bool {
        // Compat: Masterminds semver — prerelease versions only satisfy constraints
        // that carry a prerelease themselves.
        if !v.pre.is_empty() && self.v.pre.is_empty() && self.op != "!=" {
            return false;
        }
        let c = &self.v;
        let ord = compare(v, c);
        let dirty = self.patch_wild;
        match self.op.as_str() {
            "=" => self.matches_wild(v),
            "!=" => !self.matches_wild(v),
            ">" if dirty => {
                if self.major_wild {
                    false
                } else if self.minor_wild {
                    v.major > c.major
                } else {
                    (v.major, v.minor) > (c.major, c.minor)
                }
            }
            ">" => ord == Ordering::Greater,
            ">=" | "=>" => ord != Ordering::Less,
            "<" => ord == Ordering::Less,
            "<=" | "=<" if dirty => {
                if self.major_wild {
                    true
                } else if self.minor_wild {
                    v.major <= c.major
                } else {
                    (v.major, v.minor) <= (c.major, c.minor)
                }
            }
            "<=" | "=<" => ord != Ordering::Greater,
            "~" | "~>" => {
                ord != Ordering::Less
                    && (self.major_wild
                        || (v.major == c.major && (self.minor_wild || v.minor == c.minor)))
            }
            "^" => {
                if ord == Ordering::Less {
                    false
                } else if self.major_wild {
                    true
                } else if c.major > 0 || self.minor_wild {
                    v.major == c.major
                } else if c.minor > 0 || self.patch_wild {
                    v.major == 0 && v.minor == c.minor
                } else {
                    v.major == 0 && v.minor == 0 && v.patch == c.patch
                }
            }
            _ => false,
        }
    }

    /// Equality where wildcard or missing parts match anything.
    fn matches_wild(&self, v: &Version) -> bool {
        let c = &self.v;
        if self.major_wild {
            return true;
        }
        if self.minor_wild {
            return v.major == c.major;
        }
        if self.patch_wild {
            return v.major == c.major && v.minor == c.minor;
        }
        compare(v, c) == Ordering::Equal
    }
}

/// Parses a constraint into OR-groups of AND-ed terms.
fn parse_constraint(s: &str) -> Option<Vec<Vec<Term>>> {
    let mut groups = Vec::new();
    for group in s.split("||") {
        let group = HYPHEN.replace_all(group, ">= $1, <= $2");
        let leftover = CONSTRAINT.replace_all(&group, "");
        if !leftover.chars().all(|c| c == ',' || c.is_whitespace()) {
            return None;
        }
        let terms = CONSTRAINT
            .captures_iter(&group)
            .map(|caps| parse_term(&caps))
            .collect::<Option<Vec<_>>>()?;
        if terms.is_empty() {
            return None;
        }
        groups.push(terms);
    }
    Some(groups)
}

pub(super) fn semvercmp(args: Vec<Value>) -> Result<Value, CallError> {
    let version = arg_str(&args, 0)?;
    let constraint = arg_str(&args, 1)?;
    let v = parse_version(version)
        .ok_or_else(|| bad(0, format!("invalid semantic version `{version}`")))?;
    let groups = parse_constraint(constraint)
        .ok_or_else(|| bad(1, format!("improper constraint: `{constraint}`")))?;
    Ok(Value::Bool(
        groups.iter().any(|terms| terms.iter().all(|t| t.check(&v))),
    ))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::call;
    use hcl::Value;

    fn check(version: &str, constraint: &str) -> bool {
        match call("semvercmp", vec![version.into(), constraint.into()]) {
            Ok(Value::Bool(b)) => b,
            other => panic!("{version} {constraint}: unexpected {other:?}"),
        }
    }

    #[test]
    fn constraints() {
        let cases = [
            ("1.2.3", ">= 1.2, < 2", true),
            ("2.0.0", ">= 1.2, < 2", false),
            ("1.2.3", ">=1.2.0 <1.3.0", true),
            ("1.2.3", "1.2.3", true),
            ("v1.2.3", "=1.2.3", true),
            ("1.2.4", "1.2.3", false),
            ("1.2.9", "1.2.x", true),
            ("1.3.0", "1.2.x", false),
            ("1.3.0", "1.2", false),
            ("1.2.7", "~1.2.3", true),
            ("1.3.0", "~1.2.3", false),
            ("1.9.0", "~1", true),
            ("1.9.0", "~> 1.2", false),
            ("1.9.0", "^1.2", true),
            ("2.0.0", "^1.2", false),
            ("0.2.5", "^0.2.3", true),
            ("0.3.0", "^0.2.3", false),
            ("0.0.3", "^0.0.3", true),
            ("0.0.4", "^0.0.3", false),
            ("1.5.0", "1.2 - 1.4.5", false),
            ("1.4.5", "1.2 - 1.4.5", true),
            ("3.0.0", "< 2 || >= 3", true),
            ("2.5.0", "< 2 || >= 3", false),
            ("1.3.0", "> 1.2", true),
            ("1.2.9", "> 1.2", false),
            ("1.2.9", "<= 1.2", true),
            ("1.2.0", "!= 1.2.0", false),
            ("5.0.0", "*", true),
            ("1.3.0-beta", ">= 1.2", false),
            ("1.3.0-beta", ">= 1.3.0-alpha", true),
            ("1.3.0-alpha.10", "> 1.3.0-alpha.9", true),
        ];
        for (v, c, want) in cases {
            assert_eq!(check(v, c), want, "{v} against {c}");
        }
    }

    #[test]
    fn errors() {
        assert!(call("semvercmp", vec!["nope".into(), ">1".into()]).is_err());
        assert!(call("semvercmp", vec!["1.0.0".into(), "~~1".into()]).is_err());
        assert!(call("semvercmp", vec!["1.0.0".into(), "".into()]).is_err());
        assert!(call("semvercmp", vec!["1.0.0".into()]).is_err());
    }
}
