//! A job is one input on its way through one provider. Its state changes only
//! through [`JobState::apply`], a pure function, so the rules for what may
//! follow what are tested without any network and shared by every front end.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// Identifies a job inside one engine. Numbers start at 1 and are never reused,
/// so front ends can key rows and events by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What kind of media an input is, which decides the providers that can take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A still image on this machine.
    ImageFile,
    /// A still image on the web; providers that accept it fetch it themselves.
    ImageUrl,
    /// A video on this machine.
    VideoFile,
    /// A video on the web.
    VideoUrl,
}

impl InputKind {
    /// Words for messages: "removebg cannot take video URLs".
    pub fn plural_noun(self) -> &'static str {
        match self {
            InputKind::ImageFile => "image files",
            InputKind::ImageUrl => "image URLs",
            InputKind::VideoFile => "video files",
            InputKind::VideoUrl => "video URLs",
        }
    }

    /// Whether the input is a video, whose results are videos too.
    pub fn is_video(self) -> bool {
        matches!(self, InputKind::VideoFile | InputKind::VideoUrl)
    }
}

/// File extensions Cutout treats as still images: every extension of
/// [`input_formats`](crate::imaging::decode::input_formats), including the
/// formats this build cannot open (they still go to providers that take
/// them).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jpe", "jfif", "webp", "gif", "avif", "tif", "tiff", "bmp", "dib",
    "heic", "heif", "hif", "psd",
];

/// File extensions Cutout treats as videos.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "webm", "avi", "mkv", "m4v"];

/// The media kind a file name suggests, from its extension; `None` for
/// anything else (a PDF, a text file), which a folder scan skips and lists.
pub fn media_kind_of_name(name: &str) -> Option<MediaKind> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Image)
    } else if VIDEO_EXTENSIONS.contains(&ext.as_str()) {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// Image or video, before it is known whether the input is a file or a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A still image.
    Image,
    /// A moving picture.
    Video,
}

/// Where a job's input comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobInput {
    /// A file on disk. `root` is the folder the user dropped, if any, so the
    /// output keeps the folder's tree beneath the output folder.
    File {
        /// The file itself; never modified.
        path: PathBuf,
        /// The dropped folder this file was found in.
        root: Option<PathBuf>,
    },
    /// A web address the provider (or Cutout) fetches.
    Url(Url),
}

impl JobInput {
    /// The kind of this input. Files are judged by extension; a URL whose path
    /// names no known video extension counts as an image, except that
    /// `prefer_video` (set when the chosen provider only takes video) makes an
    /// undecided URL a video URL.
    pub fn kind(&self, prefer_video: bool) -> Option<InputKind> {
        match self {
            JobInput::File { path, .. } => {
                match media_kind_of_name(&path.file_name()?.to_string_lossy())? {
                    MediaKind::Image => Some(InputKind::ImageFile),
                    MediaKind::Video => Some(InputKind::VideoFile),
                }
            }
            JobInput::Url(url) => {
                let last = url.path_segments().and_then(|mut s| s.next_back());
                match last.and_then(media_kind_of_name) {
                    Some(MediaKind::Video) => Some(InputKind::VideoUrl),
                    Some(MediaKind::Image) => Some(InputKind::ImageUrl),
                    None if prefer_video => Some(InputKind::VideoUrl),
                    None => Some(InputKind::ImageUrl),
                }
            }
        }
    }

