//! One CSV record split into fields, as Go's `encoding/csv` (and buildx's `csvvalue`) reads
//! flag values: commas separate fields, double quotes protect commas, `""` is a quote.

use super::error::{Error, Result};

/// Splits one CSV record into its fields.
pub fn split_fields(input: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(csv_error(input, "unterminated quote")),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(csv_error(input, "extraneous text after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(csv_error(input, "bare `\"` in a field")),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

fn csv_error(input: &str, reason: &str) -> Error {
    Error::Csv {
        input: input.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_protect_commas() {
        assert_eq!(
            split_fields(r#"type=local,"dest=a,b",x="#).unwrap(),
            ["type=local", "dest=a,b", "x="]
        );
        assert_eq!(split_fields(r#""say ""hi""""#).unwrap(), [r#"say "hi""#]);
    }

    #[test]
    fn malformed_quotes_are_errors() {
        assert!(split_fields(r#""open"#).is_err());
        assert!(split_fields(r#"a"b"#).is_err());
        assert!(split_fields(r#""a"b"#).is_err());
    }
}
