//! Date and time functions: `timestamp`, `formatdate`, `timeadd` (go-cty) and bake's
//! `formattimestamp` and `unixtimestampparse`.

use hcl::{Map, Value};
use jiff::civil::DateTime;
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};

use crate::bake::hcl::stdlib::args::{CallError, arg_f64, arg_str, bad, failed};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A point in time together with the UTC offset it was written in.
#[derive(Debug, Clone, Copy)]
struct Moment {
    ts: Timestamp,
    offset: i32,
}

impl Moment {
    fn local(&self) -> DateTime {
        Offset::from_seconds(self.offset)
            .unwrap_or(Offset::UTC)
            .to_datetime(self.ts)
    }
}

/// Parses Go's `time.RFC3339` layout (fractional seconds allowed).
fn parse_rfc3339(s: &str) -> Option<Moment> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut pos = 19;
    let mut nanos: i64 = 0;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        pos = start;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let frac = s.get(start..pos)?;
        if frac.is_empty() {
            return None;
        }
        let padded: String = frac.chars().chain("000000000".chars()).take(9).collect();
        nanos = padded.parse().ok()?;
    }
    let offset = match s.get(pos..)? {
        "Z" => 0,
        rest if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h = digits(pos + 1, 2)?;
            let m = digits(pos + 4, 2)?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let dt = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    let offset = i32::try_from(offset).ok()?;
    let ts = Offset::from_seconds(offset).ok()?.to_timestamp(dt).ok()?;
    Some(Moment { ts, offset })
}

