//! The job history: an SQLite database in the data directory that records
//! every job (input, provider, settings, remote id, every state change with
//! its time, outputs, credits, errors). The engine writes each change here
//! *before* it publishes the event, so what a user saw is always on disk, and
//! a run that is killed can be finished by the next one without paying twice.
//!
//! Each process that opens the history is a *session* and holds an exclusive
//! lock on `sessions/<id>.lock` while it lives. Unfinished jobs of a session
//! whose lock is free belong to a run that ended (closed, crashed, killed):
//! [`JobStore::claim_unfinished`] hands them to the current run. Jobs of a
//! session that is still running are never touched, so two windows (or a
//! window and `cutout batch`) never resume the same job.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::jobs::events::{JobSettings, NewJob};
use crate::jobs::job::{InputKind, Job, JobId, JobInput, JobState};
use crate::jobs::output::{output_dir_for, partial_owner_tag, sweep_partials};
use crate::providers::ProviderId;

/// The schema, one step per version. A step never changes once released:
/// new versions append a step, so every older database upgrades in order.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, batches, jobs, transitions.
    "CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        pid INTEGER NOT NULL,
        started_at_ms INTEGER NOT NULL
    );
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        batch_id INTEGER NOT NULL REFERENCES batches(id),
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        input TEXT NOT NULL,
        input_name TEXT NOT NULL,
        kind TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        settings TEXT NOT NULL,
        remote_id TEXT,
        accepted INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        state_detail TEXT NOT NULL,
        error TEXT,
        credits_charged REAL,
        warnings TEXT NOT NULL DEFAULT '[]',
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER
    );
    CREATE INDEX jobs_by_batch ON jobs(batch_id);
    CREATE INDEX jobs_by_session ON jobs(session_id);
    CREATE TABLE transitions (
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        at_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX transitions_by_job ON transitions(job_id);",
];

/// The [`HistoryFilter::state`] that matches every unfinished job.
pub const UNFINISHED: &str = "unfinished";

/// States after which nothing happens to a job unless the user acts.
const TERMINAL_STATES: &str = "('done', 'failed', 'cancelled')";

/// Why the history could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (disk full, permissions, a damaged file).
    #[error("the job history cannot be used ({source}): {path}")]
    Database {
        /// What SQLite said.
        source: rusqlite::Error,
        /// The database file.
        path: PathBuf,
    },
    /// A file beside the database (its folder, a session lock).
    #[error("the job history cannot be used ({source}): {path}")]
    Io {
        /// What failed.
        source: std::io::Error,
        /// The file or folder.
        path: PathBuf,
    },
    /// A newer Cutout wrote this history; this one will not guess at it.
    #[error(
        "the job history was written by a newer version of Cutout (schema {found}, this version knows {known}); \
         history is off until you update Cutout: {path}"
    )]
    TooNew {
        /// The database's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
        /// The database file.
        path: PathBuf,
    },
}

/// A record the history cannot read back (written by a bug or edited by
/// hand); the job is skipped rather than failing the whole history.
fn bad_record(what: &str, error: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("{what}: {error}").into(),
    )
}

/// Maps an SQLite error to the history's error, naming the database file.
/// Takes the path rather than `&self`, so it can be used while a
/// transaction borrows the connection.
fn database_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Database {
        source,
        path: path.to_owned(),
    }
}

/// Milliseconds since the Unix epoch, the history's clock.
pub type TimestampMs = i64;

/// A history time in the user's time zone, to the minute, for the
/// History view and `cutout history`.
pub fn local_time(ms: TimestampMs) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => "????-??-?? ??:??".to_owned(),
    }
}

fn now_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One past job as the history holds it, for the History view and
/// `cutout history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryJob {
    /// The job's id (the same one its run showed).
    pub id: JobId,
    /// The batch it was added in: one drop, one paste, one `cutout batch`.
    pub batch: u64,
    /// Where the input came from.
    pub input: JobInput,
    /// The input's kind as judged when added.
    pub kind: Option<InputKind>,
    /// How it was processed and saved, so it can be run again.
    pub settings: JobSettings,
    /// The provider's id for the job, for support.
    pub remote_id: Option<String>,
    /// Where it stood last.
    pub state: JobState,
    /// Credits the provider said it charged.
    pub credits_charged: Option<f64>,
    /// The provider's notes.
    pub warnings: Vec<String>,
    /// When it was added.
    pub created_at_ms: TimestampMs,
    /// When it last changed.
    pub updated_at_ms: TimestampMs,
    /// When it ended, if it has.
    pub finished_at_ms: Option<TimestampMs>,
}

impl HistoryJob {
    /// The job to add to run it again, exactly as it was set up.
    pub fn rerun(&self) -> NewJob {
        NewJob {
            input: self.input.clone(),
            settings: self.settings.clone(),
        }
    }
}

