//! The window's read-only picture of the queue, rebuilt from engine events.
//! Panels draw from it and never change jobs themselves; it also derives the
//! figures the window shows (counts, overall progress, time left).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::jobs::Event;
use crate::jobs::job::{Job, JobId, JobState};

/// One row of the queue.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// The job as the engine last described it.
    pub job: Job,
    /// When the job last left `Queued` (for elapsed time), if it has.
    pub started_at: Option<Instant>,
    /// When it last reached a terminal state.
    pub finished_at: Option<Instant>,
}

impl JobRow {
    /// Time spent on the job so far, or in all if it has ended.
    pub fn elapsed(&self, now: Instant) -> Option<Duration> {
        let started = self.started_at?;
        Some(
            self.finished_at
                .unwrap_or(now)
                .saturating_duration_since(started),
        )
    }
}

/// How many jobs are in each kind of state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for Start.
    pub queued: usize,
    /// Being worked on.
    pub active: usize,
    /// Finished with results.
    pub done: usize,
    /// Stopped by an error.
    pub failed: usize,
    /// Stopped by the user.
    pub cancelled: usize,
}

impl Counts {
    /// Every job in the queue.
    pub fn total(&self) -> usize {
        self.queued + self.active + self.done + self.failed + self.cancelled
    }

    /// Jobs that still have work ahead.
    pub fn remaining(&self) -> usize {
        self.queued + self.active
    }
}

/// The queue as the window shows it, in the order jobs were added.
#[derive(Debug, Default)]
pub struct QueueView {
    rows: Vec<JobRow>,
    index: HashMap<JobId, usize>,
    /// Durations of jobs that finished in this session, newest last, for the
    /// time-left estimate.
    recent_durations: Vec<Duration>,
}

/// How many finished jobs the time-left estimate averages over.
const ESTIMATE_WINDOW: usize = 50;

impl QueueView {
    /// Applies one engine event. Returns the id of a job that left the queue,
    /// so panels can free what they hold for it (thumbnails, previews).
    pub fn apply(&mut self, event: Event, now: Instant) -> Option<JobId> {
        match event {
            Event::Added(job) => {
                self.index.insert(job.id, self.rows.len());
                self.rows.push(JobRow {
                    job,
                    started_at: None,
                    finished_at: None,
                });
                None
            }
            Event::Changed(job) | Event::Warning { job, .. } => {
                let &position = self.index.get(&job.id)?;
                let row = &mut self.rows[position];
                let was_queued = matches!(row.job.state, JobState::Queued);
                let was_terminal = row.job.state.is_terminal();
                if was_queued && !matches!(job.state, JobState::Queued) && !job.state.is_terminal()
                {
                    row.started_at = Some(now);
                    row.finished_at = None;
                }
                if matches!(job.state, JobState::Queued) {
                    row.started_at = None;
                    row.finished_at = None;
                }
                if !was_terminal && job.state.is_terminal() {
                    row.finished_at = Some(now);
                    if let (JobState::Done { .. }, Some(started)) = (&job.state, row.started_at) {
                        self.recent_durations
                            .push(now.saturating_duration_since(started));
                        if self.recent_durations.len() > ESTIMATE_WINDOW {
                            self.recent_durations.remove(0);
                        }
                    }
                }
                row.job = job;
                None
            }
            Event::Removed(id) => {
                let position = self.index.remove(&id)?;
                self.rows.remove(position);
                for row in &self.rows[position..] {
                    if let Some(i) = self.index.get_mut(&row.job.id) {
                        *i -= 1;
                    }
                }
                Some(id)
            }
            Event::Idle => None,
        }
    }

    /// All rows, in queue order.
    pub fn rows(&self) -> &[JobRow] {
        &self.rows
    }

    /// The row of a job.
    pub fn row(&self, id: JobId) -> Option<&JobRow> {
        self.index.get(&id).map(|&i| &self.rows[i])
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Jobs per kind of state.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for row in &self.rows {
            match row.job.state {
                JobState::Queued => counts.queued += 1,
                JobState::Done { .. } => counts.done += 1,
                JobState::Failed { .. } => counts.failed += 1,
                JobState::Cancelled => counts.cancelled += 1,
                _ => counts.active += 1,
            }
        }
        counts
    }

