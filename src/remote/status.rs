//! BuildKit's status stream turned into bake's own progress events, so every `--progress`
//! view looks the same as with the embedded solver. Part of `remote`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::progress::{Event, Sink, Stream};
use crate::remote::proto::{StatusResponse, Timestamp, VertexStatus};

#[derive(Debug, Default)]
struct VertexState {
    started: bool,
    finished: bool,
    /// When the daemon says this run of the vertex started.
    run: Option<i128>,
    /// Shown already by an earlier solve of the target: its events are not sent again.
    quiet: bool,
}

/// Follows a target's vertices: BuildKit repeats a vertex in several updates, bake's
/// events say each thing once (started, then cached, done or failed). A target solved once
/// per output keeps one translator, so the later solves show only what runs again (their
/// exports), not the whole graph CACHED once more.
#[derive(Debug, Default)]
pub(crate) struct Translator {
    vertices: HashMap<String, VertexState>,
    /// Log bytes after the last newline, per vertex and stream.
    partial: HashMap<(String, i64), Vec<u8>>,
    /// The last lines each vertex wrote, for the error message of a failed solve.
    tails: HashMap<String, Vec<String>>,
    /// Vertices that failed (digest, name), in the order they did.
    failed: Vec<(String, String)>,
    /// Names of the steps shown by earlier solves of the target, and by this one.
    earlier: HashSet<String>,
    current: HashSet<String>,
    /// Counters shown already (vertex, id), and finished ones waiting for their vertex to
    /// be shown.
    shown: HashSet<(String, String)>,
    pending: HashMap<String, Vec<String>>,
}

/// A byte count as BuildKit's plain progress writes it (decimal units, two decimals).
// Compat: tonistiigi/units Bytes with `%.2f`.
fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// The line a finished counter shows, as buildx's plain progress writes it.
// Compat: buildkit progressui printer: `ID current / total 0.0s done`.
fn status_line(status: &VertexStatus) -> String {
    let mut line = status.id.clone();
    if status.total != 0 {
        line.push_str(&format!(
            " {} / {}",
            bytes(status.current),
            bytes(status.total)
        ));
    } else if status.current != 0 {
        line.push_str(&format!(" {}", bytes(status.current)));
    }
    if status.started.is_some() {
        let took = duration(status.started.as_ref(), status.completed.as_ref());
        line.push_str(&format!(" {:.1}s", took.as_secs_f64()));
    }
    line.push_str(" done");
    line
}

/// Whether a vertex named `name` that an earlier solve of the target showed is only a
/// repeat: a cached step, a FROM, or BuildKit's own `[internal]` loading. The graph's digests
/// change between solves (the session is part of a local source), so names decide.
fn repeat(name: &str, cached: bool) -> bool {
    name.starts_with('[') && (cached || name.starts_with("[internal]") || name.contains("] FROM "))
}

/// Log lines kept per vertex for error messages.
const TAIL: usize = 20;

fn duration(started: Option<&Timestamp>, completed: Option<&Timestamp>) -> Duration {
    match (started, completed) {
        (Some(start), Some(end)) => {
            let nanos = (end.nanos() - start.nanos()).max(0);
            Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
        }
        _ => Duration::ZERO,
    }
}