/// A past batch at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchSummary {
    /// The batch's id.
    pub id: u64,
    /// When it was added.
    pub created_at_ms: TimestampMs,
    /// How many jobs it has (after filtering).
    pub jobs: u64,
    /// How many of them are done.
    pub done: u64,
    /// How many failed.
    pub failed: u64,
    /// How many were cancelled.
    pub cancelled: u64,
    /// The providers its jobs used.
    pub providers: Vec<ProviderId>,
}

/// Which past jobs to list. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// A piece of the input's file name or URL, any case.
    pub search: String,
    /// Only this provider's jobs.
    pub provider: Option<ProviderId>,
    /// Only jobs in this state (`done`, `failed`, `cancelled`, any
    /// unfinished state's name, or `unfinished` for all of those).
    pub state: Option<String>,
    /// At most this many jobs, newest first; `None` for all.
    pub limit: Option<u64>,
}

/// An unfinished job handed over from a run that ended, ready for
/// [`Command::Restore`](crate::jobs::Command::Restore).
#[derive(Debug, Clone)]
pub struct RestoredJob {
    /// The job as it was left.
    pub job: Job,
    /// How it was set up.
    pub spec: NewJob,
    /// The provider fully accepted it: it resumes polling `remote_id` rather
    /// than being submitted (and paid for) again.
    pub accepted: bool,
}

/// What [`JobStore::open`] found besides a working history.
#[derive(Debug)]
pub struct OpenedStore {
    /// The history.
    pub store: JobStore,
    /// Set when the database was damaged and moved aside: say so to the
    /// user, with the path where the old file now is.
    pub notice: Option<String>,
}

/// The writer's side of the history, owned by the engine.
#[derive(Debug)]
pub struct JobStore {
    conn: Connection,
    path: PathBuf,
    session: u64,
    /// Held for the life of the run: tells other runs this session is alive.
    _session_lock: File,
}

// The statements every job runs at every step, parsed once per connection
// (`prepare_cached`): parsing them each time cost more than running them.
const JOB_EXISTS: &str = "SELECT 1 FROM jobs WHERE id = ?1";
const JOB_STATE: &str = "SELECT state, remote_id, accepted FROM jobs WHERE id = ?1";
const INSERT_JOB: &str = "INSERT INTO jobs (id, batch_id, session_id, input, input_name, kind,
        provider, model, settings, remote_id, state, state_detail, created_at_ms, updated_at_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)";
const RESTORE_JOB: &str = "UPDATE jobs SET session_id = ?2, state = ?3, state_detail = ?4,
        error = NULL, updated_at_ms = ?5, finished_at_ms = NULL
    WHERE id = ?1";
const UPDATE_JOB: &str = "UPDATE jobs SET remote_id = ?2, accepted = ?3, state = ?4,
        state_detail = ?5, error = ?6, credits_charged = ?7, warnings = ?8, updated_at_ms = ?9,
        finished_at_ms = ?10, provider = ?11, model = ?12, kind = ?13,
        settings = COALESCE(?14, settings)
    WHERE id = ?1";
const INSERT_TRANSITION: &str =
    "INSERT INTO transitions (job_id, at_ms, state, detail) VALUES (?1, ?2, ?3, ?4)";

