//! What a batch run prints: a progress bar and a line per file on a
//! terminal, or one JSON object per event for scripts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::jobs::Event;
use crate::jobs::inputs::Skipped;
use crate::jobs::job::{Job, JobId, JobInput, JobState};

/// How a batch ended.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) done: usize,
    pub(super) failed: usize,
    pub(super) cancelled: usize,
}

/// Turns engine events into terminal output or JSON lines, and knows when
/// every job has ended.
pub(super) struct Report {
    json: bool,
    total: usize,
    out_dir: PathBuf,
    started: Instant,
    finished: BTreeMap<JobId, JobState>,
    names: BTreeMap<JobId, String>,
    bar: ProgressBar,
    /// Lines for standard output not yet written: the events that arrive
    /// together go out in one write (see [`Report::flush`]).
    unflushed: RefCell<String>,
}

impl Report {
    pub(super) fn new(json: bool, total: usize, out_dir: &Path) -> Self {
        let bar = if json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:32.cyan/blue} {pos}/{len} {msg} (ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        Report {
            json,
            total,
            out_dir: out_dir.to_owned(),
            started: Instant::now(),
            finished: BTreeMap::new(),
            names: BTreeMap::new(),
            bar,
            unflushed: RefCell::new(String::new()),
        }
    }

    pub(super) fn all_finished(&self) -> bool {
        self.finished.len() >= self.total
    }

    /// Adds a line for standard output (written by the next
    /// [`flush`](Self::flush)), or prints it above the progress bar.
    fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            let mut unflushed = self.unflushed.borrow_mut();
            unflushed.push_str(text);
            unflushed.push('\n');
        } else {
            self.bar.println(text);
        }
    }

    /// Writes the lines added so far. Called once the events that arrived
    /// together are reported, so a busy batch costs a write per burst, not
    /// per event, and a script still sees every event as it happens.
    pub(super) fn flush(&self) {
        let mut unflushed = self.unflushed.borrow_mut();
        if unflushed.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(unflushed.as_bytes());
        let _ = out.flush();
        unflushed.clear();
    }

    pub(super) fn note(&self, text: &str) {
        if self.json {
            eprintln!("{text}");
        } else {
            self.line(text);
            self.flush();
        }
    }

    pub(super) fn skipped(&self, skipped: &[Skipped]) {
        for Skipped { path, reason } in skipped {
            if self.json {
                self.line(
                    &json!({"event": "skipped", "input": path, "reason": reason}).to_string(),
                );
            } else {
                self.line(&format!("skipped  {}: {reason}", shown(path)));
            }
        }
        self.flush();
    }

    pub(super) fn event(&mut self, event: &Event) {
        match event {
            Event::Added(job) => {
                self.names.insert(job.id, self.name(job));
                if self.json {
                    let mut line = job_json("added", job);
                    line["input"] = json!(job.input.display_name());
                    line["provider"] = json!(job.provider);
                    line["model"] = json!(job.model);
                    self.line(&line.to_string());
                }
            }
            Event::Changed(job) => self.changed(job),
            Event::Warning { job, message } => {
                if self.json {
                    let mut line = job_json("warning", job);
                    line["message"] = json!(message);
                    self.line(&line.to_string());
                } else {
                    self.line(&format!("warning  {}: {message}", self.name(job)));
                }
            }
            Event::Removed(_) | Event::Idle => {}
        }
    }

    fn changed(&mut self, job: &Job) {
        if job.state.is_terminal() {
            self.finished.insert(job.id, job.state.clone());
            self.bar.set_position(self.finished.len() as u64);
            let counts = self.counts();
            self.bar
                .set_message(format!("{} done · {} failed", counts.done, counts.failed));
        }
        if self.json {
            let line = match &job.state {
                JobState::Done { outputs } => {
                    let mut line = job_json("done", job);
                    line["outputs"] = json!(outputs);
                    line["credits_charged"] = json!(job.credits_charged);
                    line
                }
                JobState::Failed { error, retryable } => {
                    let mut line = job_json("failed", job);
                    line["error"] = json!(error);
                    line["retryable"] = json!(retryable);
                    line
                }
                JobState::Cancelled => job_json("cancelled", job),
                state => {
                    let mut line = job_json("state", job);
                    line["state"] = json!(state.name());
                    if let JobState::Processing { progress } = state {
                        line["progress"] = json!(progress);
                    }
                    line
                }
            };
            self.line(&line.to_string());
            return;
        }
        match &job.state {
            JobState::Done { outputs } => {
                let outputs: Vec<_> = outputs.iter().map(|p| shown(p)).collect();
                let credits = match job.credits_charged {
                    Some(1.0) => " (1 credit)".to_owned(),
                    Some(c) => format!(" ({c} credits)"),
                    None => String::new(),
                };
                self.line(&format!(
                    "done     {} → {}{credits}",
                    self.name(job),
                    outputs.join(", ")
                ));
            }
            JobState::Failed { error, .. } => {
                let remote = job
                    .remote_id
                    .as_ref()
                    .map(|id| format!(" [remote id {id}]"))
                    .unwrap_or_default();
                self.line(&format!("failed   {}: {error}{remote}", self.name(job)));
            }
            // Cancelled jobs are counted in the summary rather than listed:
            // after Ctrl-C on a large batch, a line each would bury the rest.
            JobState::Cancelled => {}
            _ => {}
        }
    }

    fn name(&self, job: &Job) -> String {
        match &job.input {
            JobInput::File { path, .. } => shown(path),
            JobInput::Url(url) => url.to_string(),
        }
    }

    fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for state in self.finished.values() {
            match state {
                JobState::Done { .. } => counts.done += 1,
                JobState::Failed { .. } => counts.failed += 1,
                _ => counts.cancelled += 1,
            }
        }
        counts
    }

    pub(super) fn finish(self) -> Counts {
        self.bar.finish_and_clear();
        let counts = self.counts();
        if self.json {
            let summary = json!({
                "event": "summary",
                "done": counts.done,
                "failed": counts.failed,
                "cancelled": counts.cancelled,
                "output_dir": self.out_dir,
            });
            self.line(&summary.to_string());
            self.flush();
            return counts;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut summary = format!("{} done, {} failed", counts.done, counts.failed);
        if counts.cancelled > 0 {
            summary.push_str(&format!(", {} cancelled", counts.cancelled));
        }
        let place = if counts.done > 0 {
            format!(" Results are in {}", self.out_dir.display())
        } else {
            String::new()
        };
        self.line(&format!("\n{summary} in {elapsed:.1} s.{place}"));
        if counts.failed > 0 {
            self.line("Failed:");
            for (id, state) in &self.finished {
                if let JobState::Failed { error, .. } = state {
                    let name = self.names.get(id).cloned().unwrap_or_default();
                    self.line(&format!("  {name}: {error}"));
                }
            }
        }
        self.flush();
        counts
    }
}

fn job_json(event: &str, job: &Job) -> serde_json::Value {
    json!({"event": event, "job": job.id.0, "remote_id": job.remote_id})
}

/// A path relative to the working folder when it is inside it, else whole.
fn shown(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned));
    relative.as_deref().unwrap_or(path).display().to_string()
}
