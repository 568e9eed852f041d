//! Uploadcare's Remove.bg add-on (PROVIDERS.md §1).
//!
//! The add-on only works on files already in an Uploadcare project, so a job
//! takes three hops: the input goes into the project (uploaded, or fetched by
//! Uploadcare from its URL), the add-on runs on that file, and its result — a
//! new file in the project — is fetched from the CDN. REST calls use the signed
//! scheme, so the secret key itself never leaves this machine, and uploads are
//! made with `store=0`, so Uploadcare deletes the copies of the inputs within a
//! day instead of keeping them in the user's storage.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE};
use reqwest::multipart::Form;
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::Sha256;
use url::Url;

use super::http::{
    InputFile, endpoint_url, parse_answer, provider_words, sensitive_header, snippet,
};
use super::removebg_params::{
    validate_crop_margin, validate_position, validate_roi, validate_scale,
};
use super::*;

/// The REST API version Cutout speaks; a missing or different one gets 406.
const ACCEPT_V07: &str = "application/vnd.uploadcare-v0.7+json";
/// Sent on every REST call, GETs included, because it is part of the signature.
const JSON: &str = "application/json";
/// How long an upload signature stays valid: long enough for a slow upload of
/// a large file, short enough that a leaked form is soon useless.
const UPLOAD_SIGNATURE_LIFETIME_SECS: u64 = 30 * 60;
/// How long Uploadcare may take to fetch an input URL before the job fails,
/// unless the user set a deadline of their own (`CUTOUT_POLL_DEADLINE_SECS`).
const FROM_URL_DEADLINE_SECS: u64 = 120;
/// First wait between checks of a URL fetch; most fetches finish in seconds.
const FROM_URL_FIRST_WAIT_MILLIS: u64 = 500;
/// Longest wait between checks of a URL fetch.
const FROM_URL_MAX_WAIT_MILLIS: u64 = 2000;

/// Uploadcare's description. The options are the add-on's `params`, typed so
/// that bad values are refused before anything is uploaded (each upload uses
/// the user's storage and each run costs an add-on credit).
pub static INFO: ProviderInfo = ProviderInfo {
    id: ProviderId::Uploadcare,
    name: "Uploadcare (Remove.bg add-on)",
    summary: "remove.bg's model billed through an Uploadcare project; needs its public and secret keys",
    models: &[ModelInfo {
        id: "remove_bg",
        summary: "remove.bg's model, run by Uploadcare on a copy of the input in your project",
    }],
    options: &[
        OptionSpec {
            key: "crop",
            kind: OptionKind::Bool,
            help: "crop off the empty space around the subject",
        },
        OptionSpec {
            key: "crop_margin",
            kind: OptionKind::Text {
                example: "30px",
                validate: validate_crop_margin,
            },
            help: "margin kept around a cropped subject, in pixels (30px) or percent of the subject (10%)",
        },
        OptionSpec {
            key: "scale",
            kind: OptionKind::Text {
                example: "80%",
                validate: validate_scale,
            },
            help: "size of the subject relative to the image, 10% to 100%, or original",
        },
        OptionSpec {
            key: "add_shadow",
            kind: OptionKind::Bool,
            help: "add an artificial shadow under the subject",
        },
        OptionSpec {
            key: "type_level",
            kind: OptionKind::Choice {
                values: &["none", "1", "2", "latest"],
            },
            help: "how finely the foreground type is classified",
        },
        OptionSpec {
            key: "type",
            kind: OptionKind::Choice {
                values: &["auto", "person", "product", "car"],
            },
            help: "what the foreground is; auto detects it",
        },
        OptionSpec {
            key: "semitransparency",
            kind: OptionKind::Bool,
            help: "keep see-through parts such as car windows see-through (default true)",
        },
        OptionSpec {
            key: "channels",
            kind: OptionKind::Choice {
                values: &["rgba", "alpha"],
            },
            help: "rgba for the cut-out, alpha for the mask only",
        },
        OptionSpec {
            key: "roi",
            kind: OptionKind::Text {
                example: "0% 0% 100% 100%",
                validate: validate_roi,
            },
            help: "region of interest `x1 y1 x2 y2` in px or %; everything outside it is removed",
        },
        OptionSpec {
            key: "position",
            kind: OptionKind::Text {
                example: "center",
                validate: validate_position,
            },
            help: "where the subject goes: original, center, or `x%` / `x% y%`",
        },
    ],
    accepts: &[InputKind::ImageFile, InputKind::ImageUrl],
    credentials: &[
        CredentialSpec {
            id: "public_key",
            label: "public key",
            env_var: "CUTOUT_UPLOADCARE_PUBLIC_KEY",
        },
        CredentialSpec {
            id: "secret_key",
            label: "secret key",
            env_var: "CUTOUT_UPLOADCARE_SECRET_KEY",
        },
    ],
    endpoints: &[
        EndpointSpec {
            id: "api_url",
            env_var: "CUTOUT_UPLOADCARE_API_URL",
            default: Some("https://api.uploadcare.com"),
        },
        EndpointSpec {
            id: "upload_url",
            env_var: "CUTOUT_UPLOADCARE_UPLOAD_URL",
            default: Some("https://upload.uploadcare.com"),
        },
        EndpointSpec {
            id: "cdn_url",
            env_var: "CUTOUT_UPLOADCARE_CDN_URL",
            default: None,
        },
    ],
    default_concurrency: 4,
    has_health_check: false,
    runs_on_this_machine: false,
    poll_deadline_secs: 600,
    // The 100 MB upload limit is in PROVIDERS.md §1b. The add-on runs
    // remove.bg, so its 25 megapixels and JPEG/PNG/WebP are assumed
    // (unconfirmed).
    input_limits: super::InputLimits {
        max_file_bytes: Some(100_000_000),
        max_pixels: Some(25_000_000),
        max_side_px: None,
        image_formats: &[
            crate::imaging::decode::SourceFormat::Jpeg,
            crate::imaging::decode::SourceFormat::Png,
            crate::imaging::decode::SourceFormat::Webp,
        ],
        confirmed: false,
    },
};

/// The signature of the signed REST scheme (PROVIDERS.md §1a): lowercase hex
/// HMAC-SHA1, keyed by the secret key, of the method, the body's MD5, the
/// content type, the `Date` header and the request URI, one per line. Public
/// so the fake servers in the tests can check what the client sends.
pub fn rest_signature(
    secret: &str,
    method: &str,
    body: &[u8],
    content_type: &str,
    date: &str,
    uri: &str,
) -> String {
    let body_md5 = hex::encode(Md5::digest(body));
    let message = [method, &body_md5, content_type, date, uri].join("\n");
    hmac_hex::<Hmac<Sha1>>(secret.as_bytes(), message.as_bytes())
}

