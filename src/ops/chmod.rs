//! `--chmod` values (octal or symbolic like `u+x,g-w,o=r`) and the per-name glob matching
//! COPY wildcards and `--exclude` use. Part of `ops`.

/// A mode change: absolute bits, or symbolic clauses applied to the existing bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Replace the permission bits.
    Absolute(u32),
    /// `[ugoa]*[+-=][rwxXst]*` clauses, comma-separated.
    Symbolic(Vec<Clause>),
}

/// One symbolic clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

/// Parses an octal (`755`, `0644`) or symbolic (`u+x,go-w`) mode; `None` when invalid.
pub fn parse(text: &str) -> Option<Mode> {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return u32::from_str_radix(text, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Mode::Absolute);
    }
    let mut clauses = Vec::new();
    for part in text.split(',') {
        let op_at = part.find(['+', '-', '='])?;
        let (who_text, rest) = part.split_at(op_at);
        let mut who = 0;
        for c in who_text.chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return None,
            };
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next()?;
        let perms: String = chars.collect();
        if !perms.chars().all(|c| "rwxXst".contains(c)) {
            return None;
        }
        clauses.push(Clause { who, op, perms });
    }
    Some(Mode::Symbolic(clauses))
}

impl Mode {
    /// Applies the change to existing permission bits (`X` adds execute only for
    /// directories or files that already have an execute bit).
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            Mode::Absolute(mode) => *mode,
            Mode::Symbolic(clauses) => clauses.iter().fold(current, |mode, clause| {
                let mut bits = 0;
                for c in clause.perms.chars() {
                    bits |= match c {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' if is_dir || mode & 0o111 != 0 => 0o111,
                        's' => 0o6000,
                        't' => 0o1000,
                        _ => 0,
                    };
                }
                let bits = bits & clause.who;
                match clause.op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => (mode & !(clause.who & 0o7777)) | bits,
                }
            }),
        }
    }
}

/// Matches one path component against a Go `filepath.Match` pattern (`*`, `?`, `[...]`,
/// `[^...]`, `\` escapes).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    fn matches(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|skip| matches(&p[1..], &n[skip..])),
            Some('?') => !n.is_empty() && matches(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                    return false;
                };
                let Some(&c) = n.first() else { return false };
                let class = &p[1..close];
                let (negate, class) = match class.first() {
                    Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && matches(&p[close + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && matches(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && matches(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic_modes() {
        assert_eq!(parse("755").unwrap().apply(0o644, false), 0o755);
        assert_eq!(parse("u+x").unwrap().apply(0o644, false), 0o744);
        assert_eq!(parse("go-w").unwrap().apply(0o666, false), 0o644);
        assert_eq!(parse("a=r").unwrap().apply(0o777, false), 0o444);
        assert_eq!(parse("+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(parse("+X").unwrap().apply(0o644, false), 0o644);
        assert!(parse("u+q").is_none());
        assert!(parse("99999").is_none());
        assert!(parse("z+x").is_none());
    }

    #[test]
    fn go_filepath_match() {
        assert!(glob_matches("*.txt", "a.txt"));
        assert!(!glob_matches("*.txt", "a.md"));
        assert!(glob_matches("file?", "file1"));
        assert!(glob_matches("[a-c]x", "bx"));
        assert!(glob_matches("[^a-c]x", "dx"));
        assert!(!glob_matches("[^a-c]x", "ax"));
        assert!(glob_matches("[!]x", "!x"), "`!` is literal in Go classes");
        assert!(glob_matches("\\*", "*"));
        assert!(!glob_matches("{a,b}", "a"));
    }
}
