//! removebgvideo.com, the video provider (PROVIDERS.md §3).
//!
//! A job takes up to four calls: upload the file (skipped for a video already
//! on the web), create the job as a *draft* (`auto_start: false`), report its
//! id, then start it. Drafting first means the id is saved before anything is
//! billed, so a crash between the calls resumes the job instead of paying for
//! it twice. A start whose outcome is unknown (a server error, a timeout) is
//! not sent again: polling finds out, and a poll that finds the job still a
//! draft (`created`) starts it, once per run, so it is finished rather than
//! waited on for hours. Video can only be composed remotely, so this
//! provider sends the user's background (and an optional canvas
//! composition) with the job.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::io::ReaderStream;
use url::Url;

use super::http::{
    endpoint_url, json_amount, json_text, mime_for_path, provider_words, unreadable_input,
};
use super::{
    AssetSource, Call, CredentialSpec, EndpointSpec, HealthCheck, HealthReport, HttpClient,
    JobReporter, JobRequest, JobResult, KeyCheck, ModelInfo, OptionKind, OptionSpec, PollStatus,
    Provider, ProviderConfig, ProviderError, ProviderId, ProviderInfo, Replay, ResultAsset,
    Submission,
};
use crate::imaging::Background;
use crate::jobs::job::{InputKind, JobInput};

/// The header that carries the key on every `/v1/*` call.
const API_KEY_HEADER: &str = "X-Api-Key";

const OUTPUT_FORMATS: &[&str] = &["webm", "mov", "mp4", "gif", "webp", "png_sequence"];

const ANCHORS: &[&str] = &[
    "center",
    "top-left",
    "top-center",
    "top-right",
    "center-left",
    "center-right",
    "bottom-left",
    "bottom-center",
    "bottom-right",
];

/// What removebgvideo.com offers. Models are priced per minute of video, so
/// the price leads each summary.
pub static INFO: ProviderInfo = ProviderInfo {
    id: ProviderId::Removebgvideo,
    name: "RemoveBGVideo",
    summary: "Video background removal; backgrounds and canvas composition are applied remotely",
    models: &[
        ModelInfo {
            id: "original",
            summary: "balanced quality, 60 credits/min",
        },
        ModelInfo {
            id: "light",
            summary: "fastest, 45 credits/min",
        },
        ModelInfo {
            id: "pro",
            summary: "best edges, honours text_prompt, 180 credits/min",
        },
        ModelInfo {
            id: "human",
            summary: "tuned for people, 45 credits/min",
        },
    ],
    options: &[
        OptionSpec {
            key: "output_format",
            kind: OptionKind::Choice {
                values: OUTPUT_FORMATS,
            },
            help: "container of the result (default webm); png_sequence arrives as a zip of frames",
        },
        OptionSpec {
            key: "text_prompt",
            kind: OptionKind::Text {
                example: "the person in the red jacket",
                validate: validate_text_prompt,
            },
            help: "what to keep, in words; only the pro model reads it",
        },
        OptionSpec {
            key: "background_image_url",
            kind: OptionKind::Text {
                example: "https://example.com/beach.jpg",
                validate: validate_background_image_url,
            },
            help: "an image placed behind the subject; overrides --bg",
        },
        OptionSpec {
            key: "canvas",
            kind: OptionKind::Text {
                example: "1920x1080",
                validate: validate_canvas,
            },
            help: "output size in pixels, WIDTHxHEIGHT; needed by anchor, scale and offset",
        },
        OptionSpec {
            key: "anchor",
            kind: OptionKind::Choice { values: ANCHORS },
            help: "where the subject sits on the canvas (needs canvas)",
        },
        OptionSpec {
            key: "scale",
            kind: OptionKind::Text {
                example: "0.8",
                validate: validate_scale,
            },
            help: "subject size relative to the original, a positive decimal (needs canvas)",
        },
        OptionSpec {
            key: "offset",
            kind: OptionKind::Text {
                example: "0,-40",
                validate: validate_offset,
            },
            help: "shift of the subject from its anchor in pixels, X,Y (needs canvas)",
        },
    ],
    accepts: &[InputKind::VideoFile, InputKind::VideoUrl],
    credentials: &[CredentialSpec {
        id: "key",
        label: "API key",
        env_var: "CUTOUT_REMOVEBGVIDEO_KEY",
    }],
    endpoints: &[EndpointSpec {
        id: "url",
        env_var: "CUTOUT_REMOVEBGVIDEO_URL",
        default: Some("https://api.removebgvideo.com"),
    }],
    default_concurrency: 2,
    has_health_check: true,
    runs_on_this_machine: false,
    poll_deadline_secs: 7200,
    // Videos only (PROVIDERS.md §3: up to 500 MB); they are sent as they are.
    input_limits: super::InputLimits {
        max_file_bytes: Some(500_000_000),
        max_pixels: None,
        max_side_px: None,
        image_formats: &[],
        confirmed: true,
    },
};

const UPLOAD: Call = Call {
    what: "upload",
    // An upload stores a file but bills nothing, so repeating it is harmless.
    replay: Replay::Always,
    error_message,
};

const CREATE: Call = Call {
    what: "create job",
    replay: Replay::WhenUnprocessed,
    error_message,
};

const START: Call = Call {
    what: "start job",
    replay: Replay::WhenUnprocessed,
    error_message,
};

const STATUS: Call = Call {
    what: "job status",
    replay: Replay::Always,
    error_message,
};

const USAGE: Call = Call {
    what: "usage summary",
    replay: Replay::Always,
    error_message,
};

const HEALTH: Call = Call {
    what: "health",
    replay: Replay::Always,
    error_message: health_error_message,
};

/// The client for one configured account.
#[derive(Debug)]
pub struct RemoveBgVideo {
    http: HttpClient,
    base: Url,
    /// The key as a header value marked sensitive, so it is exposed once and
    /// never printed by `Debug` or reqwest's logs.
    key: HeaderValue,
    /// Jobs this run has started, so a job the service still calls
    /// `created` after its start is never started (and billed) again.
    started: Mutex<HashSet<String>>,
}