/// The signature of a signed upload (PROVIDERS.md §1b): lowercase hex
/// HMAC-SHA256 of the expiry time, keyed by the secret key. Projects that
/// require signed uploads refuse uploads without it; others ignore it.
pub fn upload_signature(secret: &str, expire: u64) -> String {
    hmac_hex::<Hmac<Sha256>>(secret.as_bytes(), expire.to_string().as_bytes())
}

/// The subdomain of a project's own CDN (`<prefix>.ucarecd.net`): the first
/// ten base-36 digits of SHA-256(public key) read as a big-endian integer.
/// Used only when the REST API does not say where a result is.
pub fn cdn_prefix(public_key: &str) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number = Sha256::digest(public_key.as_bytes()).to_vec();
    // Least significant digit first, by long division of the bytes by 36.
    let mut digits = Vec::new();
    while number.iter().any(|&byte| byte != 0) {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 36) as u8;
            remainder = value % 36;
        }
        digits.push(DIGITS[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits
        .iter()
        .rev()
        .take(10)
        .map(|&d| char::from(d))
        .collect()
}

fn hmac_hex<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> String {
    // HMAC hashes long keys and pads short ones, so no key length is refused.
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The add-on's request: the file to work on and the options the user set, in
/// [`INFO`]'s order. Booleans go as JSON booleans, everything else as strings.
/// Keys Uploadcare does not take (remove.bg's `size`, `format`, …) are never
/// sent, even if they somehow got past option checking.
fn execute_body(target: &str, options: &ProviderOptions) -> Value {
    let mut params = Map::new();
    for spec in INFO.options {
        let Some(value) = options.get(spec.key) else {
            continue;
        };
        let value = match spec.kind {
            OptionKind::Bool => Value::Bool(value == "true"),
            OptionKind::Choice { .. } | OptionKind::Text { .. } => Value::String(value.clone()),
        };
        params.insert(spec.key.to_owned(), value);
    }
    serde_json::json!({ "target": target, "params": params })
}

/// `path?query` of a URL, exactly as the request line will carry it, which is
/// what the signature covers.
fn request_uri(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Seconds since the Unix epoch.
fn unix_now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an id from an answer is safe to put into a URL path.
fn is_plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A non-empty string field.
fn string_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The most specific words in a loosely specified error value: a string, or an
/// object's `message`/`content`/`detail`/`error`/`title`, looked for depth
/// first; the first element of an array. Cut to a readable length (the
/// public key and the per-request signature are all an error could quote,
/// so a cut through them reveals nothing secret).
fn words_in(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(provider_words(s)),
        Value::Object(map) => ["message", "content", "detail", "error", "title", "reason"]
            .iter()
            .filter_map(|key| map.get(*key))
            .find_map(words_in),
        Value::Array(items) => items.iter().find_map(words_in),
        _ => None,
    }
}

/// Pulls the message out of a REST error body: `{"detail": "..."}`, or
/// anything resembling the upload API's shape.
fn rest_error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("detail")
        .and_then(words_in)
        .or_else(|| words_in(&value))
}

/// Pulls the message out of an upload API error body: `{"error": {"content":
/// ...}}` with `jsonerrors=1`, else the plain text (`[HTTP 403] UPLOADCARE_PUB_KEY
/// is required.`) without its status prefix, which the error already gives.
fn upload_error_message(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return value
            .get("error")
            .and_then(words_in)
            .or_else(|| words_in(&value));
    }
    let text = snippet(body);
    if text.is_empty() || text.starts_with('<') {
        return None;
    }
    let text = match text.strip_prefix("[HTTP ") {
        Some(rest) => rest
            .split_once("] ")
            .map_or(text.as_str(), |(_, message)| message),
        None => text.as_str(),
    };
    Some(text.to_owned())
}

/// The failure an upload API `error` object stands for, whatever the HTTP
/// status it came with (the docs do not say whether it is 200).
fn upload_failure(answer: &Value, http_status: u16) -> Option<ProviderError> {
    let error = answer.get("error").filter(|e| !e.is_null())?;
    let message = words_in(error).unwrap_or_else(|| "the upload was refused".to_owned());
    let code = string_field(error, "error_code").unwrap_or_default();
    let status = error
        .get("status_code")
        .and_then(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok()))
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(http_status);
    let auth_words = ["Signature", "PublicKey", "PubKey", "Auth", "AccountBlocked"];
    Some(match code {
        "RequestThrottledError" => ProviderError::RateLimited { attempts: 1 },
        "AccountUnpaidError" | "AccountLimitsExceededError" => {
            ProviderError::OutOfCredits { message }
        }
        _ if auth_words.iter().any(|w| code.contains(w)) || matches!(status, 401 | 403) => {
            ProviderError::Unauthorized { message }
        }
        _ => ProviderError::Rejected {
            // An error reported under a success status is still a refusal.
            status: if (200..300).contains(&status) {
                400
            } else {
                status
            },
            message,
        },
    })
}

/// The uuid of an uploaded file from `POST /base/`'s answer.
fn parse_base_answer(body: &[u8]) -> Result<String, ProviderError> {
    let answer = parse_answer("the upload", body)?;
    if let Some(error) = upload_failure(&answer, 200) {
        return Err(error);
    }
    string_field(&answer, "file")
        .filter(|id| is_plausible_id(id))
        .map(str::to_owned)
        .ok_or_else(|| {
            ProviderError::Protocol(format!("the upload named no file in `{}`", snippet(body)))
        })
}

/// What `POST /from_url/` started.
#[derive(Debug, PartialEq)]
enum FromUrl {
    /// A fetch to follow with this token.
    Token(String),
    /// The file is already there (Uploadcare can answer with a duplicate's
    /// info straight away).
    File(String),
}

fn parse_from_url_answer(body: &[u8]) -> Result<FromUrl, ProviderError> {
    let answer = parse_answer("the URL upload", body)?;
    if let Some(error) = upload_failure(&answer, 200) {
        return Err(error);
    }
    if let Some(token) = string_field(&answer, "token") {
        return Ok(FromUrl::Token(token.to_owned()));
    }
    match string_field(&answer, "uuid").or_else(|| string_field(&answer, "file_id")) {
        Some(uuid) if is_plausible_id(uuid) => Ok(FromUrl::File(uuid.to_owned())),
        _ => Err(ProviderError::Protocol(format!(
            "the URL upload gave no token in `{}`",
            snippet(body)
        ))),
    }
}