    /// The base name outputs are named after: the file stem, or the last path
    /// segment of a URL (`download` when the URL has none).
    pub fn stem(&self) -> String {
        let stem = match self {
            JobInput::File { path, .. } => {
                path.file_stem().map(|s| s.to_string_lossy().into_owned())
            }
            JobInput::Url(url) => url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let decoded = percent_decode(s);
                    match Path::new(&decoded).file_stem() {
                        Some(stem) => stem.to_string_lossy().into_owned(),
                        None => decoded,
                    }
                }),
        };
        sanitize_file_stem(stem.as_deref().unwrap_or_default())
    }

    /// A short label for lists and messages: the file name or the URL.
    pub fn display_name(&self) -> String {
        match self {
            JobInput::File { path, .. } => path.display().to_string(),
            JobInput::Url(url) => url.to_string(),
        }
    }
}

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Keeps a stem safe to use as a file name on every desktop platform: no
/// separators or reserved characters, no leading dot (a hidden file) and no
/// surrounding spaces. Applying it twice changes nothing, so a naming
/// template can clean a name that contains an already cleaned stem.
pub(crate) fn sanitize_file_stem(stem: &str) -> String {
    let cleaned: String = stem
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    if trimmed.is_empty() {
        "download".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Where a job stands. Terminal states are `Done`, `Failed` and `Cancelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for Start or for a free slot at its provider.
    Queued,
    /// Holding a slot: reading the input, checking it.
    Preparing,
    /// Sending the input to the provider.
    Uploading,
    /// The provider accepted the job; from here on it may cost credits.
    Submitted {
        /// The provider's id for the job, for support and resume.
        remote_id: String,
    },
    /// The provider is working on it.
    Processing {
        /// 0–100 when the provider reports it.
        progress: Option<u8>,
    },
    /// Fetching and writing the results.
    Downloading,
    /// Finished; the outputs are on disk.
    Done {
        /// The files written, in the provider's order.
        outputs: Vec<PathBuf>,
    },
    /// Stopped with an error; the rest of the batch goes on.
    Failed {
        /// What went wrong and what to do, for the user.
        error: String,
        /// Whether trying again unchanged may succeed (network, 5xx, 429).
        retryable: bool,
    },
    /// Stopped at the user's request.
    Cancelled,
}

impl JobState {
    /// Whether nothing more will happen to the job unless the user acts.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Done { .. } | JobState::Failed { .. } | JobState::Cancelled
        )
    }

    /// A one-word name for logs, JSON and the UI.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Preparing => "preparing",
            JobState::Uploading => "uploading",
            JobState::Submitted { .. } => "submitted",
            JobState::Processing { .. } => "processing",
            JobState::Downloading => "downloading",
            JobState::Done { .. } => "done",
            JobState::Failed { .. } => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state that follows `transition`, or why it may not happen. Pure:
    /// the engine calls it for every change, so an impossible sequence (a
    /// finished job "uploading" again) is caught instead of shown.
    pub fn apply(&self, transition: Transition) -> Result<JobState, InvalidTransition> {
        use JobState as S;
        use Transition as T;
        let next = match (self, transition) {
            (S::Queued, T::Prepare) => S::Preparing,
            (S::Preparing, T::Upload) => S::Uploading,
            (S::Preparing | S::Uploading, T::Submitted { remote_id }) => S::Submitted { remote_id },
            (S::Submitted { .. } | S::Processing { .. }, T::Progress { progress }) => {
                S::Processing { progress }
            }
            // A resumed job (it already has a remote id) goes back to polling.
            (S::Preparing, T::Progress { progress }) => S::Processing { progress },
            (
                S::Preparing | S::Uploading | S::Submitted { .. } | S::Processing { .. },
                T::Download,
            ) => S::Downloading,
            (S::Downloading, T::Finish { outputs }) => S::Done { outputs },
            (s, T::Fail { error, retryable }) if !s.is_terminal() => S::Failed { error, retryable },
            (s, T::Cancel) if !s.is_terminal() => S::Cancelled,
            (S::Failed { .. } | S::Cancelled, T::Retry) => S::Queued,
            (from, transition) => {
                return Err(InvalidTransition {
                    from: from.name(),
                    transition: transition.name(),
                });
            }
        };
        Ok(next)
    }
}

/// What can happen to a job. See [`JobState::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A slot at the provider was granted.
    Prepare,
    /// The input is being sent.
    Upload,
    /// The provider accepted the job under this id.
    Submitted {
        /// The provider's id.
        remote_id: String,
    },
    /// The provider reported progress.
    Progress {
        /// 0–100 when known.
        progress: Option<u8>,
    },
    /// Results are being fetched.
    Download,
    /// Results are written.
    Finish {
        /// The written files.
        outputs: Vec<PathBuf>,
    },
    /// Something failed.
    Fail {
        /// The user-facing message.
        error: String,
        /// Whether trying again unchanged may help.
        retryable: bool,
    },
    /// The user cancelled.
    Cancel,
    /// The user asked to try again.
    Retry,
}

impl Transition {
    fn name(&self) -> &'static str {
        match self {
            Transition::Prepare => "prepare",
            Transition::Upload => "upload",
            Transition::Submitted { .. } => "submitted",
            Transition::Progress { .. } => "progress",
            Transition::Download => "download",
            Transition::Finish { .. } => "finish",
            Transition::Fail { .. } => "fail",
            Transition::Cancel => "cancel",
            Transition::Retry => "retry",
        }
    }
}

/// A transition that the state machine does not allow; a bug if it happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a job cannot {transition} while {from}")]
pub struct InvalidTransition {
    /// The state the job was in.
    pub from: &'static str,
    /// The transition that was refused.
    pub transition: &'static str,
}