impl RemoveBgVideo {
    /// Builds the client. Fails when the key is missing or the base URL would
    /// send it over plain HTTP to another machine.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let base = config.endpoint("url")?;
        let key = config.secret_header(&INFO, "key")?;
        Ok(RemoveBgVideo {
            http: config.http,
            base,
            key,
            started: Mutex::default(),
        })
    }

    /// Tests the key with `GET /v1/usage/summary?days=1`: authenticated,
    /// free, and it starts nothing. A bad or missing key is 401. What the
    /// summary says about the last day becomes the detail.
    pub async fn check_key(&self) -> Result<KeyCheck, ProviderError> {
        let mut url = api_url(&self.base, &["v1", "usage", "summary"])?;
        url.query_pairs_mut().append_pair("days", "1");
        let answer: Value = self
            .http
            .send_json(USAGE, || {
                Ok(self
                    .http
                    .api()?
                    .get(url.clone())
                    .header(API_KEY_HEADER, self.key.clone()))
            })
            .await?;
        Ok(KeyCheck {
            detail: usage_detail(&answer),
        })
    }

    /// Uploads a local video, streamed from disk so a 500 MB file never sits
    /// in memory, and returns the address the job should read it from.
    async fn upload(&self, path: &Path) -> Result<String, ProviderError> {
        let url = api_url(&self.base, &["v1", "uploads"])?;
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".to_owned());
        let mime = mime_for_path(path);
        let read_error = |source| unreadable_input(path, source);
        let answer: UploadAnswer = self
            .http
            .send_json(UPLOAD, || {
                // Opened per attempt: a stream is consumed by the attempt
                // that sends it.
                let file = std::fs::File::open(path).map_err(read_error)?;
                let length = file.metadata().map_err(read_error)?.len();
                let stream = ReaderStream::new(tokio::fs::File::from_std(file));
                let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
                    .file_name(file_name.clone())
                    .mime_str(mime)
                    .map_err(|e| {
                        ProviderError::Config(format!("cannot label the upload as {mime}: {e}"))
                    })?;
                Ok(self
                    .http
                    .api()?
                    .post(url.clone())
                    .header(API_KEY_HEADER, self.key.clone())
                    .multipart(Form::new().part("file", part)))
            })
            .await?;
        uploaded_video_url(answer)
    }
}

#[async_trait]
impl Provider for RemoveBgVideo {
    fn info(&self) -> &'static ProviderInfo {
        &INFO
    }

    async fn submit(
        &self,
        request: &JobRequest,
        report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError> {
        // Settle the options first: a bad combination must fail before a
        // large upload, not after it.
        let settings = job_settings(request)?;
        if settings.text_prompt.is_some() && settings.model != "pro" {
            report.warning(format!(
                "text_prompt only steers the pro model; `{}` ignores it",
                settings.model
            ));
        }
        report.uploading();
        let video_url = match &request.input {
            JobInput::File { path, .. } => self.upload(path).await?,
            JobInput::Url(url) => url.to_string(),
        };

        let body = CreateJob {
            video_url: &video_url,
            settings: &settings,
            auto_start: false,
        };
        let jobs_url = api_url(&self.base, &["v1", "jobs"])?;
        let created: CreateAnswer = self
            .http
            .send_json(CREATE, || {
                Ok(self
                    .http
                    .api()?
                    .post(jobs_url.clone())
                    .header(API_KEY_HEADER, self.key.clone())
                    .json(&body))
            })
            .await?;
        let remote_id = created_job_id(created)?;
        // Saved before the job is started, which is what bills it.
        report.remote_id(&remote_id);

        match self.start(&remote_id).await {
            Ok(()) => {}
            // The start may have reached the service and been lost on the
            // way back: sending it again could pay twice, and failing the
            // job would leave it running unwatched, or a later retry paying
            // for a second one. Polling finds out: a job still `created` is
            // started then, one already running is followed.
            Err(error @ (ProviderError::Server { .. } | ProviderError::Network { .. })) => {
                tracing::warn!(%error, remote_id, "unsure whether the job started; polling it");
            }
            Err(error) => return Err(error),
        }
        Ok(Submission::Accepted { remote_id })
    }

    async fn poll(
        &self,
        request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError> {
        let url = api_url(&self.base, &["v1", "jobs", remote_id])?;
        let job: JobAnswer = self
            .http
            .send_json(STATUS, || {
                Ok(self
                    .http
                    .api()?
                    .get(url.clone())
                    .header(API_KEY_HEADER, self.key.clone()))
            })
            .await?;
        let requested_format = request.options.get("output_format").map(String::as_str);
        let status = poll_status(job, requested_format)?;
        // Still a draft: its start went unanswered (see `submit`), or did
        // not take, in this run or an earlier one. Starting it now is what
        // the user asked for; a service that calls a queued job `created`
        // answers "already started", which is fine.
        let draft =
            matches!(&status, PollStatus::Pending { status: Some(word), .. } if word == "created");
        if draft && !self.has_started(remote_id) {
            self.start(remote_id).await?;
        }
        Ok(status)
    }
}

impl RemoveBgVideo {
    /// Starts a draft job, which is what bills it. A start the service
    /// refuses because the job has already started counts as done.
    async fn start(&self, remote_id: &str) -> Result<(), ProviderError> {
        let start_url = api_url(&self.base, &["v1", "jobs", remote_id, "start"])?;
        let outcome = self
            .http
            .send(START, || {
                Ok(self
                    .http
                    .api()?
                    .post(start_url.clone())
                    .header(API_KEY_HEADER, self.key.clone())
                    .json(&serde_json::json!({})))
            })
            .await;
        match outcome {
            Ok(_) => {}
            Err(ProviderError::Rejected { status, message })
                if is_already_started(status, &message) => {}
            Err(error) => return Err(error),
        }
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(remote_id.to_owned());
        Ok(())
    }

    /// Whether this run has started `remote_id`.
    fn has_started(&self, remote_id: &str) -> bool {
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(remote_id)
    }
}

/// Whether a refused start says the job was started already (the service
/// answers 400 `invalid_request` "Job has already been started"; a 409 would
/// say the same).
fn is_already_started(status: u16, message: &str) -> bool {
    matches!(status, 400 | 409) && message.to_ascii_lowercase().contains("already")
}

/// Asks the unauthenticated `/health` route how the service is, so
/// `cutout health` works before a key is set up. `base` has been checked like
/// every endpoint ([`super::check_health`] looks it up).
pub(super) async fn check_health(
    http: &HttpClient,
    base: &Url,
) -> Result<HealthReport, ProviderError> {
    let url = endpoint_url(base, "health");
    let answer: HealthAnswer = http
        .send_json(HEALTH, || Ok(http.api()?.get(url.clone())))
        .await?;
    Ok(health_report(answer))
}

// ---- options ----------------------------------------------------------------

fn validate_text_prompt(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("describe what to keep, e.g. `the person in the red jacket`".to_owned())
    } else {
        Ok(())
    }
}