impl JobStore {
    /// Opens (or creates) the history at `path`, upgrades its schema, and
    /// starts a session. A damaged database is moved aside to
    /// `history.sqlite3.damaged-<time>` and a new one started, with a notice.
    pub fn open(path: &Path) -> Result<OpenedStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                source,
                path: dir.to_owned(),
            })?;
        }
        let (conn, notice) = match open_checked(path) {
            Ok(conn) => (conn, None),
            Err(OpenFailure::Damaged(reason)) => {
                let aside = move_aside(path)?;
                tracing::warn!(%reason, "moved a damaged job history aside");
                let conn = open_checked(path).map_err(|e| e.into_store_error(path))?;
                let notice = format!(
                    "The job history was damaged ({reason}) and has been set aside; a new one was started. \
                     The old file is kept: {}",
                    aside.display()
                );
                (conn, Some(notice))
            }
            Err(other) => return Err(other.into_store_error(path)),
        };
        let db = database_error(path);
        conn.execute(
            "INSERT INTO sessions (pid, started_at_ms) VALUES (?1, ?2)",
            params![std::process::id(), now_ms()],
        )
        .map_err(db)?;
        let session = conn.last_insert_rowid() as u64;
        let lock_path = session_lock_path(path, session);
        let lock = lock_session(&lock_path)?;
        Ok(OpenedStore {
            store: JobStore {
                conn,
                path: path.to_owned(),
                session,
                _session_lock: lock,
            },
            notice,
        })
    }

    /// This run's session number.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        database_error(&self.path)
    }

    /// The first job id this run may use: ids continue across runs, so a
    /// job's number stays the same in the window, the CLI and the history.
    pub fn next_job_id(&self) -> Result<u64, StoreError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM jobs", [], |r| r.get(0))
            .map_err(self.db())?;
        Ok(max.unwrap_or(0) as u64 + 1)
    }

    /// Opens a group of writes that [`commit_group`](Self::commit_group)
    /// commits together; nothing when one is open already. The engine
    /// groups what it records between commits, so a busy batch makes one
    /// commit for many updates instead of one each. Each write inside keeps
    /// its own savepoint, so a failed one undoes only itself.
    pub fn begin_group(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(self.db())?;
        }
        Ok(())
    }

    /// Whether a group of writes is open and not yet committed.
    pub fn in_group(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Commits the open group, if any. A commit that fails (a full disk) is
    /// rolled back, so the next group starts clean.
    pub fn commit_group(&mut self) -> Result<(), StoreError> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        let committed = self.conn.execute_batch("COMMIT");
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        committed.map_err(self.db())
    }

    /// Starts a batch: the jobs of one `Add`.
    pub fn begin_batch(&mut self) -> Result<u64, StoreError> {
        self.conn
            .execute(
                "INSERT INTO batches (session_id, created_at_ms) VALUES (?1, ?2)",
                params![self.session as i64, now_ms()],
            )
            .map_err(self.db())?;
        Ok(self.conn.last_insert_rowid() as u64)
    }

    /// Records a job joining the queue in `batch`, or, for a job restored
    /// from an earlier run (already recorded), its return to the queue.
    pub fn record_added(
        &mut self,
        batch: Option<u64>,
        job: &Job,
        settings: &JobSettings,
    ) -> Result<(), StoreError> {
        let settings_json = to_json(settings);
        let input_json = to_json(&job.input);
        let now = now_ms();
        let tx = self.conn.savepoint().map_err(database_error(&self.path))?;
        let exists: bool = tx
            .prepare_cached(JOB_EXISTS)
            .and_then(|mut statement| statement.query_row([job.id.0 as i64], |_| Ok(true)))
            .optional()
            .map(|found| found.is_some())
            .map_err(database_error(&self.path))?;
        let result = if exists {
            tx.prepare_cached(RESTORE_JOB).and_then(|mut statement| {
                statement.execute(params![
                    job.id.0 as i64,
                    self.session as i64,
                    job.state.name(),
                    to_json(&job.state),
                    now
                ])
            })
        } else {
            tx.prepare_cached(INSERT_JOB).and_then(|mut statement| {
                statement.execute(params![
                    job.id.0 as i64,
                    batch.unwrap_or_default() as i64,
                    self.session as i64,
                    input_json,
                    job.input.display_name(),
                    job.kind.map(|k| to_json(&k)),
                    job.provider.to_string(),
                    job.model,
                    settings_json,
                    job.remote_id,
                    job.state.name(),
                    to_json(&job.state),
                    now
                ])
            })
        };
        result
            .and_then(|_| {
                tx.prepare_cached(INSERT_TRANSITION)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            job.id.0 as i64,
                            now,
                            job.state.name(),
                            transition_detail(job)
                        ])
                    })
            })
            .and_then(|_| tx.commit())
            .map_err(database_error(&self.path))
    }

    /// Records a job's new state (and its remote id, credits, warnings).
    /// `settings` is given when they changed before the job started.
    /// A newly known remote id, or a job the provider newly accepted, is
    /// written with a full sync: that is the fact that stops a later run
    /// from paying twice, so it must survive a power cut, not just a crash.
    pub fn record_changed(
        &mut self,
        job: &Job,
        accepted: bool,
        settings: Option<&JobSettings>,
    ) -> Result<(), StoreError> {
        let id = job.id.0 as i64;
        let now = now_ms();
        let previous: Option<(String, Option<String>, bool)> = self
            .conn
            .prepare_cached(JOB_STATE)
            .and_then(|mut statement| {
                statement.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            })
            .optional()
            .map_err(self.db())?;
        let Some((previous_state, previous_remote, previous_accepted)) = previous else {
            return Ok(());
        };
        let paid_fact = (job.remote_id.is_some() && job.remote_id != previous_remote)
            || (accepted && !previous_accepted);
        if paid_fact {
            // The level cannot change inside a transaction: the group so
            // far is committed first, and this write commits on its own.
            self.commit_group()?;
            self.conn
                .pragma_update(None, "synchronous", "FULL")
                .map_err(self.db())?;
        }
        let error = match &job.state {
            JobState::Failed { error, .. } => Some(error.as_str()),
            _ => None,
        };
        let finished = job.state.is_terminal().then_some(now);
        let tx = self.conn.savepoint().map_err(database_error(&self.path))?;
        let written = tx
            .prepare_cached(UPDATE_JOB)
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    job.remote_id,
                    accepted,
                    job.state.name(),
                    to_json(&job.state),
                    error,
                    job.credits_charged,
                    to_json(&job.warnings),
                    now,
                    finished,
                    job.provider.to_string(),
                    job.model,
                    job.kind.map(|k| to_json(&k)),
                    settings.map(to_json),
                ])
            })
            .and_then(|_| {
                if previous_state == job.state.name() {
                    return Ok(0);
                }
                tx.prepare_cached(INSERT_TRANSITION)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            id,
                            now,
                            job.state.name(),
                            transition_detail(job)
                        ])
                    })
            })
            .and_then(|_| tx.commit());
        if paid_fact {
            let _ = self.conn.pragma_update(None, "synchronous", "NORMAL");
        }
        written.map_err(database_error(&self.path))
    }

    /// How many unfinished jobs runs that have ended left behind, without
    /// claiming them: `cutout batch` mentions them.
    pub fn count_unfinished_elsewhere(&self) -> Result<usize, StoreError> {
        Ok(self.ended_sessions_with_unfinished_jobs()?.1)
    }

    /// Takes over the unfinished jobs of every run that has ended: they
    /// become this run's, the temporary files those runs left in the jobs'
    /// output folders are deleted, and the jobs are returned oldest first
    /// for [`Command::Restore`](crate::jobs::Command::Restore).
    pub fn claim_unfinished(&mut self) -> Result<Vec<RestoredJob>, StoreError> {
        let (sessions, _) = self.ended_sessions_with_unfinished_jobs()?;
        let mut restored = Vec::new();
        for session in sessions {
            let jobs = self.unfinished_jobs_of(session)?;
            for (job, spec, accepted) in jobs {
                let dir = output_dir_for(&spec.settings.output.dir, &spec.input);
                if let Err(error) = sweep_partials(&dir, &partial_owner_tag(session)) {
                    tracing::warn!(%error, dir = %dir.display(), "cannot remove a killed run's temporary files");
                }
                restored.push(RestoredJob {
                    job,
                    spec,
                    accepted,
                });
            }
            self.conn
                .execute(
                    &format!(
                        "UPDATE jobs SET session_id = ?1 WHERE session_id = ?2 AND state NOT IN {TERMINAL_STATES}"
                    ),
                    params![self.session as i64, session as i64],
                )
                .map_err(self.db())?;
            let _ = std::fs::remove_file(session_lock_path(&self.path, session));
        }
        restored.sort_by_key(|r| r.job.id);
        Ok(restored)
    }

    /// Sessions other than this one that hold unfinished jobs and whose
    /// process has ended, with the number of such jobs.
    fn ended_sessions_with_unfinished_jobs(&self) -> Result<(Vec<u64>, usize), StoreError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT session_id, COUNT(*) FROM jobs
                 WHERE state NOT IN {TERMINAL_STATES} AND session_id != ?1
                 GROUP BY session_id ORDER BY session_id"
            ))
            .map_err(self.db())?;
        let rows = statement
            .query_map([self.session as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as usize))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.db())?;
        let mut ended = Vec::new();
        let mut count = 0;
        for (session, jobs) in rows {
            if session_has_ended(&session_lock_path(&self.path, session)) {
                ended.push(session);
                count += jobs;
            }
        }
        Ok((ended, count))
    }

    fn unfinished_jobs_of(&self, session: u64) -> Result<Vec<(Job, NewJob, bool)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(&format!(
                "SELECT {JOB_COLUMNS}, accepted FROM jobs
                 WHERE session_id = ?1 AND state NOT IN {TERMINAL_STATES} ORDER BY id"
            ))
            .map_err(self.db())?;
        let mut rows = statement.query([session as i64]).map_err(self.db())?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(self.db())? {
            match history_job(row).and_then(|h| Ok((h, row.get::<_, bool>(JOB_COLUMN_COUNT)?))) {
                Ok((history, accepted)) => {
                    let spec = history.rerun();
                    let job = Job {
                        id: history.id,
                        input: history.input,
                        kind: history.kind,
                        provider: history.settings.provider,
                        model: history.settings.model,
                        remote_id: history.remote_id,
                        state: history.state,
                        credits_charged: history.credits_charged,
                        warnings: history.warnings,
                    };
                    jobs.push((job, spec, accepted));
                }
                Err(error) => tracing::warn!(%error, "skipped an unreadable job in the history"),
            }
        }
        Ok(jobs)
    }

    /// Marks a job that left the queue unfinished (removed while queued or
    /// running) as cancelled, so no later run restores it.
    pub fn record_removed(&mut self, id: JobId) -> Result<(), StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                &format!(
                    "UPDATE jobs SET state = 'cancelled', state_detail = ?2, updated_at_ms = ?3,
                         finished_at_ms = ?3 WHERE id = ?1 AND state NOT IN {TERMINAL_STATES}"
                ),
                params![id.0 as i64, to_json(&JobState::Cancelled), now],
            )
            .map_err(self.db())?;
        Ok(())
    }
}

