//! The scheduler. It owns every job, runs each provider's jobs up to that
//! provider's concurrency limit on the tokio runtime, drives each job through
//! submit → poll → download → write, and publishes every change as an
//! [`Event`]. Job tasks never touch shared state: they send updates to the
//! engine loop, which applies them through the pure state machine.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::imaging::decode::{self, DecodeLimits, SourceFormat};
use crate::imaging::upload::{self, PreparedUpload};
use crate::imaging::{self, ImagingError, OutputFormat};
use crate::jobs::events::{Command, Event, JobSettings, NewJob, OutputSpec};
use crate::jobs::job::{InputKind, Job, JobId, JobInput, JobState, Transition};
use crate::jobs::naming::{self, NameFields};
use crate::jobs::output::{PendingOutput, output_dir_for, partial_owner_tag};
use crate::jobs::store::{JobStore, RestoredJob, StoreError};
use crate::providers::{
    AssetSource, HttpClient, JobReporter, JobRequest, JobResult, PollStatus, Provider,
    ProviderError, ProviderId, ProviderInfo, ResultAsset, Submission, refusal,
};

/// How often a remote job is polled.
#[derive(Debug, Clone)]
pub struct PollPolicy {
    /// The first wait; providers rarely finish sooner.
    pub initial_interval: Duration,
    /// The longest wait between polls; the interval grows ×1.5 up to it, so
    /// long jobs are not hammered.
    pub max_interval: Duration,
    /// Overrides every provider's own deadline when set.
    pub deadline: Option<Duration>,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(5),
            deadline: None,
        }
    }
}

/// What the engine needs besides the providers.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Polling cadence.
    pub poll: PollPolicy,
    /// Jobs in flight per provider; providers not listed use their default.
    pub concurrency: BTreeMap<ProviderId, usize>,
}

/// Why a job failed, in words for the user: the provider's name first, what
/// happened, what to do, and any path last.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The provider (or the way to it) failed.
    #[error("{provider}: {source}")]
    Provider {
        /// The provider's name.
        provider: &'static str,
        /// What went wrong.
        source: ProviderError,
    },
    /// The result could not be written.
    #[error("{action}: {}: {path}", disk_words(.source))]
    Output {
        /// What Cutout was doing.
        action: &'static str,
        /// The error.
        source: std::io::Error,
        /// The file or folder.
        path: PathBuf,
    },
    /// The result could not be converted to the requested format.
    #[error(transparent)]
    Imaging(#[from] ImagingError),
    /// The job can never run as asked (wrong kind of input, unknown model).
    #[error("{0}")]
    Unsupported(String),
}

impl JobError {
    fn is_retryable(&self) -> bool {
        match self {
            JobError::Provider { source, .. } => source.is_retryable(),
            JobError::Output { .. } => true,
            JobError::Imaging(_) | JobError::Unsupported(_) => false,
        }
    }
}

/// Makes sure what was written to `file` is on the disk. tokio's `File`
/// writes in the background and keeps a failed write's error for the next
/// write or flush: `sync_all` alone would succeed on an empty file when the
/// disk is full, and the job would be "done" with nothing saved. `flush`
/// reports that error.
async fn write_through(file: &mut tokio::fs::File) -> std::io::Result<()> {
    file.flush().await?;
    file.sync_all().await
}

/// An output error in words a person can act on: the common disk troubles
/// named plainly, with the system's name for them kept for support.
fn disk_words(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let plain = match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "the disk is full",
        ErrorKind::ReadOnlyFilesystem => "the disk is read-only",
        ErrorKind::PermissionDenied => "Cutout may not write there",
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            "a file stands where a folder should be"
        }
        ErrorKind::NotFound => "it is no longer there",
        _ => return error.to_string(),
    };
    // The kind's own words: the error itself may name Cutout's temporary
    // file, which means nothing to a person.
    format!("{plain} ({})", error.kind())
}

/// Called after every published event, so a window that sleeps between
/// frames wakes up to show it (the UI passes `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Sends commands to the engine; cheap to clone, so every panel of a UI can
/// hold one.
#[derive(Debug, Clone)]
pub struct CommandSender(mpsc::UnboundedSender<Command>);

impl CommandSender {
    /// Sends a command; ignored if the engine has stopped.
    pub fn send(&self, command: Command) {
        let _ = self.0.send(command);
    }
}

/// A front end's connection to a running engine.
#[derive(Debug)]
pub struct EngineHandle {
    commands: CommandSender,
    events: mpsc::UnboundedReceiver<Event>,
}

impl EngineHandle {
    /// Sends a command; ignored if the engine has stopped.
    pub fn send(&self, command: Command) {
        self.commands.send(command);
    }

    /// A sender to hand to the parts of a front end that issue commands.
    pub fn sender(&self) -> CommandSender {
        self.commands.clone()
    }

    /// Waits for the next event; `None` once the engine has stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event if one is waiting, for a UI that drains events each
    /// frame without blocking.
    pub fn try_next_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }
}

/// One provider's place in the scheduler.
struct ProviderSlot {
    /// `None` once the provider is unset while its jobs still run: the
    /// slot keeps counting them, so setting it up again cannot exceed the
    /// limit.
    provider: Option<Arc<dyn Provider>>,
    /// How many of its jobs may run at once.
    limit: usize,
    /// How many of its jobs run now.
    running: usize,
    /// Jobs started but waiting for a place, oldest first. The engine hands
    /// out places itself, in this order, so a batch runs in the order the
    /// queue shows (tasks that all waited on a semaphore started in
    /// whatever order tokio first polled them: the last one added first).
    /// A job cancelled or removed while waiting is skipped when reached.
    waiting: VecDeque<JobId>,
}

struct Entry {
    job: Job,
    spec: NewJob,
    /// Whether the job has ever been sent to its provider (uploading or
    /// later); until then its settings may still change, even after it
    /// failed on the way (an input over the provider's limits, a provider
    /// not set up), so fixing the settings fixes the job.
    reached_provider: bool,
    /// Set while a task runs the job.
    cancel: Option<CancellationToken>,
    /// Started, and waiting in its provider's line for a place.
    waiting: bool,
    /// The provider fully accepted the job during the current run (its
    /// `submit` returned), so the remote job exists and is started.
    accepted: bool,
    /// The job failed after the provider accepted it, for a reason that
    /// does not need a new submission: a retry polls `remote_id` again.
    /// A job whose submission broke off half-way (say, a video draft that
    /// was created but never started) is submitted afresh instead.
    resumable: bool,
}

/// What changed about a job, for the history.
#[derive(Debug, Clone, Copy)]
enum Persist {
    /// It joined the queue (or came back to it).
    Added,
    /// Its state, remote id, credits or warnings changed.
    Changed,
    /// Its settings changed before it started.
    Reconfigured,
}

/// Messages from job tasks to the engine loop.
#[derive(Debug)]
enum Update {
    Transition(Transition),
    Warning(String),
    Credits(f64),
    /// `submit` returned: the remote job exists and runs.
    Accepted,
    /// The task's last message: the terminal transition, and the provider
    /// whose place it frees.
    Ended(Transition, ProviderId),
}

/// The most messages the engine loop takes at once before it looks at the
/// clock again, so a flood of updates cannot hold events back.
const TURN_MESSAGES_MAX: usize = 256;

