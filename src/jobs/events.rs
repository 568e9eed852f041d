//! The engine's whole interface: [`Command`]s in, [`Event`]s out. Front ends
//! (CLI, window) never touch job state directly, so both behave the same and
//! the engine can persist every change before anyone sees it.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::imaging::compose::{Backdrop, Composition};
use crate::imaging::{Finish, OutputFormat};
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
    /// Whether an image over the provider's limits (pixels, file size) may
    /// be sent as a smaller copy; without it such a job fails saying which
    /// limit. Off by default: a smaller cut-out is a change the user asks
    /// for. The original is never changed either way.
    #[serde(default)]
    pub allow_downscale: bool,
}

/// Where and how a job's results are saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "OutputSpecRecord")]
pub struct OutputSpec {
    /// The output folder; a dropped folder's tree is recreated beneath it.
    pub dir: PathBuf,
    /// The image format to convert to; `None` keeps what the provider
    /// delivered (when the user chose the provider's own output format),
    /// re-encoded in that same format only when the composition changes
    /// something.
    pub format: Option<OutputFormat>,
    /// Lossy quality, 1 to 100, for jpg and webp (a quality makes WebP
    /// lossy); `None` is jpg at 90 and lossless WebP.
    pub quality: Option<u8>,
    /// Background, crop, canvas, placement and shadow. Video providers get
    /// only its plain background colour ([`Backdrop::plain`]). Boxed: it is
    /// large, and settings travel inside every [`Command::Reconfigure`].
    pub composition: Box<Composition>,
    /// How result files are named.
    pub naming: NamingTemplate,
}

impl OutputSpec {
    /// How image results are finished, when they are converted to `format`.
    pub fn finish(&self, format: OutputFormat) -> Finish {
        Finish {
            format,
            quality: self.quality,
            composition: (*self.composition).clone(),
        }
    }
}

/// [`OutputSpec`] as the job history stores it, in every shape it has had:
/// records written before compositions existed hold a bare `background`,
/// which becomes the composition's background.
#[derive(Deserialize)]
struct OutputSpecRecord {
    dir: PathBuf,
    format: Option<OutputFormat>,
    #[serde(default)]
    quality: Option<u8>,
    #[serde(default)]
    background: Option<Backdrop>,
    #[serde(default)]
    composition: Option<Composition>,
    #[serde(default)]
    naming: NamingTemplate,
}

impl From<OutputSpecRecord> for OutputSpec {
    fn from(record: OutputSpecRecord) -> Self {
        let composition = match (record.composition, record.background) {
            (Some(composition), _) => composition,
            (None, Some(background)) => Composition {
                background,
                ..Composition::default()
            },
            (None, None) => Composition::default(),
        };
        OutputSpec {
            dir: record.dir,
            format: record.format,
            quality: record.quality,
            composition: Box::new(composition),
            naming: record.naming,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::compose::{Canvas, Length};

    #[test]
    fn output_specs_recorded_before_compositions_keep_their_background() {
        let old = r##"{"dir":"/out","format":"jpg","background":{"color":[255,255,255]},"naming":"{name}"}"##;
        let spec: OutputSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec.format, Some(OutputFormat::Jpg));
        assert_eq!(spec.quality, None);
        assert_eq!(
            *spec.composition,
            Composition::with_background(Backdrop::Color([255, 255, 255]))
        );
        let oldest = r#"{"dir":"/out","format":null,"background":"transparent"}"#;
        let spec: OutputSpec = serde_json::from_str(oldest).unwrap();
        assert!(spec.composition.is_identity());
        assert_eq!(spec.naming, NamingTemplate::default());
    }

    #[test]
    fn an_output_spec_round_trips_through_the_history() {
        let spec = OutputSpec {
            dir: "/out".into(),
            format: Some(OutputFormat::Webp),
            quality: Some(80),
            composition: Box::new(Composition {
                crop: Some(Length::Percent { hundredths: 500 }),
                canvas: Canvas::Square { side_px: 2000 },
                ..Composition::with_background(Backdrop::Color([1, 2, 3]))
            }),
            naming: NamingTemplate::default(),
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<OutputSpec>(&json).unwrap(), spec);
    }
}
