//! Disk sizes and durations written the way buildkitd reads them.

use std::time::Duration;

/// A disk-space amount: bytes, or a share of the disk that holds the state root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskSpace {
    /// An absolute number of bytes.
    Bytes(u64),
    /// A percentage (0 to 100) of the disk's total size.
    Percent(u8),
}

/// Why a size or duration text was rejected; the caller adds the location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitError(pub(crate) String);

/// Parses a disk size: `"30%"`, `"512MB"`, `"10 GiB"`, `"1.5g"` or a plain `"1024"`.
/// Returns `None` for the empty string, which buildkitd treats as unset.
///
/// Compat: buildkit `DiskSpace.UnmarshalText` (cmd/buildkitd/config/gcpolicy.go) with
/// go-units `RAMInBytes`: every unit is binary, so `"10GB"` is 10 GiB, units are
/// case-insensitive, the `i` and `b` are optional and one space may precede the unit.
pub(crate) fn parse_size(text: &str) -> Result<Option<DiskSpace>, UnitError> {
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(number) = text.strip_suffix('%') {
        // Diverges: buildkit takes any integer here; a share outside 0..=100 is a mistake.
        return match number.parse::<u8>() {
            Ok(percent) if percent <= 100 => Ok(Some(DiskSpace::Percent(percent))),
            _ => Err(UnitError(
                "a percentage must be a whole number from 0 to 100".to_owned(),
            )),
        };
    }
    let invalid =
        || UnitError("expected bytes or a number with a unit (`512MB`, `10GiB`, `30%`)".to_owned());
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if !is_decimal(number) {
        return Err(invalid());
    }
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut rest = unit.as_str();
    let mut multiplier: f64 = 1.0;
    for (prefix, power) in [('k', 1), ('m', 2), ('g', 3), ('t', 4), ('p', 5)] {
        if let Some(after) = rest.strip_prefix(prefix) {
            multiplier = 1024f64.powi(power);
            rest = after;
            break;
        }
    }
    if multiplier > 1.0 {
        rest = rest.strip_prefix('i').unwrap_or(rest);
    }
    rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(UnitError("the size is too large".to_owned()));
    }
    // Truncation is what go-units does (`uint64(size)`).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked finite, non-negative and below u64::MAX above"
    )]
    Ok(Some(DiskSpace::Bytes(bytes as u64)))
}

/// `digits` or `digits.digits`.
fn is_decimal(text: &str) -> bool {
    let mut parts = text.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && parts.next().is_none_or(all_digits)
}

/// Parses a duration: Go syntax (`"48h"`, `"1h30m"`, `"1.5s"`, `"300ms"`) or a whole number
/// of seconds (`"172800"`). Returns `None` for the empty string.
///
/// Compat: buildkit `Duration.UnmarshalText` (cmd/buildkitd/config/gcpolicy.go): Go's
/// `time.ParseDuration` first, then an integer number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Option<Duration>, UnitError> {
    if text.is_empty() {
        return Ok(None);
    }
    if let Some(duration) = go_duration(text)? {
        return Ok(Some(duration));
    }
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Some(Duration::from_secs(seconds))),
        Err(_) => Err(UnitError(
            "expected a duration such as `48h`, `1h30m`, `90s` or a number of seconds".to_owned(),
        )),
    }
}

/// The largest duration Go represents (an `int64` of nanoseconds).
const GO_MAX_NANOS: u128 = i64::MAX as u128;