/// The least time between two commits of the history. After a quiet spell
/// a change is committed and published at once; in a busy batch the changes
/// of this long share one commit, and their events wait at most this long.
/// A batch of quick jobs otherwise spent more time committing (a dozen
/// syscalls each, four or five per job) than sending pictures. Jobs that
/// joined the queue or ended are committed without waiting, with whatever
/// came with them: a run killed before the commit would not know, on
/// resume, of a job the user added, or would do again one whose result is
/// already in place. Facts that decide whether a job is paid for are
/// committed at once as well (see [`JobStore::record_changed`]).
const COMMIT_INTERVAL: Duration = Duration::from_millis(20);

/// The engine; see the module docs.
pub struct Engine {
    providers: BTreeMap<ProviderId, ProviderSlot>,
    config: EngineConfig,
    http: HttpClient,
    jobs: BTreeMap<JobId, Entry>,
    next_id: u64,
    running_tasks: usize,
    events: mpsc::UnboundedSender<Event>,
    waker: Waker,
    updates_tx: mpsc::UnboundedSender<(JobId, Update)>,
    /// The job history. Changes are written into an open transaction that
    /// is committed at most every [`COMMIT_INTERVAL`], and their events are
    /// published only after the commit, so an event always reports a fact
    /// already in the history.
    store: Option<JobStore>,
    /// Events waiting for their writes to be committed.
    pending_events: Vec<Event>,
    /// When the history was last committed and events published.
    last_commit: Instant,
    /// A job joined the queue or ended since: commit without waiting for
    /// [`COMMIT_INTERVAL`].
    commit_soon: bool,
    /// The batch that jobs being added belong to in the history.
    batch: Option<u64>,
    /// Marks this run's temporary files (see [`partial_owner_tag`]).
    partial_owner: String,
    /// The day the engine started, for `{date}` in file names: one batch
    /// that crosses midnight keeps one date.
    date: jiff::civil::Date,
    /// Set after the first failed history write, so a full disk is
    /// reported once rather than for every event.
    store_failed: bool,
}

impl Engine {
    /// Starts the engine on the current tokio runtime with the providers that
    /// are configured. `http` downloads results (without credentials).
    pub fn spawn(
        providers: Vec<Arc<dyn Provider>>,
        http: HttpClient,
        config: EngineConfig,
    ) -> EngineHandle {
        Engine::spawn_with_waker(providers, http, config, Arc::new(|| {}))
    }

    /// [`spawn`](Self::spawn), calling `waker` after every event it
    /// publishes.
    pub fn spawn_with_waker(
        providers: Vec<Arc<dyn Provider>>,
        http: HttpClient,
        config: EngineConfig,
        waker: Waker,
    ) -> EngineHandle {
        Engine::spawn_recording(providers, http, config, waker, None)
    }

    /// [`spawn_with_waker`](Self::spawn_with_waker), recording every job in
    /// `store` before each event about it is published. Job ids continue
    /// from the history's.
    pub fn spawn_recording(
        providers: Vec<Arc<dyn Provider>>,
        http: HttpClient,
        config: EngineConfig,
        waker: Waker,
        store: Option<JobStore>,
    ) -> EngineHandle {
        let next_id = match store.as_ref().map(JobStore::next_job_id) {
            Some(Ok(id)) => id,
            Some(Err(error)) => {
                tracing::error!(%error, "cannot read the job history");
                1
            }
            None => 1,
        };
        let partial_owner = store
            .as_ref()
            .map(|s| partial_owner_tag(s.session()))
            .unwrap_or_default();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (updates_tx, updates_rx) = mpsc::unbounded_channel();
        let mut engine = Engine {
            providers: BTreeMap::new(),
            config,
            http,
            jobs: BTreeMap::new(),
            next_id,
            running_tasks: 0,
            events: events_tx,
            waker,
            updates_tx,
            store,
            pending_events: Vec::new(),
            last_commit: Instant::now(),
            commit_soon: false,
            batch: None,
            partial_owner,
            date: naming::today(),
            store_failed: false,
        };
        for provider in providers {
            engine.set_provider(provider, None);
        }
        tokio::spawn(engine.run(commands_rx, updates_rx));
        EngineHandle {
            commands: CommandSender(commands_tx),
            events: events_rx,
        }
    }

    fn set_provider(&mut self, provider: Arc<dyn Provider>, concurrency: Option<usize>) {
        let info = provider.info();
        let limit = concurrency
            .or_else(|| self.config.concurrency.get(&info.id).copied())
            .unwrap_or(info.default_concurrency)
            .max(1);
        let slot = self
            .providers
            .entry(info.id)
            .or_insert_with(|| ProviderSlot {
                provider: None,
                limit,
                running: 0,
                waiting: VecDeque::new(),
            });
        slot.provider = Some(provider);
        slot.limit = limit;
        // A higher limit has room for more at once.
        self.dispatch(info.id);
    }

