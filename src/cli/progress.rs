//! Progress on stderr: BuildKit's plain format (`#N name`, `#N CACHED`, `#N DONE 0.3s`, log
//! lines), the live terminal view (`tty`: a `[+] Building` header, one line per vertex, the
//! last log lines of running steps dimmed, failed steps' output in full at the end),
//! `rawjson` (one event per line) or nothing (`quiet`).
//!
//! The live view is a pure function from [`View`] (the state the events built) to lines, so
//! it is tested without a terminal; `indicatif` only redraws those lines in place.
//!
//! Progress is written with `write!`, never `eprintln!` (which panics when stderr is a closed
//! pipe): once a write fails, the printer stops writing and sets the build's cancel flag, so
//! `bake ... 2>&1 | head` ends the build instead of losing a pool thread to a panic.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::progress::{Event, Sink};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `#N` lines.
    Plain,
    /// The live view, redrawn in place.
    Tty,
    /// One JSON event per line.
    RawJson,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// Maps `--progress` for the real stderr: `auto` is the live view on a terminal and plain
    /// lines otherwise; `tty` when stderr is not a terminal is an error, as in buildx.
    pub(crate) fn parse(value: &str) -> Result<Self, crate::bake::Error> {
        Self::choose(value, std::io::stderr().is_terminal()).map_err(|message| {
            crate::bake::Error::one(crate::bake::Diagnostic::new("bake::progress", message))
        })
    }

    fn choose(value: &str, terminal: bool) -> Result<Self, String> {
        Ok(match value {
            "rawjson" => Mode::RawJson,
            "quiet" | "none" => Mode::Quiet,
            "plain" => Mode::Plain,
            // Compat: buildx (progressui.NewDisplay) refuses a forced tty on a non-console.
            "tty" if !terminal => {
                return Err(
                    "failed to get console: provided file is not a console (use `--progress=plain`)"
                        .to_owned(),
                );
            }
            "tty" => Mode::Tty,
            _ if terminal => Mode::Tty,
            _ => Mode::Plain,
        })
    }
}

/// Writes `line` and a newline to stderr in one locked write.
fn write_line(line: &str) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "{line}")
}

/// Numbers vertices in the order they first appear, as BuildKit's plain printer does, or
/// feeds the live view.
pub(crate) struct Printer {
    mode: Mode,
    numbers: Mutex<HashMap<String, usize>>,
    live: Option<Live>,
    /// Set when the build must stop because nobody reads its progress any more.
    cancel: Option<Arc<AtomicBool>>,
    /// A write to stderr failed: the reader is gone, nothing more is written.
    lost: AtomicBool,
}

impl Printer {
    /// Creates a printer for `mode`; for [`Mode::Tty`] this starts the redraw thread, which
    /// runs until the printer is dropped.
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            numbers: Mutex::new(HashMap::new()),
            live: (mode == Mode::Tty).then(Live::start),
            cancel: None,
            lost: AtomicBool::new(false),
        }
    }

    /// Sets `cancel` when progress can no longer be written (stderr is a closed pipe).
    pub(crate) fn with_cancel(mut self, cancel: Arc<AtomicBool>) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Returns whether the reader of the progress output went away during the build.
    pub(crate) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Writes one progress line unless the reader is gone; the first failure cancels the
    /// build, since a build nobody can watch should not go on holding the machine.
    fn print(&self, line: &str) {
        if self.lost() {
            return;
        }
        if write_line(line).is_err()
            && !self.lost.swap(true, Ordering::SeqCst)
            && let Some(cancel) = &self.cancel
        {
            cancel.store(true, Ordering::SeqCst);
        }
    }

    fn number(&self, vertex: &str) -> usize {
        let mut numbers = self.numbers.lock().unwrap_or_else(PoisonError::into_inner);
        let next = numbers.len() + 1;
        *numbers.entry(vertex.to_owned()).or_insert(next)
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            live.finish();
        }
    }
}