/// Everything the engine knows about one job; front ends get copies in events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Engine-wide id.
    pub id: JobId,
    /// Where the input comes from.
    pub input: JobInput,
    /// The input's kind, as judged when it was added.
    pub kind: Option<InputKind>,
    /// The provider that runs it.
    pub provider: crate::providers::ProviderId,
    /// The provider's model.
    pub model: String,
    /// The provider's id, once it has one; kept after failures for support
    /// and so a retry can resume instead of paying twice.
    pub remote_id: Option<String>,
    /// Where it stands.
    pub state: JobState,
    /// Credits the provider says it charged, when it says.
    pub credits_charged: Option<f64>,
    /// Non-fatal notes from the provider (ignored variations and the like).
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(transitions: Vec<Transition>) -> Result<JobState, InvalidTransition> {
        transitions
            .into_iter()
            .try_fold(JobState::Queued, |state, t| state.apply(t))
    }

    #[test]
    fn an_asynchronous_job_goes_from_queued_to_done() {
        let end = run(vec![
            Transition::Prepare,
            Transition::Upload,
            Transition::Submitted {
                remote_id: "r1".into(),
            },
            Transition::Progress { progress: Some(10) },
            Transition::Progress { progress: Some(90) },
            Transition::Download,
            Transition::Finish {
                outputs: vec!["a.png".into()],
            },
        ]);
        assert_eq!(
            end,
            Ok(JobState::Done {
                outputs: vec!["a.png".into()]
            })
        );
    }

    #[test]
    fn a_synchronous_job_downloads_straight_after_upload() {
        let end = run(vec![
            Transition::Prepare,
            Transition::Upload,
            Transition::Download,
            Transition::Finish { outputs: vec![] },
        ]);
        assert!(matches!(end, Ok(JobState::Done { .. })));
    }

    #[test]
    fn any_unfinished_state_can_fail_or_be_cancelled() {
        let unfinished = [
            JobState::Queued,
            JobState::Preparing,
            JobState::Uploading,
            JobState::Submitted {
                remote_id: "x".into(),
            },
            JobState::Processing { progress: None },
            JobState::Downloading,
        ];
        for state in unfinished {
            assert_eq!(state.apply(Transition::Cancel), Ok(JobState::Cancelled));
            let failed = state.apply(Transition::Fail {
                error: "e".into(),
                retryable: true,
            });
            assert!(matches!(failed, Ok(JobState::Failed { .. })), "{state:?}");
        }
    }

    #[test]
    fn finished_jobs_do_not_move_except_by_retry() {
        let done = JobState::Done { outputs: vec![] };
        assert!(done.apply(Transition::Upload).is_err());
        assert!(done.apply(Transition::Cancel).is_err());
        assert!(done.apply(Transition::Retry).is_err());
        let failed = JobState::Failed {
            error: "e".into(),
            retryable: false,
        };
        assert!(
            failed
                .apply(Transition::Fail {
                    error: "again".into(),
                    retryable: false
                })
                .is_err()
        );
        assert_eq!(failed.apply(Transition::Retry), Ok(JobState::Queued));
        assert_eq!(
            JobState::Cancelled.apply(Transition::Retry),
            Ok(JobState::Queued)
        );
    }

    #[test]
    fn steps_cannot_be_skipped_or_repeated() {
        assert!(JobState::Queued.apply(Transition::Upload).is_err());
        assert!(JobState::Queued.apply(Transition::Download).is_err());
        assert!(JobState::Uploading.apply(Transition::Prepare).is_err());
        let err = JobState::Downloading.apply(Transition::Upload).unwrap_err();
        assert_eq!(err.to_string(), "a job cannot upload while downloading");
    }

    #[test]
    fn inputs_are_classified_by_extension() {
        let file = |p: &str| JobInput::File {
            path: p.into(),
            root: None,
        };
        assert_eq!(file("a/B.JPG").kind(false), Some(InputKind::ImageFile));
        assert_eq!(file("clip.mov").kind(false), Some(InputKind::VideoFile));
        assert_eq!(file("notes.pdf").kind(false), None);
        let url = |u: &str| JobInput::Url(Url::parse(u).unwrap());
        assert_eq!(
            url("https://x.test/a/v.mp4?sig=1").kind(false),
            Some(InputKind::VideoUrl)
        );
        assert_eq!(
            url("https://x.test/p.png").kind(true),
            Some(InputKind::ImageUrl)
        );
        assert_eq!(
            url("https://x.test/stream").kind(false),
            Some(InputKind::ImageUrl)
        );
        assert_eq!(
            url("https://x.test/stream").kind(true),
            Some(InputKind::VideoUrl)
        );
    }

    #[test]
    fn output_stems_come_from_file_names_and_url_paths() {
        let file = JobInput::File {
            path: "shots/red shoe.jpeg".into(),
            root: None,
        };
        assert_eq!(file.stem(), "red shoe");
        let url = JobInput::Url(Url::parse("https://cdn.test/img/blue%20bag.png?x=1").unwrap());
        assert_eq!(url.stem(), "blue bag");
        let bare = JobInput::Url(Url::parse("https://cdn.test/").unwrap());
        assert_eq!(bare.stem(), "download");
        let sneaky = JobInput::Url(Url::parse("https://cdn.test/..%2F..%2Fetc.png").unwrap());
        assert!(!sneaky.stem().contains('/'), "{}", sneaky.stem());
    }

    #[test]
    fn a_cleaned_stem_has_no_leading_dots_or_spaces_and_cleaning_again_keeps_it() {
        for raw in [". x", "..  x", " .x. ", "a:b", "   ", "..", "ok"] {
            let once = sanitize_file_stem(raw);
            assert!(!once.starts_with(['.', ' ']), "{raw:?} -> {once:?}");
            assert_eq!(sanitize_file_stem(&once), once, "{raw:?}");
        }
        assert_eq!(sanitize_file_stem(". x"), "x");
    }
}