/// The reader's side of the history, for the History view and
/// `cutout history`: a connection of its own, so reading never waits on
/// the engine (SQLite's write-ahead log lets both run at once).
#[derive(Debug)]
pub struct History {
    conn: Connection,
    path: PathBuf,
}

/// The columns [`history_job`] reads, in its order.
const JOB_COLUMNS: &str = "id, batch_id, input, kind, settings, remote_id, state_detail, \
                           credits_charged, warnings, created_at_ms, updated_at_ms, finished_at_ms";
const JOB_COLUMN_COUNT: usize = 12;

impl History {
    /// Opens the history at `path` for reading and clearing. A missing file
    /// is an empty history.
    pub fn open(path: &Path) -> Result<History, StoreError> {
        let conn = open_checked(path).map_err(|e| e.into_store_error(path))?;
        Ok(History {
            conn,
            path: path.to_owned(),
        })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        database_error(&self.path)
    }

    /// Past jobs matching `filter`, newest first.
    pub fn jobs(&self, filter: &HistoryFilter) -> Result<Vec<HistoryJob>, StoreError> {
        let (clause, values) = filter_clause(filter);
        let limit = filter
            .limit
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY id DESC{limit}");
        let mut statement = self.conn.prepare(&sql).map_err(self.db())?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(values.iter()))
            .map_err(self.db())?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(self.db())? {
            match history_job(row) {
                Ok(job) => jobs.push(job),
                Err(error) => tracing::warn!(%error, "skipped an unreadable job in the history"),
            }
        }
        Ok(jobs)
    }

    /// One past job.
    pub fn job(&self, id: JobId) -> Result<Option<HistoryJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
        self.conn
            .query_row(&sql, [id.0 as i64], history_job)
            .optional()
            .map_err(self.db())
    }

    /// Past batches with at least one job matching `filter`, newest first,
    /// counting only the matching jobs.
    pub fn batches(&self, filter: &HistoryFilter) -> Result<Vec<BatchSummary>, StoreError> {
        let (clause, values) = filter_clause(filter);
        let limit = filter
            .limit
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT b.id, b.created_at_ms, COUNT(*),
                    SUM(jobs.state = 'done'), SUM(jobs.state = 'failed'),
                    SUM(jobs.state = 'cancelled'), GROUP_CONCAT(DISTINCT jobs.provider)
             FROM jobs JOIN batches b ON b.id = jobs.batch_id
             {clause} GROUP BY b.id ORDER BY b.id DESC{limit}"
        );
        let mut statement = self.conn.prepare(&sql).map_err(self.db())?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                let providers: String = r.get(6)?;
                Ok(BatchSummary {
                    id: r.get::<_, i64>(0)? as u64,
                    created_at_ms: r.get(1)?,
                    jobs: r.get::<_, i64>(2)? as u64,
                    done: r.get::<_, i64>(3)? as u64,
                    failed: r.get::<_, i64>(4)? as u64,
                    cancelled: r.get::<_, i64>(5)? as u64,
                    providers: providers
                        .split(',')
                        .filter_map(|p| p.parse().ok())
                        .collect(),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.db())?;
        Ok(rows)
    }

    /// Deletes every finished job (done, failed, cancelled) and empty
    /// batches; unfinished jobs stay, since a run may still resume them.
    /// Returns how many jobs were deleted. Files on disk are never touched.
    pub fn clear(&mut self) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(database_error(&self.path))?;
        let deleted = tx
            .execute(
                &format!(
                    "DELETE FROM transitions WHERE job_id IN (SELECT id FROM jobs WHERE state IN {TERMINAL_STATES})"
                ),
                [],
            )
            .and_then(|_| {
                tx.execute(
                    &format!("DELETE FROM jobs WHERE state IN {TERMINAL_STATES}"),
                    [],
                )
            })
            .and_then(|deleted| {
                tx.execute(
                    "DELETE FROM batches WHERE id NOT IN (SELECT batch_id FROM jobs)",
                    [],
                )?;
                tx.commit()?;
                Ok(deleted)
            })
            .map_err(database_error(&self.path))?;
        Ok(deleted)
    }

    /// Every state a job went through, with times, oldest first: the
    /// job's story for support.
    pub fn transitions(
        &self,
        id: JobId,
    ) -> Result<Vec<(TimestampMs, String, Option<String>)>, StoreError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT at_ms, state, detail FROM transitions WHERE job_id = ?1 ORDER BY rowid",
            )
            .map_err(self.db())?;
        let rows = statement
            .query_map([id.0 as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(self.db())?;
        Ok(rows)
    }
}

