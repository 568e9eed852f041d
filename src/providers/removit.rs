//! removit.eu (PROVIDERS.md §2).
//!
//! One upload starts a job; its status call reports progress and, once done,
//! either one result link or a link per variation (`compose`, `shadowTop`, …),
//! depending on `delivery_mode`. Variations removit could not make come with
//! warnings rather than a failure, so they are passed on to the user.

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::RequestBuilder;
use reqwest::header::HeaderValue;
use reqwest::multipart::Form;
use serde_json::{Map, Value};
use url::Url;

use super::http::{InputFile, endpoint_url, json_text, parse_answer, provider_words, snippet};
use super::*;

/// removit's description. Its options are sent as they are, so they are
/// checked here against the values the API documents.
pub static INFO: ProviderInfo = ProviderInfo {
    id: ProviderId::Removit,
    name: "removit.eu",
    summary: "European service; can also make backgrounds, shadows and compositions from saved parameter sets",
    models: &[ModelInfo {
        id: "removit",
        summary: "removit's own model",
    }],
    options: &[
        OptionSpec {
            key: "mode",
            kind: OptionKind::Choice {
                values: &["clipping", "background", "params"],
            },
            help: "clipping (cut-out, default), background, or params to apply a saved parameter set",
        },
        OptionSpec {
            key: "params",
            kind: OptionKind::Text {
                example: "my-shadow-set",
                validate: validate_params,
            },
            help: "name of a parameter set saved in your removit account; needed with mode=params",
        },
        OptionSpec {
            key: "delivery_mode",
            kind: OptionKind::Choice {
                values: &["url", "final_url"],
            },
            help: "url: one result per variation (default); final_url: a single result",
        },
        OptionSpec {
            key: "output_format",
            kind: OptionKind::Choice {
                values: &["png", "jpg", "jpeg", "psd", "tiff", "webp"],
            },
            help: "format of the results (default png)",
        },
    ],
    accepts: &[InputKind::ImageFile, InputKind::ImageUrl],
    credentials: &[CredentialSpec {
        id: "key",
        label: "API key",
        env_var: "CUTOUT_REMOVIT_KEY",
    }],
    endpoints: &[EndpointSpec {
        id: "url",
        env_var: "CUTOUT_REMOVIT_URL",
        default: Some("https://api.removit.eu"),
    }],
    default_concurrency: 4,
    has_health_check: false,
    runs_on_this_machine: false,
    poll_deadline_secs: 600,
    // PROVIDERS.md §2 lists the file types (SVG aside, which Cutout does not
    // treat as an image); removit documents no size or pixel limit.
    input_limits: super::InputLimits {
        max_file_bytes: None,
        max_pixels: None,
        max_side_px: None,
        image_formats: &[
            crate::imaging::decode::SourceFormat::Png,
            crate::imaging::decode::SourceFormat::Jpeg,
            crate::imaging::decode::SourceFormat::Webp,
            crate::imaging::decode::SourceFormat::Gif,
            crate::imaging::decode::SourceFormat::Avif,
            crate::imaging::decode::SourceFormat::Tiff,
            crate::imaging::decode::SourceFormat::Psd,
        ],
        confirmed: true,
    },
};