/// Go's `time.ParseDuration`. `Ok(None)` when the text is not in that syntax (so the caller
/// can try seconds); an error for negative or out-of-range durations.
fn go_duration(text: &str) -> Result<Option<Duration>, UnitError> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Some(Duration::ZERO));
    }
    if rest.is_empty() {
        return Ok(None);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let Some((whole, fraction)) = split_number(number) else {
            return Ok(None);
        };
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Ok(None),
        };
        let out_of_range = || UnitError("the duration is too long".to_owned());
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| out_of_range())?
        };
        let mut value = whole.checked_mul(nanos_per_unit).ok_or_else(out_of_range)?;
        if !fraction.is_empty() {
            // Go keeps the fraction's leading digits that still fit; 30 digits of
            // nanoseconds is far beyond any duration Go accepts.
            let digits = &fraction[..fraction.len().min(30)];
            let numerator: u128 = digits.parse().map_err(|_| out_of_range())?;
            let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(30));
            value += numerator * nanos_per_unit / scale;
        }
        total = total.checked_add(value).ok_or_else(out_of_range)?;
        if total > GO_MAX_NANOS {
            return Err(out_of_range());
        }
        rest = next;
    }
    if negative && total > 0 {
        // Diverges: Go parses negative durations; no buildkitd.toml duration means one.
        return Err(UnitError("a duration must not be negative".to_owned()));
    }
    let seconds = u64::try_from(total / 1_000_000_000)
        .map_err(|_| UnitError("the duration is too long".to_owned()))?;
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Some(Duration::new(seconds, nanos)))
}

/// Splits `12`, `12.5`, `.5` or `12.` into whole and fraction digits (Go allows all four).
fn split_number(number: &str) -> Option<(&str, &str)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    Some((whole, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_like_go_units() {
        let bytes = |t: &str| parse_size(t).unwrap().unwrap();
        assert_eq!(bytes("1024"), DiskSpace::Bytes(1024));
        assert_eq!(bytes("40MB"), DiskSpace::Bytes(40 * 1024 * 1024));
        assert_eq!(bytes("10GB"), DiskSpace::Bytes(10 << 30));
        assert_eq!(bytes("10GiB"), DiskSpace::Bytes(10 << 30));
        assert_eq!(bytes("10 gib"), DiskSpace::Bytes(10 << 30));
        assert_eq!(bytes("512m"), DiskSpace::Bytes(512 << 20));
        assert_eq!(bytes("1.5k"), DiskSpace::Bytes(1536));
        assert_eq!(bytes("2t"), DiskSpace::Bytes(2 << 40));
        assert_eq!(bytes("1p"), DiskSpace::Bytes(1 << 50));
        assert_eq!(bytes("7b"), DiskSpace::Bytes(7));
        assert_eq!(bytes("30%"), DiskSpace::Percent(30));
        assert_eq!(bytes("0%"), DiskSpace::Percent(0));
        assert_eq!(parse_size("").unwrap(), None);
    }

    #[test]
    fn bad_sizes_are_errors() {
        for bad in [
            "ten",
            "10XB",
            "10  GB",
            "-5",
            "1.2.3",
            "GB",
            "101%",
            "-1%",
            "5.5%",
            "10ib",
            "99999999999p",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_take_go_syntax_or_seconds() {
        let d = |t: &str| parse_duration(t).unwrap().unwrap();
        assert_eq!(d("48h"), Duration::from_secs(48 * 3600));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d(".5m"), Duration::from_secs(30));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("2us"), Duration::from_micros(2));
        assert_eq!(d("2\u{b5}s"), Duration::from_micros(2));
        assert_eq!(d("7ns"), Duration::from_nanos(7));
        assert_eq!(d("+1m"), Duration::from_secs(60));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("-0"), Duration::ZERO);
        assert_eq!(d("172800"), Duration::from_secs(172_800));
        assert_eq!(parse_duration("").unwrap(), None);
    }

    #[test]
    fn bad_durations_are_errors() {
        for bad in [
            "two days",
            "48",
            "1d",
            "h",
            "1h-",
            "-1h",
            "1..5s",
            ".s",
            "9999999999h",
            "1.5",
        ] {
            let result = parse_duration(bad);
            if bad == "48" {
                assert_eq!(result.unwrap(), Some(Duration::from_secs(48)));
            } else {
                assert!(result.is_err(), "{bad}: {result:?}");
            }
        }
    }
}