impl Sink for Printer {
    fn event(&self, event: Event) {
        match self.mode {
            Mode::Quiet => {}
            Mode::RawJson => {
                if let Ok(line) = serde_json::to_string(&event) {
                    self.print(&line);
                }
            }
            Mode::Tty => {
                if let Some(live) = &self.live {
                    live.view
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .apply(&event, Instant::now());
                }
            }
            Mode::Plain => {
                let n = self.number(event.vertex());
                self.print(&match &event {
                    Event::Started { name, .. } => format!("#{n} {name}"),
                    Event::Cached { .. } => format!("#{n} CACHED"),
                    Event::Log { line, .. } => format!("#{n} {line}"),
                    Event::Done { duration, .. } => {
                        format!("#{n} DONE {:.1}s", duration.as_secs_f64())
                    }
                    Event::Error { message, .. } => format!("#{n} ERROR: {message}"),
                    Event::Cancelled { .. } => format!("#{n} CANCELED"),
                });
            }
        }
    }
}

/// BuildKit's redraw period (progressui's `displayTimeout`): about 10 frames a second.
const FRAME: Duration = Duration::from_millis(100);
/// Log lines shown under a running step (BuildKit's initial terminal height).
const TAIL: usize = 6;
/// Log lines kept per step for the failure report; older ones are dropped.
const KEEP: usize = 1000;

/// The redraw thread and the state it draws.
struct Live {
    view: Arc<Mutex<View>>,
    bar: indicatif::ProgressBar,
    stop: mpsc::Sender<()>,
    ticker: JoinHandle<()>,
}

impl Live {
    fn start() -> Self {
        let view = Arc::new(Mutex::new(View::default()));
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = {
            let (view, bar) = (Arc::clone(&view), bar.clone());
            std::thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(FRAME) {
                    let (width, height) = size();
                    let lines = view.lock().unwrap_or_else(PoisonError::into_inner).lines(
                        Instant::now(),
                        width,
                        height,
                        false,
                        console::colors_enabled_stderr(),
                    );
                    bar.set_message(lines.join("\n"));
                }
            })
        };
        Self {
            view,
            bar,
            stop,
            ticker,
        }
    }

    /// Stops redrawing and leaves the final frame (every step) and the failed steps' output.
    fn finish(self) {
        drop(self.stop);
        let _ = self.ticker.join();
        self.bar.finish_and_clear();
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        if view.jobs.is_empty() {
            return;
        }
        let (width, height) = size();
        let color = console::colors_enabled_stderr();
        let last = view.lines(Instant::now(), width, height, true, color);
        // The build is over; a terminal that went away only loses the summary.
        for line in last.iter().chain(&view.errors()) {
            if write_line(line).is_err() {
                return;
            }
        }
    }
}

/// Columns and rows of stderr's terminal (BuildKit's 80×10 when it cannot tell).
fn size() -> (usize, usize) {
    console::Term::stderr()
        .size_checked()
        .map_or((80, 10), |(rows, cols)| {
            (usize::from(cols), usize::from(rows))
        })
}

/// One vertex as the live view shows it.
#[derive(Debug)]
struct Job {
    name: String,
    started: Instant,
    ended: Option<Instant>,
    cached: bool,
    /// The build was cancelled while the step ran.
    cancelled: bool,
    error: Option<String>,
    /// Lines with their offset from `started`, newest last.
    logs: VecDeque<(Duration, String)>,
}

/// What the events of one build have said so far, in the order vertices started.
#[derive(Debug, Default)]
pub(crate) struct View {
    start: Option<Instant>,
    jobs: Vec<Job>,
    index: HashMap<String, usize>,
}