fn validate_params(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("give the name of a parameter set saved in your removit account".to_owned())
    } else if value.chars().any(char::is_control) {
        Err(format!(
            "a parameter set name cannot contain control characters: `{}`",
            value.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// Refuses option combinations removit would refuse, before anything is
/// uploaded.
fn check_combination(options: &ProviderOptions) -> Result<(), ProviderError> {
    let has_params = options.get("params").is_some_and(|p| !p.trim().is_empty());
    if options.get("mode").map(String::as_str) == Some("params") && !has_params {
        return Err(ProviderError::Config(
            "removit mode=params needs params=<name of a saved parameter set>".to_owned(),
        ));
    }
    Ok(())
}

/// The options to send with an upload, in [`INFO`]'s order; keys removit does
/// not document are never sent.
fn upload_fields(options: &ProviderOptions) -> Vec<(&'static str, String)> {
    INFO.options
        .iter()
        .filter_map(|spec| Some((spec.key, options.get(spec.key)?.clone())))
        .collect()
}

/// The JSON upload of a remote image.
fn url_upload_body(source: &Url, options: &ProviderOptions) -> Value {
    let mut body = Map::new();
    body.insert("file_url".to_owned(), Value::String(source.to_string()));
    for (key, value) in upload_fields(options) {
        body.insert(key.to_owned(), Value::String(value));
    }
    Value::Object(body)
}

/// The extension of the results, from the format asked for.
fn result_extension(options: &ProviderOptions) -> String {
    match options.get("output_format").map(String::as_str) {
        Some("jpeg" | "jpg") => "jpg".to_owned(),
        Some(format) if !format.is_empty() => format.to_owned(),
        _ => "png".to_owned(),
    }
}

/// The job id from the upload's answer.
fn parse_upload_answer(body: &[u8]) -> Result<String, ProviderError> {
    let answer = parse_answer("the upload", body)?;
    ["job_id", "id"]
        .iter()
        .find_map(|key| answer.get(*key).and_then(json_text))
        .ok_or_else(|| {
            ProviderError::Protocol(format!("the upload gave no job id in `{}`", snippet(body)))
        })
}

/// `{name: message}` or `{name: [messages]}` as `name: message` lines, in
/// the map's order: removit's shape for both warnings per variation and
/// validation errors per field.
fn labelled_messages(by_name: &Map<String, Value>) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, messages) in by_name {
        let messages = match messages {
            Value::Array(items) => items.iter().filter_map(json_text).collect(),
            other => json_text(other).into_iter().collect::<Vec<_>>(),
        };
        lines.extend(messages.into_iter().map(|m| format!("{name}: {m}")));
    }
    lines
}

/// The user-facing notes in a finished job: `warnings` (variation → messages)
/// and `ignored_variations`.
fn parse_warnings(answer: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    match answer.get("warnings") {
        Some(Value::Object(by_variation)) => notes.extend(labelled_messages(by_variation)),
        Some(Value::Array(items)) => notes.extend(items.iter().filter_map(json_text)),
        Some(other) => notes.extend(json_text(other)),
        None => {}
    }
    if let Some(Value::Array(ignored)) = answer.get("ignored_variations") {
        notes.extend(
            ignored
                .iter()
                .filter_map(json_text)
                .map(|v| format!("variation {v} was ignored")),
        );
    }
    notes.iter().map(|note| provider_words(note)).collect()
}

fn parse_link(link: &str) -> Result<Url, ProviderError> {
    Url::parse(link).map_err(|_| {
        ProviderError::Protocol(format!(
            "removit gave an unusable result link: {}",
            provider_words(link)
        ))
    })
}

/// The results of a finished job. With `delivery_mode=final_url` the single
/// link wins; otherwise the per-variation links do, in name order so file
/// names come out the same on every run.
fn finished(answer: &Value, options: &ProviderOptions) -> Result<PollStatus, ProviderError> {
    let extension = result_extension(options);
    let warnings = parse_warnings(answer);
    let single = answer.get("final_url").and_then(json_text);
    let mut variations: Vec<(String, String)> = match answer.get("final_urls") {
        Some(Value::Object(links)) => links
            .iter()
            .filter_map(|(name, link)| Some((name.clone(), json_text(link)?)))
            .collect(),
        _ => Vec::new(),
    };
    variations.sort();
    let wants_single = options.get("delivery_mode").map(String::as_str) == Some("final_url");

    let assets = match single {
        Some(link) if wants_single || variations.is_empty() => vec![ResultAsset {
            variation: None,
            source: AssetSource::Url(parse_link(&link)?),
            extension,
        }],
        _ => variations
            .into_iter()
            .map(|(name, link)| {
                Ok(ResultAsset {
                    variation: Some(name),
                    source: AssetSource::Url(parse_link(&link)?),
                    extension: extension.clone(),
                })
            })
            .collect::<Result<Vec<_>, ProviderError>>()?,
    };
    if assets.is_empty() {
        let mut message = "removit finished without any result".to_owned();
        if !warnings.is_empty() {
            message = format!("{message} ({})", provider_words(&warnings.join("; ")));
        }
        return Ok(PollStatus::Failed { message });
    }
    Ok(PollStatus::Done(JobResult {
        assets,
        credits_charged: None,
        warnings,
    }))
}

/// What a status answer means. `state` is the simple word (`pending`,
/// `done`); `status` the detailed step, whose list is unconfirmed, so failure
/// words are looked for in both.
fn parse_status(body: &[u8], options: &ProviderOptions) -> Result<PollStatus, ProviderError> {
    let answer = parse_answer("the status", body)?;
    let word = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default()
    };
    let (state, status) = (word("state"), word("status"));
    let is = |words: &[&str]| words.contains(&state.as_str()) || words.contains(&status.as_str());

    if is(&["failed", "error", "failure", "cancelled", "canceled"]) {
        let message = ["error", "message", "detail", "reason"]
            .iter()
            .find_map(|key| answer.get(*key).and_then(json_text))
            .map(|words| provider_words(&words))
            .unwrap_or_else(|| {
                let word = if status.is_empty() { &state } else { &status };
                format!("removit reports the job as {word} without saying why")
            });
        return Ok(PollStatus::Failed { message });
    }
    if state == "done" || is(&["done", "completed", "complete", "succeeded", "success"]) {
        return finished(&answer, options);
    }
    if state.is_empty() && status.is_empty() {
        return Err(ProviderError::Protocol(format!(
            "the status gave neither state nor status in `{}`",
            snippet(body)
        )));
    }
    let progress = answer
        .get("progress")
        .and_then(|p| p.as_f64().or_else(|| p.as_str()?.trim().parse().ok()))
        .filter(|p| p.is_finite())
        .map(|p| p.clamp(0.0, 100.0).round() as u8);
    // The detailed step says more than the simple `pending`.
    let word = if status.is_empty() { state } else { status };
    Ok(PollStatus::Pending {
        progress,
        status: Some(word),
    })
}