fn validate_background_image_url(value: &str) -> Result<(), String> {
    let url = Url::parse(value.trim())
        .map_err(|e| format!("not a web address ({e}); give a full http(s) URL"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" | "https" => Err("the address names no host".to_owned()),
        other => Err(format!(
            "the provider fetches the image itself, so it must be http(s), not `{other}:`"
        )),
    }
}

fn validate_canvas(value: &str) -> Result<(), String> {
    parse_canvas(value).map(|_| ())
}

fn validate_scale(value: &str) -> Result<(), String> {
    parse_scale(value).map(|_| ())
}

fn validate_offset(value: &str) -> Result<(), String> {
    parse_offset(value).map(|_| ())
}

/// `WIDTHxHEIGHT` in positive whole pixels.
fn parse_canvas(value: &str) -> Result<(u32, u32), String> {
    let wrong = || format!("expected WIDTHxHEIGHT in pixels, such as 1920x1080, not `{value}`");
    let (width, height) = value.trim().split_once(['x', 'X']).ok_or_else(wrong)?;
    let dimension = |text: &str| text.trim().parse::<u32>().ok().filter(|&n| n > 0);
    match (dimension(width), dimension(height)) {
        (Some(width), Some(height)) => Ok((width, height)),
        _ => Err(wrong()),
    }
}

/// A positive, finite decimal.
fn parse_scale(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|scale| scale.is_finite() && *scale > 0.0)
        .ok_or_else(|| format!("expected a positive decimal such as 0.8, not `{value}`"))
}

/// `X,Y` in whole pixels, either may be negative.
fn parse_offset(value: &str) -> Result<(i64, i64), String> {
    let wrong = || format!("expected X,Y in whole pixels, such as 0,-40, not `{value}`");
    let (x, y) = value.split_once(',').ok_or_else(wrong)?;
    match (x.trim().parse::<i64>(), y.trim().parse::<i64>()) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        _ => Err(wrong()),
    }
}

// ---- wire types: requests ---------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBackground {
    Transparent,
    Color { color: String },
    Image { image_url: String },
}

#[derive(Debug, Serialize)]
struct Composition {
    canvas: Canvas,
    #[serde(skip_serializing_if = "Foreground::is_empty")]
    foreground: Foreground,
}

#[derive(Debug, Serialize)]
struct Canvas {
    width: u32,
    height: u32,
}

/// Only the fields the user gave are sent, so the service's own defaults
/// apply to the rest.
#[derive(Debug, Default, Serialize)]
struct Foreground {
    #[serde(skip_serializing_if = "Option::is_none")]
    anchor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scale: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<Offset>,
}

impl Foreground {
    fn is_empty(&self) -> bool {
        self.anchor.is_none() && self.scale.is_none() && self.offset.is_none()
    }
}

#[derive(Debug, Serialize)]
struct Offset {
    x: i64,
    y: i64,
}

/// Everything about the job except where the video is, settled before the
/// upload.
#[derive(Debug, Serialize)]
struct JobSettings<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_format: Option<&'a str>,
    background: WireBackground,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    composition: Option<Composition>,
}

/// The `POST /v1/jobs` body.
#[derive(Debug, Serialize)]
struct CreateJob<'a> {
    video_url: &'a str,
    #[serde(flatten)]
    settings: &'a JobSettings<'a>,
    auto_start: bool,
}

/// Turns the request's model, background and options into job settings,
/// refusing composition options that have no canvas to apply to.
fn job_settings(request: &JobRequest) -> Result<JobSettings<'_>, ProviderError> {
    let option = |key: &str| request.options.get(key).map(String::as_str);
    let bad_option = |key: &str, why: String| ProviderError::Config(format!("`{key}`: {why}"));

    let background = match (option("background_image_url"), request.background) {
        (Some(image_url), _) => WireBackground::Image {
            image_url: image_url.trim().to_owned(),
        },
        (None, Background::Transparent) => WireBackground::Transparent,
        (None, color @ Background::Color(_)) => WireBackground::Color {
            color: color.hex().unwrap_or_default(),
        },
    };

    let placement: Vec<&str> = ["anchor", "scale", "offset"]
        .into_iter()
        .filter(|key| option(key).is_some())
        .collect();
    let composition = match option("canvas") {
        None if placement.is_empty() => None,
        None => {
            return Err(ProviderError::Config(format!(
                "{} place(s) the subject on a canvas; add `--option canvas=WIDTHxHEIGHT` too",
                placement.join(", ")
            )));
        }
        Some(canvas) => {
            let (width, height) = parse_canvas(canvas).map_err(|why| bad_option("canvas", why))?;
            let scale = option("scale")
                .map(parse_scale)
                .transpose()
                .map_err(|why| bad_option("scale", why))?;
            let offset = option("offset")
                .map(parse_offset)
                .transpose()
                .map_err(|why| bad_option("offset", why))?;
            Some(Composition {
                canvas: Canvas { width, height },
                foreground: Foreground {
                    anchor: option("anchor").map(str::to_owned),
                    scale,
                    offset: offset.map(|(x, y)| Offset { x, y }),
                },
            })
        }
    };

    Ok(JobSettings {
        model: &request.model,
        output_format: option("output_format"),
        background,
        text_prompt: option("text_prompt").filter(|p| !p.trim().is_empty()),
        composition,
    })
}

// ---- wire types: answers ----------------------------------------------------

#[derive(Debug, Deserialize)]
struct UploadAnswer {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CreateAnswer {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct JobAnswer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    progress: Option<Value>,
    #[serde(default)]
    output_url: Option<String>,
    #[serde(default)]
    output_format: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct HealthAnswer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    checks: Option<Map<String, Value>>,
}

fn uploaded_video_url(answer: UploadAnswer) -> Result<String, ProviderError> {
    if answer.success == Some(false) {
        let why = answer_failure(answer.error.as_ref(), answer.message.as_ref());
        return Err(ProviderError::RemoteFailed(format!(
            "the upload was refused: {why}"
        )));
    }
    answer
        .video_url
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| ProviderError::Protocol("the upload answer has no `video_url`".to_owned()))
}

