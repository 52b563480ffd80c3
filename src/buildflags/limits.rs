//! The limits a target sets on its RUN steps: `shm-size` and the sizes of `resources` (a
//! byte count with an optional binary unit), `ulimits` (`name=soft[:hard]`) and the cpusets
//! of `resources`, parsed as docker's go-units and the runtime spec take them.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::buildflags::error::{Error, Result};

/// The resource names `ulimits` accepts; `as` is left out, as go-units leaves it out.
// Compat: go-units ulimit.go ulimitNameMapping.
pub const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Parses a size such as `96m`, `2GiB`, `1.5g` or `1024` into bytes; units are binary.
// Compat: go-units RAMInBytes (`^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`, the product
// truncated to an integer).
pub fn ram_in_bytes(text: &str) -> Result<i64> {
    let bad = || Error::BadSize {
        value: text.to_owned(),
    };
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if !number.starts_with(|c: char| c.is_ascii_digit()) || number.ends_with('.') {
        return Err(bad());
    }
    let size: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut rest = unit.as_str();
    let mut multiplier = 1f64;
    if let Some(power) = ["k", "m", "g", "t", "p"]
        .iter()
        .position(|prefix| rest.starts_with(prefix))
    {
        multiplier = 1024f64.powi(i32::try_from(power).map_err(|_| bad())? + 1);
        rest = &rest[1..];
    }
    rest = rest.strip_prefix('i').unwrap_or(rest);
    rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return Err(bad());
    }
    let bytes = size * multiplier;
    // `i64::MAX as f64` rounds up to 2^63, which no i64 holds.
    #[expect(
        clippy::cast_precision_loss,
        reason = "only the bound is compared; sizes that large are refused"
    )]
    if bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "go-units truncates with int64(size); the range is checked above"
    )]
    Ok(bytes as i64)
}

/// One `ulimits` entry: a resource limit of RUN steps, `-1` meaning unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The resource, one of [`ULIMIT_NAMES`].
    pub name: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

impl Ulimit {
    /// Parses `name=soft[:hard]`; a lone value is both limits.
    // Compat: go-units ParseUlimit (the names, `soft` alone meaning soft=hard, -1 as
    // unlimited only where the hard limit is unlimited too).
    // Diverges: other negative numbers are refused rather than wrapped to huge limits.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadUlimit {
            value: text.to_owned(),
            reason,
        };
        let Some((name, limits)) = text.split_once('=') else {
            return Err(bad("expected `name=soft[:hard]`".to_owned()));
        };
        if !ULIMIT_NAMES.contains(&name) {
            return Err(bad(format!(
                "unknown ulimit type `{name}` (expected one of {})",
                ULIMIT_NAMES.join(", ")
            )));
        }
        let number = |part: &str, which: &str| -> Result<i64> {
            match part.parse::<i64>() {
                Ok(n) if n >= -1 => Ok(n),
                _ => Err(bad(format!(
                    "the {which} limit `{part}` is not a whole number (or -1 for unlimited)"
                ))),
            }
        };
        let parts: Vec<&str> = limits.split(':').collect();
        let (soft, hard) = match parts.as_slice() {
            [soft] => {
                let soft = number(soft, "soft")?;
                (soft, soft)
            }
            [soft, hard] => (number(soft, "soft")?, number(hard, "hard")?),
            _ => {
                return Err(bad(
                    "too many limit values: at most two, `soft[:hard]`".to_owned()
                ));
            }
        };
        if hard != -1 && (soft == -1 || soft > hard) {
            return Err(bad(format!(
                "the soft limit must be less than or equal to the hard limit: {soft} > {hard}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            soft,
            hard,
        })
    }
}

impl fmt::Display for Ulimit {
    /// `name=soft:hard`, the form buildx sends in the `ulimit` frontend attribute.
    // Compat: go-units Ulimit.String.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.name, self.soft, self.hard)
    }
}

impl Serialize for Ulimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Checks a cpuset list such as `0-3,6`: comma-separated CPU or memory-node numbers and
/// ascending ranges, as the kernel's cpuset files take them.
pub fn check_cpuset(text: &str) -> Result<()> {
    let bad = || Error::BadCpuset {
        value: text.to_owned(),
    };
    for part in text.split(',') {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        let low: u32 = low.parse().map_err(|_| bad())?;
        let high: u32 = high.parse().map_err(|_| bad())?;
        if low > high {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_like_go_units() {
        for (text, bytes) in [
            ("1024", 1024),
            ("96m", 96 << 20),
            ("96M", 96 << 20),
            ("2GiB", 2 << 30),
            ("1.5g", 3 << 29),
            ("10 kb", 10 << 10),
            ("128MiB", 128 << 20),
        ] {
            assert_eq!(ram_in_bytes(text), Ok(bytes), "{text}");
        }
        for text in ["lots", "", "-1", "1x", "1.", "m", "1kk", "9p9", "99999999p"] {
            assert_eq!(
                ram_in_bytes(text),
                Err(Error::BadSize {
                    value: text.to_owned()
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn ulimits_parse_soft_and_hard() {
        let limit = Ulimit::parse("nofile=1000:2000").unwrap();
        assert_eq!((limit.soft, limit.hard), (1000, 2000));
        assert_eq!(limit.to_string(), "nofile=1000:2000");
        assert_eq!(
            Ulimit::parse("nproc=512").unwrap().to_string(),
            "nproc=512:512"
        );
        assert_eq!(Ulimit::parse("core=-1").unwrap().to_string(), "core=-1:-1");
        assert_eq!(Ulimit::parse("core=0:-1").unwrap().to_string(), "core=0:-1");
    }

    #[test]
    fn bad_ulimits_name_the_value_and_the_reason() {
        for (text, reason) in [
            ("nofile", "expected `name=soft[:hard]`"),
            ("as=1", "unknown ulimit type `as`"),
            ("nofile=x", "the soft limit `x` is not a whole number"),
            ("nofile=1:y", "the hard limit `y` is not a whole number"),
            ("nofile=-2", "the soft limit `-2`"),
            ("nofile=1:2:3", "too many limit values"),
            ("nofile=3:2", "3 > 2"),
            ("nofile=-1:2", "-1 > 2"),
        ] {
            let message = Ulimit::parse(text).unwrap_err().to_string();
            assert!(message.contains(&format!("`{text}`")), "{message}");
            assert!(message.contains(reason), "{text}: {message}");
        }
    }

    #[test]
    fn cpusets_are_numbers_and_ranges() {
        assert!(check_cpuset("0").is_ok());
        assert!(check_cpuset("0-3,6").is_ok());
        for text in ["", "a", "3-1", "0,", "1-2-3"] {
            assert!(check_cpuset(text).is_err(), "{text}");
        }
    }
}
