//! Progress on stderr: BuildKit's plain format (`#N name`, `#N CACHED`, `#N DONE 0.3s`, log
//! lines), `rawjson` (one event per line) or nothing (`quiet`).
#![expect(clippy::print_stderr, reason = "progress goes to stderr")]

use std::collections::HashMap;
use std::sync::Mutex;

use crate::progress::{Event, Sink};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `#N` lines.
    Plain,
    /// One JSON event per line.
    RawJson,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Maps `--progress` (`auto` and `tty` print plain lines until the live view lands).
    pub(crate) fn parse(value: &str) -> Self {
        match value {
            "rawjson" => Mode::RawJson,
            "quiet" | "none" => Mode::Quiet,
            _ => Mode::Plain,
        }
    }
}

/// Numbers vertices in the order they first appear, as BuildKit's plain printer does.
pub(crate) struct Printer {
    mode: Mode,
    numbers: Mutex<HashMap<String, usize>>,
}

impl Printer {
    /// Creates a printer for `mode`.
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            numbers: Mutex::new(HashMap::new()),
        }
    }

    fn number(&self, vertex: &str) -> usize {
        let mut numbers = self
            .numbers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = numbers.len() + 1;
        *numbers.entry(vertex.to_owned()).or_insert(next)
    }
}

impl Sink for Printer {
    fn event(&self, event: Event) {
        match self.mode {
            Mode::Quiet => {}
            Mode::RawJson => {
                if let Ok(line) = serde_json::to_string(&event) {
                    eprintln!("{line}");
                }
            }
            Mode::Plain => {
                let n = self.number(event.vertex());
                match &event {
                    Event::Started { name, .. } => eprintln!("#{n} {name}"),
                    Event::Cached { .. } => eprintln!("#{n} CACHED"),
                    Event::Log { line, .. } => eprintln!("#{n} {line}"),
                    Event::Done { duration, .. } => {
                        eprintln!("#{n} DONE {:.1}s", duration.as_secs_f64())
                    }
                    Event::Error { message, .. } => eprintln!("#{n} ERROR: {message}"),
                }
            }
        }
    }
}