impl View {
    /// Folds one event into the state; `now` is when it arrived.
    pub(crate) fn apply(&mut self, event: &Event, now: Instant) {
        self.start.get_or_insert(now);
        let index = match (self.index.get(event.vertex()), event) {
            (Some(&index), _) => index,
            (None, Event::Started { vertex, name }) => {
                self.jobs.push(Job {
                    name: name.replace('\t', " "),
                    started: now,
                    ended: None,
                    cached: false,
                    cancelled: false,
                    error: None,
                    logs: VecDeque::new(),
                });
                self.index.insert(vertex.clone(), self.jobs.len() - 1);
                return;
            }
            // Events of a vertex that never started have nothing to attach to.
            (None, _) => return,
        };
        let job = &mut self.jobs[index];
        match event {
            Event::Started { .. } => {}
            Event::Cached { .. } => {
                job.cached = true;
                job.ended = Some(now);
            }
            Event::Log { line, .. } => {
                if job.logs.len() == KEEP {
                    job.logs.pop_front();
                }
                job.logs
                    .push_back((now.saturating_duration_since(job.started), line.clone()));
            }
            Event::Done { duration, .. } => job.ended = Some(job.started + *duration),
            Event::Error {
                message, duration, ..
            } => {
                job.error = Some(message.clone());
                job.ended = Some(job.started + *duration);
            }
            Event::Cancelled { duration, .. } => {
                job.cancelled = true;
                job.ended = Some(job.started + *duration);
            }
        }
    }

    /// Renders one frame: the header, then a line per step (timer right-aligned to `width`),
    /// with the last log lines under running steps. Unless `all`, only what fits in `height`
    /// rows is kept, finished steps going first, as BuildKit does.
    pub(crate) fn lines(
        &self,
        now: Instant,
        width: usize,
        height: usize,
        all: bool,
        color: bool,
    ) -> Vec<String> {
        let width = width.max(20);
        let completed = self.jobs.iter().filter(|j| j.ended.is_some()).count();
        let total = self.jobs.len();
        let elapsed = self
            .start
            .map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64());
        let mut header = format!("[+] Building {elapsed:.1}s ({completed}/{total})");
        if all && completed == total && total > 0 {
            header.push_str(" FINISHED");
        }
        let header = truncate(&header, width - 1);

        // Each step with the log lines under it, so wrapping drops them together.
        let mut blocks: Vec<(bool, Vec<String>)> = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            let mut block = vec![job_line(job, now, width, color)];
            if job.ended.is_none() {
                for (_, line) in job.logs.iter().skip(job.logs.len().saturating_sub(TAIL)) {
                    let text = truncate(&format!(" => => # {line}"), width - 1);
                    block.push(paint(&text, Paint::Dim, color));
                }
            }
            blocks.push((job.ended.is_some(), block));
        }
        if !all {
            let room = height.saturating_sub(2);
            let mut used: usize = blocks.iter().map(|(_, b)| b.len()).sum();
            let mut index = 0;
            while used > room && index < blocks.len() {
                if blocks[index].0 {
                    used -= blocks[index].1.len();
                    blocks.remove(index);
                } else {
                    index += 1;
                }
            }
            let mut lines: Vec<String> = blocks.into_iter().flat_map(|(_, b)| b).collect();
            if lines.len() > room {
                lines.drain(..lines.len() - room);
            }
            return std::iter::once(header).chain(lines).collect();
        }
        std::iter::once(header)
            .chain(blocks.into_iter().flat_map(|(_, b)| b))
            .collect()
    }

    /// The failed steps' output in BuildKit's box, printed after the last frame.
    pub(crate) fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for job in self.jobs.iter().filter(|j| j.error.is_some()) {
            out.push("------".to_owned());
            out.push(format!(" > {}:", job.name));
            for (offset, line) in &job.logs {
                let seconds = offset.as_secs_f64();
                let precision = if seconds < 10.0 {
                    3
                } else if seconds < 100.0 {
                    2
                } else {
                    1
                };
                out.push(format!("{seconds:.precision$} {line}"));
            }
            out.push("------".to_owned());
        }
        out
    }
}