/// What a 404 `{"error":"not_found"}` becomes: removit's way of saying the job
/// id is unknown to this key.
const UNKNOWN_JOB: &str = "removit does not know this job (not_found)";

/// The job id the key test asks about: UUID-shaped, so it passes any format
/// check, and never issued.
const MADE_UP_JOB_ID: &str = "00000000-0000-4000-8000-00000000c0de";

/// Pulls removit's words out of an error body, so the user reads "API key
/// invalid" or "file_url: must be a valid URL" rather than a status code.
fn error_message(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let (code, error_message) = match answer.get("error") {
        Some(Value::Object(error)) => (
            error.get("code").and_then(json_text),
            error.get("message").and_then(json_text),
        ),
        Some(other) => (json_text(other), None),
        None => (None, None),
    };
    let message = error_message.or_else(|| answer.get("message").and_then(json_text));
    if let Some(Value::Object(details)) = answer.get("details") {
        let lines = labelled_messages(details);
        if !lines.is_empty() {
            return Some(lines.join("; "));
        }
    }
    match code.as_deref() {
        Some("not_found") => Some(UNKNOWN_JOB.to_owned()),
        Some("insufficient_credits") if message.is_none() => {
            Some("the removit account has insufficient credits (insufficient_credits)".to_owned())
        }
        Some(code) => Some(message.unwrap_or_else(|| code.replace('_', " "))),
        None => message,
    }
}

/// A client of one removit account.
#[derive(Debug)]
pub struct Removit {
    http: HttpClient,
    base: Url,
    /// The key as a header value marked sensitive, so it is exposed once and
    /// never printed by `Debug` or reqwest's logs.
    key: HeaderValue,
}