    /// Takes a provider away; its running jobs finish, and the ones waiting
    /// for a place fail as they would have if started now.
    fn unset_provider(&mut self, id: ProviderId) {
        let Some(slot) = self.providers.get_mut(&id) else {
            return;
        };
        slot.provider = None;
        let waiting = std::mem::take(&mut slot.waiting);
        for job in waiting {
            if let Some(entry) = self.jobs.get_mut(&job)
                && entry.waiting
            {
                entry.waiting = false;
                self.refuse(job, not_set_up(id.info()));
            }
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut updates: mpsc::UnboundedReceiver<(JobId, Update)>,
    ) {
        loop {
            let due = self
                .has_uncommitted()
                .then_some(self.last_commit + COMMIT_INTERVAL);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => {
                        // The front end is gone: stop everything still running.
                        for entry in self.jobs.values() {
                            if let Some(token) = &entry.cancel {
                                token.cancel();
                            }
                        }
                        self.commit_and_publish();
                        return;
                    }
                },
                Some((id, update)) = updates.recv() => self.apply_update(id, update),
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
            }
            for _ in 1..TURN_MESSAGES_MAX {
                if let Ok((id, update)) = updates.try_recv() {
                    self.apply_update(id, update);
                } else if let Ok(command) = commands.try_recv() {
                    self.handle(command);
                } else {
                    break;
                }
            }
            if self.has_uncommitted()
                && (self.commit_soon || Instant::now() >= self.last_commit + COMMIT_INTERVAL)
            {
                self.commit_and_publish();
            }
        }
    }

    /// Whether there are history writes or events still to commit.
    fn has_uncommitted(&self) -> bool {
        !self.pending_events.is_empty() || self.store.as_ref().is_some_and(JobStore::in_group)
    }

    /// Commits the history's open group of writes, then publishes the
    /// events they record.
    fn commit_and_publish(&mut self) {
        self.last_commit = Instant::now();
        self.commit_soon = false;
        if let Some(store) = &mut self.store
            && let Err(error) = store.commit_group()
        {
            self.history_failed(error);
        }
        if self.pending_events.is_empty() {
            return;
        }
        let mut delivered = false;
        for event in self.pending_events.drain(..) {
            delivered |= self.events.send(event).is_ok();
        }
        if delivered {
            (self.waker)();
        }
    }

    /// Reports the first failed history write; the rest would only repeat it.
    fn history_failed(&mut self, error: StoreError) {
        if !self.store_failed {
            tracing::error!(%error, "cannot write to the job history; jobs carry on unrecorded");
        }
        self.store_failed = true;
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::SetProvider {
                provider,
                concurrency,
            } => self.set_provider(provider, concurrency),
            Command::UnsetProvider(id) => self.unset_provider(id),
            Command::Reconfigure { ids, settings } => {
                for id in ids {
                    self.reconfigure(id, &settings);
                }
            }
            Command::Add(new_jobs) => {
                self.batch = self.store.as_mut().and_then(|store| {
                    match store.begin_group().and_then(|()| store.begin_batch()) {
                        Ok(batch) => Some(batch),
                        Err(error) => {
                            tracing::error!(%error, "cannot record a batch in the job history");
                            None
                        }
                    }
                });
                for spec in new_jobs {
                    self.add(spec);
                }
            }
            Command::Restore(jobs) => {
                for restored in jobs {
                    self.restore(restored);
                }
            }
            Command::Start => {
                let queued: Vec<_> = self
                    .jobs
                    .iter()
                    .filter(|(_, e)| {
                        e.job.state == JobState::Queued && e.cancel.is_none() && !e.waiting
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in queued {
                    self.schedule(id);
                }
            }
            Command::Cancel(id) => self.cancel(id),
            Command::CancelAll => {
                let ids: Vec<_> = self.jobs.keys().copied().collect();
                for id in ids {
                    self.cancel(id);
                }
            }
            Command::Retry(id) => {
                if self.transition(id, Transition::Retry) {
                    self.schedule(id);
                }
            }
            Command::Remove(id) => {
                self.cancel(id);
                if self.jobs.remove(&id).is_some() {
                    if let Some(store) = &mut self.store
                        && let Err(error) =
                            store.begin_group().and_then(|()| store.record_removed(id))
                    {
                        tracing::error!(%error, "cannot record a removed job in the job history");
                    }
                    self.publish(Event::Removed(id));
                }
            }
        }
    }

    fn add(&mut self, spec: NewJob) {
        let id = JobId(self.next_id);
        self.next_id += 1;
        let settings = &spec.settings;
        let kind = spec.input.kind(settings.provider.info().takes_only_video());
        let job = Job {
            id,
            input: spec.input.clone(),
            kind,
            provider: settings.provider,
            model: settings.model.clone(),
            remote_id: None,
            state: JobState::Queued,
            credits_charged: None,
            warnings: Vec::new(),
        };
        let rejection = rejection(&spec, kind);
        let entry = Entry {
            job: job.clone(),
            spec,
            reached_provider: false,
            cancel: None,
            waiting: false,
            accepted: false,
            resumable: false,
        };
        self.jobs.insert(id, entry);
        self.persist(id, Persist::Added);
        self.commit_soon = true;
        self.publish(Event::Added(job));
        if let Some(reason) = rejection {
            self.refuse(id, reason.to_string());
        }
    }

    /// Takes back a job from a run that ended; one the provider accepted
    /// resumes at once, the rest wait in the queue.
    fn restore(&mut self, restored: RestoredJob) {
        let RestoredJob {
            mut job,
            spec,
            accepted,
        } = restored;
        let id = job.id;
        if self.jobs.contains_key(&id) {
            return;
        }
        self.next_id = self.next_id.max(id.0 + 1);
        let resume = accepted && job.remote_id.is_some();
        job.state = JobState::Queued;
        let entry = Entry {
            job: job.clone(),
            spec,
            reached_provider: job.remote_id.is_some(),
            cancel: None,
            waiting: false,
            accepted: false,
            resumable: resume,
        };
        self.jobs.insert(id, entry);
        self.persist(id, Persist::Added);
        self.commit_soon = true;
        self.publish(Event::Added(job));
        if resume {
            self.schedule(id);
        }
    }

    /// Writes a job's current state to the history, if there is one.
    fn persist(&mut self, id: JobId, what: Persist) {
        let (Some(store), Some(entry)) = (self.store.as_mut(), self.jobs.get(&id)) else {
            return;
        };
        let written = store.begin_group().and_then(|()| match what {
            Persist::Added => store.record_added(self.batch, &entry.job, &entry.spec.settings),
            Persist::Changed => store.record_changed(&entry.job, entry.accepted, None),
            Persist::Reconfigured => {
                store.record_changed(&entry.job, entry.accepted, Some(&entry.spec.settings))
            }
        });
        if let Err(error) = written {
            self.history_failed(error);
        }
    }

    /// Fails a job that cannot run as set up; trying again unchanged would
    /// not help.
    fn refuse(&mut self, id: JobId, error: String) {
        self.transition(
            id,
            Transition::Fail {
                error,
                retryable: false,
            },
        );
    }

    /// Gives a job that has not started new settings, checking them again.
    fn reconfigure(&mut self, id: JobId, settings: &JobSettings) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        // Queued jobs, and jobs that failed before reaching the provider
        // (refused when added or while being prepared); a job the user
        // cancelled stays cancelled, and a running one is left alone.
        let refused = matches!(entry.job.state, JobState::Failed { .. });
        let waiting = entry.job.state == JobState::Queued || refused;
        let idle = entry.cancel.is_none() && !entry.waiting;
        if entry.reached_provider || !idle || !waiting || entry.spec.settings == *settings {
            return;
        }
        entry.spec.settings = settings.clone();
        entry.job.provider = settings.provider;
        entry.job.model = settings.model.clone();
        entry.job.kind = entry
            .spec
            .input
            .kind(settings.provider.info().takes_only_video());
        let rejection = rejection(&entry.spec, entry.job.kind);
        if refused {
            // A refused job gets a fresh chance under the new settings.
            entry.job.state = JobState::Queued;
        }
        let job = entry.job.clone();
        self.persist(id, Persist::Reconfigured);
        self.publish(Event::Changed(job));
        if let Some(reason) = rejection {
            self.refuse(id, reason.to_string());
        }
    }

    /// Puts a queued job in its provider's line; it runs when its turn
    /// comes and a place is free.
    fn schedule(&mut self, id: JobId) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if entry.job.kind.is_none()
            || entry.job.state != JobState::Queued
            || entry.cancel.is_some()
            || entry.waiting
        {
            return;
        }
        let provider = entry.spec.settings.provider;
        let Some(slot) = self
            .providers
            .get_mut(&provider)
            .filter(|slot| slot.provider.is_some())
        else {
            self.refuse(id, not_set_up(provider.info()));
            return;
        };
        entry.waiting = true;
        slot.waiting.push_back(id);
        self.dispatch(provider);
    }

    /// Starts the provider's waiting jobs, oldest first, while it has room.
    fn dispatch(&mut self, provider: ProviderId) {
        loop {
            let Some(slot) = self.providers.get_mut(&provider) else {
                return;
            };
            if slot.running >= slot.limit {
                return;
            }
            let Some(id) = slot.waiting.pop_front() else {
                return;
            };
            if let Some(entry) = self.jobs.get_mut(&id)
                && entry.waiting
            {
                entry.waiting = false;
                self.run_task(id);
            }
        }
    }

    /// Spawns the task that runs a job, taking a place of its provider.
    fn run_task(&mut self, id: JobId) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        let Some(kind) = entry.job.kind else { return };
        let settings = &entry.spec.settings;
        let Some(slot) = self.providers.get_mut(&settings.provider) else {
            return;
        };
        let Some(provider) = &slot.provider else {
            return;
        };
        slot.running += 1;
        let token = CancellationToken::new();
        entry.cancel = Some(token.clone());
        let resume_from = if entry.resumable {
            entry.job.remote_id.clone()
        } else {
            None
        };
        entry.resumable = false;
        entry.accepted = false;
        let task = JobTask {
            id,
            provider: Arc::clone(provider),
            request: JobRequest {
                input: entry.spec.input.clone(),
                kind,
                model: settings.model.clone(),
                options: settings.options.clone(),
                background: settings.output.composition.background.plain(),
            },
            output: settings.output.clone(),
            allow_downscale: settings.allow_downscale,
            resume_from,
            partial_owner: self.partial_owner.clone(),
            date: self.date,
            poll: self.config.poll.clone(),
            http: self.http.clone(),
            updates: self.updates_tx.clone(),
        };
        self.running_tasks += 1;
        tokio::spawn(task.run(token));
    }

    fn cancel(&mut self, id: JobId) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        if entry.waiting {
            // Its place in the line is skipped when reached.
            entry.waiting = false;
            self.transition(id, Transition::Cancel);
            return;
        }
        match &entry.cancel {
            // The task reports `Cancelled` once it has cleaned up.
            Some(token) => token.cancel(),
            None if !entry.job.state.is_terminal() => {
                self.transition(id, Transition::Cancel);
            }
            None => {}
        }
    }

    fn apply_update(&mut self, id: JobId, update: Update) {
        match update {
            Update::Transition(transition) => {
                self.transition(id, transition);
            }
            Update::Warning(message) => {
                if let Some(entry) = self.jobs.get_mut(&id) {
                    entry.job.warnings.push(message.clone());
                    let job = entry.job.clone();
                    self.persist(id, Persist::Changed);
                    self.publish(Event::Warning { job, message });
                }
            }
            Update::Credits(credits) => {
                if let Some(entry) = self.jobs.get_mut(&id) {
                    entry.job.credits_charged = Some(credits);
                    self.persist(id, Persist::Changed);
                }
            }
            Update::Accepted => {
                if let Some(entry) = self.jobs.get_mut(&id) {
                    entry.accepted = true;
                    self.persist(id, Persist::Changed);
                }
            }
            Update::Ended(transition, provider) => {
                self.running_tasks = self.running_tasks.saturating_sub(1);
                if let Some(slot) = self.providers.get_mut(&provider) {
                    slot.running = slot.running.saturating_sub(1);
                }
                if let Some(entry) = self.jobs.get_mut(&id) {
                    entry.cancel = None;
                    let still_remote = entry.accepted && entry.job.remote_id.is_some();
                    entry.resumable = still_remote
                        && match &transition {
                            Transition::Fail { retryable, .. } => *retryable,
                            Transition::Cancel => true,
                            _ => false,
                        };
                }
                self.transition(id, transition);
                self.dispatch(provider);
                if self.running_tasks == 0 {
                    self.publish(Event::Idle);
                }
            }
        }
    }

    /// Applies a transition through the state machine and publishes the
    /// result; returns whether it was allowed.
    fn transition(&mut self, id: JobId, transition: Transition) -> bool {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return false;
        };
        if let Transition::Submitted { remote_id } = &transition {
            entry.job.remote_id = Some(remote_id.clone());
        }
        match entry.job.state.apply(transition) {
            Ok(next) => {
                entry.reached_provider |= matches!(
                    next,
                    JobState::Uploading
                        | JobState::Submitted { .. }
                        | JobState::Processing { .. }
                        | JobState::Downloading
                        | JobState::Done { .. }
                );
                self.commit_soon |= next.is_terminal();
                entry.job.state = next;
                let job = entry.job.clone();
                log_state(&job);
                self.persist(id, Persist::Changed);
                self.publish(Event::Changed(job));
                true
            }
            Err(invalid) => {
                tracing::error!(job = %id, %invalid, "ignored an impossible job transition");
                false
            }
        }
    }

    /// Queues an event for the next commit (see [`Engine::commit_and_publish`]).
    fn publish(&mut self, event: Event) {
        self.pending_events.push(event);
    }
}