/// How a URL fetch is doing; failures come back as errors.
#[derive(Debug, PartialEq)]
enum FetchStatus {
    /// Still fetching; Uploadcare's word for it.
    Waiting(String),
    Done(String),
}

fn parse_from_url_status(body: &[u8]) -> Result<FetchStatus, ProviderError> {
    let answer = parse_answer("the URL upload status", body)?;
    match string_field(&answer, "status") {
        Some("success") => {
            match string_field(&answer, "uuid").or_else(|| string_field(&answer, "file_id")) {
                Some(uuid) if is_plausible_id(uuid) => Ok(FetchStatus::Done(uuid.to_owned())),
                _ => Err(ProviderError::Protocol(format!(
                    "the URL upload succeeded but named no file in `{}`",
                    snippet(body)
                ))),
            }
        }
        Some("error") => {
            let why = answer
                .get("error")
                .and_then(words_in)
                .unwrap_or_else(|| "no reason given".to_owned());
            Err(ProviderError::RemoteFailed(format!(
                "Uploadcare could not fetch the input URL: {why}"
            )))
        }
        // `unknown` may be a token not yet visible to every server: keep
        // asking until the deadline rather than failing at once.
        Some(word) => Ok(FetchStatus::Waiting(word.to_owned())),
        None => match upload_failure(&answer, 200) {
            Some(error) => Err(error),
            None => Err(ProviderError::Protocol(format!(
                "the URL upload status gave no status in `{}`",
                snippet(body)
            ))),
        },
    }
}

/// What the add-on's status call says.
#[derive(Debug, PartialEq)]
enum ExecuteStatus {
    /// Still working; the add-on's word for it.
    Working(String),
    Done {
        file_id: String,
    },
    Failed(String),
}

fn parse_execute_answer(body: &[u8]) -> Result<String, ProviderError> {
    let answer = parse_answer("the Remove.bg add-on", body)?;
    string_field(&answer, "request_id")
        .map(str::to_owned)
        .ok_or_else(|| {
            ProviderError::Protocol(format!(
                "the Remove.bg add-on gave no request id in `{}`",
                snippet(body)
            ))
        })
}

fn parse_execute_status(body: &[u8]) -> Result<ExecuteStatus, ProviderError> {
    let answer = parse_answer("the Remove.bg add-on status", body)?;
    let Some(status) = string_field(&answer, "status") else {
        return Err(ProviderError::Protocol(format!(
            "the Remove.bg add-on status gave no status in `{}`",
            snippet(body)
        )));
    };
    match status {
        "done" | "success" | "completed" => {
            let file_id = answer
                .get("result")
                .and_then(|r| string_field(r, "file_id").or_else(|| string_field(r, "uuid")));
            match file_id {
                Some(id) if is_plausible_id(id) => Ok(ExecuteStatus::Done {
                    file_id: id.to_owned(),
                }),
                _ => Err(ProviderError::Protocol(format!(
                    "the Remove.bg add-on finished but named no result file in `{}`",
                    snippet(body)
                ))),
            }
        }
        "error" | "failed" | "failure" => {
            // The shape of an error body is unconfirmed: take the first words
            // found anywhere plausible.
            let message = ["error", "detail", "message", "reason", "result"]
                .iter()
                .filter_map(|key| answer.get(*key))
                .find_map(words_in)
                .unwrap_or_else(|| "the Remove.bg add-on failed without saying why".to_owned());
            Ok(ExecuteStatus::Failed(message))
        }
        "unknown" => Ok(ExecuteStatus::Failed(
            "Uploadcare does not know this request; it may have expired".to_owned(),
        )),
        other => {
            tracing::debug!(status = other, "Remove.bg add-on still working");
            Ok(ExecuteStatus::Working(other.to_owned()))
        }
    }
}

/// Where `GET /files/<id>/` says the file is; `None` when it does not say.
fn parse_file_info(body: &[u8]) -> Result<Option<Url>, ProviderError> {
    let answer = parse_answer("the file info", body)?;
    let Some(link) = string_field(&answer, "original_file_url") else {
        return Ok(None);
    };
    Url::parse(link).map(Some).map_err(|_| {
        ProviderError::Protocol(format!(
            "the file info gave an unusable link: {}",
            provider_words(link)
        ))
    })
}

/// A client of one Uploadcare project.
#[derive(Debug)]
pub struct Uploadcare {
    http: HttpClient,
    api_url: Url,
    upload_url: Url,
    /// A CDN to build result links on without asking the REST API (a proxy,
    /// a custom CDN domain, or a test fake).
    cdn_url: Option<Url>,
    public_key: SecretString,
    secret_key: SecretString,
}