/// ` => [stage 2/5] RUN make    1.4s`, coloured once the step has ended.
fn job_line(job: &Job, now: Instant, width: usize, color: bool) -> String {
    let end = job.ended.unwrap_or(now);
    let mut seconds = end.saturating_duration_since(job.started).as_secs_f64();
    if seconds < 0.05 {
        seconds = 0.0;
    }
    let timer = format!(" {seconds:.1}s");
    let mut name = String::new();
    if job.cached {
        name.push_str("CACHED ");
    }
    if job.cancelled {
        name.push_str("CANCELED ");
    }
    if job.error.is_some() {
        name.push_str("ERROR ");
    }
    name.push_str(&job.name);
    let prefix = " => ";
    let room = width.saturating_sub(prefix.len() + timer.len() + 1);
    let left = format!("{prefix}{}", truncate(&name, room));
    let pad = width
        .saturating_sub(1)
        .saturating_sub(console::measure_text_width(&left) + timer.len());
    let line = format!("{left}{}{timer}", " ".repeat(pad));
    match (job.ended.is_some(), job.error.is_some() || job.cancelled) {
        (true, true) => paint(&line, Paint::Error, color),
        (true, false) => paint(&line, Paint::Done, color),
        (false, _) => line,
    }
}

/// The colours of BuildKit's live view.
#[derive(Clone, Copy)]
enum Paint {
    /// A finished step (blue).
    Done,
    /// A failed step (red).
    Error,
    /// Log lines under a running step (faint).
    Dim,
}

fn paint(text: &str, paint: Paint, color: bool) -> String {
    if !color {
        return text.to_owned();
    }
    let style = console::style(text).force_styling(true);
    match paint {
        Paint::Done => style.blue(),
        Paint::Error => style.red(),
        Paint::Dim => style.dim(),
    }
    .to_string()
}