fn filter_clause(filter: &HistoryFilter) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    let search = filter.search.trim();
    if !search.is_empty() {
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        values.push(format!("%{escaped}%"));
        conditions.push(format!(
            "jobs.input_name LIKE ?{} ESCAPE '\\'",
            values.len()
        ));
    }
    if let Some(provider) = filter.provider {
        values.push(provider.to_string());
        conditions.push(format!("jobs.provider = ?{}", values.len()));
    }
    match filter.state.as_deref() {
        Some(UNFINISHED) => conditions.push(format!("jobs.state NOT IN {TERMINAL_STATES}")),
        Some(state) => {
            values.push(state.to_owned());
            conditions.push(format!("jobs.state = ?{}", values.len()));
        }
        None => {}
    }
    let clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    (clause, values)
}

fn history_job(row: &Row<'_>) -> rusqlite::Result<HistoryJob> {
    let kind: Option<String> = row.get(3)?;
    Ok(HistoryJob {
        id: JobId(row.get::<_, i64>(0)? as u64),
        batch: row.get::<_, i64>(1)? as u64,
        input: json_column(row, 2, "input")?,
        kind: kind
            .map(|k| serde_json::from_str(&k).map_err(|e| bad_record("kind", e)))
            .transpose()?,
        settings: json_column(row, 4, "settings")?,
        remote_id: row.get(5)?,
        state: json_column(row, 6, "state")?,
        credits_charged: row.get(7)?,
        warnings: json_column(row, 8, "warnings")?,
        created_at_ms: row.get(9)?,
        updated_at_ms: row.get(10)?,
        finished_at_ms: row.get(11)?,
    })
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
    what: &str,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| bad_record(what, e))
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Only plain data types are stored; serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// What a transition row says beyond the state's name.
fn transition_detail(job: &Job) -> Option<String> {
    match &job.state {
        JobState::Submitted { remote_id } => Some(remote_id.clone()),
        JobState::Failed { error, .. } => Some(error.clone()),
        JobState::Done { outputs } => Some(to_json(outputs)),
        _ => None,
    }
}