impl Uploadcare {
    /// Checks the configuration: both keys present, and base URLs that are
    /// safe to send them to.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        // The public key goes into every `Authorization` header: one no header
        // can carry fails now, naming its variable, not on the first call.
        config.secret_header(&INFO, "public_key")?;
        let public_key = config.credential(&INFO, "public_key")?.clone();
        let secret_key = config.credential(&INFO, "secret_key")?.clone();
        Ok(Uploadcare {
            api_url: config.endpoint("api_url")?,
            upload_url: config.endpoint("upload_url")?,
            cdn_url: config.optional_endpoint("cdn_url")?,
            http: config.http,
            public_key,
            secret_key,
        })
    }

    /// A REST request signed now; called again for every attempt so the
    /// `Date` stays within the server's 15-minute window.
    fn signed(
        &self,
        method: &Method,
        url: &Url,
        body: &Bytes,
    ) -> Result<RequestBuilder, ProviderError> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let signature = rest_signature(
            self.secret_key.expose_secret(),
            method.as_str(),
            body,
            JSON,
            &date,
            &request_uri(url),
        );
        let authorization = sensitive_header(
            &format!("Uploadcare {}:{signature}", self.public_key.expose_secret()),
            || "the Uploadcare public key has characters that cannot be sent; check it".to_owned(),
        )?;
        let mut builder = self
            .http
            .api()?
            .request(method.clone(), url.clone())
            .header(ACCEPT, ACCEPT_V07)
            .header(CONTENT_TYPE, JSON)
            .header(DATE, date)
            .header(AUTHORIZATION, authorization);
        if !body.is_empty() {
            builder = builder.body(body.clone());
        }
        Ok(builder)
    }

    /// Sends a signed REST call and returns its body.
    async fn rest(
        &self,
        call: Call,
        method: Method,
        url: &Url,
        body: Bytes,
    ) -> Result<Bytes, ProviderError> {
        self.http
            .send_for_json(call, || self.signed(&method, url, &body))
            .await
    }

    /// The upload form's credentials: the public key, and a signature valid
    /// for the next half hour.
    fn upload_form(&self, public_key_field: &'static str) -> Form {
        let expire = unix_now_secs() + UPLOAD_SIGNATURE_LIFETIME_SECS;
        let signature = upload_signature(self.secret_key.expose_secret(), expire);
        Form::new()
            .text(public_key_field, self.public_key.expose_secret().to_owned())
            .text("signature", signature)
            .text("expire", expire.to_string())
    }

    /// Posts a form built by `form` (called per attempt) to the upload API
    /// route `path`, asking for errors as JSON; returns the answer. Each
    /// upload stores a file, so it is repeated only when surely not received.
    async fn post_upload(
        &self,
        what: &'static str,
        path: &str,
        form: impl Fn() -> Result<Form, ProviderError>,
    ) -> Result<Bytes, ProviderError> {
        let mut url = endpoint_url(&self.upload_url, path);
        url.set_query(Some("jsonerrors=1"));
        let call = Call {
            what,
            replay: Replay::WhenUnprocessed,
            error_message: upload_error_message,
        };
        self.http
            .send_for_json(call, || {
                Ok(self.http.api()?.post(url.clone()).multipart(form()?))
            })
            .await
    }

    /// Puts a local file into the project; returns its uuid.
    async fn upload_file(&self, path: &Path) -> Result<String, ProviderError> {
        let file = InputFile::read(path).await?;
        let answer = self
            .post_upload("upload", "base/", || {
                Ok(self
                    .upload_form("UPLOADCARE_PUB_KEY")
                    .text("UPLOADCARE_STORE", "0")
                    .part("file", file.part()?))
            })
            .await?;
        parse_base_answer(&answer)
    }

    /// Has Uploadcare fetch an image URL into the project and waits for it,
    /// up to `deadline` when the user set one; returns the file's uuid.
    async fn upload_from_url(
        &self,
        source: &Url,
        deadline: Option<Duration>,
    ) -> Result<String, ProviderError> {
        let answer = self
            .post_upload("URL upload", "from_url/", || {
                Ok(self
                    .upload_form("pub_key")
                    .text("source_url", source.to_string())
                    .text("store", "0"))
            })
            .await?;
        let token = match parse_from_url_answer(&answer)? {
            FromUrl::File(uuid) => return Ok(uuid),
            FromUrl::Token(token) => token,
        };

        let mut status_url = endpoint_url(&self.upload_url, "from_url/status/");
        status_url
            .query_pairs_mut()
            .append_pair("token", &token)
            .append_pair("jsonerrors", "1");
        let call = Call {
            what: "URL upload status",
            replay: Replay::Always,
            error_message: upload_error_message,
        };
        let span = deadline.unwrap_or(Duration::from_secs(FROM_URL_DEADLINE_SECS));
        let deadline = Instant::now() + span;
        let mut wait = Duration::from_millis(FROM_URL_FIRST_WAIT_MILLIS).min(span);
        loop {
            tokio::time::sleep(wait).await;
            let answer = self
                .http
                .send_for_json(call, || Ok(self.http.api()?.get(status_url.clone())))
                .await?;
            let word = match parse_from_url_status(&answer)? {
                FetchStatus::Done(uuid) => return Ok(uuid),
                FetchStatus::Waiting(word) => word,
            };
            if Instant::now() >= deadline {
                return Err(ProviderError::Deadline {
                    secs: span.as_secs(),
                    last_status: Some(word),
                });
            }
            wait = (wait * 3 / 2).min(Duration::from_millis(FROM_URL_MAX_WAIT_MILLIS));
        }
    }

    /// Tests both keys with the cheapest signed REST call, a listing of at
    /// most one stored file (`GET /files/?limit=1&stored=true`, the call of
    /// the documented signature example). It changes nothing; a wrong public
    /// key or a wrong secret key (a bad signature) is 401. The project's
    /// file count, when given, becomes the detail.
    pub async fn check_key(&self) -> Result<KeyCheck, ProviderError> {
        let mut url = endpoint_url(&self.api_url, "files/");
        url.query_pairs_mut()
            .append_pair("limit", "1")
            .append_pair("stored", "true");
        let call = Call {
            what: "file listing",
            replay: Replay::Always,
            error_message: rest_error_message,
        };
        let body = self.rest(call, Method::GET, &url, Bytes::new()).await?;
        let answer = parse_answer("the file listing", &body)?;
        let detail = answer
            .get("total")
            .and_then(Value::as_u64)
            .map(|total| match total {
                1 => "1 stored file in the project".to_owned(),
                n => format!("{n} stored files in the project"),
            });
        Ok(KeyCheck { detail })
    }

    /// Where to download a result file: the configured CDN, else where the
    /// REST API says, else the project's own CDN.
    async fn result_url(&self, file_id: &str) -> Result<Url, ProviderError> {
        if let Some(cdn) = &self.cdn_url {
            return Ok(endpoint_url(cdn, &format!("{file_id}/")));
        }
        let url = endpoint_url(&self.api_url, &format!("files/{file_id}/"));
        let call = Call {
            what: "file info",
            replay: Replay::Always,
            error_message: rest_error_message,
        };
        let body = self.rest(call, Method::GET, &url, Bytes::new()).await?;
        if let Some(link) = parse_file_info(&body)? {
            return Ok(link);
        }
        let prefix = cdn_prefix(self.public_key.expose_secret());
        Url::parse(&format!("https://{prefix}.ucarecd.net/{file_id}/"))
            .map_err(|e| ProviderError::Protocol(format!("cannot build the result link: {e}")))
    }
}

