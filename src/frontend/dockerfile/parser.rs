//! Dockerfile text → [`Node`]s with byte spans: directives, comments, line continuation,
//! heredocs and the `--flags` that follow a keyword. Knows nothing of instruction semantics.
//!
//! We keep our own parser rather than `parse-dockerfile`, because the checks need what that
//! crate drops: the keyword as written (ConsistentInstructionCasing), empty continuation lines
//! (NoEmptyContinuation) and the comments above a `FROM`/`ARG` (stage descriptions).

use std::ops::Range;

use crate::diag::{self, SourceFile};
use crate::frontend::dockerfile::error::{Error, Result};

/// A parsed Dockerfile: directives, instruction nodes and parser warnings.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The source the nodes point into.
    pub file: SourceFile,
    /// `# syntax=`, `# escape=` and `# check=` at the top of the file.
    pub directives: Directives,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// Instructions in file order.
    pub nodes: Vec<Node>,
    /// Lines (1-based) ending an instruction that contained an empty continuation line.
    pub empty_continuations: Vec<usize>,
}

/// The parser directives found at the top of the file.
#[derive(Debug, Clone, Default)]
pub struct Directives {
    /// `# syntax=<image>`.
    pub syntax: Option<Directive>,
    /// `# escape=<char>`.
    pub escape: Option<Directive>,
    /// `# check=<options>`.
    pub check: Option<Directive>,
}

/// One parser directive.
#[derive(Debug, Clone)]
pub struct Directive {
    /// The value, trimmed.
    pub value: String,
    /// Byte range of the whole directive line.
    pub span: Range<usize>,
}

/// One instruction as written, before its arguments are interpreted.
#[derive(Debug, Clone)]
pub struct Node {
    /// Keyword, lower case (`run`).
    pub keyword: String,
    /// Keyword as written (`Run`).
    pub original_keyword: String,
    /// Byte range of the keyword.
    pub keyword_span: Range<usize>,
    /// `--name[=value]` flags after the keyword.
    pub flags: Vec<RawFlag>,
    /// The arguments after the flags, continuation lines joined, trimmed.
    pub args: String,
    /// Byte range of the arguments in the file (first to last character).
    pub args_span: Range<usize>,
    /// The whole instruction line, continuation lines joined (buildkit's `Original`).
    pub original: String,
    /// Heredocs read after the instruction line.
    pub heredocs: Vec<Heredoc>,
    /// Byte range of the whole instruction, heredoc bodies included.
    pub span: Range<usize>,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based, inclusive).
    pub end_line: usize,
    /// Comment lines directly above the instruction, without the `#`.
    pub comments: Vec<String>,
}

/// A `--name[=value]` flag as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFlag {
    /// Name without the dashes.
    pub name: String,
    /// Value after `=`, quotes removed; `None` for a bare `--name`.
    pub value: Option<String>,
    /// Byte range of the whole flag.
    pub span: Range<usize>,
}

/// A here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, unquoted.
    pub name: String,
    /// False when the delimiter was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body.
    pub chomp: bool,
    /// The body, each line ending with `\n`.
    pub content: String,
}

/// The instructions that may carry heredocs.
// Compat: buildkit parser heredocDirectives.
const HEREDOC_INSTRUCTIONS: &[&str] = &["add", "copy", "run"];

struct Line<'a> {
    text: &'a str,
    start: usize,
    number: usize,
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (number, raw) in text.split_inclusive('\n').enumerate() {
        let mut body = raw.strip_suffix('\n').unwrap_or(raw);
        body = body.strip_suffix('\r').unwrap_or(body);
        let (body, offset) = match (number, body.strip_prefix('\u{feff}')) {
            (0, Some(rest)) => (rest, 3),
            _ => (body, 0),
        };
        lines.push(Line {
            text: body,
            start: start + offset,
            number: number + 1,
        });
        start += raw.len();
    }
    lines
}

/// Text with a map from its byte positions back to positions in the file.
struct Joined {
    text: String,
    segments: Vec<(usize, usize)>,
}

impl Joined {
    fn push(&mut self, piece: &str, source: usize) {
        self.segments.push((self.text.len(), source));
        self.text.push_str(piece);
    }