/// Why opening failed: a damaged file is moved aside, anything else is
/// reported.
#[derive(Debug)]
enum OpenFailure {
    Damaged(String),
    Other(rusqlite::Error),
    TooNew(i64),
}

impl OpenFailure {
    fn into_store_error(self, path: &Path) -> StoreError {
        match self {
            OpenFailure::Damaged(reason) => StoreError::Database {
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(reason),
                ),
                path: path.to_owned(),
            },
            OpenFailure::Other(source) => StoreError::Database {
                source,
                path: path.to_owned(),
            },
            OpenFailure::TooNew(found) => StoreError::TooNew {
                found,
                known: MIGRATIONS.len() as i64,
                path: path.to_owned(),
            },
        }
    }
}

impl From<rusqlite::Error> for OpenFailure {
    fn from(error: rusqlite::Error) -> Self {
        let damaged = matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        );
        if damaged {
            OpenFailure::Damaged(error.to_string())
        } else {
            OpenFailure::Other(error)
        }
    }
}

/// Opens the database, checks it is intact, and brings its schema up to
/// date.
fn open_checked(path: &Path) -> Result<Connection, OpenFailure> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(OpenFailure::Damaged(check));
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&conn, MIGRATIONS)?;
    Ok(conn)
}

/// Applies the steps of `migrations` the database has not had yet, each in
/// its own transaction, recording them in `schema_migrations`.
fn migrate(conn: &Connection, migrations: &[&str]) -> Result<(), OpenFailure> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > migrations.len() as i64 {
        return Err(OpenFailure::TooNew(current));
    }
    for (index, step) in migrations.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let apply = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            // Another run may have migrated while this one waited.
            let done: bool = conn.query_row(
                "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )?;
            if !done {
                conn.execute_batch(step)?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
                    params![version, now_ms()],
                )?;
            }
            conn.execute_batch("COMMIT")
        };
        if let Err(error) = apply() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(error.into());
        }
    }
    Ok(())
}

/// Renames a damaged database (and its journal files) out of the way,
/// keeping it for anyone who wants to look at it.
fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = now_ms();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".damaged-{stamp}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|source| StoreError::Io {
        source,
        path: path.to_owned(),
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut journal = path.as_os_str().to_owned();
        journal.push(suffix);
        let mut journal_aside = aside.as_os_str().to_owned();
        journal_aside.push(suffix);
        let _ = std::fs::rename(PathBuf::from(journal), PathBuf::from(journal_aside));
    }
    Ok(aside)
}

fn session_lock_path(db_path: &Path, session: u64) -> PathBuf {
    let dir = db_path.parent().unwrap_or(Path::new("."));
    dir.join("sessions").join(format!("{session}.lock"))
}

/// Takes this run's session lock, held until the process ends (the OS
/// releases it even after a kill).
fn lock_session(path: &Path) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        source,
        path: path.to_owned(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = File::create(path).map_err(io)?;
    file.try_lock()
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    Ok(file)
}