#[async_trait]
impl Provider for Uploadcare {
    fn info(&self) -> &'static ProviderInfo {
        &INFO
    }

    async fn submit(
        &self,
        request: &JobRequest,
        report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError> {
        report.uploading();
        let target = match &request.input {
            JobInput::File { path, .. } => self.upload_file(path).await?,
            JobInput::Url(url) => self.upload_from_url(url, report.poll_deadline()).await?,
        };
        let body = Bytes::from(execute_body(&target, &request.options).to_string());
        let url = endpoint_url(&self.api_url, "addons/remove_bg/execute/");
        let call = Call {
            what: "Remove.bg add-on",
            replay: Replay::WhenUnprocessed,
            error_message: rest_error_message,
        };
        let answer = self.rest(call, Method::POST, &url, body).await?;
        let remote_id = parse_execute_answer(&answer)?;
        report.remote_id(&remote_id);
        Ok(Submission::Accepted { remote_id })
    }

    async fn poll(
        &self,
        _request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError> {
        let mut url = endpoint_url(&self.api_url, "addons/remove_bg/execute/status/");
        url.query_pairs_mut().append_pair("request_id", remote_id);
        let call = Call {
            what: "Remove.bg add-on status",
            replay: Replay::Always,
            error_message: rest_error_message,
        };
        let body = self.rest(call, Method::GET, &url, Bytes::new()).await?;
        Ok(match parse_execute_status(&body)? {
            ExecuteStatus::Working(word) => PollStatus::Pending {
                progress: None,
                status: Some(word),
            },
            ExecuteStatus::Failed(message) => PollStatus::Failed { message },
            ExecuteStatus::Done { file_id } => PollStatus::Done(JobResult {
                assets: vec![ResultAsset {
                    variation: None,
                    source: AssetSource::Url(self.result_url(&file_id).await?),
                    extension: "png".to_owned(),
                }],
                ..JobResult::default()
            }),
        })
    }
}

/// Runs every parser of Uploadcare's answers on `body` and returns the words
/// each would put in front of a user, for the fuzz targets
/// ([`super::fuzzing`]), so no wire type leaves this file.
pub(crate) fn parse_any(body: &[u8]) -> Vec<String> {
    use super::fuzzing::outcome_words;
    let mut words = outcome_words(&parse_base_answer(body));
    words.extend(outcome_words(&parse_from_url_answer(body)));
    words.extend(outcome_words(&parse_from_url_status(body)));
    words.extend(outcome_words(&parse_execute_answer(body)));
    match parse_execute_status(body) {
        Ok(ExecuteStatus::Failed(message)) => words.push(message),
        other => words.extend(outcome_words(&other)),
    }
    words.extend(outcome_words(&parse_file_info(body)));
    for error_message in [upload_error_message, rest_error_message] {
        let call = Call {
            what: "fuzzing",
            replay: Replay::Always,
            error_message,
        };
        let status = reqwest::StatusCode::BAD_REQUEST;
        words.push(super::http::refusal_message(call, status, body, &[]));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use axum::extract::{FromRequest, Multipart, Request};
    use axum::http::StatusCode;
    use axum::response::Response as AxumResponse;

    use crate::providers::test_support::{
        Log, Recorder, config, file_input, json, options, record, request, serve,
    };

    const SECRET: &str = "demoprivatekey";
    const PUBLIC: &str = "demopublickey";

    #[test]
    fn rest_signature_matches_the_documented_vector() {
        let signature = rest_signature(
            SECRET,
            "GET",
            b"",
            "application/json",
            "Mon, 05 Nov 2018 13:14:41 GMT",
            "/files/?limit=1&stored=true",
        );
        assert_eq!(signature, "3cbc4d2cf91f80c1ba162b926f8a975e8bec7995");
    }

    #[test]
    fn upload_signature_matches_the_documented_vector() {
        assert_eq!(
            upload_signature("project_secret_key", 1454903856),
            "d39a461d41f607338abffee5f31da4d4e46535651c87346e76906bf75c064d47"
        );
    }

    #[test]
    fn cdn_prefix_matches_the_documented_vector() {
        assert_eq!(cdn_prefix(PUBLIC), "1s4oyld5dc");
        let other = cdn_prefix("another key");
        assert_eq!(other.len(), 10);
        assert!(
            other
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }

    #[test]
    fn the_signed_uri_is_the_path_with_its_query() {
        let url = Url::parse("https://api.example/proxy/files/?limit=1&stored=true").unwrap();
        assert_eq!(request_uri(&url), "/proxy/files/?limit=1&stored=true");
        let url = Url::parse("https://api.example/addons/remove_bg/execute/").unwrap();
        assert_eq!(request_uri(&url), "/addons/remove_bg/execute/");
    }

    #[test]
    fn the_declared_options_check_their_values() {
        let good = options(&[
            ("crop", "true"),
            ("type", "car"),
            ("type_level", "latest"),
            ("channels", "alpha"),
            ("scale", "80%"),
        ]);
        assert!(INFO.check_options(&good).is_ok());
        let error = INFO
            .check_options(&options(&[("crop_margin", "lots")]))
            .unwrap_err();
        assert!(
            error.contains("crop_margin") && error.contains("30px"),
            "{error}"
        );
        assert!(INFO.check_options(&options(&[("type", "animal")])).is_err());
        assert!(INFO.check_options(&options(&[("size", "full")])).is_err());
    }

    #[test]
    fn the_execute_body_sends_booleans_as_booleans_and_the_rest_as_strings() {
        let body = execute_body(
            "0b5d3f9a-1c2e-4d5f-8a9b-0c1d2e3f4a5b",
            &options(&[
                ("crop", "true"),
                ("semitransparency", "false"),
                ("crop_margin", "10%"),
                ("type_level", "2"),
                ("position", "50% 30%"),
            ]),
        );
        assert_eq!(
            body,
            serde_json::json!({
                "target": "0b5d3f9a-1c2e-4d5f-8a9b-0c1d2e3f4a5b",
                "params": {
                    "crop": true,
                    "semitransparency": false,
                    "crop_margin": "10%",
                    "type_level": "2",
                    "position": "50% 30%",
                }
            })
        );
    }

    #[test]
    fn the_execute_body_omits_unset_options_and_never_sends_remove_bg_only_keys() {
        let body = execute_body(
            "abc",
            &options(&[
                ("size", "full"),
                ("format", "png"),
                ("bg_image_url", "https://example.com/bg.png"),
                ("shadow_method", "drop"),
            ]),
        );
        assert_eq!(body, serde_json::json!({ "target": "abc", "params": {} }));
    }

    #[test]
    fn an_upload_answer_names_the_file() {
        let uuid =
            parse_base_answer(br#"{"file": "17be4678-dab7-4bc7-8753-28914a22960a"}"#).unwrap();
        assert_eq!(uuid, "17be4678-dab7-4bc7-8753-28914a22960a");
    }

    #[test]
    fn an_upload_error_object_is_a_failure_even_with_a_success_status() {
        let signature = br#"{"error": {"status_code": 403, "content": "Invalid signature. Please check your Secret key.", "error_code": "SignatureInvalidError"}}"#;
        match parse_base_answer(signature).unwrap_err() {
            ProviderError::Unauthorized { message } => {
                assert!(message.contains("Invalid signature"))
            }
            other => panic!("{other:?}"),
        }
        let throttled = br#"{"error": {"status_code": 429, "content": "Request was throttled.", "error_code": "RequestThrottledError"}}"#;
        assert!(matches!(
            parse_base_answer(throttled).unwrap_err(),
            ProviderError::RateLimited { .. }
        ));
        let too_big = br#"{"error": {"status_code": 413, "content": "File is too large.", "error_code": "FileSizeLimitExceededError"}}"#;
        match parse_base_answer(too_big).unwrap_err() {
            ProviderError::Rejected { status, message } => {
                assert_eq!((status, message.as_str()), (413, "File is too large."));
            }
            other => panic!("{other:?}"),
        }
        let bare = br#"{"error": {"content": "Something odd."}}"#;
        assert!(matches!(
            parse_base_answer(bare).unwrap_err(),
            ProviderError::Rejected { status: 400, .. }
        ));
    }

    #[test]
    fn a_plain_text_upload_answer_is_quoted_in_the_error() {
        let error = parse_base_answer(b"[HTTP 403] UPLOADCARE_PUB_KEY is required.").unwrap_err();
        assert!(matches!(error, ProviderError::Protocol(_)));
        assert!(
            error
                .to_string()
                .contains("UPLOADCARE_PUB_KEY is required."),
            "{error}"
        );
    }

    #[test]
    fn upload_error_bodies_give_their_message_as_json_or_plain_text() {
        assert_eq!(
            upload_error_message(b"[HTTP 403] UPLOADCARE_PUB_KEY is required.").as_deref(),
            Some("UPLOADCARE_PUB_KEY is required.")
        );
        assert_eq!(
            upload_error_message(br#"{"error": {"content": "File is too large.", "status_code": 400, "error_code": "FileSizeLimitExceededError"}}"#).as_deref(),
            Some("File is too large.")
        );
        assert_eq!(
            upload_error_message(b"Bad gateway").as_deref(),
            Some("Bad gateway")
        );
        assert_eq!(upload_error_message(b"<html><body>502</body></html>"), None);
        assert_eq!(upload_error_message(b""), None);
    }

    #[test]
    fn rest_error_bodies_give_their_detail() {
        assert_eq!(
            rest_error_message(
                br#"{"detail": "Invalid signature. Please check your Secret key."}"#
            )
            .as_deref(),
            Some("Invalid signature. Please check your Secret key.")
        );
        assert_eq!(
            rest_error_message(
                br#"{"detail": "Request was throttled. Expected available in 3 seconds."}"#
            )
            .as_deref(),
            Some("Request was throttled. Expected available in 3 seconds.")
        );
        assert_eq!(rest_error_message(b"Internal Server Error"), None);
    }

    #[test]
    fn a_url_upload_answers_with_a_token_or_the_file_itself() {
        assert_eq!(
            parse_from_url_answer(
                br#"{"type": "token", "token": "945ebb27-1fd6-46c6-a859-b9893712d650"}"#
            )
            .unwrap(),
            FromUrl::Token("945ebb27-1fd6-46c6-a859-b9893712d650".to_owned())
        );
        assert_eq!(
            parse_from_url_answer(br#"{"type": "file_info", "uuid": "17be4678-dab7-4bc7-8753-28914a22960a", "is_image": true}"#).unwrap(),
            FromUrl::File("17be4678-dab7-4bc7-8753-28914a22960a".to_owned())
        );
        assert!(matches!(
            parse_from_url_answer(br#"{"error": {"content": "pub_key is required.", "error_code": "ProjectPublicKeyRequiredError"}}"#),
            Err(ProviderError::Unauthorized { .. })
        ));
        assert!(matches!(
            parse_from_url_answer(br#"{"type": "token"}"#),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn a_url_fetch_waits_until_success_and_fails_with_uploadcares_reason() {
        for (waiting, word) in [
            (r#"{"status": "waiting"}"#, "waiting"),
            (
                r#"{"status": "progress", "done": 10, "total": 100}"#,
                "progress",
            ),
            (r#"{"status": "unknown"}"#, "unknown"),
        ] {
            assert_eq!(
                parse_from_url_status(waiting.as_bytes()).unwrap(),
                FetchStatus::Waiting(word.to_owned())
            );
        }
        let success = br#"{"status": "success", "uuid": "17be4678-dab7-4bc7-8753-28914a22960a", "is_image": true, "filename": "a.png"}"#;
        assert_eq!(
            parse_from_url_status(success).unwrap(),
            FetchStatus::Done("17be4678-dab7-4bc7-8753-28914a22960a".to_owned())
        );
        let error =
            parse_from_url_status(br#"{"status": "error", "error": "Host does not exist."}"#)
                .unwrap_err();
        assert!(matches!(error, ProviderError::RemoteFailed(_)));
        assert!(
            error.to_string().contains("Host does not exist."),
            "{error}"
        );
    }

    #[test]
    fn the_add_on_status_is_working_done_or_failed() {
        assert_eq!(
            parse_execute_status(br#"{"status": "in_progress", "result": null}"#).unwrap(),
            ExecuteStatus::Working("in_progress".to_owned())
        );
        assert_eq!(
            parse_execute_status(br#"{"status": "done", "result": {"file_id": "21975c81-7f57-4c7a-aef9-acfe28779f78"}}"#).unwrap(),
            ExecuteStatus::Done { file_id: "21975c81-7f57-4c7a-aef9-acfe28779f78".to_owned() }
        );
        assert!(matches!(
            parse_execute_status(br#"{"status": "done", "result": {}}"#),
            Err(ProviderError::Protocol(_))
        ));
        assert!(matches!(
            parse_execute_status(br#"{"status": "done", "result": {"file_id": "../../etc"}}"#),
            Err(ProviderError::Protocol(_))
        ));
    }

    #[test]
    fn a_failed_add_on_run_carries_whatever_words_the_body_has() {
        let shapes = [
            (
                r#"{"status": "error", "error": "Could not identify foreground in image."}"#,
                "Could not identify foreground in image.",
            ),
            (
                r#"{"status": "error", "error": {"message": "unknown_foreground"}}"#,
                "unknown_foreground",
            ),
            (
                r#"{"status": "error", "result": {"error": "Image too large"}}"#,
                "Image too large",
            ),
            (r#"{"status": "error", "detail": "Failed"}"#, "Failed"),
            (
                r#"{"status": "error"}"#,
                "the Remove.bg add-on failed without saying why",
            ),
        ];
        for (body, expected) in shapes {
            assert_eq!(
                parse_execute_status(body.as_bytes()).unwrap(),
                ExecuteStatus::Failed(expected.to_owned()),
                "{body}"
            );
        }
        match parse_execute_status(br#"{"status": "unknown"}"#).unwrap() {
            ExecuteStatus::Failed(message) => assert!(message.contains("may have expired")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_info_gives_the_original_file_url_when_present() {
        let body = br#"{"uuid": "21975c81-7f57-4c7a-aef9-acfe28779f78", "original_file_url": "https://1s4oyld5dc.ucarecd.net/21975c81-7f57-4c7a-aef9-acfe28779f78/a.png", "is_ready": true}"#;
        assert_eq!(
            parse_file_info(body).unwrap().unwrap().as_str(),
            "https://1s4oyld5dc.ucarecd.net/21975c81-7f57-4c7a-aef9-acfe28779f78/a.png"
        );
        assert!(
            parse_file_info(br#"{"uuid": "x", "original_file_url": null}"#)
                .unwrap()
                .is_none()
        );
    }

    // --- the client against a small fake of the three hosts ---

    const SOURCE: &str = "17be4678-dab7-4bc7-8753-28914a22960a";
    const RESULT: &str = "21975c81-7f57-4c7a-aef9-acfe28779f78";

    /// A fake that checks what the real service checks: upload fields and
    /// signatures, and REST signatures, answering 400/401 when they are wrong.
    async fn fake(request: Request, seen: Log, base: Arc<Mutex<String>>) -> AxumResponse {
        let (parts, body) = request.into_parts();
        let path_and_query = record(&parts, &seen);
        match (parts.method.as_str(), parts.uri.path()) {
            ("POST", "/base/" | "/from_url/") => {
                let request = Request::from_parts(parts.clone(), body);
                let mut form = Multipart::from_request(request, &()).await.unwrap();
                let mut fields = BTreeMap::new();
                while let Some(field) = form.next_field().await.unwrap() {
                    let name = field.name().unwrap_or_default().to_owned();
                    let meta = format!("{:?} {:?}", field.file_name(), field.content_type());
                    let bytes = field.bytes().await.unwrap();
                    let value = if name == "file" {
                        format!("{meta} {} bytes", bytes.len())
                    } else {
                        String::from_utf8_lossy(&bytes).into_owned()
                    };
                    fields.insert(name, value);
                }
                let expire: u64 = fields
                    .get("expire")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                if fields.get("signature") != Some(&upload_signature(SECRET, expire))
                    || expire <= unix_now_secs()
                {
                    return json(
                        StatusCode::OK,
                        serde_json::json!({"error": {"status_code": 403, "content": "Invalid signature.", "error_code": "SignatureInvalidError"}}),
                    );
                }
                if parts.uri.path() == "/base/" {
                    assert_eq!(fields["UPLOADCARE_PUB_KEY"], PUBLIC);
                    assert_eq!(fields["UPLOADCARE_STORE"], "0");
                    assert_eq!(
                        fields["file"],
                        r#"Some("cat.png") Some("image/png") 4 bytes"#
                    );
                    json(StatusCode::OK, serde_json::json!({"file": SOURCE}))
                } else {
                    assert_eq!(fields["pub_key"], PUBLIC);
                    assert_eq!(fields["store"], "0");
                    assert_eq!(fields["source_url"], "https://example.com/cat.jpg");
                    json(
                        StatusCode::OK,
                        serde_json::json!({"type": "token", "token": "tok-1"}),
                    )
                }
            }
            ("GET", "/from_url/status/") => {
                let polls = seen
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.contains("/from_url/status/"))
                    .count();
                if polls < 2 {
                    json(
                        StatusCode::OK,
                        serde_json::json!({"status": "progress", "done": 1, "total": 2}),
                    )
                } else {
                    json(
                        StatusCode::OK,
                        serde_json::json!({"status": "success", "uuid": SOURCE}),
                    )
                }
            }
            (method, path) => {
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let header = |name: &str| {
                    parts
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let expected = format!(
                    "Uploadcare {PUBLIC}:{}",
                    rest_signature(
                        SECRET,
                        method,
                        &body,
                        &header("content-type"),
                        &header("date"),
                        &path_and_query
                    )
                );
                if header("accept") != ACCEPT_V07 {
                    return json(
                        StatusCode::NOT_ACCEPTABLE,
                        serde_json::json!({"detail": "Incorrect Accept header provided."}),
                    );
                }
                if header("content-type") != JSON || header("authorization") != expected {
                    return json(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({"detail": "Invalid signature. Please check your Secret key."}),
                    );
                }
                match (method, path) {
                    ("POST", "/addons/remove_bg/execute/") => {
                        let sent: Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(
                            sent,
                            serde_json::json!({"target": SOURCE, "params": {"crop": true, "crop_margin": "10%"}})
                        );
                        json(StatusCode::OK, serde_json::json!({"request_id": "req-42"}))
                    }
                    ("GET", "/addons/remove_bg/execute/status/") => {
                        assert_eq!(parts.uri.query(), Some("request_id=req-42"));
                        json(
                            StatusCode::OK,
                            serde_json::json!({"status": "done", "result": {"file_id": RESULT}}),
                        )
                    }
                    ("GET", "/files/") => {
                        assert_eq!(parts.uri.query(), Some("limit=1&stored=true"));
                        json(
                            StatusCode::OK,
                            serde_json::json!({"next": null, "previous": null, "total": 12, "per_page": 1, "results": [{"uuid": SOURCE}]}),
                        )
                    }
                    ("GET", p) if p == format!("/files/{RESULT}/") => {
                        let link = format!("{}cdn/{RESULT}/", base.lock().unwrap());
                        json(
                            StatusCode::OK,
                            serde_json::json!({"uuid": RESULT, "original_file_url": link}),
                        )
                    }
                    _ => json(
                        StatusCode::NOT_FOUND,
                        serde_json::json!({"detail": "Not found."}),
                    ),
                }
            }
        }
    }

    struct Fixture {
        base: Url,
        seen: Log,
    }

    async fn start_fake() -> Fixture {
        let seen = Log::default();
        let base_text = Arc::new(Mutex::new(String::new()));
        let (s, b) = (seen.clone(), base_text.clone());
        let app = axum::Router::new()
            .fallback(move |request: Request| fake(request, s.clone(), b.clone()));
        let base = serve(app).await;
        *base_text.lock().unwrap() = base.to_string();
        Fixture { base, seen }
    }

    fn client(base: &Url, secret: &str, cdn: Option<&Url>) -> Uploadcare {
        let mut endpoints = vec![("api_url", base), ("upload_url", base)];
        endpoints.extend(cdn.map(|cdn| ("cdn_url", cdn)));
        let keys = [("public_key", PUBLIC), ("secret_key", secret)];
        Uploadcare::new(config(&endpoints, &keys)).unwrap()
    }

    fn cat_png(dir: &tempfile::TempDir) -> JobInput {
        file_input(dir, "cat.png", b"\x89PNG")
    }

    #[tokio::test]
    async fn a_file_is_uploaded_processed_and_its_result_located_with_signed_calls() {
        let fixture = start_fake().await;
        let dir = tempfile::tempdir().unwrap();
        let request = request(
            &INFO,
            cat_png(&dir),
            &[("crop", "true"), ("crop_margin", "10%")],
        );
        let provider = client(&fixture.base, SECRET, None);
        let report = Recorder::default();

        let submission = provider.submit(&request, &report).await.unwrap();
        assert!(matches!(&submission, Submission::Accepted { remote_id } if remote_id == "req-42"));
        assert_eq!(report.lines(), ["uploading", "remote_id req-42"]);

        let PollStatus::Done(result) = provider.poll(&request, "req-42").await.unwrap() else {
            panic!("not done");
        };
        let [asset] = result.assets.as_slice() else {
            panic!("{:?}", result.assets)
        };
        let AssetSource::Url(link) = &asset.source else {
            panic!()
        };
        assert_eq!(link.as_str(), format!("{}cdn/{RESULT}/", fixture.base));
        assert_eq!(
            (asset.variation.as_deref(), asset.extension.as_str()),
            (None, "png")
        );
        assert_eq!(
            *fixture.seen.lock().unwrap(),
            [
                "POST /base/?jsonerrors=1",
                "POST /addons/remove_bg/execute/",
                "GET /addons/remove_bg/execute/status/?request_id=req-42",
                format!("GET /files/{RESULT}/").as_str(),
            ]
        );
    }

    #[tokio::test]
    async fn a_url_is_fetched_by_uploadcare_and_waited_for() {
        let fixture = start_fake().await;
        let request = request(
            &INFO,
            JobInput::Url(Url::parse("https://example.com/cat.jpg").unwrap()),
            &[("crop", "true"), ("crop_margin", "10%")],
        );
        let provider = client(&fixture.base, SECRET, None);
        let submission = provider
            .submit(&request, &Recorder::default())
            .await
            .unwrap();
        assert!(matches!(submission, Submission::Accepted { .. }));
        let seen = fixture.seen.lock().unwrap().clone();
        assert_eq!(seen[0], "POST /from_url/?jsonerrors=1");
        assert_eq!(seen[1], "GET /from_url/status/?token=tok-1&jsonerrors=1");
        assert_eq!(
            seen.iter()
                .filter(|s| s.starts_with("GET /from_url/status/"))
                .count(),
            2
        );
        assert_eq!(seen.last().unwrap(), "POST /addons/remove_bg/execute/");
    }

    #[tokio::test]
    async fn a_configured_cdn_is_used_without_asking_the_rest_api() {
        let fixture = start_fake().await;
        let cdn = Url::parse("https://cdn.example/").unwrap();
        let provider = client(&fixture.base, SECRET, Some(&cdn));
        let request = request(&INFO, JobInput::Url(cdn.clone()), &[]);
        let PollStatus::Done(result) = provider.poll(&request, "req-42").await.unwrap() else {
            panic!("not done");
        };
        let AssetSource::Url(link) = &result.assets[0].source else {
            panic!()
        };
        assert_eq!(link.as_str(), format!("https://cdn.example/{RESULT}/"));
        assert_eq!(fixture.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_wrong_secret_key_is_reported_with_uploadcares_words() {
        let fixture = start_fake().await;
        let provider = client(&fixture.base, "not the secret", None);
        let by_url = request(&INFO, JobInput::Url(fixture.base.clone()), &[]);
        match provider.poll(&by_url, "req-42").await.unwrap_err() {
            ProviderError::Unauthorized { message } => {
                assert!(message.contains("Invalid signature"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let request = request(&INFO, cat_png(&dir), &[]);
        let error = provider
            .submit(&request, &Recorder::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Unauthorized { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_unreadable_input_says_so_with_its_path_last() {
        let fixture = start_fake().await;
        let provider = client(&fixture.base, SECRET, None);
        let path = std::path::PathBuf::from("/nonexistent/cat.png");
        let request = request(&INFO, JobInput::File { path, root: None }, &[]);
        let error = provider
            .submit(&request, &Recorder::default())
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("cannot read the input") && text.ends_with("/nonexistent/cat.png"),
            "{text}"
        );
        assert!(fixture.seen.lock().unwrap().is_empty());
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused_before_keys_are_sent() {
        let api = Url::parse("http://api.uploadcare.com").unwrap();
        let upload = Url::parse("https://upload.uploadcare.com").unwrap();
        let result = Uploadcare::new(config(
            &[("api_url", &api), ("upload_url", &upload)],
            &[("public_key", PUBLIC), ("secret_key", SECRET)],
        ));
        assert!(matches!(result, Err(ProviderError::Config(_))));
    }

    #[tokio::test]
    async fn the_key_test_is_a_signed_one_file_listing() {
        let fixture = start_fake().await;
        let check = client(&fixture.base, SECRET, None)
            .check_key()
            .await
            .unwrap();
        assert_eq!(
            check.detail.as_deref(),
            Some("12 stored files in the project")
        );
        assert_eq!(
            fixture.seen.lock().unwrap().as_slice(),
            ["GET /files/?limit=1&stored=true"]
        );
    }

    #[tokio::test]
    async fn a_wrong_secret_key_fails_the_key_test_as_unauthorized() {
        let fixture = start_fake().await;
        let error = client(&fixture.base, "not-the-secret", None)
            .check_key()
            .await
            .unwrap_err();
        let ProviderError::Unauthorized { message } = error else {
            panic!("expected unauthorized, got {error:?}");
        };
        assert_eq!(message, "Invalid signature. Please check your Secret key.");
    }
}
