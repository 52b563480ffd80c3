//! Progress events (a vertex started, was cached, logged a line, finished or failed) and the
//! [`Sink`] trait that receives them. Leaf: imports nothing from the crate; renderers live in
//! `cli`, producers are `solver`, `executor`, `exporter` and `ops`.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// A vertex named by the text of its digest (`sha256:<hex>`); text, because this module is a
/// leaf and cannot name `digest::Digest`.
pub type VertexId = String;

/// Which output stream of a process a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One thing that happened to a vertex during a solve. Each vertex worked on gets
/// [`Event::Started`], any number of [`Event::Log`], then exactly one of [`Event::Cached`],
/// [`Event::Done`], [`Event::Error`] or [`Event::Cancelled`].
// Compat: buildkit client.SolveStatus (VertexStatus / VertexLog): started, cached, completed,
// error, and log lines per vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Work on the vertex began (cache lookup or execution).
    Started {
        /// The vertex digest as text.
        vertex: VertexId,
        /// The progress name, e.g. `[build 2/4] RUN make`.
        name: String,
    },
    /// The vertex's result came from the cache; it did not run.
    Cached {
        /// The vertex digest as text.
        vertex: VertexId,
    },
    /// A line of output from the vertex (without its trailing newline).
    Log {
        /// The vertex digest as text.
        vertex: VertexId,
        /// The stream the line was written to.
        stream: Stream,
        /// The line, lossily decoded as UTF-8.
        line: String,
    },
    /// The vertex ran and succeeded.
    Done {
        /// The vertex digest as text.
        vertex: VertexId,
        /// Time from [`Event::Started`] to completion.
        duration: Duration,
    },
    /// The build was cancelled (Ctrl-C, SIGTERM, a closed progress pipe) while the vertex ran.
    Cancelled {
        /// The vertex digest as text.
        vertex: VertexId,
        /// Time from [`Event::Started`] to the cancellation.
        duration: Duration,
    },
    /// The vertex failed.
    Error {
        /// The vertex digest as text.
        vertex: VertexId,
        /// The error message.
        message: String,
        /// Time from [`Event::Started`] to the failure.
        duration: Duration,
    },
}

impl Event {
    /// Returns the vertex the event is about.
    pub fn vertex(&self) -> &str {
        match self {
            Self::Started { vertex, .. }
            | Self::Cached { vertex }
            | Self::Log { vertex, .. }
            | Self::Done { vertex, .. }
            | Self::Cancelled { vertex, .. }
            | Self::Error { vertex, .. } => vertex,
        }
    }
}

/// Receives progress events; called from several threads at once.
pub trait Sink: Send + Sync {
    /// Handles one event. Must not block for long: it runs on the thread doing the work.
    fn event(&self, event: Event);
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Sink for Discard {
    fn event(&self, _event: Event) {}
}

/// A sink that keeps every event in memory, in arrival order (for tests and `rawjson` replay).
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// Returns a copy of the events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .map(|events| events.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl Sink for Recorder {
    fn event(&self, event: Event) {
        match self.events.lock() {
            Ok(mut events) => events.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}

impl<F: Fn(Event) + Send + Sync> Sink for F {
    fn event(&self, event: Event) {
        self(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_keeps_events_in_order_and_serialises_them_tagged() {
        let recorder = Recorder::default();
        recorder.event(Event::Cached { vertex: "a".into() });
        recorder.event(Event::Log {
            vertex: "b".into(),
            stream: Stream::Stdout,
            line: "hi".into(),
        });
        let events = recorder.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].vertex(), "b");
        let json = serde_json::to_string(&events[0]).unwrap();
        assert_eq!(json, r#"{"event":"cached","vertex":"a"}"#);
    }
}