impl Translator {
    /// Sends the events one status update implies.
    pub(crate) fn update(&mut self, response: &StatusResponse, sink: &dyn Sink) {
        for status in &response.statuses {
            if status.completed.is_none()
                || !self
                    .shown
                    .insert((status.vertex.clone(), status.id.clone()))
            {
                continue;
            }
            self.pending
                .entry(status.vertex.clone())
                .or_default()
                .push(status_line(status));
        }
        for vertex in &response.vertexes {
            let state = self.vertices.entry(vertex.digest.clone()).or_default();
            if state.finished {
                let run = vertex.started.as_ref().map(Timestamp::nanos);
                // A vertex that runs again in a later solve (an exporter) is new; cached
                // repeats and late updates of the same run are not.
                if vertex.cached || run.is_none() || run == state.run {
                    continue;
                }
                *state = VertexState::default();
            }
            let begun = vertex.started.is_some() || vertex.completed.is_some() || vertex.cached;
            if begun && !state.started {
                state.started = true;
                state.run = vertex.started.as_ref().map(Timestamp::nanos);
                state.quiet =
                    self.earlier.contains(&vertex.name) && repeat(&vertex.name, vertex.cached);
                self.current.insert(vertex.name.clone());
                if !state.quiet {
                    sink.event(Event::Started {
                        vertex: vertex.digest.clone(),
                        name: vertex.name.clone(),
                    });
                }
            }
            if !state.started {
                continue;
            }
            if state.quiet {
                if vertex.error.is_empty() {
                    state.finished = vertex.cached || vertex.completed.is_some();
                    continue;
                }
                // A failure is always shown, with the step it belongs to.
                state.quiet = false;
                sink.event(Event::Started {
                    vertex: vertex.digest.clone(),
                    name: vertex.name.clone(),
                });
            }
            // Finished counters come before the step's end, as buildx shows them.
            for line in self.pending.remove(&vertex.digest).unwrap_or_default() {
                sink.event(Event::Log {
                    vertex: vertex.digest.clone(),
                    stream: Stream::Stdout,
                    line,
                });
            }
            let took = duration(vertex.started.as_ref(), vertex.completed.as_ref());
            if vertex.cached {
                state.finished = true;
                sink.event(Event::Cached {
                    vertex: vertex.digest.clone(),
                });
            } else if !vertex.error.is_empty() {
                state.finished = true;
                let cancelled = vertex.error.contains("context canceled");
                if !cancelled {
                    self.failed
                        .push((vertex.digest.clone(), vertex.name.clone()));
                }
                sink.event(if cancelled {
                    Event::Cancelled {
                        vertex: vertex.digest.clone(),
                        duration: took,
                    }
                } else {
                    Event::Error {
                        vertex: vertex.digest.clone(),
                        message: vertex.error.clone(),
                        duration: took,
                    }
                });
            } else if vertex.completed.is_some() {
                state.finished = true;
                sink.event(Event::Done {
                    vertex: vertex.digest.clone(),
                    duration: took,
                });
            }
        }
        let waiting: Vec<String> = self.pending.keys().cloned().collect();
        for vertex in waiting {
            if self.vertices.get(&vertex).is_some_and(|v| v.started) {
                self.flush_counters(&vertex, sink);
            }
        }
        for log in &response.logs {
            let key = (log.vertex.clone(), log.stream);
            let buffer = self.partial.entry(key).or_default();
            buffer.extend_from_slice(&log.msg);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end])
                    .trim_end_matches('\r')
                    .to_owned();
                let tail = self.tails.entry(log.vertex.clone()).or_default();
                tail.push(text.clone());
                if tail.len() > TAIL {
                    tail.remove(0);
                }
                if self.vertices.get(&log.vertex).is_some_and(|v| v.quiet) {
                    continue;
                }
                sink.event(Event::Log {
                    vertex: log.vertex.clone(),
                    stream: if log.stream == 2 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    },
                    line: text,
                });
            }
        }
    }

    /// Shows the finished counters of `vertex` as lines of its output (none for a vertex
    /// an earlier solve showed).
    fn flush_counters(&mut self, vertex: &str, sink: &dyn Sink) {
        let Some(lines) = self.pending.remove(vertex) else {
            return;
        };
        if self.vertices.get(vertex).is_some_and(|v| v.quiet) {
            return;
        }
        for line in lines {
            sink.event(Event::Log {
                vertex: vertex.to_owned(),
                stream: Stream::Stdout,
                line,
            });
        }
    }

    /// Sends what is left of unterminated log lines.
    pub(crate) fn flush(&mut self, sink: &dyn Sink) {
        for ((vertex, stream), buffer) in self.partial.drain() {
            if buffer.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(&buffer).into_owned();
            self.tails
                .entry(vertex.clone())
                .or_default()
                .push(text.clone());
            sink.event(Event::Log {
                vertex,
                stream: if stream == 2 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                line: text,
            });
        }
    }

    /// Starts following another solve of the same target: its failures are its own.
    pub(crate) fn next_solve(&mut self) {
        self.failed.clear();
        self.earlier.extend(self.current.drain());
    }

    /// The name and last log lines of the first vertex that failed, if one did.
    pub(crate) fn failure(&self) -> Option<(&str, &[String])> {
        self.failed
            .first()
            .map(|(digest, name)| (name.as_str(), self.tail(digest)))
    }

    /// The log tail of `vertex`.
    pub(crate) fn tail(&self, vertex: &str) -> &[String] {
        self.tails.get(vertex).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Recorder;
    use crate::remote::proto::{Vertex, VertexLog};

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn vertex(digest: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: format!("step {digest}"),
            ..Vertex::default()
        }
    }

    #[test]
    fn repeated_updates_give_one_event_each() {
        let recorder = Recorder::default();
        let mut translator = Translator::default();
        let running = Vertex {
            started: at(1),
            ..vertex("a")
        };
        let done = Vertex {
            completed: at(3),
            ..running.clone()
        };
        let cached = Vertex {
            cached: true,
            started: at(1),
            completed: at(1),
            ..vertex("b")
        };
        for update in [
            vec![vertex("a")],
            vec![running.clone()],
            vec![running, cached],
            vec![done],
        ] {
            translator.update(
                &StatusResponse {
                    vertexes: update,
                    logs: Vec::new(),
                    ..StatusResponse::default()
                },
                &recorder,
            );
        }
        assert_eq!(
            recorder.events(),
            vec![
                Event::Started {
                    vertex: "a".into(),
                    name: "step a".into()
                },
                Event::Started {
                    vertex: "b".into(),
                    name: "step b".into()
                },
                Event::Cached { vertex: "b".into() },
                Event::Done {
                    vertex: "a".into(),
                    duration: Duration::from_secs(2)
                },
            ]
        );
    }

    #[test]
    fn a_later_solve_shows_only_what_runs_again() {
        let recorder = Recorder::default();
        let mut translator = Translator::default();
        let step = Vertex {
            started: at(1),
            completed: at(2),
            name: "[1/2] RUN true".into(),
            ..vertex("a")
        };
        let export = Vertex {
            started: at(2),
            completed: at(3),
            ..vertex("x")
        };
        let send = |translator: &mut Translator, vertexes: Vec<Vertex>| {
            translator.update(
                &StatusResponse {
                    vertexes,
                    logs: Vec::new(),
                    ..StatusResponse::default()
                },
                &recorder,
            );
        };
        send(&mut translator, vec![step.clone(), export.clone()]);
        translator.next_solve();
        // The same step under another digest (a new session), cached.
        let step_cached = Vertex {
            cached: true,
            started: at(5),
            completed: at(5),
            name: "[1/2] RUN true".into(),
            ..vertex("b")
        };
        let export_again = Vertex {
            started: at(6),
            completed: at(7),
            ..vertex("x")
        };
        send(&mut translator, vec![step_cached, export_again.clone()]);
        send(&mut translator, vec![export_again]);
        let started: Vec<String> = recorder
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Started { vertex, .. } => Some(vertex),
                _ => None,
            })
            .collect();
        assert_eq!(started, ["a", "x", "x"]);
    }

    #[test]
    fn logs_are_split_into_lines_across_updates() {
        let recorder = Recorder::default();
        let mut translator = Translator::default();
        let log = |msg: &str, stream| VertexLog {
            vertex: "a".into(),
            stream,
            msg: msg.as_bytes().to_vec(),
        };
        for logs in [
            vec![log("hel", 1)],
            vec![log("lo\nwor", 1), log("err\n", 2)],
        ] {
            translator.update(
                &StatusResponse {
                    vertexes: Vec::new(),
                    logs,
                    ..StatusResponse::default()
                },
                &recorder,
            );
        }
        translator.flush(&recorder);
        let lines: Vec<(Stream, String)> = recorder
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Log { stream, line, .. } => Some((stream, line)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            vec![
                (Stream::Stdout, "hello".to_owned()),
                (Stream::Stderr, "err".to_owned()),
                (Stream::Stdout, "wor".to_owned()),
            ]
        );
        assert_eq!(translator.tail("a"), ["hello", "err", "wor"]);
    }

    #[test]
    fn a_failed_vertex_is_an_error_event() {
        let recorder = Recorder::default();
        let mut translator = Translator::default();
        let failed = Vertex {
            started: at(1),
            completed: at(2),
            error: "exit code: 1".into(),
            ..vertex("a")
        };
        translator.update(
            &StatusResponse {
                vertexes: vec![failed],
                logs: Vec::new(),
                ..StatusResponse::default()
            },
            &recorder,
        );
        assert!(matches!(recorder.events()[1], Event::Error { .. }));
        assert_eq!(translator.failure().map(|(name, _)| name), Some("step a"));
    }

    #[test]
    fn finished_counters_show_before_their_step_ends_once_each() {
        let recorder = Recorder::default();
        let mut translator = Translator::default();
        let running = Vertex {
            started: at(1),
            ..vertex("ctx")
        };
        let sent = VertexStatus {
            id: "transferring context:".into(),
            vertex: "ctx".into(),
            current: 34,
            completed: at(2),
            ..VertexStatus::default()
        };
        let layer = VertexStatus {
            id: "sha256:35b2".into(),
            vertex: "ctx".into(),
            current: 3520,
            total: 3520,
            started: at(1),
            completed: at(1),
        };
        let busy = VertexStatus {
            id: "extracting".into(),
            vertex: "ctx".into(),
            started: at(1),
            ..VertexStatus::default()
        };
        for (vertexes, statuses) in [
            (vec![running.clone()], vec![busy]),
            (vec![], vec![sent.clone(), layer]),
            (
                vec![Vertex {
                    completed: at(3),
                    ..running
                }],
                vec![sent],
            ),
        ] {
            translator.update(
                &StatusResponse {
                    vertexes,
                    statuses,
                    ..StatusResponse::default()
                },
                &recorder,
            );
        }
        let lines: Vec<String> = recorder
            .events()
            .iter()
            .map(|e| match e {
                Event::Log { line, .. } => line.clone(),
                Event::Started { .. } => "started".into(),
                Event::Done { .. } => "done".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            lines,
            [
                "started",
                "transferring context: 34B done",
                "sha256:35b2 3.52kB / 3.52kB 0.0s done",
                "done"
            ]
        );
        assert_eq!(bytes(1_080_000), "1.08MB");
        assert_eq!(bytes(999), "999B");
    }
}