/// Why a job for a provider with no key cannot start, and how to fix it.
fn not_set_up(info: &ProviderInfo) -> String {
    let variables: Vec<_> = info.credentials.iter().map(|c| c.env_var).collect();
    format!(
        "{} is not set up: add its key in Settings (or run `cutout keys set {}`, or set {})",
        info.name,
        info.id,
        variables.join(" and ")
    )
}

/// Puts the steps support asks about in the log file (see
/// [`crate::logging`]): accepted by the provider, finished, failed,
/// cancelled. Progress polls stay at debug, or a long batch would drown
/// them. Only ids, providers, states and output paths are logged; inputs
/// can be signed URLs, so they are not.
fn log_state(job: &Job) {
    let provider = job.provider;
    match &job.state {
        JobState::Submitted { remote_id } => {
            tracing::info!(job = %job.id, %provider, %remote_id, "accepted by the provider");
        }
        JobState::Done { outputs } => {
            tracing::info!(job = %job.id, %provider, ?outputs, "job done");
        }
        JobState::Failed { error, retryable } => {
            tracing::warn!(job = %job.id, %provider, retryable, %error, "job failed");
        }
        JobState::Cancelled => tracing::info!(job = %job.id, %provider, "job cancelled"),
        state => tracing::debug!(job = %job.id, %provider, ?state, "job state"),
    }
}

/// Why a job can never run as asked, if it cannot.
fn rejection(spec: &NewJob, kind: Option<InputKind>) -> Option<JobError> {
    let settings = &spec.settings;
    let info = settings.provider.info();
    let Some(kind) = kind else {
        return Some(JobError::Unsupported(format!(
            "not an image or video Cutout can send: {}",
            spec.input.display_name()
        )));
    };
    if let Some(reason) = refusal(info, kind) {
        return Some(JobError::Unsupported(reason));
    }
    if let Err(why) = info
        .check_model(&settings.model)
        .and_then(|()| info.check_options(&settings.options))
    {
        return Some(JobError::Unsupported(why));
    }
    None
}

/// Everything one job's task needs; it owns no shared state.
struct JobTask {
    id: JobId,
    provider: Arc<dyn Provider>,
    request: JobRequest,
    output: OutputSpec,
    /// Whether an image over the provider's limits may go as a smaller copy.
    allow_downscale: bool,
    resume_from: Option<String>,
    /// Marks the temporary files this task writes as this run's.
    partial_owner: String,
    /// The run's date, for `{date}` in file names.
    date: jiff::civil::Date,
    poll: PollPolicy,
    http: HttpClient,
    updates: mpsc::UnboundedSender<(JobId, Update)>,
}

impl JobTask {
    async fn run(self, cancel: CancellationToken) {
        let id = self.id;
        let updates = self.updates.clone();
        let ending = {
            // Dropping the work future on cancel drops any pending output,
            // which deletes its temporary file before `Cancelled` is reported.
            let work = self.work();
            tokio::select! {
                () = cancel.cancelled() => Transition::Cancel,
                result = work => match result {
                    Ok(outputs) => Transition::Finish { outputs },
                    Err(error) => {
                        let retryable = error.is_retryable();
                        Transition::Fail { error: error.to_string(), retryable }
                    }
                },
            }
        };
        let provider = self.provider.info().id;
        let _ = updates.send((id, Update::Ended(ending, provider)));
    }

    fn send(&self, update: Update) {
        let _ = self.updates.send((self.id, update));
    }