fn created_job_id(answer: CreateAnswer) -> Result<String, ProviderError> {
    if answer.success == Some(false) {
        let why = answer_failure(answer.error.as_ref(), answer.message.as_ref());
        return Err(ProviderError::RemoteFailed(format!(
            "the job was not created: {why}"
        )));
    }
    answer
        .id
        .as_ref()
        .and_then(json_text)
        .ok_or_else(|| ProviderError::Protocol("the job was created without an `id`".to_owned()))
}

fn answer_failure(error: Option<&Value>, message: Option<&Value>) -> String {
    error
        .and_then(describe_error)
        .or_else(|| message.and_then(json_text))
        .map(|why| provider_words(&why))
        .unwrap_or_else(|| "no reason given".to_owned())
}

/// Reads one status answer. Unknown states count as still running, since the
/// service's list of states is not fully documented.
fn poll_status(
    job: JobAnswer,
    requested_format: Option<&str>,
) -> Result<PollStatus, ProviderError> {
    let status = job
        .status
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .ok_or_else(|| {
            ProviderError::Protocol("the job status answer has no `status`".to_owned())
        })?;
    match status.as_str() {
        "completed" => {
            let Some(raw_url) = job.output_url.as_deref().filter(|u| !u.trim().is_empty()) else {
                return Err(ProviderError::Protocol(
                    "the job is completed but has no `output_url`".to_owned(),
                ));
            };
            let url = Url::parse(raw_url.trim()).map_err(|e| {
                ProviderError::Protocol(format!("the job's `output_url` is not an address ({e})"))
            })?;
            let format = job.output_format.as_deref().or(requested_format);
            let extension = extension_for(format, &url);
            Ok(PollStatus::Done(JobResult {
                assets: vec![ResultAsset {
                    variation: None,
                    source: AssetSource::Url(url),
                    extension,
                }],
                credits_charged: None,
                warnings: Vec::new(),
            }))
        }
        "failed" | "error" | "cancelled" | "canceled" => Ok(PollStatus::Failed {
            message: job
                .error
                .as_ref()
                .and_then(describe_error)
                .map(|why| provider_words(&why))
                .unwrap_or_else(|| format!("the job ended as `{status}` without saying why")),
        }),
        _ => Ok(PollStatus::Pending {
            progress: job.progress.as_ref().and_then(percent),
            status: Some(status),
        }),
    }
}

/// The file extension a job's output format implies; an unknown format
/// falls back to the result URL's own extension.
fn extension_for(format: Option<&str>, output_url: &Url) -> String {
    match format.map(str::trim).unwrap_or("webm") {
        "png_sequence" => "zip".to_owned(),
        known @ ("webm" | "mov" | "mp4" | "gif" | "webp") => known.to_owned(),
        _ => output_url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|ext| {
                (1..=5).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric())
            })
            .unwrap_or_else(|| "bin".to_owned()),
    }
}

/// Progress as a whole percentage, from a number or a numeric string.
fn percent(value: &Value) -> Option<u8> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok()?,
        _ => return None,
    };
    number.is_finite().then(|| number.clamp(0.0, 100.0) as u8)
}

fn health_report(answer: HealthAnswer) -> HealthReport {
    let status = answer
        .status
        .map(|s| provider_words(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let checks = answer
        .checks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| health_check(name, &value))
        .collect();
    HealthReport {
        healthy: status.eq_ignore_ascii_case("healthy"),
        status,
        checks,
    }
}

/// One entry of `checks`, whose values are documented loosely: booleans,
/// words such as `ok`, or small objects.
fn health_check(name: String, value: &Value) -> HealthCheck {
    let (healthy, detail) = match value {
        Value::Bool(ok) => (*ok, None),
        Value::String(word) => (is_positive_word(word), Some(word.clone())),
        Value::Object(fields) => {
            let flag = ["healthy", "ok", "configured"]
                .iter()
                .find_map(|key| fields.get(*key).and_then(Value::as_bool));
            let word = fields.get("status").and_then(Value::as_str);
            let healthy = flag.or(word.map(is_positive_word)).unwrap_or(false);
            let detail = fields
                .get("message")
                .or(fields.get("detail"))
                .and_then(Value::as_str)
                .or(word)
                .map(str::to_owned);
            (healthy, detail)
        }
        Value::Null => (false, None),
        other => (false, Some(other.to_string())),
    };
    HealthCheck {
        name: provider_words(&name),
        healthy,
        detail: detail.map(|detail| provider_words(&detail)),
    }
}

fn is_positive_word(word: &str) -> bool {
    const POSITIVE: &[&str] = &[
        "ok",
        "healthy",
        "true",
        "up",
        "pass",
        "passed",
        "configured",
        "connected",
        "available",
        "ready",
        "yes",
        "operational",
    ];
    let word = word.trim();
    POSITIVE.iter().any(|p| p.eq_ignore_ascii_case(word))
}

/// The last day's usage in words, from whichever of `total_jobs` and
/// `credits_used` the summary has (its shape is unconfirmed; it may also sit
/// under `data`).
fn usage_detail(answer: &Value) -> Option<String> {
    let summary = match answer.get("data") {
        Some(data @ Value::Object(_)) => data,
        _ => answer,
    };
    let count = |key: &str| json_amount(summary.get(key)?);
    let parts: Vec<String> = [
        count("total_jobs").map(|n| format!("{n} jobs")),
        count("credits_used").map(|n| format!("{n} credits used")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("{} in the last day", parts.join(", ")))
}

// ---- error bodies -----------------------------------------------------------

/// Pulls the message out of `{"error":{"code","message","request_id"}}`,
/// keeping the request id, which support asks for.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match value.get("error") {
        Some(Value::String(code)) => format_error(
            value.get("message").and_then(json_text),
            Some(code.clone()),
            value.get("request_id").and_then(json_text),
        ),
        Some(error) => describe_error(error),
        None => value.get("message").and_then(json_text),
    }
}