    fn source_offset(&self, position: usize) -> usize {
        let index = self
            .segments
            .partition_point(|(joined, _)| *joined <= position);
        match index.checked_sub(1).and_then(|i| self.segments.get(i)) {
            Some((joined, source)) => source + (position - joined),
            None => 0,
        }
    }

    fn source_range(&self, range: Range<usize>) -> Range<usize> {
        let start = self.source_offset(range.start);
        let end = if range.end > range.start {
            self.source_offset(range.end - 1) + 1
        } else {
            start
        };
        start..end.max(start)
    }
}

/// Parses a Dockerfile into nodes.
///
/// # Errors
/// Returns an error for an invalid `# escape=` directive, a duplicated directive, a heredoc
/// that is never terminated, or unbalanced quotes in a flag.
pub fn parse(file: &SourceFile) -> Result<Dockerfile> {
    let text = file.text.clone();
    let lines = split_lines(&text);
    let (directives, first_line) = parse_directives(file, &lines)?;
    let escape = directives
        .escape
        .as_ref()
        .and_then(|d| d.value.chars().next())
        .unwrap_or('\\');
    let mut parser = Parser {
        file,
        lines: &lines,
        index: first_line,
        escape,
    };
    let mut nodes = Vec::new();
    let mut empty_continuations = Vec::new();
    let mut comments = Vec::new();
    while let Some(node) = parser.next_node(&mut comments, &mut empty_continuations)? {
        nodes.push(node);
    }
    Ok(Dockerfile {
        file: file.clone(),
        directives,
        escape,
        nodes,
        empty_continuations,
    })
}

fn parse_directives(file: &SourceFile, lines: &[Line<'_>]) -> Result<(Directives, usize)> {
    let mut directives = Directives::default();
    let mut index = 0;
    while let Some(line) = lines.get(index) {
        let Some((key, value)) = directive_of(line.text) else {
            break;
        };
        let span = line.start..line.start + line.text.len();
        let slot = match key.as_str() {
            "syntax" => &mut directives.syntax,
            "escape" => &mut directives.escape,
            "check" => &mut directives.check,
            _ => break,
        };
        if slot.is_some() {
            return Err(syntax_error(
                file,
                format!("only one `{key}` parser directive can be used"),
                span,
            ));
        }
        if key == "escape" && value != "\\" && value != "`" {
            return Err(syntax_error(
                file,
                format!("invalid escape token `{value}`: expected `\\` or `` ` ``"),
                span,
            ));
        }
        *slot = Some(Directive { value, span });
        index += 1;
    }
    Ok((directives, index))
}

/// Matches `# key=value` (key letters and digits, case-insensitive).
fn directive_of(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim_end();
    let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric());
    let value = value.trim();
    (valid && !value.is_empty()).then(|| (key.to_lowercase(), value.to_owned()))
}

pub(crate) fn syntax_error(file: &SourceFile, message: String, span: Range<usize>) -> Error {
    Error::Syntax {
        message,
        help: None,
        src: file.named(),
        span: diag::span(span),
    }
}

struct Parser<'a, 'l> {
    file: &'a SourceFile,
    lines: &'l [Line<'l>],
    index: usize,
    escape: char,
}

fn is_comment(text: &str) -> bool {
    text.trim_start().starts_with('#')
}