impl Removit {
    /// Checks the configuration: a key, and a base URL safe to send it to.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let key = config.secret_header(&INFO, "key")?;
        let base = config.endpoint("url")?;
        Ok(Removit {
            http: config.http,
            base,
            key,
        })
    }

    /// Tests the key by asking for the status of a job that does not exist,
    /// which is free: 401 means the key is refused, removit's own 404
    /// (`not_found`) means it was accepted and only the job is unknown. A
    /// 404 in other words is a wrong base URL, not a good key. A 422 also
    /// counts as accepted (*unconfirmed*: it assumes removit checks the key
    /// before it validates the id).
    pub async fn check_key(&self) -> Result<KeyCheck, ProviderError> {
        let mut url = endpoint_url(&self.base, "api/v1/status");
        url.query_pairs_mut().append_pair("job_id", MADE_UP_JOB_ID);
        let call = Call {
            what: "key check",
            replay: Replay::Always,
            error_message,
        };
        let outcome = self
            .http
            .send(call, || {
                Ok(self.authorized(self.http.api()?.get(url.clone())))
            })
            .await;
        match outcome {
            Ok(_) => Ok(KeyCheck::default()),
            Err(ProviderError::Rejected {
                status: 404,
                message,
            }) if message == UNKNOWN_JOB => Ok(KeyCheck::default()),
            Err(ProviderError::Rejected {
                status: 404,
                message,
            }) => Err(ProviderError::Config(format!(
                "removit's status route was not found ({message}); check the removit base URL"
            ))),
            Err(ProviderError::Rejected { status: 422, .. }) => Ok(KeyCheck::default()),
            Err(other) => Err(other),
        }
    }

    /// A request carrying the key.
    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        builder.header("X-API-Key", self.key.clone())
    }

    /// Uploads a local file with the options as form fields; returns the
    /// answer's body.
    async fn upload_file(
        &self,
        path: &Path,
        options: &ProviderOptions,
    ) -> Result<Bytes, ProviderError> {
        let file = InputFile::read(path).await?;
        let fields = upload_fields(options);
        let url = endpoint_url(&self.base, "api/v1/upload");
        self.http
            .send_for_json(upload_call(), || {
                let form = fields
                    .iter()
                    .fold(Form::new(), |form, (key, value)| {
                        form.text(*key, value.clone())
                    })
                    .part("file", file.part()?);
                Ok(self.authorized(self.http.api()?.post(url.clone()).multipart(form)))
            })
            .await
    }
}

fn upload_call() -> Call {
    Call {
        what: "upload",
        replay: Replay::WhenUnprocessed,
        error_message,
    }
}