/// Like [`error_message`], but a `/health` that answers 503 with its usual
/// document is described by its status and failing checks.
fn health_error_message(body: &[u8]) -> Option<String> {
    if let Ok(HealthAnswer {
        status: Some(status),
        checks,
    }) = serde_json::from_slice::<HealthAnswer>(body)
    {
        let report = health_report(HealthAnswer {
            status: Some(status),
            checks,
        });
        let failing: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.healthy)
            .map(|c| c.name.as_str())
            .collect();
        return Some(if failing.is_empty() {
            report.status
        } else {
            format!("{}; failing checks: {}", report.status, failing.join(", "))
        });
    }
    error_message(body)
}

/// An `error` value, which may be a bare string or an object.
fn describe_error(error: &Value) -> Option<String> {
    match error {
        Value::Object(fields) => format_error(
            fields
                .get("message")
                .or(fields.get("detail"))
                .and_then(json_text),
            fields.get("code").and_then(json_text),
            fields.get("request_id").and_then(json_text),
        ),
        other => json_text(other),
    }
}

/// `message (code; request id X)`, leaving out whatever is missing.
fn format_error(
    message: Option<String>,
    code: Option<String>,
    request_id: Option<String>,
) -> Option<String> {
    let request = request_id.map(|id| format!("request id {id}"));
    let (head, notes): (String, Vec<String>) = match (message, code) {
        (Some(message), code) => (message, code.into_iter().chain(request).collect()),
        (None, Some(code)) => (code, request.into_iter().collect()),
        (None, None) => return None,
    };
    Some(if notes.is_empty() {
        head
    } else {
        format!("{head} ({})", notes.join("; "))
    })
}