    fn provider_error(&self, source: ProviderError) -> JobError {
        JobError::Provider {
            provider: self.provider.info().name,
            source,
        }
    }

    async fn work(&self) -> Result<Vec<PathBuf>, JobError> {
        self.send(Update::Transition(Transition::Prepare));
        if let JobInput::File { path, .. } = &self.request.input {
            tokio::fs::metadata(path)
                .await
                .map_err(|source| JobError::Output {
                    action: "cannot read the input",
                    source,
                    path: path.clone(),
                })?;
        }
        let result = match &self.resume_from {
            Some(remote_id) => {
                self.send(Update::Accepted);
                self.send(Update::Transition(Transition::Progress { progress: None }));
                self.poll_until_done(&self.request, remote_id).await?
            }
            None => {
                // Held until the job ends: dropping it deletes any copy.
                let prepared = self.prepare_upload().await?;
                let copy_request;
                let request = match &prepared {
                    Some(upload) if upload.is_copy() => {
                        copy_request = JobRequest {
                            input: JobInput::File {
                                path: upload.path().to_owned(),
                                root: None,
                            },
                            ..self.request.clone()
                        };
                        &copy_request
                    }
                    _ => &self.request,
                };
                let reporter = TaskReporter {
                    task: self,
                    reported_id: Mutex::new(None),
                };
                let submission = self
                    .provider
                    .submit(request, &reporter)
                    .await
                    .map_err(|e| self.provider_error(e))?;
                match submission {
                    Submission::Finished(result) => result,
                    Submission::Accepted { remote_id } => {
                        reporter.remote_id(&remote_id);
                        self.send(Update::Accepted);
                        self.poll_until_done(request, &remote_id).await?
                    }
                }
            }
        };
        for warning in &result.warnings {
            self.send(Update::Warning(warning.clone()));
        }
        if let Some(credits) = result.credits_charged {
            self.send(Update::Credits(credits));
        }
        self.send(Update::Transition(Transition::Download));
        self.write_results(result).await
    }

    /// Makes the file an image provider is sent: the input itself, or an
    /// upright sRGB copy in a format it takes, downscaled to its limits when
    /// the user allowed it (see [`upload::prepare`]); what was done is
    /// reported as warnings. Videos and URLs go as they are (`None`), and a
    /// provider on this machine opens the original itself.
    async fn prepare_upload(&self) -> Result<Option<PreparedUpload>, JobError> {
        let JobInput::File { path, .. } = &self.request.input else {
            return Ok(None);
        };
        let info = self.provider.info();
        if self.request.kind != InputKind::ImageFile || info.runs_on_this_machine {
            return Ok(None);
        }
        let path = path.clone();
        let allow_downscale = self.allow_downscale;
        let prepared = tokio::task::spawn_blocking(move || {
            upload::prepare(&path, info, allow_downscale, &DecodeLimits::default())
        })
        .await
        .map_err(|e| JobError::Unsupported(format!("preparing the upload failed: {e}")))??;
        for note in prepared.notes() {
            self.send(Update::Warning(note.clone()));
        }
        Ok(Some(prepared))
    }

    async fn poll_until_done(
        &self,
        request: &JobRequest,
        remote_id: &str,
    ) -> Result<JobResult, JobError> {
        let info: &ProviderInfo = self.provider.info();
        let deadline_span = self
            .poll
            .deadline
            .unwrap_or(Duration::from_secs(info.poll_deadline_secs));
        let deadline = Instant::now() + deadline_span;
        let mut interval = self.poll.initial_interval;
        let mut last_progress = None;
        let mut last_status = None;
        loop {
            tokio::time::sleep(interval).await;
            let status = self
                .provider
                .poll(request, remote_id)
                .await
                .map_err(|e| self.provider_error(e))?;
            match status {
                PollStatus::Pending { progress, status } => {
                    last_status = status.or(last_status);
                    if last_progress != Some(progress) {
                        last_progress = Some(progress);
                        self.send(Update::Transition(Transition::Progress { progress }));
                    }
                }
                PollStatus::Done(result) => return Ok(result),
                PollStatus::Failed { message } => {
                    return Err(self.provider_error(ProviderError::RemoteFailed(message)));
                }
            }
            if Instant::now() >= deadline {
                let secs = deadline_span.as_secs();
                return Err(self.provider_error(ProviderError::Deadline { secs, last_status }));
            }
            interval = interval.mul_f64(1.5).min(self.poll.max_interval);
        }
    }

    /// Fetches every asset into temporary files beside their final names,
    /// converts images as asked, and only then moves them into place, so a
    /// failure or cancel leaves no partial result.
    async fn write_results(&self, result: JobResult) -> Result<Vec<PathBuf>, JobError> {
        if result.assets.is_empty() {
            return Err(self.provider_error(ProviderError::Protocol(
                "the job finished without any result".into(),
            )));
        }
        let dir = output_dir_for(&self.output.dir, &self.request.input);
        // Variation names tell several results apart; a single result keeps
        // the plain name whatever the provider called it.
        let several = result.assets.len() > 1;
        let mut ready = Vec::with_capacity(result.assets.len());
        for asset in &result.assets {
            let (pending, extension) = self.fetch_asset(asset, &dir).await?;
            let variation = asset.variation.clone().filter(|_| several);
            ready.push((pending, variation, extension));
        }
        let input_stem = self.request.input.stem();
        let mut outputs = Vec::with_capacity(ready.len());
        for (pending, variation, extension) in ready {
            let name = self.output.naming.render(&NameFields {
                name: &input_stem,
                provider: self.provider.info().id,
                model: &self.request.model,
                date: self.date,
                variation: variation.as_deref(),
            });
            // A rename, done here rather than on a blocking thread so a cancel
            // can never land a file after the job reported `cancelled`.
            let written = pending
                .commit(&name.stem, name.variation, &extension)
                .map_err(|source| JobError::Output {
                    action: "cannot save the result",
                    source,
                    path: dir.clone(),
                })?;
            outputs.push(written);
        }
        Ok(outputs)
    }

    /// The format a result is re-encoded in, or `None` to save it as the
    /// provider delivered it.
    fn convert_to(&self, asset: &ResultAsset) -> Option<OutputFormat> {
        if self.request.kind.is_video() {
            return None;
        }
        let delivered = delivered_format(&asset.extension);
        match (self.output.format, delivered) {
            (Some(format), Some(_)) => Some(format),
            // The provider's own format, re-encoded only to compose.
            (None, Some(delivered)) if !self.output.composition.is_identity() => Some(delivered),
            _ => None,
        }
    }