    /// Ids of jobs in a given condition, for "Retry failed" and the like.
    pub fn ids_where(&self, keep: impl Fn(&JobRow) -> bool) -> Vec<JobId> {
        self.rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.job.id)
            .collect()
    }

    /// Share of the started work that has ended, 0–1, counting progress of
    /// jobs in flight; `None` when nothing has been started.
    pub fn progress(&self) -> Option<f32> {
        let started: Vec<&JobRow> = self
            .rows
            .iter()
            .filter(|r| r.started_at.is_some() || r.job.state.is_terminal())
            .collect();
        if started.is_empty() {
            return None;
        }
        let total = started.len() + self.counts().queued;
        let mut finished = 0.0;
        for row in &started {
            finished += match &row.job.state {
                s if s.is_terminal() => 1.0,
                JobState::Processing {
                    progress: Some(percent),
                } => f32::from(*percent) / 100.0 * 0.9,
                JobState::Downloading => 0.95,
                _ => 0.0,
            };
        }
        Some((finished / total as f32).clamp(0.0, 1.0))
    }

    /// Time left for the jobs still to do: the average duration of recent
    /// finished jobs times the remaining jobs, divided by how many run at
    /// once. `None` until one job has finished.
    pub fn time_left(&self) -> Option<Duration> {
        if self.recent_durations.is_empty() {
            return None;
        }
        let counts = self.counts();
        if counts.remaining() == 0 {
            return None;
        }
        let average =
            self.recent_durations.iter().sum::<Duration>() / self.recent_durations.len() as u32;
        let parallel = counts.active.max(1) as u32;
        Some(average * counts.remaining() as u32 / parallel)
    }

    /// The window title: the app name, with overall progress while a batch
    /// runs, so it shows in the task bar.
    pub fn title(&self) -> String {
        let counts = self.counts();
        if counts.active == 0 {
            return "Cutout".to_owned();
        }
        let percent = self.progress().map_or(0.0, |p| p * 100.0);
        format!(
            "Cutout — {percent:.0}% ({} of {} done)",
            counts.done,
            counts.total()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::job::JobInput;
    use crate::providers::ProviderId;

    fn job(id: u64, state: JobState) -> Job {
        Job {
            id: JobId(id),
            input: JobInput::File {
                path: format!("/p/{id}.jpg").into(),
                root: None,
            },
            kind: None,
            provider: ProviderId::Removebg,
            model: "auto".into(),
            remote_id: None,
            state,
            credits_charged: None,
            warnings: vec![],
        }
    }

    #[test]
    fn rows_follow_the_engines_events_in_queue_order() {
        let now = Instant::now();
        let mut queue = QueueView::default();
        for id in 1..=3 {
            queue.apply(Event::Added(job(id, JobState::Queued)), now);
        }
        queue.apply(Event::Changed(job(2, JobState::Preparing)), now);
        assert_eq!(queue.apply(Event::Removed(JobId(1)), now), Some(JobId(1)));
        let ids: Vec<_> = queue.rows().iter().map(|r| r.job.id).collect();
        assert_eq!(ids, [JobId(2), JobId(3)]);
        assert_eq!(queue.row(JobId(3)).unwrap().job.id, JobId(3));
        assert_eq!(
            queue.counts(),
            Counts {
                queued: 1,
                active: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn elapsed_time_runs_from_start_to_finish() {
        let t0 = Instant::now();
        let mut queue = QueueView::default();
        queue.apply(Event::Added(job(1, JobState::Queued)), t0);
        assert_eq!(queue.row(JobId(1)).unwrap().elapsed(t0), None);
        queue.apply(Event::Changed(job(1, JobState::Preparing)), t0);
        let done = JobState::Done { outputs: vec![] };
        queue.apply(Event::Changed(job(1, done)), t0 + Duration::from_secs(3));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            queue.row(JobId(1)).unwrap().elapsed(later),
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn time_left_scales_the_recent_average_by_the_work_remaining() {
        let t0 = Instant::now();
        let mut queue = QueueView::default();
        for id in 1..=5 {
            queue.apply(Event::Added(job(id, JobState::Queued)), t0);
        }
        assert_eq!(queue.time_left(), None);
        queue.apply(Event::Changed(job(1, JobState::Preparing)), t0);
        queue.apply(Event::Changed(job(2, JobState::Preparing)), t0);
        let done = JobState::Done { outputs: vec![] };
        queue.apply(Event::Changed(job(1, done)), t0 + Duration::from_secs(4));
        // 4 jobs left (1 active + 3 queued), 4 s each, 1 running at once.
        assert_eq!(queue.time_left(), Some(Duration::from_secs(16)));
        assert!(queue.title().starts_with("Cutout — "), "{}", queue.title());
    }
}