/// `base` with `segments` appended, each percent-encoded, so an odd job id
/// can never change the path it is sent to.
fn api_url(base: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| {
            ProviderError::Config(format!(
                "the {} base URL cannot take a path: {base}",
                INFO.name
            ))
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Runs every parser of the video service's answers on `body` and returns
/// the words each would put in front of a user, for the fuzz targets
/// ([`super::fuzzing`]), so no wire type leaves this file.
pub(crate) fn parse_any(body: &[u8]) -> Vec<String> {
    use super::fuzzing::{outcome_words, poll_words};
    use super::http::{parse_answer, parse_json, refusal_message};
    let upload = parse_json::<UploadAnswer>(UPLOAD.what, body).and_then(uploaded_video_url);
    let create = parse_json::<CreateAnswer>(CREATE.what, body).and_then(created_job_id);
    let mut words = outcome_words(&upload);
    words.extend(outcome_words(&create));
    for format in [None, Some("png_sequence")] {
        let job = parse_json::<JobAnswer>(STATUS.what, body);
        words.extend(poll_words(&job.and_then(|job| poll_status(job, format))));
    }
    match parse_json::<HealthAnswer>(HEALTH.what, body).map(health_report) {
        Ok(report) => {
            words.push(report.status);
            for check in report.checks {
                words.push(check.name);
                words.extend(check.detail);
            }
        }
        Err(error) => words.push(error.to_string()),
    }
    let usage = parse_answer(USAGE.what, body).ok();
    words.extend(usage.as_ref().and_then(usage_detail));
    let status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
    words.push(refusal_message(STATUS, status, body, &[]));
    words.push(refusal_message(HEALTH, status, body, &[]));
    words
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::extract::{Multipart, Path as UrlPath, State};
    use axum::http::HeaderMap;
    use axum::routing::{get, post};
    use serde_json::json;

    use super::*;
    use crate::providers::test_support::{
        Log, Recorder, api_key, config, fast_http, file_input, options, request, serve,
    };

    fn url_request(options: &[(&str, &str)]) -> JobRequest {
        request(
            &INFO,
            JobInput::Url(Url::parse("https://cdn.example.com/clip.mp4").unwrap()),
            options,
        )
    }

    fn body_for(request: &JobRequest) -> Value {
        let settings = job_settings(request).unwrap();
        serde_json::to_value(CreateJob {
            video_url: "https://files.example.com/v/abc.mp4",
            settings: &settings,
            auto_start: false,
        })
        .unwrap()
    }

    fn job(body: Value) -> JobAnswer {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn info_lists_original_first_and_accepts_only_video() {
        assert_eq!(INFO.default_model(), "original");
        assert!(INFO.takes_only_video());
        assert!(INFO.has_health_check);
        assert_eq!(INFO.credentials[0].env_var, "CUTOUT_REMOVEBGVIDEO_KEY");
        assert_eq!(
            INFO.endpoints[0].default,
            Some("https://api.removebgvideo.com")
        );
    }

    #[test]
    fn every_documented_option_value_passes_its_check() {
        let good = options(&[
            ("output_format", "png_sequence"),
            ("text_prompt", "the dog"),
            ("background_image_url", "https://example.com/beach.jpg"),
            ("canvas", "1920x1080"),
            ("anchor", "bottom-center"),
            ("scale", "0.75"),
            ("offset", "-12,40"),
        ]);
        assert_eq!(INFO.check_options(&good), Ok(()));
    }

    #[test]
    fn canvas_takes_two_positive_whole_numbers() {
        assert_eq!(parse_canvas("1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_canvas(" 640X480 "), Ok((640, 480)));
        for bad in ["0x1080", "1920", "1920x", "ax b", "-5x5", "1.5x2", "x"] {
            assert!(validate_canvas(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scale_takes_a_positive_finite_decimal() {
        assert_eq!(parse_scale("0.5"), Ok(0.5));
        assert_eq!(parse_scale("2"), Ok(2.0));
        for bad in ["0", "-1", "abc", "inf", "NaN", ""] {
            assert!(validate_scale(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offset_takes_two_signed_whole_numbers() {
        assert_eq!(parse_offset("10,-20"), Ok((10, -20)));
        assert_eq!(parse_offset(" 3 , 4 "), Ok((3, 4)));
        for bad in ["10", "a,b", "1,2,3", "1.5,2", ","] {
            assert!(validate_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn background_image_url_must_be_a_web_address_and_text_prompt_not_blank() {
        assert!(validate_background_image_url("http://example.com/a.png").is_ok());
        assert!(validate_background_image_url("ftp://example.com/a.png").is_err());
        assert!(validate_background_image_url("beach.jpg").is_err());
        assert!(validate_text_prompt("person").is_ok());
        assert!(validate_text_prompt("   ").is_err());
    }

    #[test]
    fn a_plain_job_is_a_transparent_draft_without_optional_fields() {
        assert_eq!(
            body_for(&url_request(&[])),
            json!({
                "video_url": "https://files.example.com/v/abc.mp4",
                "model": "original",
                "background": {"type": "transparent"},
                "auto_start": false,
            })
        );
    }

    #[test]
    fn a_colour_background_is_sent_as_lowercase_hex() {
        let mut request = url_request(&[("output_format", "mov")]);
        request.background = Background::Color([255, 0, 170]);
        let body = body_for(&request);
        assert_eq!(
            body["background"],
            json!({"type": "color", "color": "#ff00aa"})
        );
        assert_eq!(body["output_format"], "mov");
    }

    #[test]
    fn a_background_image_url_overrides_the_chosen_background() {
        let mut request = url_request(&[("background_image_url", "https://example.com/b.jpg")]);
        request.background = Background::Color([0, 0, 0]);
        assert_eq!(
            body_for(&request)["background"],
            json!({"type": "image", "image_url": "https://example.com/b.jpg"})
        );
    }

    #[test]
    fn a_full_composition_and_text_prompt_are_sent_as_documented() {
        let mut request = url_request(&[
            ("canvas", "1080x1920"),
            ("anchor", "bottom-center"),
            ("scale", "0.8"),
            ("offset", "0,-40"),
            ("text_prompt", "the skater"),
        ]);
        request.model = "pro".to_owned();
        let body = body_for(&request);
        assert_eq!(body["model"], "pro");
        assert_eq!(body["text_prompt"], "the skater");
        assert_eq!(
            body["composition"],
            json!({
                "canvas": {"width": 1080, "height": 1920},
                "foreground": {"anchor": "bottom-center", "scale": 0.8, "offset": {"x": 0, "y": -40}},
            })
        );
    }

    #[test]
    fn a_canvas_alone_sends_no_foreground() {
        let body = body_for(&url_request(&[("canvas", "1280x720")]));
        assert_eq!(
            body["composition"],
            json!({"canvas": {"width": 1280, "height": 720}})
        );
    }

    #[test]
    fn placement_options_without_a_canvas_are_refused_with_what_to_add() {
        let error =
            job_settings(&url_request(&[("anchor", "center"), ("scale", "2")])).unwrap_err();
        let ProviderError::Config(message) = error else {
            panic!("expected a config error, got {error:?}");
        };
        assert!(message.contains("anchor, scale"), "{message}");
        assert!(message.contains("canvas=WIDTHxHEIGHT"), "{message}");
    }

    #[test]
    fn the_upload_answer_gives_the_video_url_or_a_clear_failure() {
        let answer = serde_json::from_value(json!({
            "success": true, "video_id": "vid_1", "video_url": "https://r2.example.com/vid_1.mp4",
            "filename": "clip.mp4", "size": 1234
        }))
        .unwrap();
        assert_eq!(
            uploaded_video_url(answer).unwrap(),
            "https://r2.example.com/vid_1.mp4"
        );

        let refused =
            serde_json::from_value(json!({"success": false, "error": "file too large"})).unwrap();
        let error = uploaded_video_url(refused).unwrap_err();
        assert!(error.to_string().contains("file too large"), "{error}");

        let empty = serde_json::from_value(json!({"success": true})).unwrap();
        assert!(matches!(
            uploaded_video_url(empty),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn a_job_id_may_be_a_string_or_a_number() {
        let answer = |v: Value| created_job_id(serde_json::from_value(v).unwrap());
        assert_eq!(
            answer(json!({"success": true, "id": "job_9f", "status": "created", "message": "Job created"})).unwrap(),
            "job_9f"
        );
        assert_eq!(answer(json!({"id": 42})).unwrap(), "42");
        assert!(matches!(
            answer(json!({"success": true})),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn queued_and_running_states_are_pending_with_their_progress() {
        for (word, progress, expected) in [
            ("created", json!(0), Some(0)),
            ("pending", json!(null), None),
            ("processing", json!(42.7), Some(42)),
            ("processing", json!("55"), Some(55)),
            ("processing", json!(130), Some(100)),
            ("uploading_frames", json!(10), Some(10)),
        ] {
            let status = poll_status(
                job(json!({"id": "j", "status": word, "progress": progress})),
                None,
            );
            match status {
                Ok(PollStatus::Pending { progress, status }) => {
                    assert_eq!(progress, expected);
                    assert_eq!(status.as_deref(), Some(word), "the word is kept to quote");
                }
                other => panic!("expected pending, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_completed_job_yields_its_output_url_with_the_formats_extension() {
        let done = |format: Option<&str>, answer_format: Value| {
            let answer = job(json!({
                "id": "j", "status": "completed", "progress": 100,
                "output_url": "https://r2.example.com/out/j?X-Amz-Expires=3600",
                "output_format": answer_format,
                "created_at": "2025-01-01T00:00:00Z", "duration_seconds": 12.5, "billing_status": "charged"
            }));
            match poll_status(answer, format).unwrap() {
                PollStatus::Done(result) => result,
                other => panic!("expected done, got {other:?}"),
            }
        };
        let result = done(None, Value::Null);
        assert_eq!(result.assets.len(), 1);
        assert_eq!(result.assets[0].extension, "webm");
        assert!(
            matches!(&result.assets[0].source, AssetSource::Url(u) if u.as_str().starts_with("https://r2.example.com/out/j"))
        );
        assert_eq!(
            done(Some("png_sequence"), Value::Null).assets[0].extension,
            "zip"
        );
        assert_eq!(done(Some("mov"), Value::Null).assets[0].extension, "mov");
        assert_eq!(done(None, json!("gif")).assets[0].extension, "gif");
    }

    #[test]
    fn a_completed_job_without_an_output_url_is_a_protocol_error() {
        let answer = job(json!({"id": "j", "status": "completed", "output_url": null}));
        assert!(matches!(
            poll_status(answer, None),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn a_failed_job_reports_its_error_whether_string_or_object() {
        let message = |error: Value| match poll_status(
            job(json!({"status": "failed", "error": error})),
            None,
        ) {
            Ok(PollStatus::Failed { message }) => message,
            other => panic!("expected failed, got {other:?}"),
        };
        assert_eq!(
            message(json!("Video decoding failed")),
            "Video decoding failed"
        );
        assert_eq!(
            message(
                json!({"code": "timeout", "message": "Processing timed out", "request_id": "req_1"})
            ),
            "Processing timed out (timeout; request id req_1)"
        );
        assert!(message(Value::Null).contains("without saying why"));
    }

    #[test]
    fn a_status_answer_without_status_is_a_protocol_error() {
        assert!(matches!(
            poll_status(job(json!({"id": "j"})), None),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn error_bodies_become_message_code_and_request_id() {
        let read = |v: Value| error_message(v.to_string().as_bytes());
        assert_eq!(
            read(json!({"error": {"code": "invalid_api_key", "message": "Invalid API key", "request_id": "req_abc"}})).unwrap(),
            "Invalid API key (invalid_api_key; request id req_abc)"
        );
        assert_eq!(
            read(
                json!({"error": {"code": "insufficient_credits", "message": "Not enough credits"}})
            )
            .unwrap(),
            "Not enough credits (insufficient_credits)"
        );
        assert_eq!(
            read(json!({"error": {"code": "rate_limited"}})).unwrap(),
            "rate_limited"
        );
        assert_eq!(
            read(json!({"error": "not_found", "message": "Job not found"})).unwrap(),
            "Job not found (not_found)"
        );
        assert_eq!(read(json!({"error": {}})), None);
        assert_eq!(error_message(b"<html>Bad gateway</html>"), None);
    }

    #[test]
    fn health_tolerates_boolean_and_word_checks() {
        let report = health_report(
            serde_json::from_value(json!({
                "status": "healthy",
                "checks": {"api": true, "runpod_configured": "ok", "r2_configured": "true"}
            }))
            .unwrap(),
        );
        assert!(report.healthy);
        assert_eq!(report.checks.len(), 3);
        assert!(
            report.checks.iter().all(|c| c.healthy),
            "{:?}",
            report.checks
        );

        let report = health_report(
            serde_json::from_value(json!({
                "status": "degraded",
                "checks": {"api": "ok", "runpod_configured": false, "r2_configured": "missing credentials"}
            }))
            .unwrap(),
        );
        assert!(!report.healthy);
        assert_eq!(report.status, "degraded");
        let mut failing: Vec<_> = report
            .checks
            .iter()
            .filter(|c| !c.healthy)
            .map(|c| c.name.as_str())
            .collect();
        failing.sort_unstable();
        assert_eq!(failing, ["r2_configured", "runpod_configured"]);
    }

    #[test]
    fn a_503_health_document_names_the_failing_checks() {
        let body = json!({"status": "degraded", "checks": {"api": true, "r2_configured": false}});
        assert_eq!(
            health_error_message(body.to_string().as_bytes()).unwrap(),
            "degraded; failing checks: r2_configured"
        );
    }

    #[test]
    fn job_ids_are_escaped_into_a_single_path_segment() {
        let base = Url::parse("https://api.removebgvideo.com").unwrap();
        assert_eq!(
            api_url(&base, &["v1", "jobs", "a/b?c"]).unwrap().as_str(),
            "https://api.removebgvideo.com/v1/jobs/a%2Fb%3Fc"
        );
        let proxied = Url::parse("http://127.0.0.1:9/proxy/").unwrap();
        assert_eq!(
            api_url(&proxied, &["v1", "uploads"]).unwrap().as_str(),
            "http://127.0.0.1:9/proxy/v1/uploads"
        );
    }

    // ---- against a fake server ----------------------------------------------

    async fn fake_server(log: Log) -> Url {
        async fn upload(
            State(log): State<Log>,
            headers: HeaderMap,
            mut form: Multipart,
        ) -> axum::Json<Value> {
            let mut fields = Vec::new();
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap_or_default().to_owned();
                let file = field.file_name().unwrap_or_default().to_owned();
                let mime = field.content_type().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.unwrap();
                fields.push(format!(
                    "{name}={file}:{mime}:{}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
            log.lock().unwrap().push(format!(
                "upload key={} {}",
                api_key(&headers),
                fields.join(",")
            ));
            axum::Json(json!({
                "success": true, "video_id": "vid_1", "video_url": "https://r2.example.com/vid_1.mp4",
                "filename": "clip.mp4", "size": 10
            }))
        }
        async fn create(
            State(log): State<Log>,
            headers: HeaderMap,
            axum::Json(body): axum::Json<Value>,
        ) -> axum::Json<Value> {
            log.lock()
                .unwrap()
                .push(format!("create key={} {body}", api_key(&headers)));
            axum::Json(
                json!({"success": true, "id": "job_7", "status": "created", "message": "Job created"}),
            )
        }
        async fn start(
            State(log): State<Log>,
            headers: HeaderMap,
            UrlPath(id): UrlPath<String>,
        ) -> axum::Json<Value> {
            log.lock()
                .unwrap()
                .push(format!("start {id} key={}", api_key(&headers)));
            axum::Json(json!({"success": true, "status": "pending"}))
        }
        async fn status(
            headers: HeaderMap,
            UrlPath(id): UrlPath<String>,
        ) -> (axum::http::StatusCode, axum::Json<Value>) {
            if api_key(&headers) != "rbv_test_key" {
                let body = json!({"error": {"code": "invalid_api_key", "message": "Invalid API key", "request_id": "req_1"}});
                return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body));
            }
            let body = json!({"id": id, "status": "completed", "progress": 100, "output_url": "https://r2.example.com/out.webm"});
            (axum::http::StatusCode::OK, axum::Json(body))
        }
        async fn health(State(log): State<Log>, headers: HeaderMap) -> axum::Json<Value> {
            log.lock()
                .unwrap()
                .push(format!("health key={}", api_key(&headers)));
            axum::Json(
                json!({"status": "healthy", "checks": {"api": true, "runpod_configured": true, "r2_configured": true}}),
            )
        }
        async fn usage(
            State(log): State<Log>,
            headers: HeaderMap,
            axum::extract::RawQuery(query): axum::extract::RawQuery,
        ) -> (axum::http::StatusCode, axum::Json<Value>) {
            let key = api_key(&headers);
            log.lock()
                .unwrap()
                .push(format!("usage {} key={key}", query.unwrap_or_default()));
            if key != "rbv_test_key" {
                let body = json!({"error": {"code": "invalid_api_key", "message": "Invalid API key", "request_id": "req_2"}});
                return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body));
            }
            let body = json!({"total_jobs": 3, "credits_used": 180, "completed_jobs": 3});
            (axum::http::StatusCode::OK, axum::Json(body))
        }
        let app = Router::new()
            .route("/v1/usage/summary", get(usage))
            .route("/v1/uploads", post(upload))
            .route("/v1/jobs", post(create))
            .route("/v1/jobs/{id}/start", post(start))
            .route("/v1/jobs/{id}", get(status))
            .route("/health", get(health))
            .with_state(log);
        serve(app).await
    }

    fn client(base: &Url, key: &str) -> RemoveBgVideo {
        RemoveBgVideo::new(config(&[("url", base)], &[("key", key)])).unwrap()
    }

    #[tokio::test]
    async fn a_local_video_is_streamed_up_drafted_reported_then_started() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let mut request = request(
            &INFO,
            file_input(&dir, "clip.mp4", b"fake video"),
            &[("output_format", "mp4")],
        );
        request.model = "light".to_owned();
        request.background = Background::Color([0, 255, 0]);

        let provider = client(&base, "rbv_test_key");
        let submission = provider
            .submit(&request, &Recorder(log.clone()))
            .await
            .unwrap();
        assert!(matches!(&submission, Submission::Accepted { remote_id } if remote_id == "job_7"));

        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 5, "{log:#?}");
        assert_eq!(log[0], "uploading");
        assert_eq!(
            log[1],
            "upload key=rbv_test_key file=clip.mp4:video/mp4:fake video"
        );
        let (head, body) = log[2].split_once(' ').unwrap().1.split_once(' ').unwrap();
        assert_eq!(head, "key=rbv_test_key");
        assert_eq!(
            serde_json::from_str::<Value>(body).unwrap(),
            json!({
                "video_url": "https://r2.example.com/vid_1.mp4", "model": "light", "output_format": "mp4",
                "background": {"type": "color", "color": "#00ff00"}, "auto_start": false
            })
        );
        assert_eq!(log[3], "remote_id job_7");
        assert_eq!(log[4], "start job_7 key=rbv_test_key");

        let status = provider.poll(&request, "job_7").await.unwrap();
        let PollStatus::Done(result) = status else {
            panic!("expected done, got {status:?}");
        };
        assert_eq!(result.assets[0].extension, "mp4");
    }

    #[tokio::test]
    async fn a_refused_key_says_so_with_the_providers_words() {
        let base = fake_server(Log::default()).await;
        let error = client(&base, "wrong")
            .poll(&url_request(&[]), "job_7")
            .await
            .unwrap_err();
        let ProviderError::Unauthorized { message } = error else {
            panic!("expected unauthorized, got {error:?}");
        };
        assert_eq!(
            message,
            "Invalid API key (invalid_api_key; request id req_1)"
        );
    }

    #[tokio::test]
    async fn the_health_check_sends_no_key() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let report = check_health(&fast_http(), &base).await.unwrap();
        assert!(report.healthy);
        assert_eq!(report.checks.len(), 3);
        assert_eq!(log.lock().unwrap().as_slice(), ["health key=<none>"]);
    }

    #[test]
    fn the_client_refuses_plain_http_to_a_remote_host() {
        let remote = Url::parse("http://api.removebgvideo.com").unwrap();
        let error = RemoveBgVideo::new(config(&[("url", &remote)], &[("key", "k")])).unwrap_err();
        assert!(matches!(error, ProviderError::Config(_)));
    }

    #[test]
    fn the_usage_detail_tolerates_a_nested_or_partial_summary() {
        assert_eq!(
            usage_detail(&json!({"total_jobs": 3, "credits_used": 180, "completed_jobs": 3}))
                .as_deref(),
            Some("3 jobs, 180 credits used in the last day")
        );
        assert_eq!(
            usage_detail(&json!({"data": {"credits_used": "7.5"}})).as_deref(),
            Some("7.5 credits used in the last day")
        );
        assert_eq!(usage_detail(&json!({"success": true})), None);
    }

    /// A service whose job `job_1` is `created` on every poll (the docs
    /// also use the word for queued jobs) and whose `/start` works once,
    /// then answers "already started"; and its count of starts.
    async fn draft_server() -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let starts = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        let app = Router::new()
            .route(
                "/v1/jobs/{id}",
                get(|| async { axum::Json(json!({"id": "job_1", "status": "created", "progress": 0})) }),
            )
            .route(
                "/v1/jobs/{id}/start",
                post(move || {
                    let earlier = counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if earlier == 0 {
                            (
                                axum::http::StatusCode::OK,
                                axum::Json(json!({"success": true, "status": "pending"})),
                            )
                        } else {
                            let body = json!({"error": {"code": "invalid_request", "message": "Job has already been started", "request_id": "req_9"}});
                            (axum::http::StatusCode::BAD_REQUEST, axum::Json(body))
                        }
                    }
                }),
            );
        (serve(app).await, starts)
    }

    #[tokio::test]
    async fn regression_f1_a_draft_found_by_a_poll_is_started_once_per_run() {
        use std::sync::atomic::Ordering;
        let (base, starts) = draft_server().await;
        let request = url_request(&[]);
        let provider = client(&base, "rbv_test_key");
        for _ in 0..3 {
            let status = provider.poll(&request, "job_1").await.unwrap();
            assert!(
                matches!(&status, PollStatus::Pending { status: Some(word), .. } if word == "created"),
                "{status:?}"
            );
        }
        assert_eq!(
            starts.load(Ordering::SeqCst),
            1,
            "started by the first poll, never again while the service still says created"
        );

        // A later run (a resume) tries once more; "already started" is fine.
        let later = client(&base, "rbv_test_key");
        later.poll(&request, "job_1").await.unwrap();
        later.poll(&request, "job_1").await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_key_test_asks_for_one_days_usage_with_the_key() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let check = client(&base, "rbv_test_key").check_key().await.unwrap();
        assert_eq!(
            check.detail.as_deref(),
            Some("3 jobs, 180 credits used in the last day")
        );
        assert_eq!(
            log.lock().unwrap().as_slice(),
            ["usage days=1 key=rbv_test_key"]
        );
    }

    #[tokio::test]
    async fn a_refused_key_fails_the_key_test_as_unauthorized() {
        let base = fake_server(Log::default()).await;
        let error = client(&base, "wrong").check_key().await.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Unauthorized { message } if message.starts_with("Invalid API key")),
            "{error:?}"
        );
    }
}