#[async_trait]
impl Provider for Removit {
    fn info(&self) -> &'static ProviderInfo {
        &INFO
    }

    async fn submit(
        &self,
        request: &JobRequest,
        report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError> {
        check_combination(&request.options)?;
        report.uploading();
        let answer = match &request.input {
            JobInput::File { path, .. } => self.upload_file(path, &request.options).await?,
            JobInput::Url(source) => {
                let body = url_upload_body(source, &request.options);
                let url = endpoint_url(&self.base, "api/v1/upload");
                self.http
                    .send_for_json(upload_call(), || {
                        Ok(self.authorized(self.http.api()?.post(url.clone()).json(&body)))
                    })
                    .await?
            }
        };
        let remote_id = parse_upload_answer(&answer)?;
        report.remote_id(&remote_id);
        Ok(Submission::Accepted { remote_id })
    }

    async fn poll(
        &self,
        request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError> {
        let mut url = endpoint_url(&self.base, "api/v1/status");
        url.query_pairs_mut().append_pair("job_id", remote_id);
        let call = Call {
            what: "status",
            replay: Replay::Always,
            error_message,
        };
        let answer = self
            .http
            .send_for_json(call, || {
                Ok(self.authorized(self.http.api()?.get(url.clone())))
            })
            .await?;
        parse_status(&answer, &request.options)
    }
}

/// Runs every parser of removit's answers on `body` and returns the words
/// each would put in front of a user, for the fuzz targets
/// ([`super::fuzzing`]), so no wire type leaves this file.
pub(crate) fn parse_any(body: &[u8]) -> Vec<String> {
    let by_variation = ProviderOptions::new();
    let single = ProviderOptions::from([("delivery_mode".to_owned(), "final_url".to_owned())]);
    let mut words = super::fuzzing::outcome_words(&parse_upload_answer(body));
    for options in [&by_variation, &single] {
        words.extend(super::fuzzing::poll_words(&parse_status(body, options)));
    }
    words.push(super::http::refusal_message(
        upload_call(),
        reqwest::StatusCode::UNPROCESSABLE_ENTITY,
        body,
        &[],
    ));
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::extract::{FromRequest, Multipart, Request};
    use axum::http::StatusCode;
    use axum::response::Response as AxumResponse;

    use crate::providers::test_support::{
        Log, Recorder, config, file_input, json, options, record, request, serve,
    };

    fn links(status: &PollStatus) -> Vec<(Option<String>, String, String)> {
        let PollStatus::Done(result) = status else {
            panic!("not done: {status:?}");
        };
        result
            .assets
            .iter()
            .map(|a| {
                let AssetSource::Url(url) = &a.source else {
                    panic!()
                };
                (a.variation.clone(), url.to_string(), a.extension.clone())
            })
            .collect()
    }

    #[test]
    fn the_declared_options_check_their_values() {
        let good = options(&[
            ("mode", "params"),
            ("params", "studio shadow"),
            ("delivery_mode", "final_url"),
            ("output_format", "webp"),
        ]);
        assert!(INFO.check_options(&good).is_ok());
        assert!(INFO.check_options(&options(&[("mode", "magic")])).is_err());
        assert!(
            INFO.check_options(&options(&[("output_format", "gif")]))
                .is_err()
        );
        assert!(INFO.check_options(&options(&[("params", "  ")])).is_err());
        assert!(INFO.check_options(&options(&[("size", "full")])).is_err());
    }

    #[test]
    fn mode_params_without_a_parameter_set_is_refused() {
        let error = check_combination(&options(&[("mode", "params")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "removit mode=params needs params=<name of a saved parameter set>"
        );
        assert!(check_combination(&options(&[("mode", "params"), ("params", "set")])).is_ok());
        assert!(check_combination(&options(&[("mode", "clipping")])).is_ok());
    }

    #[test]
    fn a_url_upload_is_json_with_the_options_beside_the_link() {
        let body = url_upload_body(
            &Url::parse("https://example.com/cat.jpg").unwrap(),
            &options(&[("mode", "background"), ("output_format", "jpg")]),
        );
        assert_eq!(
            body,
            serde_json::json!({
                "file_url": "https://example.com/cat.jpg",
                "mode": "background",
                "output_format": "jpg",
            })
        );
    }

    #[test]
    fn the_upload_answer_gives_the_job_id_whatever_its_type() {
        assert_eq!(
            parse_upload_answer(br#"{"job_id": "c0ffee", "status": "queued", "mode": "clipping"}"#)
                .unwrap(),
            "c0ffee"
        );
        assert_eq!(
            parse_upload_answer(br#"{"job_id": 1234, "status": "queued"}"#).unwrap(),
            "1234"
        );
        assert!(matches!(
            parse_upload_answer(br#"{"status": "queued"}"#),
            Err(ProviderError::Protocol(_))
        ));
        assert!(matches!(
            parse_upload_answer(b"OK"),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn a_pending_job_reports_its_progress() {
        let body = br#"{"job_id":"j","status":"pending_compose","state":"pending","mode":"params","progress":33,"final_url":null}"#;
        assert!(matches!(
            parse_status(body, &ProviderOptions::new()).unwrap(),
            PollStatus::Pending { progress: Some(33), status: Some(ref word) } if word == "pending_compose"
        ));
        let queued = br#"{"job_id":"j","status":"queued"}"#;
        assert!(matches!(
            parse_status(queued, &ProviderOptions::new()).unwrap(),
            PollStatus::Pending { progress: None, status: Some(ref word) } if word == "queued"
        ));
        let odd = br#"{"status":"pending_clip","state":"pending","progress":"250.4"}"#;
        assert!(matches!(
            parse_status(odd, &ProviderOptions::new()).unwrap(),
            PollStatus::Pending {
                progress: Some(100),
                ..
            }
        ));
    }

    #[test]
    fn a_job_done_with_final_url_has_one_asset() {
        let body = br#"{"job_id":"j","status":"done","state":"done","progress":100,"final_url":"https://cdn.removit.eu/r/j.jpg"}"#;
        let status = parse_status(
            body,
            &options(&[("delivery_mode", "final_url"), ("output_format", "jpeg")]),
        )
        .unwrap();
        assert_eq!(
            links(&status),
            [(
                None,
                "https://cdn.removit.eu/r/j.jpg".to_owned(),
                "jpg".to_owned()
            )]
        );
    }

    #[test]
    fn a_job_done_with_variations_has_one_asset_each_in_name_order_and_passes_warnings_on() {
        let body = br#"{
            "job_id": "j", "status": "done", "state": "done", "progress": 100, "final_url": null,
            "final_urls": {
                "shadowTop": "https://cdn.removit.eu/r/j-shadowTop.png",
                "compose": "https://cdn.removit.eu/r/j-compose.png",
                "background": "https://cdn.removit.eu/r/j-background.png",
                "shadow_wall": null
            },
            "warnings": {"shadow_wall": ["params not provided"], "compose": "low resolution"},
            "ignored_variations": ["shadow_wall"]
        }"#;
        let status = parse_status(body, &ProviderOptions::new()).unwrap();
        let png = |v: &str| {
            (
                Some(v.to_owned()),
                format!("https://cdn.removit.eu/r/j-{v}.png"),
                "png".to_owned(),
            )
        };
        assert_eq!(
            links(&status),
            [png("background"), png("compose"), png("shadowTop")]
        );
        let PollStatus::Done(result) = status else {
            unreachable!()
        };
        assert_eq!(
            result.warnings,
            [
                "compose: low resolution",
                "shadow_wall: params not provided",
                "variation shadow_wall was ignored",
            ]
        );
    }

    #[test]
    fn a_done_job_without_any_link_fails_with_its_warnings() {
        let body = br#"{"status":"done","state":"done","final_url":null,"final_urls":{},"ignored_variations":["shadow_wall"]}"#;
        match parse_status(body, &ProviderOptions::new()).unwrap() {
            PollStatus::Failed { message } => {
                assert_eq!(
                    message,
                    "removit finished without any result (variation shadow_wall was ignored)"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_job_carries_removits_words_or_says_it_failed() {
        let cases = [
            (
                r#"{"status":"failed","state":"done","error":"no subject found"}"#,
                "no subject found",
            ),
            (
                r#"{"status":"error","message":"compose failed"}"#,
                "compose failed",
            ),
            (
                r#"{"status":"failed"}"#,
                "removit reports the job as failed without saying why",
            ),
            (
                r#"{"state":"error"}"#,
                "removit reports the job as error without saying why",
            ),
        ];
        for (body, expected) in cases {
            match parse_status(body.as_bytes(), &ProviderOptions::new()).unwrap() {
                PollStatus::Failed { message } => assert_eq!(message, expected, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_status_without_state_or_status_is_a_protocol_error() {
        assert!(matches!(
            parse_status(br#"{"job_id":"j"}"#, &ProviderOptions::new()),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn error_bodies_give_removits_words() {
        let message = |body: &str| error_message(body.as_bytes());
        assert_eq!(
            message(r#"{"error":"unauthorized","message":"API key invalid"}"#).as_deref(),
            Some("API key invalid")
        );
        assert_eq!(
            message(r#"{"error":"insufficient_credits"}"#).as_deref(),
            Some("the removit account has insufficient credits (insufficient_credits)")
        );
        assert_eq!(
            message(r#"{"error":"not_found"}"#).as_deref(),
            Some("removit does not know this job (not_found)")
        );
        assert_eq!(
            message(r#"{"error":"validation","details":{"file":["exactly one of file and file_url"],"job_id":["is missing","must be a uuid"]}}"#).as_deref(),
            Some("file: exactly one of file and file_url; job_id: is missing; job_id: must be a uuid")
        );
        assert_eq!(
            message(r#"{"error":"rate_limited"}"#).as_deref(),
            Some("rate limited")
        );
        assert_eq!(message("Internal Server Error"), None);
    }

    // --- the client against a small fake of the API ---

    const KEY: &str = "test-key";

    async fn fake(request: Request, seen: Log) -> AxumResponse {
        let (parts, body) = request.into_parts();
        record(&parts, &seen);
        if parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "unauthorized", "message": "API key invalid"}),
            );
        }
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match (parts.method.as_str(), parts.uri.path()) {
            ("POST", "/api/v1/upload") if content_type.starts_with("multipart/form-data") => {
                let mut form = Multipart::from_request(Request::from_parts(parts, body), &())
                    .await
                    .unwrap();
                let mut fields = Vec::new();
                while let Some(field) = form.next_field().await.unwrap() {
                    let name = field.name().unwrap_or_default().to_owned();
                    let meta = format!("{:?} {:?}", field.file_name(), field.content_type());
                    let bytes = field.bytes().await.unwrap();
                    fields.push(if name == "file" {
                        format!("file {meta} {} bytes", bytes.len())
                    } else {
                        format!("{name}={}", String::from_utf8_lossy(&bytes))
                    });
                }
                assert_eq!(
                    fields,
                    [
                        "mode=clipping",
                        "output_format=webp",
                        r#"file Some("cat.jpg") Some("image/jpeg") 3 bytes"#
                    ]
                );
                json(
                    StatusCode::CREATED,
                    serde_json::json!({"job_id": "job-7", "status": "queued", "mode": "clipping"}),
                )
            }
            ("POST", "/api/v1/upload") => {
                assert!(
                    content_type.starts_with("application/json"),
                    "{content_type}"
                );
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let sent: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(
                    sent,
                    serde_json::json!({"file_url": "https://example.com/cat.jpg", "delivery_mode": "final_url"})
                );
                json(
                    StatusCode::ACCEPTED,
                    serde_json::json!({"job_id": "job-8", "status": "queued", "mode": "clipping"}),
                )
            }
            ("GET", "/api/v1/status") if parts.uri.query() == Some("job_id=job-7") => {
                let polls = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.starts_with("GET /api/v1/status"))
                    .count();
                if polls < 2 {
                    json(
                        StatusCode::OK,
                        serde_json::json!({"job_id": "job-7", "status": "pending_compose", "state": "pending", "progress": 33, "final_url": null}),
                    )
                } else {
                    json(
                        StatusCode::OK,
                        serde_json::json!({
                            "job_id": "job-7", "status": "done", "state": "done", "progress": 100, "final_url": null,
                            "final_urls": {"clipping": "https://cdn.example/job-7/clipping.webp", "compose": "https://cdn.example/job-7/compose.webp"},
                            "warnings": {"shadow_wall": ["params not provided"]},
                            "ignored_variations": ["shadow_wall"]
                        }),
                    )
                }
            }
            ("GET", "/api/v1/status") => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found"}),
            ),
            ("GET", "/elsewhere/api/v1/status") => {
                axum::response::IntoResponse::into_response((StatusCode::NOT_FOUND, "Not Found"))
            }
            _ => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not_found"}),
            ),
        }
    }

    async fn start_fake() -> (Url, Log) {
        let seen = Log::default();
        let s = seen.clone();
        let app = axum::Router::new().fallback(move |request: Request| fake(request, s.clone()));
        (serve(app).await, seen)
    }

    fn client(base: &Url, key: &str) -> Removit {
        Removit::new(config(&[("url", base)], &[("key", key)])).unwrap()
    }

    fn cat_file(dir: &tempfile::TempDir) -> JobInput {
        file_input(dir, "cat.jpg", b"\xff\xd8\xff")
    }

    #[tokio::test]
    async fn a_file_is_uploaded_with_its_options_then_polled_to_its_variations() {
        let (base, seen) = start_fake().await;
        let provider = client(&base, KEY);
        let dir = tempfile::tempdir().unwrap();
        let request = request(
            &INFO,
            cat_file(&dir),
            &[("mode", "clipping"), ("output_format", "webp")],
        );
        let report = Recorder::default();

        let submission = provider.submit(&request, &report).await.unwrap();
        assert!(matches!(&submission, Submission::Accepted { remote_id } if remote_id == "job-7"));
        assert_eq!(*report.0.lock().unwrap(), ["uploading", "remote_id job-7"]);

        assert!(matches!(
            provider.poll(&request, "job-7").await.unwrap(),
            PollStatus::Pending {
                progress: Some(33),
                ..
            }
        ));
        let done = provider.poll(&request, "job-7").await.unwrap();
        assert_eq!(
            links(&done),
            [
                (
                    Some("clipping".to_owned()),
                    "https://cdn.example/job-7/clipping.webp".to_owned(),
                    "webp".to_owned()
                ),
                (
                    Some("compose".to_owned()),
                    "https://cdn.example/job-7/compose.webp".to_owned(),
                    "webp".to_owned()
                ),
            ]
        );
        let PollStatus::Done(result) = done else {
            unreachable!()
        };
        assert_eq!(
            result.warnings,
            [
                "shadow_wall: params not provided",
                "variation shadow_wall was ignored"
            ]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "POST /api/v1/upload",
                "GET /api/v1/status?job_id=job-7",
                "GET /api/v1/status?job_id=job-7"
            ]
        );
    }

    #[tokio::test]
    async fn a_url_is_sent_as_json() {
        let (base, _) = start_fake().await;
        let provider = client(&base, KEY);
        let request = request(
            &INFO,
            JobInput::Url(Url::parse("https://example.com/cat.jpg").unwrap()),
            &[("delivery_mode", "final_url")],
        );
        let submission = provider
            .submit(&request, &Recorder::default())
            .await
            .unwrap();
        assert!(matches!(submission, Submission::Accepted { remote_id } if remote_id == "job-8"));
    }

    #[tokio::test]
    async fn mode_params_without_params_fails_before_any_request() {
        let (base, seen) = start_fake().await;
        let provider = client(&base, KEY);
        let dir = tempfile::tempdir().unwrap();
        let request = request(&INFO, cat_file(&dir), &[("mode", "params")]);
        let report = Recorder::default();
        let error = provider.submit(&request, &report).await.unwrap_err();
        assert!(matches!(error, ProviderError::Config(_)), "{error:?}");
        assert!(seen.lock().unwrap().is_empty());
        assert!(report.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_key_and_an_unknown_job_say_what_removit_said() {
        let (base, _) = start_fake().await;
        let dir = tempfile::tempdir().unwrap();
        let request = request(&INFO, cat_file(&dir), &[]);
        let error = client(&base, "wrong")
            .submit(&request, &Recorder::default())
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the API key was refused, check your key: API key invalid"
        );
        let error = client(&base, KEY)
            .poll(&request, "job-unknown")
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Rejected { status: 404, .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .ends_with("removit does not know this job (not_found)"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_key_test_asks_about_a_made_up_job_and_an_unknown_job_means_the_key_is_fine() {
        let (base, seen) = start_fake().await;
        let check = client(&base, KEY).check_key().await.unwrap();
        assert_eq!(check, KeyCheck::default());
        assert_eq!(
            *seen.lock().unwrap(),
            ["GET /api/v1/status?job_id=00000000-0000-4000-8000-00000000c0de"]
        );
    }

    #[tokio::test]
    async fn a_refused_key_fails_the_key_test_as_unauthorized() {
        let (base, _) = start_fake().await;
        let error = client(&base, "wrong").check_key().await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the API key was refused, check your key: API key invalid"
        );
    }

    #[tokio::test]
    async fn a_404_that_is_not_removits_own_means_a_wrong_base_url_not_a_good_key() {
        let (base, _) = start_fake().await;
        let elsewhere = base.join("elsewhere/").unwrap();
        let error = client(&elsewhere, KEY).check_key().await.unwrap_err();
        assert!(matches!(error, ProviderError::Config(_)), "{error:?}");
        assert!(error.to_string().contains("base URL"), "{error}");
    }
}