impl Parser<'_, '_> {
    /// Removes a trailing escape character (and blanks after it); true when the line ends the
    /// instruction.
    // Compat: buildkit parser trimContinuationCharacter.
    fn trim_continuation<'t>(&self, text: &'t str) -> (&'t str, bool) {
        let trimmed = text.trim_end_matches([' ', '\t']);
        match trimmed.strip_suffix(self.escape) {
            Some(rest) => (rest, false),
            None => (text, true),
        }
    }

    fn next_node(
        &mut self,
        comments: &mut Vec<String>,
        empty_continuations: &mut Vec<usize>,
    ) -> Result<Option<Node>> {
        loop {
            let Some(line) = self.lines.get(self.index) else {
                return Ok(None);
            };
            self.index += 1;
            let trimmed = line.text.trim_start();
            if trimmed.is_empty() {
                comments.clear();
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                comments.push(comment.strip_prefix(' ').unwrap_or(comment).to_owned());
                continue;
            }
            let start = line.start + (line.text.len() - trimmed.len());
            let node = self.read_instruction(line, start, trimmed, empty_continuations)?;
            let node = Node {
                comments: std::mem::take(comments),
                ..node
            };
            return Ok(Some(node));
        }
    }

    fn read_instruction(
        &mut self,
        first: &Line<'_>,
        start: usize,
        trimmed: &str,
        empty_continuations: &mut Vec<usize>,
    ) -> Result<Node> {
        let mut joined = Joined {
            text: String::new(),
            segments: Vec::new(),
        };
        let (piece, mut done) = self.trim_continuation(trimmed);
        joined.push(piece, start);
        let mut end = start + trimmed.len();
        let mut end_line = first.number;
        let mut saw_empty = false;
        while !done {
            let Some(line) = self.lines.get(self.index) else {
                break;
            };
            self.index += 1;
            end_line = line.number;
            if is_comment(line.text) {
                continue;
            }
            if line.text.trim().is_empty() {
                saw_empty = true;
                continue;
            }
            end = line.start + line.text.len();
            let (piece, finished) = self.trim_continuation(line.text);
            joined.push(piece, line.start);
            done = finished;
        }
        if saw_empty {
            empty_continuations.push(end_line);
        }
        let mut node = self.split_node(&joined, start..end, first.number, end_line)?;
        if HEREDOC_INSTRUCTIONS.contains(&node.keyword.as_str())
            || (node.keyword == "onbuild" && node.args.contains("<<"))
        {
            self.read_heredocs(&mut node)?;
        }
        Ok(node)
    }

    fn split_node(
        &self,
        joined: &Joined,
        span: Range<usize>,
        start_line: usize,
        end_line: usize,
    ) -> Result<Node> {
        let text = joined.text.as_str();
        let leading = text.len() - text.trim_start().len();
        let keyword_end = text[leading..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| leading + i);
        let keyword = &text[leading..keyword_end];
        let (flags, args_start) =
            extract_flags(text, keyword_end, self.escape).map_err(|(message, at)| {
                let at = joined.source_offset(at);
                syntax_error(self.file, message, at..at + 1)
            })?;
        let flags = flags
            .into_iter()
            .map(|(name, value, range)| RawFlag {
                name,
                value,
                span: joined.source_range(range),
            })
            .collect();
        let args_raw = &text[args_start..];
        let args_leading = args_raw.len() - args_raw.trim_start().len();
        let args = args_raw.trim();
        let args_range = args_start + args_leading..args_start + args_leading + args.len();
        Ok(Node {
            keyword: keyword.to_lowercase(),
            original_keyword: keyword.to_owned(),
            keyword_span: joined.source_range(leading..keyword_end),
            flags,
            args: args.to_owned(),
            args_span: joined.source_range(args_range),
            original: text.trim().to_owned(),
            heredocs: Vec::new(),
            span,
            start_line,
            end_line,
            comments: Vec::new(),
        })
    }

    fn read_heredocs(&mut self, node: &mut Node) -> Result<()> {
        for (name, expand, chomp) in heredoc_markers(&node.args) {
            let mut content = String::new();
            let mut terminated = false;
            while let Some(line) = self.lines.get(self.index) {
                self.index += 1;
                node.end_line = line.number;
                node.span.end = line.start + line.text.len();
                let candidate = if chomp {
                    line.text.trim_start_matches('\t')
                } else {
                    line.text
                };
                if candidate == name {
                    terminated = true;
                    break;
                }
                content.push_str(line.text);
                content.push('\n');
            }
            if !terminated {
                return Err(Error::UnterminatedHeredoc {
                    name,
                    src: self.file.named(),
                    span: diag::span(node.keyword_span.start..node.keyword_span.end),
                });
            }
            node.heredocs.push(Heredoc {
                name,
                expand,
                chomp,
                content,
            });
        }
        Ok(())
    }
}

