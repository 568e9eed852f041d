//! The engine's whole interface: [`Command`]s in, [`Event`]s out. Front ends
//! (CLI, window) never touch job state directly, so both behave the same and
//! the engine can persist every change before anyone sees it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::imaging::{Background, OutputFormat};
use crate::jobs::job::{Job, JobId, JobInput};
use crate::jobs::naming::NamingTemplate;
use crate::jobs::store::RestoredJob;

use crate::providers::{Provider, ProviderId, ProviderOptions};

/// A job to add: one input and how to process and save it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Where the input comes from.
    pub input: JobInput,
    /// Which provider runs it, and how its results are saved.
    pub settings: JobSettings,
}

/// How a job is processed and saved. A front end may change it for jobs that
/// have not started yet ([`Command::Reconfigure`]), so a user can drop files
/// first and pick the provider afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    /// Which provider runs it.
    pub provider: ProviderId,
    /// One of the provider's models.
    pub model: String,
    /// Provider options, validated by the front end.
    pub options: ProviderOptions,
    /// Where and how results are saved.
    pub output: OutputSpec,
}

/// Where and how a job's results are saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The output folder; a dropped folder's tree is recreated beneath it.
    pub dir: PathBuf,
    /// The image format to convert to; `None` keeps what the provider
    /// delivered (when the user chose the provider's own output format).
    pub format: Option<OutputFormat>,
    /// What goes behind the subject.
    pub background: Background,
    /// How result files are named.
    #[serde(default)]
    pub naming: NamingTemplate,
}

/// What front ends ask of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// Makes a provider available (or replaces its client, after a key or
    /// base URL changed) with this many jobs in flight at once; `None` uses
    /// the provider's default. Jobs already running keep the old client.
    SetProvider {
        /// The client.
        provider: Arc<dyn Provider>,
        /// Jobs in flight at once.
        concurrency: Option<usize>,
    },
    /// Forgets a provider (its key was deleted); its queued jobs fail when
    /// started, saying it is not set up.
    UnsetProvider(ProviderId),
    /// Adds jobs to the queue; they wait for [`Command::Start`]. Inputs the
    /// provider cannot take are added as failed, with the reason.
    Add(Vec<NewJob>),
    /// Starts every queued job (each provider runs as many at once as its
    /// concurrency allows).
    Start,
    /// Takes back unfinished jobs from a run that ended (see
    /// [`JobStore::claim_unfinished`](crate::jobs::store::JobStore::claim_unfinished)),
    /// keeping their ids. Jobs the provider had accepted resume polling at
    /// once (they are already paid for); the others wait for
    /// [`Command::Start`].
    Restore(Vec<RestoredJob>),
    /// Stops one job; a job in flight is told to stop and its partial output
    /// is removed.
    Cancel(JobId),
    /// Stops every unfinished job.
    CancelAll,
    /// Runs a failed or cancelled job again. A job that failed after the
    /// provider accepted it resumes polling instead of paying again.
    Retry(JobId),
    /// Drops a job from the queue, cancelling it first if needed.
    Remove(JobId),
    /// Changes the settings of jobs that have not started: queued ones, and
    /// ones refused when added (their input kind is checked again, so a
    /// video refused by an image provider can move to a video provider).
    Reconfigure {
        /// The jobs; started ones are left as they are.
        ids: Vec<JobId>,
        /// The new settings.
        settings: JobSettings,
    },
}

/// What the engine reports. Every job event carries the whole job, so it has
/// the job id and the provider's remote id for support.
#[derive(Debug, Clone)]
pub enum Event {
    /// A job joined the queue.
    Added(Job),
    /// A job changed state (or progress).
    Changed(Job),
    /// The provider said something worth showing that is not an error.
    Warning {
        /// The job as it is now.
        job: Job,
        /// The note.
        message: String,
    },
    /// A job left the queue.
    Removed(JobId),
    /// Nothing is running any more: every started job has ended.
    Idle,
}