    async fn fetch_asset(
        &self,
        asset: &ResultAsset,
        dir: &Path,
    ) -> Result<(PendingOutput, String), JobError> {
        let output_error = |source| JobError::Output {
            action: "cannot write to the output folder",
            source,
            path: dir.to_owned(),
        };
        let convert_to = self.convert_to(asset);
        if let (AssetSource::Bytes(bytes), None) = (&asset.source, convert_to) {
            // Saved as delivered, the commonest case: checked in memory,
            // then written and flushed in one trip to a blocking thread.
            let head = &bytes[..bytes.len().min(RESULT_HEAD_BYTES)];
            if let Some(why) = not_what_it_claims(&asset.extension, head) {
                return Err(self.provider_error(ProviderError::Protocol(why)));
            }
            let bytes = bytes.clone();
            let folder = dir.to_owned();
            let owner = self.partial_owner.clone();
            let pending = tokio::task::spawn_blocking(move || {
                let pending = PendingOutput::create(&folder, &owner).map_err(|e| (true, e))?;
                let mut file = pending.reopen().map_err(|e| (false, e))?;
                std::io::Write::write_all(&mut file, &bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| (false, e))?;
                Ok(pending)
            })
            .await
            .map_err(|e| output_error(std::io::Error::other(e.to_string())))?
            .map_err(|(creating, source)| JobError::Output {
                action: if creating {
                    "cannot write to the output folder"
                } else {
                    "cannot write the result"
                },
                source,
                path: dir.to_owned(),
            })?;
            return Ok((pending, asset.extension.clone()));
        }
        let pending = {
            let dir = dir.to_owned();
            let owner = self.partial_owner.clone();
            tokio::task::spawn_blocking(move || PendingOutput::create(&dir, &owner))
                .await
                .map_err(|e| output_error(std::io::Error::other(e.to_string())))?
                .map_err(output_error)?
        };
        let temp_path = pending.path().to_owned();
        // The folder, not the hidden temporary file: that is what a person
        // can look at and free space on.
        let write_error = |source| JobError::Output {
            action: "cannot write the result",
            source,
            path: dir.to_owned(),
        };
        let handle = pending.reopen().map_err(write_error)?;
        let mut file = tokio::fs::File::from_std(handle);
        let bytes = match &asset.source {
            AssetSource::Pixels(cutout) => {
                // Decoded already: composed and encoded from memory, in the
                // chosen format or, with none chosen, as a PNG.
                let format = self.output.format.unwrap_or(OutputFormat::Png);
                let finish = self.output.finish(format);
                let cutout = Arc::clone(cutout);
                let encoded =
                    tokio::task::spawn_blocking(move || imaging::finish_pixels(&cutout, &finish))
                        .await
                        .map_err(|e| write_error(std::io::Error::other(e.to_string())))??;
                file.write_all(&encoded).await.map_err(write_error)?;
                write_through(&mut file).await.map_err(write_error)?;
                return Ok((pending, format.extension().to_owned()));
            }
            AssetSource::Url(url) => {
                self.http
                    .download_to(url, &mut file, &temp_path)
                    .await
                    .map_err(|e| self.provider_error(e))?;
                match convert_to {
                    Some(_) => Some(tokio::fs::read(&temp_path).await.map_err(write_error)?),
                    None => None,
                }
            }
            // Bytes saved as delivered returned above: these are converted.
            AssetSource::Bytes(bytes) => Some(bytes.to_vec()),
        };
        let Some(format) = convert_to else {
            write_through(&mut file).await.map_err(write_error)?;
            // Saved as delivered: at least make sure it is what its name
            // will say, not an error page sent with an image's type.
            let mut head = Vec::with_capacity(RESULT_HEAD_BYTES);
            tokio::fs::File::open(&temp_path)
                .await
                .map_err(write_error)?
                .take(RESULT_HEAD_BYTES as u64)
                .read_to_end(&mut head)
                .await
                .map_err(write_error)?;
            if let Some(why) = not_what_it_claims(&asset.extension, &head) {
                return Err(self.provider_error(ProviderError::Protocol(why)));
            }
            return Ok((pending, asset.extension.clone()));
        };
        let bytes = bytes.unwrap_or_default();
        let head = &bytes[..bytes.len().min(RESULT_HEAD_BYTES)];
        if let Some(why) = not_what_it_claims(&asset.extension, head) {
            return Err(self.provider_error(ProviderError::Protocol(why)));
        }
        let finish = self.output.finish(format);
        let converted = tokio::task::spawn_blocking(move || {
            let converted = imaging::finish(&bytes, &finish)?;
            Ok::<_, ImagingError>(converted.unwrap_or(bytes))
        })
        .await
        .map_err(|e| write_error(std::io::Error::other(e.to_string())))??;
        file.set_len(0).await.map_err(write_error)?;
        file.rewind().await.map_err(write_error)?;
        file.write_all(&converted).await.map_err(write_error)?;
        write_through(&mut file).await.map_err(write_error)?;
        Ok((pending, format.extension().to_owned()))
    }
}

/// How much of a result [`not_what_it_claims`] looks at: enough for every
/// signature, and to quote the start of an error page.
const RESULT_HEAD_BYTES: usize = 48;

/// Why a result saved as delivered is not the file its extension names
/// (an HTML or JSON error page served with an image's content type, an
/// empty file), or `None` when it looks right or the extension is one
/// Cutout has no signature for.
fn not_what_it_claims(extension: &str, head: &[u8]) -> Option<String> {
    let extension = extension.to_ascii_lowercase();
    // Pictures by the decoder's own signatures; the other things providers
    // deliver (videos, archives) by theirs.
    if let Some(format) = SourceFormat::from_extension(&extension) {
        let name = format!("a {} image", format.name());
        return mismatch(&name, &extension, head, decode::sniff(head) == Some(format));
    }
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    let (name, looks_right) = match extension.as_str() {
        "webm" | "mkv" => ("a WebM video", at(0, &[0x1A, 0x45, 0xDF, 0xA3])),
        "mp4" | "m4v" | "mov" => (
            "a video",
            [b"ftyp", b"moov", b"wide", b"mdat", b"free"]
                .iter()
                .any(|box_type| at(4, *box_type)),
        ),
        "zip" => ("a ZIP archive", at(0, b"PK\x03\x04")),
        _ => return None,
    };
    mismatch(name, &extension, head, looks_right)
}

/// The message for a result whose first bytes are not `name`'s, or `None`
/// when they are.
fn mismatch(name: &str, extension: &str, head: &[u8], looks_right: bool) -> Option<String> {
    if looks_right {
        return None;
    }
    let start = if head.is_empty() {
        "is empty".to_owned()
    } else {
        format!("starts with `{}`", crate::providers::http::snippet(head))
    };
    Some(format!(
        "the result should be {name} (.{extension}) but {start}; nothing was saved"
    ))
}

/// The format of a result Cutout can read to change its format or
/// composition; anything else (PSD, TIFF, video) is saved as delivered.
fn delivered_format(extension: &str) -> Option<OutputFormat> {
    match extension.to_ascii_lowercase().as_str() {
        "png" => Some(OutputFormat::Png),
        "webp" => Some(OutputFormat::Webp),
        "jpg" | "jpeg" => Some(OutputFormat::Jpg),
        _ => None,
    }
}

/// Turns a provider's reports into engine updates, and remembers the remote
/// id so it is reported exactly once.
struct TaskReporter<'a> {
    task: &'a JobTask,
    reported_id: Mutex<Option<String>>,
}