/// Finds `<<WORD`, `<<-WORD`, `<<"WORD"` and `<<'WORD'` words in an instruction's arguments.
// Compat: buildkit parser heredocsFromLine / ParseHeredoc.
pub(crate) fn heredoc_markers(args: &str) -> Vec<(String, bool, bool)> {
    let mut markers = Vec::new();
    for word in raw_words(args, '\\') {
        let Some(rest) = word.strip_prefix("<<") else {
            continue;
        };
        let (chomp, rest) = match rest.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let name_raw = rest.trim_start();
        if name_raw.is_empty() || name_raw.contains('<') {
            continue;
        }
        let quoted = name_raw.contains(['"', '\'']);
        let name: String = name_raw
            .chars()
            .filter(|c| *c != '"' && *c != '\'')
            .collect();
        if name.is_empty() {
            continue;
        }
        markers.push((name, !quoted, chomp));
    }
    markers
}

/// Splits on blanks outside quotes, keeping quotes and escapes as written.
// Compat: buildkit parser parseWords.
pub(crate) fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            word.push(c);
            if let Some(next) = chars.next() {
                word.push(next);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

type FlagParts = (String, Option<String>, Range<usize>);

/// Reads `--flag[=value]` words from `text[from..]`; returns them with the position where the
/// arguments start.
// Compat: buildkit parser extractBuilderFlags (quotes removed, `\` escapes one character,
// a bare `--` ends the flags).
fn extract_flags(
    text: &str,
    from: usize,
    escape: char,
) -> std::result::Result<(Vec<FlagParts>, usize), (String, usize)> {
    let mut flags = Vec::new();
    let mut position = from;
    loop {
        let rest = &text[position..];
        let skipped = rest.len() - rest.trim_start().len();
        position += skipped;
        if !text[position..].starts_with("--") {
            return Ok((flags, position));
        }
        let start = position;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = text[position..].char_indices().peekable();
        let mut end = text.len();
        while let Some((offset, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = position + offset;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == escape => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(("unbalanced quotes in flag".to_owned(), start));
        }
        position = end;
        if word == "--" {
            return Ok((flags, position));
        }
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (body.to_owned(), None),
        };
        flags.push((name, value, start..end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Dockerfile {
        parse(&SourceFile::new("Dockerfile", text)).expect("parses")
    }

    #[test]
    fn directives_escape_and_continuations() {
        let file = parse_text("# escape=`\n# check=skip=all\nFROM a\nRUN echo `\n  hi\n");
        assert_eq!(file.escape, '`');
        assert_eq!(
            file.directives.check.as_ref().map(|d| d.value.as_str()),
            Some("skip=all")
        );
        assert_eq!(file.nodes[1].args, "echo   hi");
        assert_eq!((file.nodes[1].start_line, file.nodes[1].end_line), (4, 5));
    }

    #[test]
    fn flags_keep_spans_and_strip_quotes() {
        let text = "RUN --mount=\"type=cache,target=/c\" --network=none make";
        let file = parse_text(text);
        let node = &file.nodes[0];
        assert_eq!(node.flags[0].value.as_deref(), Some("type=cache,target=/c"));
        assert_eq!(&text[node.flags[1].span.clone()], "--network=none");
        assert_eq!(node.args, "make");
        assert_eq!(&text[node.args_span.clone()], "make");
    }

    #[test]
    fn heredocs_are_read_in_order() {
        let file = parse_text("RUN <<A cat - <<-'B'\none\nA\n\ttwo\n\tB\nCMD x\n");
        let node = &file.nodes[0];
        assert_eq!(node.heredocs.len(), 2);
        assert_eq!(node.heredocs[0].content, "one\n");
        assert!(!node.heredocs[1].expand && node.heredocs[1].chomp);
        assert_eq!(file.nodes[1].keyword, "cmd");
    }

    #[test]
    fn empty_continuation_lines_are_recorded_at_the_last_line() {
        let file = parse_text("FROM a\nCOPY a \\\n\n  /b/\n");
        assert_eq!(file.empty_continuations, [4]);
        assert_eq!(file.nodes[1].args, "a   /b/");
    }

    #[test]
    fn comments_above_instructions_are_kept() {
        let file = parse_text("# base is the base\nFROM a AS base\n");
        assert_eq!(file.nodes[0].comments, ["base is the base"]);
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        assert!(parse(&SourceFile::new("D", "RUN <<EOF\nhi\n")).is_err());
    }
}