/// Cuts `text` to `width` columns.
fn truncate(text: &str, width: usize) -> String {
    console::truncate_str(text, width, "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Stream;

    fn started(view: &mut View, at: Instant, vertex: &str, name: &str) {
        view.apply(
            &Event::Started {
                vertex: vertex.into(),
                name: name.into(),
            },
            at,
        );
    }

    fn log(view: &mut View, at: Instant, vertex: &str, line: &str) {
        view.apply(
            &Event::Log {
                vertex: vertex.into(),
                stream: Stream::Stdout,
                line: line.into(),
            },
            at,
        );
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn auto_is_live_only_on_a_terminal_and_a_forced_tty_elsewhere_is_an_error() {
        assert_eq!(Mode::choose("auto", true), Ok(Mode::Tty));
        assert_eq!(Mode::choose("auto", false), Ok(Mode::Plain));
        assert_eq!(Mode::choose("tty", true), Ok(Mode::Tty));
        assert_eq!(Mode::choose("plain", true), Ok(Mode::Plain));
        assert_eq!(Mode::choose("rawjson", true), Ok(Mode::RawJson));
        assert_eq!(Mode::choose("none", false), Ok(Mode::Quiet));
        let error = Mode::choose("tty", false).unwrap_err();
        assert!(error.starts_with("failed to get console"), "{error}");
    }

    #[test]
    fn a_frame_has_the_header_and_one_aligned_line_per_step_with_running_logs() {
        let t0 = Instant::now();
        let mut view = View::default();
        started(&mut view, t0, "a", "[context base] load oci-layout");
        view.apply(&Event::Cached { vertex: "a".into() }, t0 + ms(10));
        started(&mut view, t0 + ms(10), "b", "[build 1/2] COPY foo /etc/foo");
        view.apply(
            &Event::Done {
                vertex: "b".into(),
                duration: ms(300),
            },
            t0 + ms(310),
        );
        started(&mut view, t0 + ms(310), "c", "[build 2/2] RUN make");
        for n in 1..=8 {
            log(&mut view, t0 + ms(400 + n), "c", &format!("line {n}"));
        }
        let frame = view.lines(t0 + ms(1710), 50, 30, false, false);
        let expected = [
            "[+] Building 1.7s (2/3)",
            " => CACHED [context base] load oci-layout    0.0s",
            " => [build 1/2] COPY foo /etc/foo            0.3s",
            " => [build 2/2] RUN make                     1.4s",
            " => => # line 3",
            " => => # line 4",
            " => => # line 5",
            " => => # line 6",
            " => => # line 7",
            " => => # line 8",
        ];
        assert_eq!(frame, expected);
        assert!(frame[1..4].iter().all(|l| l.len() == 49));
    }

    #[test]
    fn the_final_frame_says_finished_and_hides_logs_of_ended_steps() {
        let t0 = Instant::now();
        let mut view = View::default();
        started(&mut view, t0, "a", "[1/1] RUN echo hi");
        log(&mut view, t0 + ms(5), "a", "hi");
        view.apply(
            &Event::Done {
                vertex: "a".into(),
                duration: ms(1200),
            },
            t0 + ms(1200),
        );
        let frame = view.lines(t0 + ms(1300), 40, 10, true, false);
        assert_eq!(
            frame,
            [
                "[+] Building 1.3s (1/1) FINISHED",
                " => [1/1] RUN echo hi              1.2s",
            ]
        );
        assert_eq!(
            frame[1].len(),
            39,
            "the timer ends one column short of the width"
        );
        assert!(view.errors().is_empty());
    }

    #[test]
    fn a_short_terminal_drops_finished_steps_first_and_names_are_cut_to_the_width() {
        let t0 = Instant::now();
        let mut view = View::default();
        for n in 0..5 {
            let vertex = format!("v{n}");
            started(
                &mut view,
                t0,
                &vertex,
                &format!("step {n} {}", "x".repeat(60)),
            );
            if n < 4 {
                view.apply(&Event::Cached { vertex }, t0);
            }
        }
        let frame = view.lines(t0, 40, 5, false, false);
        assert_eq!(frame.len(), 4, "{frame:#?}");
        assert!(frame[0].starts_with("[+] Building 0.0s (4/5)"));
        // The running step survives; the oldest finished ones went.
        assert!(frame[3].starts_with(" => step 4 xxx"), "{frame:#?}");
        assert!(frame[1].starts_with(" => CACHED step 2"), "{frame:#?}");
        assert!(frame.iter().all(|l| console::measure_text_width(l) < 40));
        // The final frame keeps every step.
        assert_eq!(view.lines(t0, 40, 5, true, false).len(), 6);
    }

    #[test]
    fn a_failed_step_is_marked_and_its_whole_output_is_shown_at_the_end() {
        let t0 = Instant::now();
        let mut view = View::default();
        started(&mut view, t0, "a", "[1/2] RUN echo to-stdout && exit 3");
        log(&mut view, t0 + ms(65), "a", "to-stdout");
        log(&mut view, t0 + ms(66), "a", "to-stderr");
        view.apply(
            &Event::Error {
                vertex: "a".into(),
                message: "exit code: 3".into(),
                duration: ms(70),
            },
            t0 + ms(70),
        );
        let frame = view.lines(t0 + ms(100), 60, 10, true, false);
        assert!(
            frame[1].starts_with(" => ERROR [1/2] RUN echo"),
            "{frame:#?}"
        );
        assert!(
            frame[0].ends_with("(1/1) FINISHED"),
            "BuildKit counts a failed step as completed"
        );
        assert_eq!(
            view.errors(),
            [
                "------",
                " > [1/2] RUN echo to-stdout && exit 3:",
                "0.065 to-stdout",
                "0.066 to-stderr",
                "------",
            ]
        );
    }

    #[test]
    fn colours_mark_finished_failed_and_log_lines() {
        let t0 = Instant::now();
        let mut view = View::default();
        started(&mut view, t0, "a", "done");
        view.apply(&Event::Cached { vertex: "a".into() }, t0);
        started(&mut view, t0, "b", "running");
        log(&mut view, t0, "b", "output");
        let frame = view.lines(t0, 40, 10, false, true);
        assert!(frame[1].starts_with("\u{1b}[34m"), "{frame:?}");
        assert!(
            !frame[2].contains('\u{1b}'),
            "running steps are not coloured"
        );
        assert!(frame[3].starts_with("\u{1b}[2m"), "{frame:?}");
    }

    #[test]
    fn events_of_unknown_vertices_are_ignored() {
        let mut view = View::default();
        log(&mut view, Instant::now(), "nobody", "hi");
        view.apply(&Event::Cached { vertex: "x".into() }, Instant::now());
        assert!(view.jobs.is_empty());
    }
}