fn offset_text(offset: i32, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    let (h, m) = (abs / 3600, abs % 3600 / 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// Go's `time.RFC3339` output: whole seconds, `Z` for a zero offset.
fn format_rfc3339(m: &Moment) -> String {
    let dt = m.local();
    let zone = if m.offset == 0 {
        "Z".to_owned()
    } else {
        offset_text(m.offset, true)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

fn not_rfc3339(index: usize, s: &str) -> CallError {
    bad(index, format!("not a valid RFC3339 timestamp: `{s}`"))
}

pub(super) fn timestamp(_args: Vec<Value>) -> Result<Value, CallError> {
    let m = Moment {
        ts: Timestamp::now(),
        offset: 0,
    };
    Ok(Value::String(format_rfc3339(&m)))
}

pub(super) fn formatdate(args: Vec<Value>) -> Result<Value, CallError> {
    let ts = arg_str(&args, 1)?;
    let m = parse_rfc3339(ts).ok_or_else(|| not_rfc3339(1, ts))?;
    format_date(arg_str(&args, 0)?, &m).map(Value::String)
}

/// Applies a `formatdate` specification (Terraform/go-cty date format language).
fn format_date(spec: &str, m: &Moment) -> Result<String, CallError> {
    let dt = m.local();
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\'' {
            // Quoted literal; `''` is an escaped quote inside or outside quotes.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(bad(0, "unterminated literal '")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        out.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&lit) => {
                        out.push(lit);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 0;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let hour12 = match dt.hour() % 12 {
            0 => 12,
            h => h,
        };
        let month = usize::try_from(dt.month() - 1).unwrap_or(0);
        let weekday = usize::from(dt.weekday().to_sunday_zero_offset().unsigned_abs());
        let text = match (c, n) {
            ('Y', 4) => format!("{:04}", dt.year()),
            ('Y', 2) => format!("{:02}", dt.year().rem_euclid(100)),
            ('M', 1) => dt.month().to_string(),
            ('M', 2) => format!("{:02}", dt.month()),
            ('M', 3) => MONTHS[month][..3].to_owned(),
            ('M', 4) => MONTHS[month].to_owned(),
            ('D', 1) => dt.day().to_string(),
            ('D', 2) => format!("{:02}", dt.day()),
            ('E', 3) => WEEKDAYS[weekday][..3].to_owned(),
            ('E', 4) => WEEKDAYS[weekday].to_owned(),
            ('h', 1) => dt.hour().to_string(),
            ('h', 2) => format!("{:02}", dt.hour()),
            ('H', 1) => hour12.to_string(),
            ('H', 2) => format!("{hour12:02}"),
            ('A', 2) => (if dt.hour() < 12 { "AM" } else { "PM" }).to_owned(),
            ('a', 2) => (if dt.hour() < 12 { "am" } else { "pm" }).to_owned(),
            ('m', 1) => dt.minute().to_string(),
            ('m', 2) => format!("{:02}", dt.minute()),
            ('s', 1) => dt.second().to_string(),
            ('s', 2) => format!("{:02}", dt.second()),
            ('Z', 1) if m.offset == 0 => "Z".to_owned(),
            ('Z', 1) | ('Z', 5) => offset_text(m.offset, true),
            ('Z', 3) if m.offset == 0 => "UTC".to_owned(),
            ('Z', 3) | ('Z', 4) => offset_text(m.offset, false),
            _ => {
                let verb: String = std::iter::repeat_n(c, n).collect();
                return Err(bad(0, verb_error(&verb, c)));
            }
        };
        out.push_str(&text);
    }
    Ok(out)
}

/// go-cty's message for a date format token of the wrong length or letter.
fn verb_error(verb: &str, letter: char) -> String {
    let hint = match letter {
        'Y' => r#"year must either be "YY" or "YYYY""#,
        'M' => r#"month must be "M", "MM", "MMM", or "MMMM""#,
        'D' => r#"day of month must either be "D" or "DD""#,
        'E' => r#"day of week must either be "EEE" or "EEEE""#,
        'h' => r#"24-hour must either be "h" or "hh""#,
        'H' => r#"12-hour must either be "H" or "HH""#,
        'A' => r#"must be "AA""#,
        'a' => r#"must be "aa""#,
        'm' => r#"minute must either be "m" or "mm""#,
        's' => r#"second must either be "s" or "ss""#,
        'Z' => "timezone must be Z, ZZZZ, or ZZZZZ",
        _ => return format!("invalid date format verb {verb:?}"),
    };
    format!("invalid date format verb {verb:?}: {hint}")
}

/// Parses a Go `time.ParseDuration` string into a signed duration.
fn parse_duration(s: &str) -> Option<SignedDuration> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos_per;
    }
    let nanos = if negative { -total } else { total };
    if nanos.abs() > 9.2e18 {
        return None;
    }
    Some(SignedDuration::from_nanos(nanos.round() as i64))
}

pub(super) fn timeadd(args: Vec<Value>) -> Result<Value, CallError> {
    let ts = arg_str(&args, 0)?;
    let m = parse_rfc3339(ts).ok_or_else(|| not_rfc3339(0, ts))?;
    let d = arg_str(&args, 1)?;
    let dur = parse_duration(d).ok_or_else(|| bad(1, format!("invalid duration `{d}`")))?;
    let ts =
        m.ts.checked_add(dur)
            .map_err(|_| failed("resulting time is out of range"))?;
    Ok(Value::String(format_rfc3339(&Moment {
        ts,
        offset: m.offset,
    })))
}

/// A moment from an RFC 3339 string or a number of unix seconds.
fn moment_arg(args: &[Value], index: usize) -> Result<Moment, CallError> {
    let secs = match args.get(index) {
        Some(Value::String(s)) => match parse_rfc3339(s) {
            Some(m) => return Ok(m),
            None => crate::bake::hcl::types::parse_number(s)
                .and_then(|n| n.as_f64())
                .ok_or_else(|| not_rfc3339(index, s))?,
        },
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        _ => {
            return Err(bad(
                index,
                "an RFC3339 timestamp string or a unix timestamp number is required",
            ));
        }
    };
    let ts = Timestamp::from_second(secs.trunc() as i64)
        .map_err(|_| bad(index, "timestamp is out of range"))?;
    Ok(Moment { ts, offset: 0 })
}

pub(super) fn formattimestamp(args: Vec<Value>) -> Result<Value, CallError> {
    let spec = arg_str(&args, 0)?;
    let m = moment_arg(&args, 1)?;
    if spec == "X" {
        return Ok(Value::String(m.ts.as_second().to_string()));
    }
    format_date(spec, &m).map(Value::String)
}

pub(super) fn unixtimestampparse(args: Vec<Value>) -> Result<Value, CallError> {
    // Fractional seconds are dropped, as converting a cty number to int64 does.
    let secs = arg_f64(&args, 0)?.trunc();
    let ts =
        Timestamp::from_second(secs as i64).map_err(|_| bad(0, "timestamp is out of range"))?;
    let m = Moment { ts, offset: 0 };
    let dt = m.local();
    let iso = dt.date().iso_week_date();
    let month = usize::try_from(dt.month() - 1).unwrap_or(0);
    let weekday = dt.weekday().to_sunday_zero_offset();
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put("year", dt.year().into());
    put("year_day", dt.day_of_year().into());
    put("day", dt.day().into());
    put("month", dt.month().into());
    put("month_name", MONTHS[month].into());
    put("weekday", weekday.into());
    put(
        "weekday_name",
        WEEKDAYS[usize::from(weekday.unsigned_abs())].into(),
    );
    put("hour", dt.hour().into());
    put("minute", dt.minute().into());
    put("second", dt.second().into());
    put("rfc3339", format_rfc3339(&m).into());
    put("iso_year", iso.year().into());
    put("iso_week", iso.week().into());
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::stdlib::call;
    use hcl::Value;

    fn s(name: &str, args: Vec<Value>) -> String {
        match call(name, args) {
            Ok(Value::String(s)) => s,
            other => panic!("{name}: unexpected {other:?}"),
        }
    }

    #[test]
    fn timestamp_is_rfc3339_utc() {
        let t = s("timestamp", vec![]);
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
        assert!(super::parse_rfc3339(&t).is_some());
    }

    #[test]
    fn formatdate_verbs() {
        let ts = "2017-03-04T18:05:09+01:00";
        assert_eq!(
            s(
                "formatdate",
                vec!["YYYY-MM-DD hh:mm:ss ZZZZZ".into(), ts.into()]
            ),
            "2017-03-04 18:05:09 +01:00"
        );
        assert_eq!(
            s(
                "formatdate",
                vec!["EEEE, DD MMMM YY h:m:s H AA aa ZZZZ ZZZ".into(), ts.into()]
            ),
            "Saturday, 04 March 17 18:5:9 6 PM pm +0100 +0100"
        );
        assert_eq!(
            s(
                "formatdate",
                vec![
                    "EEE MMM D M 'o''clock' ''Z".into(),
                    "2020-01-02T00:00:00Z".into()
                ]
            ),
            "Thu Jan 2 1 o'clock 'Z"
        );
        assert_eq!(
            s(
                "formatdate",
                vec!["ZZZ HH".into(), "2020-01-02T00:00:00.123Z".into()]
            ),
            "UTC 12"
        );
        assert_eq!(
            call("formatdate", vec!["YYY".into(), ts.into()]),
            Err(crate::bake::hcl::stdlib::CallError::Argument {
                index: 0,
                message: r#"invalid date format verb "YYY": year must either be "YY" or "YYYY""#
                    .to_owned()
            })
        );
        assert!(call("formatdate", vec!["T".into(), ts.into()]).is_err());
        assert!(call("formatdate", vec!["'abc".into(), ts.into()]).is_err());
        assert!(call("formatdate", vec!["YYYY".into(), "2017-03-04".into()]).is_err());
        assert!(
            call(
                "formatdate",
                vec!["YYYY".into(), "2017-13-04T00:00:00Z".into()]
            )
            .is_err()
        );
    }

    #[test]
    fn timeadd_durations() {
        assert_eq!(
            s("timeadd", vec!["2017-11-22T00:00:00Z".into(), "10m".into()]),
            "2017-11-22T00:10:00Z"
        );
        assert_eq!(
            s(
                "timeadd",
                vec!["2017-11-22T00:00:00+02:00".into(), "-1h30m".into()]
            ),
            "2017-11-21T22:30:00+02:00"
        );
        assert_eq!(
            s(
                "timeadd",
                vec!["2017-11-22T00:00:00Z".into(), "1.5h".into()]
            ),
            "2017-11-22T01:30:00Z"
        );
        assert!(call("timeadd", vec!["2017-11-22T00:00:00Z".into(), "1d".into()]).is_err());
        assert!(call("timeadd", vec!["yesterday".into(), "1h".into()]).is_err());
    }

    #[test]
    fn bake_time_helpers() {
        assert_eq!(
            s(
                "formattimestamp",
                vec!["YYYY-MM-DD".into(), 1_700_000_000.into()]
            ),
            "2023-11-14"
        );
        assert_eq!(
            s(
                "formattimestamp",
                vec!["X".into(), "2023-11-14T22:13:20Z".into()]
            ),
            "1700000000"
        );
        assert_eq!(
            s(
                "formattimestamp",
                vec!["hh:mm".into(), "2023-11-14T22:13:20+01:00".into()]
            ),
            "22:13"
        );
        assert!(call("formattimestamp", vec!["X".into(), "nope".into()]).is_err());
        assert!(call("formattimestamp", vec!["X".into(), Value::Array(vec![])]).is_err());
        let Ok(Value::Object(o)) = call("unixtimestampparse", vec![1_700_000_000.into()]) else {
            panic!("object expected");
        };
        assert_eq!(o.get("year"), Some(&2023.into()));
        assert_eq!(o.get("year_day"), Some(&318.into()));
        assert_eq!(o.get("month"), Some(&11.into()));
        assert_eq!(o.get("month_name"), Some(&"November".into()));
        assert_eq!(o.get("day"), Some(&14.into()));
        assert_eq!(o.get("weekday"), Some(&2.into()));
        assert_eq!(o.get("weekday_name"), Some(&"Tuesday".into()));
        assert_eq!(o.get("hour"), Some(&22.into()));
        assert_eq!(o.get("minute"), Some(&13.into()));
        assert_eq!(o.get("second"), Some(&20.into()));
        assert_eq!(o.get("rfc3339"), Some(&"2023-11-14T22:13:20Z".into()));
        assert_eq!(o.get("iso_year"), Some(&2023.into()));
        assert_eq!(o.get("iso_week"), Some(&46.into()));
        assert!(call("unixtimestampparse", vec!["x".into()]).is_err());
    }
}