/// Whether the run that owned this lock is gone: its lock file is missing
/// or can be locked.
fn session_has_ended(path: &Path) -> bool {
    match File::open(path) {
        Ok(file) => file.try_lock_shared().is_ok(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::OutputFormat;
    use crate::jobs::events::OutputSpec;
    use crate::providers::ProviderOptions;

    fn settings(out: &Path) -> JobSettings {
        JobSettings {
            provider: ProviderId::Removit,
            model: "default".into(),
            options: ProviderOptions::from([("mode".to_owned(), "clipping".to_owned())]),
            output: OutputSpec {
                dir: out.to_owned(),
                format: Some(OutputFormat::Png),
                quality: None,
                composition: Default::default(),
                naming: Default::default(),
            },
            allow_downscale: false,
        }
    }

    fn job(id: u64, name: &str, state: JobState) -> Job {
        Job {
            id: JobId(id),
            input: JobInput::File {
                path: format!("/photos/{name}").into(),
                root: None,
            },
            kind: Some(InputKind::ImageFile),
            provider: ProviderId::Removit,
            model: "default".into(),
            remote_id: None,
            state,
            credits_charged: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn every_state_change_is_kept_with_the_final_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let mut store = JobStore::open(&path).unwrap().store;
        let batch = store.begin_batch().unwrap();
        let settings = settings(dir.path());
        let mut j = job(store.next_job_id().unwrap(), "shoe.jpg", JobState::Queued);
        store.record_added(Some(batch), &j, &settings).unwrap();
        for state in [
            JobState::Preparing,
            JobState::Submitted {
                remote_id: "r-1".into(),
            },
            JobState::Processing { progress: Some(40) },
            JobState::Processing { progress: Some(80) },
            JobState::Downloading,
            JobState::Done {
                outputs: vec!["/out/shoe.png".into()],
            },
        ] {
            if let JobState::Submitted { remote_id } = &state {
                j.remote_id = Some(remote_id.clone());
            }
            j.state = state;
            store.record_changed(&j, true, None).unwrap();
        }
        let history = History::open(&path).unwrap();
        let found = history.job(j.id).unwrap().unwrap();
        assert_eq!(found.state, j.state);
        assert_eq!(found.remote_id.as_deref(), Some("r-1"));
        assert_eq!(found.settings, settings);
        assert!(found.finished_at_ms.is_some());
        let states: Vec<_> = history
            .transitions(j.id)
            .unwrap()
            .into_iter()
            .map(|(_, s, _)| s)
            .collect();
        assert_eq!(
            states,
            [
                "queued",
                "preparing",
                "submitted",
                "processing",
                "downloading",
                "done"
            ]
        );
    }

    #[test]
    fn a_group_of_writes_is_seen_whole_once_committed_and_a_paid_fact_commits_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        let mut store = JobStore::open(&path).unwrap().store;
        let settings = settings(dir.path());
        let history = History::open(&path).unwrap();
        let seen = |id: u64| history.job(JobId(id)).unwrap().map(|j| j.state);

        store.begin_group().unwrap();
        let batch = store.begin_batch().unwrap();
        let mut a = job(1, "a.jpg", JobState::Queued);
        store.begin_group().unwrap();
        store.record_added(Some(batch), &a, &settings).unwrap();
        store
            .record_added(Some(batch), &job(2, "b.jpg", JobState::Queued), &settings)
            .unwrap();
        assert_eq!(seen(1), None, "nothing is visible before the commit");
        store.commit_group().unwrap();
        assert_eq!(seen(1), Some(JobState::Queued));
        assert_eq!(seen(2), Some(JobState::Queued));

        // A new remote id is what stops a later run paying twice: it is
        // committed (with a full sync) at once, with what came before it.
        store.begin_group().unwrap();
        a.state = JobState::Preparing;
        store.record_changed(&a, false, None).unwrap();
        a.remote_id = Some("r-1".into());
        a.state = JobState::Submitted {
            remote_id: "r-1".into(),
        };
        store.record_changed(&a, true, None).unwrap();
        assert!(matches!(seen(1), Some(JobState::Submitted { .. })));
        store.commit_group().unwrap();
        store.commit_group().unwrap();
        let states: Vec<_> = history
            .transitions(JobId(1))
            .unwrap()
            .into_iter()
            .map(|(_, s, _)| s)
            .collect();
        assert_eq!(states, ["queued", "preparing", "submitted"]);
    }

    #[test]
    fn job_ids_continue_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        let mut first = JobStore::open(&path).unwrap().store;
        let batch = first.begin_batch().unwrap();
        first
            .record_added(
                Some(batch),
                &job(1, "a.jpg", JobState::Queued),
                &settings(dir.path()),
            )
            .unwrap();
        first
            .record_added(
                Some(batch),
                &job(2, "b.jpg", JobState::Queued),
                &settings(dir.path()),
            )
            .unwrap();
        drop(first);
        let second = JobStore::open(&path).unwrap().store;
        assert_eq!(second.next_job_id().unwrap(), 3);
    }

    #[test]
    fn a_live_runs_jobs_are_never_claimed_but_an_ended_runs_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        let out = dir.path().join("out");
        let mut first = JobStore::open(&path).unwrap().store;
        let batch = first.begin_batch().unwrap();
        let mut accepted = job(1, "a.jpg", JobState::Queued);
        first
            .record_added(Some(batch), &accepted, &settings(&out))
            .unwrap();
        accepted.remote_id = Some("remote-a".into());
        accepted.state = JobState::Processing { progress: None };
        first.record_changed(&accepted, true, None).unwrap();
        let waiting = job(2, "b.jpg", JobState::Queued);
        first
            .record_added(Some(batch), &waiting, &settings(&out))
            .unwrap();
        let finished = job(3, "c.jpg", JobState::Queued);
        first
            .record_added(Some(batch), &finished, &settings(&out))
            .unwrap();
        first
            .record_changed(&job(3, "c.jpg", JobState::Cancelled), false, None)
            .unwrap();
        // A temporary file the first run was writing when it died, and one
        // of another run.
        std::fs::create_dir_all(&out).unwrap();
        let left = out.join(format!(
            ".cutout-partial-{}abc",
            partial_owner_tag(first.session())
        ));
        std::fs::write(&left, b"half").unwrap();
        let others = out.join(".cutout-partial-s999-xyz");
        std::fs::write(&others, b"someone else's").unwrap();

        let mut second = JobStore::open(&path).unwrap().store;
        assert!(
            second.claim_unfinished().unwrap().is_empty(),
            "the first run is alive"
        );
        assert!(left.exists());

        let first_session = first.session();
        drop(first);
        assert_eq!(second.count_unfinished_elsewhere().unwrap(), 2);
        let restored = second.claim_unfinished().unwrap();
        let summary: Vec<_> = restored
            .iter()
            .map(|r| (r.job.id.0, r.job.remote_id.clone(), r.accepted))
            .collect();
        assert_eq!(
            summary,
            [(1, Some("remote-a".to_owned()), true), (2, None, false)]
        );
        assert_eq!(restored[0].spec.settings, settings(&out));
        assert!(!left.exists(), "the dead run's partial file is swept");
        assert!(others.exists(), "other runs' files are left alone");
        assert_ne!(first_session, second.session());
        // Claimed once: a third run finds nothing while the second lives.
        let mut third = JobStore::open(&path).unwrap().store;
        assert!(third.claim_unfinished().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_database_is_moved_aside_with_a_notice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let opened = JobStore::open(&path).unwrap();
        let notice = opened.notice.expect("a notice");
        assert!(notice.contains("damaged"), "{notice}");
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("history.sqlite3.damaged-"))
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(
            std::fs::read(dir.path().join(&kept[0])).unwrap(),
            vec![0x5a; 8192]
        );
        assert_eq!(opened.store.next_job_id().unwrap(), 1);
    }

    #[test]
    fn an_older_schema_is_upgraded_in_place_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        let conn = Connection::open(&path).unwrap();
        let v1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)";
        let v2 = "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0";
        assert!(migrate(&conn, &[v1]).is_ok());
        conn.execute("INSERT INTO notes (body) VALUES ('kept')", [])
            .unwrap();
        assert!(migrate(&conn, &[v1, v2]).is_ok());
        let (body, pinned): (String, i64) = conn
            .query_row("SELECT body, pinned FROM notes", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((body.as_str(), pinned), ("kept", 0));
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(versions, 2);
        // Running again changes nothing.
        assert!(migrate(&conn, &[v1, v2]).is_ok());
    }

    #[test]
    fn a_database_from_a_newer_cutout_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            migrate(&conn, MIGRATIONS).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (99, 0)",
                [],
            )
            .unwrap();
        }
        let error = JobStore::open(&path).unwrap_err();
        assert!(
            matches!(error, StoreError::TooNew { found: 99, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("newer version"), "{error}");
        assert!(path.exists(), "the newer history is not moved or deleted");
    }

    #[test]
    fn history_is_searchable_by_name_and_filterable_by_provider_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite3");
        let mut store = JobStore::open(&path).unwrap().store;
        let first = store.begin_batch().unwrap();
        store
            .record_added(
                Some(first),
                &job(1, "red_shoe.jpg", JobState::Queued),
                &settings(dir.path()),
            )
            .unwrap();
        store
            .record_changed(&job(1, "red_shoe.jpg", JobState::Cancelled), false, None)
            .unwrap();
        let second = store.begin_batch().unwrap();
        store
            .record_added(
                Some(second),
                &job(2, "blue 100%.jpg", JobState::Queued),
                &settings(dir.path()),
            )
            .unwrap();
        let mut history = History::open(&path).unwrap();
        let names = |f: HistoryFilter| -> Vec<u64> {
            history.jobs(&f).unwrap().iter().map(|j| j.id.0).collect()
        };
        assert_eq!(names(HistoryFilter::default()), [2, 1]);
        let search = |s: &str| HistoryFilter {
            search: s.into(),
            ..HistoryFilter::default()
        };
        assert_eq!(names(search("SHOE")), [1]);
        assert_eq!(names(search("100%")), [2]);
        assert_eq!(names(search("_")), [1], "wildcards are literal");
        let cancelled = HistoryFilter {
            state: Some("cancelled".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(names(cancelled), [1]);
        let other_provider = HistoryFilter {
            provider: Some(ProviderId::Removebg),
            ..HistoryFilter::default()
        };
        assert!(names(other_provider).is_empty());
        let batches = history.batches(&HistoryFilter::default()).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].providers, [ProviderId::Removit]);

        assert_eq!(history.clear().unwrap(), 1, "only the finished job goes");
        assert_eq!(
            history
                .jobs(&HistoryFilter::default())
                .unwrap()
                .iter()
                .map(|j| j.id.0)
                .collect::<Vec<_>>(),
            [2]
        );
    }
}