impl JobReporter for TaskReporter<'_> {
    fn uploading(&self) {
        self.task.send(Update::Transition(Transition::Upload));
    }

    fn remote_id(&self, remote_id: &str) {
        let mut reported = self.reported_id.lock().unwrap_or_else(|p| p.into_inner());
        if reported.is_none() {
            *reported = Some(remote_id.to_owned());
            self.task.send(Update::Transition(Transition::Submitted {
                remote_id: remote_id.to_owned(),
            }));
        }
    }

    fn warning(&self, message: String) {
        self.task.send(Update::Warning(message));
    }

    fn poll_deadline(&self) -> Option<Duration> {
        self.task.poll.deadline
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use bytes::Bytes;
    use url::Url;

    use super::*;
    use crate::imaging::OutputFormat;
    use crate::providers::{ResultAsset, RetryPolicy};

    #[test]
    fn a_result_that_is_not_what_its_name_says_is_refused_with_its_first_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(not_what_it_claims("png", png), None);
        assert_eq!(not_what_it_claims("PNG", png), None);
        assert_eq!(not_what_it_claims("webp", b"RIFF\x10\0\0\0WEBPVP8L"), None);
        assert_eq!(not_what_it_claims("mp4", b"\0\0\0\x18ftypmp42"), None);
        assert_eq!(not_what_it_claims("psd", b"8BPS\0\x01"), None);
        assert_eq!(
            not_what_it_claims("xyz", b"<html>"),
            None,
            "no signature known"
        );

        let why = not_what_it_claims("png", b"<html><body>Link expired").unwrap();
        assert_eq!(
            why,
            "the result should be a PNG image (.png) but starts with `<html><body>Link expired`; \
             nothing was saved"
        );
        let why = not_what_it_claims("jpg", b"").unwrap();
        assert!(why.contains("a JPEG image (.jpg) but is empty"), "{why}");
    }

    /// A provider whose answers are scripted, to pin the engine's own rules
    /// (resume, concurrency) without any HTTP in between.
    #[derive(Debug)]
    struct Scripted {
        info: &'static ProviderInfo,
        submits: AtomicUsize,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        submit_delay: Duration,
        /// What each submit does: `Ok(true)` accepts, `Ok(false)` reports
        /// the id and then fails as if the call broke off half-way.
        submit_outcomes: Mutex<VecDeque<bool>>,
        polls: Mutex<VecDeque<Result<PollStatus, ProviderError>>>,
        /// The inputs' file names, in the order they were submitted.
        submitted: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(submit_outcomes: Vec<bool>, polls: Vec<Result<PollStatus, ProviderError>>) -> Self {
            Scripted {
                info: ProviderId::Removit.info(),
                submits: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                submit_delay: Duration::ZERO,
                submit_outcomes: Mutex::new(submit_outcomes.into()),
                polls: Mutex::new(polls.into()),
                submitted: Mutex::new(Vec::new()),
            }
        }
    }

    fn png_result() -> JobResult {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbaImage::from_pixel(2, 2, image::Rgba([9, 9, 9, 255]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        JobResult {
            assets: vec![ResultAsset {
                variation: None,
                source: AssetSource::Bytes(Bytes::from(png.into_inner())),
                extension: "png".into(),
            }],
            ..JobResult::default()
        }
    }

    fn server_error() -> ProviderError {
        ProviderError::Server {
            status: 503,
            message: "down".into(),
            attempts: 5,
        }
    }

    #[async_trait]
    impl Provider for Scripted {
        fn info(&self) -> &'static ProviderInfo {
            self.info
        }

        async fn submit(
            &self,
            request: &JobRequest,
            report: &dyn JobReporter,
        ) -> Result<Submission, ProviderError> {
            if let JobInput::File { path, .. } = &request.input {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                self.submitted.lock().unwrap().push(name.into_owned());
            }
            let n = self.submits.fetch_add(1, Ordering::SeqCst) + 1;
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.submit_delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let remote_id = format!("remote-{n}");
            report.remote_id(&remote_id);
            let accept = self
                .submit_outcomes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(true);
            if accept {
                Ok(Submission::Accepted { remote_id })
            } else {
                Err(server_error())
            }
        }

        async fn poll(&self, _: &JobRequest, _: &str) -> Result<PollStatus, ProviderError> {
            self.polls
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(PollStatus::Done(png_result())))
        }
    }

    fn start(provider: Arc<Scripted>, concurrency: usize) -> EngineHandle {
        start_recording(provider, concurrency, None)
    }

    fn start_recording(
        provider: Arc<Scripted>,
        concurrency: usize,
        store: Option<JobStore>,
    ) -> EngineHandle {
        let config = EngineConfig {
            poll: PollPolicy {
                initial_interval: Duration::from_millis(1),
                max_interval: Duration::from_millis(2),
                deadline: None,
            },
            concurrency: [(ProviderId::Removit, concurrency)].into(),
        };
        Engine::spawn_recording(
            vec![provider],
            HttpClient::new(RetryPolicy::default()),
            config,
            Arc::new(|| {}),
            store,
        )
    }

    fn new_job(dir: &Path, name: &str) -> NewJob {
        let input = dir.join(name);
        // A real picture: the engine reads image inputs to prepare their
        // upload (the scripted provider itself never reads them).
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        std::fs::write(&input, png.into_inner()).unwrap();
        NewJob {
            input: JobInput::File {
                path: input,
                root: None,
            },
            settings: JobSettings {
                provider: ProviderId::Removit,
                model: "removit".into(),
                options: Default::default(),
                output: OutputSpec {
                    dir: dir.join("out"),
                    format: Some(OutputFormat::Png),
                    quality: None,
                    composition: Default::default(),
                    naming: Default::default(),
                },
                allow_downscale: false,
            },
        }
    }

    /// Adds `jobs`, starts them and runs until every one has ended, checking
    /// that each is done.
    async fn run_all_to_done(handle: &mut EngineHandle, jobs: Vec<NewJob>) {
        handle.send(Command::Add(jobs));
        handle.send(Command::Start);
        let jobs = until_idle(handle).await;
        assert!(
            jobs.values()
                .all(|j| matches!(j.state, JobState::Done { .. })),
            "{jobs:?}"
        );
    }

    /// Runs until every job has ended, returning the last state of each.
    async fn until_idle(handle: &mut EngineHandle) -> BTreeMap<JobId, Job> {
        let mut jobs = BTreeMap::new();
        while let Some(event) = handle.next_event().await {
            match event {
                Event::Added(job) | Event::Changed(job) => {
                    jobs.insert(job.id, job);
                }
                Event::Idle => break,
                _ => {}
            }
        }
        jobs
    }

    #[tokio::test]
    async fn retrying_a_job_that_failed_while_polling_resumes_it_without_paying_again() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![true], vec![Err(server_error())]));
        let mut handle = start(Arc::clone(&provider), 4);
        handle.send(Command::Add(vec![new_job(dir.path(), "a.png")]));
        handle.send(Command::Start);
        let jobs = until_idle(&mut handle).await;
        let job = &jobs[&JobId(1)];
        assert!(
            matches!(
                job.state,
                JobState::Failed {
                    retryable: true,
                    ..
                }
            ),
            "{job:?}"
        );
        assert_eq!(job.remote_id.as_deref(), Some("remote-1"));

        handle.send(Command::Retry(JobId(1)));
        let jobs = until_idle(&mut handle).await;
        assert!(
            matches!(jobs[&JobId(1)].state, JobState::Done { .. }),
            "{:?}",
            jobs[&JobId(1)]
        );
        assert_eq!(
            provider.submits.load(Ordering::SeqCst),
            1,
            "a resumed job must not be submitted again"
        );
    }

    #[tokio::test]
    async fn a_submission_that_broke_off_half_way_is_submitted_afresh_on_retry() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![false, true], vec![]));
        let mut handle = start(Arc::clone(&provider), 4);
        handle.send(Command::Add(vec![new_job(dir.path(), "a.png")]));
        handle.send(Command::Start);
        until_idle(&mut handle).await;
        handle.send(Command::Retry(JobId(1)));
        let jobs = until_idle(&mut handle).await;
        assert!(matches!(jobs[&JobId(1)].state, JobState::Done { .. }));
        assert_eq!(provider.submits.load(Ordering::SeqCst), 2);
        assert_eq!(jobs[&JobId(1)].remote_id.as_deref(), Some("remote-2"));
    }

    #[tokio::test]
    async fn no_more_jobs_run_at_once_than_the_providers_concurrency() {
        let dir = tempfile::tempdir().unwrap();
        let mut scripted = Scripted::new(vec![], vec![]);
        scripted.submit_delay = Duration::from_millis(20);
        let provider = Arc::new(scripted);
        let mut handle = start(Arc::clone(&provider), 2);
        let jobs = (0..6)
            .map(|i| new_job(dir.path(), &format!("{i}.png")))
            .collect();
        run_all_to_done(&mut handle, jobs).await;
        assert_eq!(provider.max_in_flight.load(Ordering::SeqCst), 2);
        let outputs = std::fs::read_dir(dir.path().join("out")).unwrap().count();
        assert_eq!(outputs, 6);
    }

    /// A multi-threaded runtime runs the task spawned last first (tokio's
    /// LIFO slot), so when every job's task waited on the provider's
    /// semaphore, the last photo added was sent first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_start_in_the_order_they_were_added_not_last_added_first() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let names: Vec<String> = (0..8).map(|i| format!("{i}.png")).collect();
        let jobs = names.iter().map(|name| new_job(dir.path(), name)).collect();
        run_all_to_done(&mut handle, jobs).await;
        assert_eq!(*provider.submitted.lock().unwrap(), names);
    }

    /// The history is written in groups (see [`COMMIT_INTERVAL`]); a front
    /// end must still never be told of a change the history does not hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_published_change_is_already_in_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let store = JobStore::open(&path).unwrap().store;
        let history = crate::jobs::store::History::open(&path).unwrap();
        let mut scripted = Scripted::new(vec![], vec![]);
        scripted.submit_delay = Duration::from_millis(5);
        let mut handle = start_recording(Arc::new(scripted), 3, Some(store));
        let jobs = (0..6)
            .map(|i| new_job(dir.path(), &format!("{i}.png")))
            .collect();
        handle.send(Command::Add(jobs));
        handle.send(Command::Start);
        let mut checked = 0;
        while let Some(event) = handle.next_event().await {
            let job = match event {
                Event::Added(job) | Event::Changed(job) => job,
                Event::Idle => break,
                _ => continue,
            };
            // The history may be further on by now, but it has been here.
            let recorded: Vec<_> = history
                .transitions(job.id)
                .unwrap()
                .into_iter()
                .map(|(_, state, _)| state)
                .collect();
            assert!(
                recorded.iter().any(|state| state == job.state.name()),
                "{:?} was published as {} before the history had it: {recorded:?}",
                job.id,
                job.state.name()
            );
            checked += 1;
        }
        assert!(checked >= 6 * 4, "every job's changes were seen: {checked}");
    }

    #[tokio::test]
    async fn an_input_the_provider_cannot_take_fails_at_once_naming_one_that_can() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let mut job = new_job(dir.path(), "clip.mp4");
        job.input = JobInput::Url(Url::parse("https://media.test/clip.mp4").unwrap());
        handle.send(Command::Add(vec![job]));
        let mut last = None;
        while let Some(event) = handle.next_event().await {
            if let Event::Changed(job) = event {
                last = Some(job);
                break;
            }
        }
        let JobState::Failed { error, retryable } = last.unwrap().state else {
            panic!()
        };
        assert!(error.contains("removebgvideo"), "{error}");
        assert!(!retryable);
        assert_eq!(provider.submits.load(Ordering::SeqCst), 0);
    }

    async fn next_change(handle: &mut EngineHandle) -> Job {
        loop {
            if let Some(Event::Changed(job)) = handle.next_event().await {
                return job;
            }
        }
    }

    #[tokio::test]
    async fn a_refused_input_can_move_to_a_provider_that_takes_it_before_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let mut job = new_job(dir.path(), "clip.mp4");
        job.input = JobInput::Url(Url::parse("https://media.test/clip.mp4").unwrap());
        let mut video = job.settings.clone();
        handle.send(Command::Add(vec![job]));
        assert!(matches!(
            next_change(&mut handle).await.state,
            JobState::Failed { .. }
        ));

        video.provider = ProviderId::Removebgvideo;
        video.model = "original".into();
        handle.send(Command::Reconfigure {
            ids: vec![JobId(1)],
            settings: video,
        });
        let moved = next_change(&mut handle).await;
        assert_eq!(moved.state, JobState::Queued);
        assert_eq!(moved.provider, ProviderId::Removebgvideo);
        assert_eq!(moved.kind, Some(InputKind::VideoUrl));
    }

    #[tokio::test]
    async fn starting_a_job_for_a_provider_without_a_key_fails_saying_how_to_add_one() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let mut job = new_job(dir.path(), "a.png");
        job.settings.provider = ProviderId::Removebg;
        job.settings.model = "auto".into();
        handle.send(Command::Add(vec![job]));
        handle.send(Command::Start);
        let failed = next_change(&mut handle).await;
        let JobState::Failed { error, .. } = failed.state else {
            panic!("{failed:?}")
        };
        assert!(error.contains("not set up"), "{error}");
        assert!(error.contains("CUTOUT_REMOVEBG_KEY"), "{error}");
        assert_eq!(provider.submits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_job_that_failed_before_reaching_its_provider_takes_new_settings_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![true], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let job = new_job(dir.path(), "a.png");
        let mut fixed = job.settings.clone();
        let mut unset = job;
        unset.settings.provider = ProviderId::Removebg;
        unset.settings.model = "auto".into();
        handle.send(Command::Add(vec![unset]));
        handle.send(Command::Start);
        assert!(matches!(
            next_change(&mut handle).await.state,
            JobState::Failed { .. }
        ));

        fixed.output.naming = "{name}-fixed".parse().unwrap();
        handle.send(Command::Reconfigure {
            ids: vec![JobId(1)],
            settings: fixed,
        });
        let requeued = next_change(&mut handle).await;
        assert_eq!(requeued.state, JobState::Queued);
        assert_eq!(requeued.provider, ProviderId::Removit);
        handle.send(Command::Start);
        let jobs = until_idle(&mut handle).await;
        let JobState::Done { outputs } = &jobs[&JobId(1)].state else {
            panic!("{jobs:?}")
        };
        assert!(outputs[0].ends_with("a-fixed.png"), "{outputs:?}");
        assert_eq!(provider.submits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_job_that_reached_its_provider_keeps_its_settings() {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(Scripted::new(vec![false], vec![]));
        let mut handle = start(Arc::clone(&provider), 1);
        let job = new_job(dir.path(), "a.png");
        let mut other = job.settings.clone();
        handle.send(Command::Add(vec![job]));
        handle.send(Command::Start);
        let jobs = until_idle(&mut handle).await;
        assert!(matches!(jobs[&JobId(1)].state, JobState::Failed { .. }));

        other.model = "changed".into();
        handle.send(Command::Reconfigure {
            ids: vec![JobId(1)],
            settings: other,
        });
        handle.send(Command::Retry(JobId(1)));
        let retried = next_change(&mut handle).await;
        assert_eq!(retried.state, JobState::Queued, "retried, not reconfigured");
        assert_eq!(retried.model, "removit");
    }
}
