//! Splits a process's output chunks into log lines, one partial-line buffer per stream. Part
//! of `ops`.
//!
//! Pipes deliver arbitrary chunks: a line may arrive in pieces, a UTF-8 character may be cut
//! between two reads, and stdout and stderr interleave. Bytes are kept per stream until a
//! newline completes the line, and only whole lines are decoded, so a split character
//! survives and one stream's text is never finished (and labelled) by the other.

use crate::progress::Stream;

/// Longest line kept before it is emitted anyway, so output without newlines (a progress
/// bar, a binary dump) cannot grow a buffer without bound.
const MAX_LINE: usize = 64 * 1024;

/// Turns output chunks into whole lines, per stream.
#[derive(Debug, Default)]
pub struct Lines {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Lines {
    /// Adds a chunk of `stream`'s output and calls `emit` for every line it completes,
    /// without the trailing newline.
    pub fn push(&mut self, stream: Stream, bytes: &[u8], emit: &mut dyn FnMut(Stream, String)) {
        let buffer = self.buffer(stream);
        buffer.extend_from_slice(bytes);
        let mut start = 0;
        let mut lines = Vec::new();
        while let Some(offset) = buffer[start..].iter().position(|&b| b == b'\n') {
            lines.push(decode(&buffer[start..start + offset]));
            start += offset + 1;
        }
        buffer.drain(..start);
        while buffer.len() > MAX_LINE {
            let cut = char_boundary(buffer, MAX_LINE);
            lines.push(decode(&buffer[..cut]));
            buffer.drain(..cut);
        }
        for line in lines {
            emit(stream, line);
        }
    }

    /// Emits what is left of each stream after the process ended: its last line when that
    /// had no trailing newline. Stdout first, then stderr.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Stream, String)) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let buffer = std::mem::take(self.buffer(stream));
            if !buffer.is_empty() {
                emit(stream, decode(&buffer));
            }
        }
    }

    fn buffer(&mut self, stream: Stream) -> &mut Vec<u8> {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// Decodes one whole line; only bytes that are not UTF-8 become U+FFFD.
fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The largest cut at or before `at` that does not split a UTF-8 character (a cut before a
/// continuation byte would), falling back to `at` for bytes that are not UTF-8 anyway.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    (at.saturating_sub(3)..=at)
        .rev()
        .find(|&i| bytes.get(i).is_none_or(|&b| b & 0xC0 != 0x80))
        .filter(|&i| i > 0)
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[(Stream, &[u8])], finish: bool) -> Vec<(Stream, String)> {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut emit = |stream, line| out.push((stream, line));
        for (stream, bytes) in chunks {
            lines.push(*stream, bytes, &mut emit);
        }
        if finish {
            lines.finish(&mut emit);
        }
        out
    }

    #[test]
    fn a_character_split_across_chunks_is_decoded_whole() {
        let text = "héllo ✓\n".as_bytes();
        // Cut inside `é` (2 bytes) and inside `✓` (3 bytes).
        let chunks = [
            (Stream::Stdout, &text[..2]),
            (Stream::Stdout, &text[2..8]),
            (Stream::Stdout, &text[8..]),
        ];
        assert_eq!(run(&chunks, true), [(Stream::Stdout, "héllo ✓".to_owned())]);
    }

    #[test]
    fn interleaved_streams_keep_their_own_partial_lines() {
        let chunks: [(Stream, &[u8]); 4] = [
            (Stream::Stdout, b"out-"),
            (Stream::Stderr, b"err-"),
            (Stream::Stdout, b"line\nnext"),
            (Stream::Stderr, b"line\n"),
        ];
        assert_eq!(
            run(&chunks, false),
            [
                (Stream::Stdout, "out-line".to_owned()),
                (Stream::Stderr, "err-line".to_owned()),
            ]
        );
    }

    #[test]
    fn the_final_partial_line_of_each_stream_is_flushed_at_the_end() {
        let chunks: [(Stream, &[u8]); 3] = [
            (Stream::Stderr, b"warn"),
            (Stream::Stdout, b"a\nlast-without-newline"),
            (Stream::Stderr, b"ing"),
        ];
        assert_eq!(
            run(&chunks, true),
            [
                (Stream::Stdout, "a".to_owned()),
                (Stream::Stdout, "last-without-newline".to_owned()),
                (Stream::Stderr, "warning".to_owned()),
            ]
        );
        assert!(run(&[(Stream::Stdout, b"done\n")], true).len() == 1);
    }

    #[test]
    fn invalid_bytes_and_empty_lines_are_kept_as_lines() {
        let chunks: [(Stream, &[u8]); 1] = [(Stream::Stdout, b"\n\xffok\n")];
        assert_eq!(
            run(&chunks, true),
            [
                (Stream::Stdout, String::new()),
                (Stream::Stdout, "\u{fffd}ok".to_owned()),
            ]
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut_on_a_character_boundary() {
        let mut text = "x".repeat(MAX_LINE - 1).into_bytes();
        text.extend_from_slice("é and more".as_bytes());
        let out = run(&[(Stream::Stdout, &text)], true);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].1.len(), MAX_LINE - 1);
        assert_eq!(out[1].1, "é and more");
    }
}
