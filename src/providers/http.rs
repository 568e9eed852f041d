//! The HTTP client every provider shares: one retry policy, one mapping from
//! HTTP failures to [`ProviderError`], and result downloads that never carry a
//! provider's key. Providers only build requests and parse bodies.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::multipart::Part;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use url::Url;

/// Why a provider call failed, worded for the user. The engine adds the
/// provider's name and the file; these messages say what happened and what to
/// do. No variant ever holds a key.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// 401/403: the key is wrong, revoked, or for another project.
    #[error("the API key was refused, check your key: {message}")]
    Unauthorized {
        /// The provider's words.
        message: String,
    },
    /// 402: the account has no credits left.
    #[error("out of credits, top up your account and retry: {message}")]
    OutOfCredits {
        /// The provider's words.
        message: String,
    },
    /// 429 that did not clear within the retry budget.
    #[error(
        "the provider is rate limiting us and still was after {attempts} attempts; retry later"
    )]
    RateLimited {
        /// Attempts made.
        attempts: u32,
    },
    /// A 4xx other than the above: the provider refused this input or option.
    #[error("the provider refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's words.
        message: String,
    },
    /// 5xx that did not clear within the retry budget (or that may not be
    /// replayed because it could have created a paid job).
    #[error(
        "the provider had a server error (HTTP {status}) after {attempts} attempt(s): {message}"
    )]
    Server {
        /// The HTTP status.
        status: u16,
        /// The provider's words, when it gave any.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Connection failures and timeouts that did not clear.
    #[error("network error after {attempts} attempt(s): {message}")]
    Network {
        /// What failed, without the URL.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// An answer that does not match the provider's contract.
    #[error("unexpected answer from the provider: {0}")]
    Protocol(String),
    /// A result link that no longer serves the result (expired, removed):
    /// asking the link again does not help, but running the job again
    /// polls the provider for a fresh link without paying again.
    #[error(
        "the result link has expired or is gone (HTTP {status}); Retry fetches a fresh one from the provider without a new charge"
    )]
    ResultGone {
        /// The HTTP status the link answered.
        status: u16,
    },
    /// A successful answer that broke off or was not the JSON the provider
    /// speaks (an HTML page from a proxy, JSON cut short). A call that is
    /// safe to repeat was asked again until the retry budget ran out; a paid
    /// call is never asked again, since the provider may have acted on it.
    /// Either way the job itself may be fine, so it can be retried.
    #[error("{}", unreadable_words(.what, .message, *.attempts, *.paid))]
    Unreadable {
        /// The call, as in [`Call::what`].
        what: &'static str,
        /// What was wrong with the answer, quoting its start.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Whether the call was a paid one, which is never asked again.
        paid: bool,
    },
    /// The provider reports that the job itself failed.
    #[error("the provider could not process it: {0}")]
    RemoteFailed(String),
    /// A job that did not finish in time. The provider's last word for
    /// where the job stood is quoted, so an unexpected one ("paused") is
    /// seen rather than waited on in silence.
    #[error("{}", deadline_words(*.secs, .last_status.as_deref()))]
    Deadline {
        /// The deadline that passed.
        secs: u64,
        /// The last status the provider reported, in its own word.
        last_status: Option<String>,
    },
    /// A credential is not configured.
    #[error(
        "{provider} needs its {label}: add it in Settings or with `cutout keys set {provider_id}`, or set {env_var}"
    )]
    MissingCredential {
        /// The provider's name.
        provider: &'static str,
        /// The provider's id, for the command that stores the key.
        provider_id: crate::providers::ProviderId,
        /// The credential's name.
        label: &'static str,
        /// The variable that provides it.
        env_var: &'static str,
    },
    /// A setting is wrong (a base URL, an option combination).
    #[error("{0}")]
    Config(String),
    /// The local engine failed (model, runtime, inference, input image).
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    /// A local file could not be read or written. The path comes last.
    #[error("{action}: {source}: {path}")]
    Io {
        /// What Cutout was doing ("cannot read the input").
        action: &'static str,
        /// The error.
        source: std::io::Error,
        /// The file.
        path: std::path::PathBuf,
    },
}

impl ProviderError {
    /// Whether trying again unchanged may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Network { .. }
                | ProviderError::Deadline { .. }
                | ProviderError::Unreadable { .. }
                | ProviderError::Io { .. }
                | ProviderError::ResultGone { .. }
        ) || matches!(self, ProviderError::Local(local) if local.is_retryable())
    }
}

fn unreadable_words(what: &str, message: &str, attempts: u32, paid: bool) -> String {
    if paid {
        format!(
            "the provider's answer to the {what} could not be read, and it may have acted on the request, so it was not sent again; check your account before retrying: {message}"
        )
    } else {
        format!(
            "the provider's answer to the {what} could not be read after {attempts} attempt(s); retry later: {message}"
        )
    }
}

fn deadline_words(secs: u64, last_status: Option<&str>) -> String {
    match last_status {
        Some(word) => {
            // The provider's word, on one line and short: it is quoted, not trusted.
            let word = one_line(word, 40);
            format!(
                "the provider did not finish within {secs} s; its last status was “{word}”; retry to keep waiting"
            )
        }
        None => format!("the provider did not finish within {secs} s; retry to keep waiting"),
    }
}

/// How often and how long failed calls are retried. One policy for every
/// provider, so behaviour under load is predictable.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, including the first.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time (full jitter).
    pub base_delay: Duration,
    /// Cap on the exponential backoff.
    pub max_delay: Duration,
    /// Cap on a server's `Retry-After`; beyond it the call fails as
    /// rate-limited rather than hanging for an hour.
    pub max_retry_after: Duration,
    /// How long a connection may sit silent (no byte either way) before the
    /// call fails as timed out; a slow upload or download that keeps
    /// moving is never cut.
    pub read_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
            max_retry_after: Duration::from_secs(120),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The exponential backoff ceiling before attempt `attempt + 1`
    /// (`attempt` counts from 1).
    pub fn backoff_ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before attempt `attempt + 1`: a server's `Retry-After` when
    /// given, else a random delay up to the backoff ceiling ("full jitter",
    /// so many clients throttled at once do not return in lockstep).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_retry_after),
            None => {
                let ceiling = self.backoff_ceiling(attempt).as_millis() as u64;
                Duration::from_millis(fastrand::u64(0..=ceiling))
            }
        }
    }
}

/// Reads `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a request may be sent again after an uncertain failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads and status polls: safe to repeat after any transient failure.
    Always,
    /// Requests that create paid work: repeated only when the server surely
    /// did not act on them (429, 502/503/504, a connection that never
    /// opened), so a flaky network never pays twice.
    WhenUnprocessed,
}

/// One call's description for the retry loop and error messages.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// What the call does, for logs: "upload", "status".
    pub what: &'static str,
    /// Whether it may be repeated.
    pub replay: Replay,
    /// Pulls the provider's message out of an error body.
    pub error_message: fn(&[u8]) -> Option<String>,
}

/// Checks that a URL is safe to send data to: HTTPS, or plain HTTP only to
/// this machine (tests, local proxies).
pub fn check_url_is_secure(url: &Url) -> Result<(), ProviderError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(ProviderError::Config(format!(
            "refusing plain HTTP to a remote host; use https: {url}"
        ))),
        other => Err(ProviderError::Config(format!(
            "only http(s) addresses are supported, not `{other}:`: {url}"
        ))),
    }
}

/// `base` with `path` appended below its own path, so a base such as
/// `https://api.remove.bg/v1.0` keeps its `/v1.0`: (`…/v1.0`, `removebg`) →
/// `…/v1.0/removebg`. `path` has no leading slash and may end with one.
pub fn endpoint_url(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url
}

/// The MIME type a file's extension implies, for multipart parts; providers
/// check it, so a PNG sent as `application/octet-stream` may be refused.
pub fn mime_for_path(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "avif" => "image/avif",
        "tif" | "tiff" => "image/tiff",
        "bmp" => "image/bmp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "psd" => "image/vnd.adobe.photoshop",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "mkv" => "video/x-matroska",
        _ => "application/octet-stream",
    }
}

/// A header value marked sensitive, so neither `Debug` nor reqwest's logs
/// ever print it. `unsendable` words the error for a value with characters no
/// header may carry; it must not quote the value.
pub fn sensitive_header(
    value: &str,
    unsendable: impl FnOnce() -> String,
) -> Result<HeaderValue, ProviderError> {
    let mut header =
        HeaderValue::from_str(value).map_err(|_| ProviderError::Config(unsendable()))?;
    header.set_sensitive(true);
    Ok(header)
}

/// Why a local input could not be read; the path comes last.
pub fn unreadable_input(path: &Path, source: std::io::Error) -> ProviderError {
    ProviderError::Io {
        action: "cannot read the input",
        source,
        path: path.to_owned(),
    }
}

/// A local image read once for upload, so every retry sends the same bytes
/// without touching the disk again.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The file's bytes.
    pub bytes: Bytes,
    /// The name the provider is told (`image` when the path has none).
    pub file_name: String,
    /// The MIME type its extension implies.
    pub mime: &'static str,
}

impl InputFile {
    /// Reads `path` whole.
    pub async fn read(path: &Path) -> Result<Self, ProviderError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| unreadable_input(path, source))?;
        Ok(InputFile {
            bytes: Bytes::from(bytes),
            file_name: path
                .file_name()
                .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned()),
            mime: mime_for_path(path),
        })
    }

    /// A fresh multipart part for one attempt (a part is consumed by the
    /// request that sends it; the bytes are shared, not copied).
    pub fn part(&self) -> Result<Part, ProviderError> {
        let length = self.bytes.len() as u64;
        Part::stream_with_length(self.bytes.clone(), length)
            .file_name(self.file_name.clone())
            .mime_str(self.mime)
            .map_err(|e| {
                ProviderError::Config(format!("cannot label the upload as {}: {e}", self.mime))
            })
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The shared client. Cheap to clone; clones share the underlying clients.
#[derive(Debug, Clone)]
pub struct HttpClient {
    /// Built on first use and shared by every clone: building reads the
    /// system's certificates (tens of milliseconds per client), which
    /// neither the window's first frame nor a batch's first event should
    /// wait for, and a machine without them can still run the local engine.
    clients: Arc<OnceLock<Result<Clients, String>>>,
    policy: RetryPolicy,
}

#[derive(Debug)]
struct Clients {
    /// For provider APIs: redirects stay on the same host, so headers such as
    /// `X-Api-Key` (which reqwest does not strip) never reach another host.
    api: reqwest::Client,
    /// For result downloads: follows redirects (CDNs use them) and is never
    /// given credentials.
    download: reqwest::Client,
}

const USER_AGENT: &str = concat!("cutout/", env!("CARGO_PKG_VERSION"));

impl Clients {
    /// A stalled connection times out after `read_timeout`, but a long
    /// upload that keeps moving does not.
    fn build(policy: &RetryPolicy) -> reqwest::Result<Clients> {
        let same_host = reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt
                .previous()
                .first()
                .map(|u| (u.host_str().map(str::to_owned), u.port_or_known_default()));
            let next = (
                attempt.url().host_str().map(str::to_owned),
                attempt.url().port_or_known_default(),
            );
            if attempt.previous().len() > 5 || first.as_ref() != Some(&next) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let builder = || {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(policy.read_timeout)
        };
        Ok(Clients {
            api: builder().redirect(same_host).build()?,
            download: builder().build()?,
        })
    }
}

impl HttpClient {
    /// A client retrying per `policy`; see [`Clients::build`] for its
    /// timeouts.
    pub fn new(policy: RetryPolicy) -> Self {
        HttpClient {
            clients: Arc::default(),
            policy,
        }
    }

    /// The clients, built the first time they are needed.
    fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients
            .get_or_init(|| {
                Clients::build(&self.policy)
                    .map_err(|e| format!("cannot start the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|why| ProviderError::Config(why.clone()))
    }

    /// The client to build provider API requests with.
    pub fn api(&self) -> Result<&reqwest::Client, ProviderError> {
        Ok(&self.clients()?.api)
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends a request built by `build` (called again for every attempt, since
    /// multipart bodies cannot be replayed), retrying per the policy. Returns
    /// the first 2xx response; every other outcome becomes a [`ProviderError`].
    pub async fn send(
        &self,
        call: Call,
        build: impl Fn() -> Result<RequestBuilder, ProviderError>,
    ) -> Result<Response, ProviderError> {
        match self
            .send_keeping_keys(call, build, Wanted::Response)
            .await?
        {
            (Answer::Response(response), _) => Ok(response),
            (Answer::Json(_), _) => unreachable!("a response was asked for"),
        }
    }

    /// [`send`](Self::send), then reads the whole body and checks that it is
    /// JSON. On a call that is safe to repeat (a status poll), an answer that
    /// breaks off or is not JSON (an HTML page from a proxy, JSON cut short)
    /// is asked for again within the retry budget, since one garbled answer
    /// says nothing about the job; if every attempt is garbled the call fails
    /// as [`ProviderError::Unreadable`], which a later retry may clear. A paid
    /// call is never sent again: it fails at once, quoting the answer.
    pub async fn send_for_json(
        &self,
        call: Call,
        build: impl Fn() -> Result<RequestBuilder, ProviderError>,
    ) -> Result<Bytes, ProviderError> {
        match self.send_keeping_keys(call, build, Wanted::Json).await? {
            (Answer::Json(body), _) => Ok(body),
            (Answer::Response(_), _) => unreachable!("a JSON body was asked for"),
        }
    }

    /// [`send`](Self::send) or [`send_for_json`](Self::send_for_json), also
    /// returning the keys the request carried (its sensitive header values),
    /// so what the caller quotes from the answer can be scrubbed of them too.
    async fn send_keeping_keys(
        &self,
        call: Call,
        build: impl Fn() -> Result<RequestBuilder, ProviderError>,
        wanted: Wanted,
    ) -> Result<(Answer, Vec<String>), ProviderError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.max_attempts;
            let (client, request) = build()?.build_split();
            let request = request.map_err(|e| {
                ProviderError::Config(format!("cannot build the request: {}", describe(&e)))
            })?;
            let keys = sent_keys(request.headers());
            let outcome = client.execute(request).await;
            let (error, retry_after) = match outcome {
                Ok(response) if response.status().is_success() => match wanted {
                    Wanted::Response => return Ok((Answer::Response(response), keys)),
                    Wanted::Json => match read_json_body(response).await {
                        Ok(body) => return Ok((Answer::Json(body), keys)),
                        Err(message) => {
                            let paid = call.replay == Replay::WhenUnprocessed;
                            let error = ProviderError::Unreadable {
                                what: call.what,
                                message: hide_keys(message, &keys),
                                attempts: attempt,
                                paid,
                            };
                            if paid {
                                return Err(error);
                            }
                            (error, None)
                        }
                    },
                },
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let body = response.bytes().await.unwrap_or_default();
                    // A provider may quote the key it refused; the message
                    // reaches the job's error, the history and the log.
                    let message = refusal_message(call, status, &body, &keys);
                    let may_replay = match call.replay {
                        Replay::Always => true,
                        Replay::WhenUnprocessed => matches!(status.as_u16(), 429 | 502 | 503 | 504),
                    };
                    let error = status_error(status, message, attempt);
                    if !(error.is_retryable() && may_replay) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e) => {
                    let may_replay = match call.replay {
                        Replay::Always => true,
                        Replay::WhenUnprocessed => e.is_connect(),
                    };
                    let error = ProviderError::Network {
                        message: describe(&e),
                        attempts: attempt,
                    };
                    if !may_replay {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            if last {
                return Err(error);
            }
            if let Some(wait) = retry_after
                && wait > self.policy.max_retry_after
            {
                return Err(error);
            }
            let delay = self.policy.delay(attempt, retry_after);
            tracing::info!(call = call.what, attempt, ?delay, %error, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// [`send_for_json`](Self::send_for_json), then parses the body as `T`;
    /// JSON of another shape is a [`ProviderError::Protocol`] error.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        call: Call,
        build: impl Fn() -> Result<RequestBuilder, ProviderError>,
    ) -> Result<T, ProviderError> {
        let (answer, keys) = self.send_keeping_keys(call, build, Wanted::Json).await?;
        let Answer::Json(body) = answer else {
            unreachable!("a JSON body was asked for")
        };
        parse_json(call.what, &body).map_err(|error| match error {
            ProviderError::Protocol(message) => ProviderError::Protocol(hide_keys(message, &keys)),
            other => other,
        })
    }

    /// Downloads a result into `file` (truncated first), retrying broken or
    /// failed transfers per the policy. Sends no credentials: result URLs may
    /// point anywhere. Refuses HTML or JSON bodies, which are error pages, not
    /// results. Returns the number of bytes written.
    pub async fn download_to(
        &self,
        url: &Url,
        file: &mut tokio::fs::File,
        path: &std::path::Path,
    ) -> Result<u64, ProviderError> {
        check_url_is_secure(url)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, retry_after) = match self.try_download(url, file, path, attempt).await {
                Ok(written) => return Ok(written),
                Err(failure) => failure,
            };
            let link_gone = matches!(error, ProviderError::ResultGone { .. });
            if link_gone || !error.is_retryable() || attempt >= self.policy.max_attempts {
                return Err(error);
            }
            let delay = self.policy.delay(attempt, retry_after);
            tracing::info!(attempt, ?delay, %error, "retrying download");
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_download(
        &self,
        url: &Url,
        file: &mut tokio::fs::File,
        path: &std::path::Path,
        attempt: u32,
    ) -> Result<u64, (ProviderError, Option<Duration>)> {
        let io_error = |source| {
            let action = "cannot write the result";
            (
                ProviderError::Io {
                    action,
                    source,
                    path: path.to_owned(),
                },
                None,
            )
        };
        let network = |e: reqwest::Error| {
            (
                ProviderError::Network {
                    message: describe(&e),
                    attempts: attempt,
                },
                None,
            )
        };
        file.set_len(0).await.map_err(io_error)?;
        file.rewind().await.map_err(io_error)?;
        let download = &self.clients().map_err(|e| (e, None))?.download;
        let mut response = download.get(url.clone()).send().await.map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry_after(response.headers());
            // Result links carry no key, so a 403 is an expired signature
            // (S3, GCS), not a refused key.
            if matches!(status.as_u16(), 403 | 404 | 410) {
                return Err((
                    ProviderError::ResultGone {
                        status: status.as_u16(),
                    },
                    None,
                ));
            }
            let message = fallback_message(status, &response.bytes().await.unwrap_or_default());
            return Err((status_error(status, message, attempt), retry_after));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/html") || content_type.starts_with("application/json") {
            return Err((
                ProviderError::Protocol(format!(
                    "the result link answered with {content_type} instead of a file"
                )),
                None,
            ));
        }
        let expected = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut written = 0u64;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk).await.map_err(io_error)?;
                    written += chunk.len() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    let (mut error, _) = network(e);
                    if let ProviderError::Network { message, .. } = &mut error {
                        *message =
                            format!("the download broke off after {written} bytes ({message})");
                    }
                    return Err((error, None));
                }
            }
        }
        if let Some(expected) = expected
            && written != expected
        {
            return Err((
                ProviderError::Network {
                    message: format!("the download ended after {written} of {expected} bytes"),
                    attempts: attempt,
                },
                None,
            ));
        }
        file.flush().await.map_err(io_error)?;
        Ok(written)
    }
}

/// What [`HttpClient::send_keeping_keys`] hands back on success.
enum Wanted {
    /// The response, its body unread.
    Response,
    /// The whole body, checked to be JSON.
    Json,
}

/// A successful answer, as [`Wanted`].
enum Answer {
    Response(Response),
    Json(Bytes),
}

/// The whole body of a successful answer when it is JSON; otherwise what was
/// wrong with it, quoting its start.
async fn read_json_body(response: Response) -> Result<Bytes, String> {
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the answer broke off ({})", describe(&e)))?;
    match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        Ok(_) => Ok(body),
        Err(_) if body.trim_ascii().is_empty() => Err("the answer was empty".to_owned()),
        Err(_) if is_html || body.trim_ascii_start().starts_with(b"<") => Err(format!(
            "it was a web page instead of JSON: `{}`",
            snippet(&body)
        )),
        Err(e) if e.is_eof() => Err(format!("the JSON was cut short: `{}`", snippet(&body))),
        Err(e) => Err(format!("it was not valid JSON ({e}): `{}`", snippet(&body))),
    }
}

/// Parses a JSON body, turning a mismatch into a [`ProviderError::Protocol`]
/// that quotes the start of the body (bodies never contain keys).
pub fn parse_json<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|e| ProviderError::Protocol(format!("{what}: {e} in `{}`", snippet(body))))
}

/// A JSON body as a loose [`Value`], for answers whose shape is partly
/// unconfirmed; anything else is a [`ProviderError::Protocol`] quoting it.
pub fn parse_answer(what: &str, body: &[u8]) -> Result<Value, ProviderError> {
    serde_json::from_slice(body).map_err(|_| {
        ProviderError::Protocol(format!(
            "{what} answered `{}` instead of JSON",
            snippet(body)
        ))
    })
}

/// A non-empty string (trimmed), or a number written as one: ids and
/// messages that providers send as either.
pub fn json_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A count or amount for a message ("42", "2.5"), from a number or a numeric
/// string; whole numbers lose their `.0`.
pub fn json_amount(value: &Value) -> Option<String> {
    let number = json_text(value)?
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())?;
    Some(if number.fract() == 0.0 {
        format!("{number:.0}")
    } else {
        format!("{number}")
    })
}

/// The whole body of a successful response.
pub async fn read_body(response: Response) -> Result<Bytes, ProviderError> {
    response.bytes().await.map_err(|e| ProviderError::Network {
        message: format!("the answer broke off: {}", e.without_url()),
        attempts: 1,
    })
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

fn status_error(status: StatusCode, message: String, attempts: u32) -> ProviderError {
    match status.as_u16() {
        401 | 403 => ProviderError::Unauthorized { message },
        402 => ProviderError::OutOfCredits { message },
        429 => ProviderError::RateLimited { attempts },
        code @ 500..=599 => ProviderError::Server {
            status: code,
            message,
            attempts,
        },
        code => ProviderError::Rejected {
            status: code,
            message,
        },
    }
}

fn fallback_message(status: StatusCode, body: &[u8]) -> String {
    let text = snippet(body);
    if text.is_empty() || text.starts_with('<') {
        status.canonical_reason().unwrap_or("no details").to_owned()
    } else {
        text
    }
}

/// What a key is replaced with in a message quoting a provider.
pub const KEY_HIDDEN: &str = "[key hidden]";

/// The keys a request carries: its sensitive header values (see
/// [`sensitive_header`]), whole and, for `Scheme token` or `id:secret`
/// forms, their parts.
fn sent_keys(headers: &HeaderMap) -> Vec<String> {
    let mut keys = Vec::new();
    for value in headers.values().filter(|value| value.is_sensitive()) {
        let Ok(text) = value.to_str() else {
            continue;
        };
        keys.push(text.to_owned());
        keys.extend(
            text.split([' ', ':'])
                .filter(|part| part.len() >= MIN_HIDDEN_KEY_CHARS)
                .map(str::to_owned),
        );
    }
    keys.retain(|key| key.len() >= MIN_HIDDEN_KEY_CHARS);
    // Longest first, so a whole value goes before the parts inside it.
    keys.sort_by_key(|key| std::cmp::Reverse(key.len()));
    keys.dedup();
    keys
}

/// Shorter "keys" are not hidden: replacing every "Bearer" or "1" in a
/// message would make it unreadable, and real keys are far longer.
const MIN_HIDDEN_KEY_CHARS: usize = 8;

/// The fewest characters of a key's beginning hidden where a quoted body
/// was cut (`…`) in the middle of the key.
const MIN_HIDDEN_KEY_START_CHARS: usize = 4;

/// `message` with every one of `keys` replaced by [`KEY_HIDDEN`], and the
/// beginning of one left where a quote was cut short (`…`), since quoted
/// bodies are cut before keys are looked for.
pub fn hide_keys(mut message: String, keys: &[String]) -> String {
    for key in keys {
        if key.len() < MIN_HIDDEN_KEY_CHARS {
            continue;
        }
        if message.contains(key.as_str()) {
            message = message.replace(key.as_str(), KEY_HIDDEN);
        }
        message = hide_key_starts_at_cuts(message, key);
    }
    message
}

/// Replaces the longest beginning of `key` that ends right at a cut (`…`).
fn hide_key_starts_at_cuts(message: String, key: &str) -> String {
    let mut hidden = String::with_capacity(message.len());
    let mut pieces = message.split('…').peekable();
    while let Some(piece) = pieces.next() {
        let cut_here = pieces.peek().is_some();
        let start = if cut_here {
            key.char_indices()
                .map(|(i, _)| i)
                .chain([key.len()])
                .filter(|&end| key[..end].chars().count() >= MIN_HIDDEN_KEY_START_CHARS)
                .rev()
                .find(|&end| piece.ends_with(&key[..end]))
                .map(|end| piece.len() - end)
        } else {
            None
        };
        match start {
            Some(start) => {
                hidden.push_str(&piece[..start]);
                hidden.push_str(KEY_HIDDEN);
            }
            None => hidden.push_str(piece),
        }
        if cut_here {
            hidden.push('…');
        }
    }
    hidden
}

/// The first 200 characters of a body on one line, for messages.
pub fn snippet(body: &[u8]) -> String {
    one_line(&String::from_utf8_lossy(body), 200)
}

/// The most characters of a provider's own words a message quotes (an error
/// body's text, a failed job's reason, a warning), before the cut marked `…`.
pub const PROVIDER_WORDS_MAX_CHARS: usize = 400;

/// A provider's words as Cutout quotes them: on one line, without control
/// characters, and cut to [`PROVIDER_WORDS_MAX_CHARS`]. Every message that
/// passes provider text on to a job error, a warning, the history or the log
/// goes through here, so a 10 MB error body is never a 10 MB message or log
/// line, and a provider cannot move the terminal's cursor or forge log lines.
/// Cutting again changes nothing.
pub fn provider_words(text: &str) -> String {
    one_line(text, PROVIDER_WORDS_MAX_CHARS)
}

/// The message for a refused call: the provider's words from the error body
/// (or the status's reason when it gave none), with the keys the request
/// carried hidden *before* the cut, so no piece of a key survives it.
pub fn refusal_message(call: Call, status: StatusCode, body: &[u8], keys: &[String]) -> String {
    let message = (call.error_message)(body).unwrap_or_else(|| fallback_message(status, body));
    provider_words(&hide_keys(message, keys))
}

/// `text` on one line: runs of whitespace and control characters become one
/// space, and after `keep_chars` characters the rest becomes `…`. Reads no
/// further than it keeps, so a huge text costs no more than a short one.
fn one_line(text: &str, keep_chars: usize) -> String {
    let mut line = String::new();
    let mut kept = 0;
    let words = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty());
    for word in words {
        for c in (kept > 0).then_some(' ').into_iter().chain(word.chars()) {
            if kept == keep_chars {
                line.push('…');
                return line;
            }
            line.push(c);
            kept += 1;
        }
    }
    line
}

/// Words for a transport error, without the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not reach the service"
    } else if error.is_body() || error.is_decode() {
        "the connection broke"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_quoted_back_by_a_provider_is_hidden_whole_and_in_parts() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-api-key",
            sensitive_header("rbg-secret-123456", String::new).unwrap(),
        );
        headers.insert(
            "authorization",
            sensitive_header("Basic pubkey1234:secret98765", String::new).unwrap(),
        );
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let keys = sent_keys(&headers);
        assert!(!keys.iter().any(|k| k == "application/json"), "{keys:?}");
        let message = "API Key invalid: rbg-secret-123456; for secret98765 and \
                       Basic pubkey1234:secret98765 (Basic)"
            .to_owned();
        assert_eq!(
            hide_keys(message, &keys),
            "API Key invalid: [key hidden]; for [key hidden] and [key hidden] (Basic)"
        );
    }

    #[test]
    fn regression_a_key_cut_in_half_by_a_quoted_body_leaves_no_part_of_it() {
        let keys = vec!["rbg-secret-123456".to_owned()];
        let body = format!("{{\"error\": \"{}rbg-secret-123456\"}}", "x".repeat(184));
        let quoted = format!("not JSON: `{}`", snippet(body.as_bytes()));
        assert!(
            quoted.contains("rbg-s…"),
            "the cut falls inside the key: {quoted}"
        );
        let hidden = hide_keys(quoted, &keys);
        assert!(hidden.ends_with("x[key hidden]…`"), "{hidden}");
        assert!(!hidden.contains("rbg-s"), "{hidden}");
        // A cut elsewhere, or text that merely starts like a key, is kept.
        assert_eq!(hide_keys("abc…".to_owned(), &keys), "abc…");
        assert_eq!(hide_keys("rbg-secret".to_owned(), &keys), "rbg-secret");
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Mon, 05 Nov 2018 13:14:41 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Mon, 05 Nov 2018 13:15:11 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Mon, 05 Nov 2018 13:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_below_the_ceiling() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
            ..RetryPolicy::default()
        };
        let ceilings: Vec<_> = (1..=7)
            .map(|a| policy.backoff_ceiling(a).as_secs())
            .collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 16, 16]);
        for attempt in 1..=7 {
            assert!(policy.delay(attempt, None) <= policy.backoff_ceiling(attempt));
        }
    }

    #[test]
    fn a_servers_retry_after_wins_over_backoff_but_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(9))),
            Duration::from_secs(9)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            policy.max_retry_after
        );
    }

    #[test]
    fn endpoint_paths_keep_the_base_path() {
        let base = Url::parse("https://api.remove.bg/v1.0").unwrap();
        assert_eq!(
            endpoint_url(&base, "removebg").as_str(),
            "https://api.remove.bg/v1.0/removebg"
        );
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            endpoint_url(&base, "base/").as_str(),
            "http://127.0.0.1:9/base/"
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_allowed() {
        let ok = |u: &str| check_url_is_secure(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://api.remove.bg/v1.0"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://localhost:1/x"));
        assert!(ok("http://[::1]:9/"));
        assert!(!ok("http://api.remove.bg/v1.0"));
        assert!(!ok("ftp://example.com/a.png"));
        assert!(!ok("file:///etc/passwd"));
    }

    #[test]
    fn http_statuses_map_to_what_the_user_should_do() {
        let error = |code| status_error(StatusCode::from_u16(code).unwrap(), "m".into(), 1);
        assert!(matches!(error(401), ProviderError::Unauthorized { .. }));
        assert!(matches!(error(403), ProviderError::Unauthorized { .. }));
        assert!(matches!(error(402), ProviderError::OutOfCredits { .. }));
        assert!(matches!(
            error(404),
            ProviderError::Rejected { status: 404, .. }
        ));
        assert!(matches!(
            error(422),
            ProviderError::Rejected { status: 422, .. }
        ));
        assert!(matches!(error(429), ProviderError::RateLimited { .. }));
        assert!(matches!(
            error(503),
            ProviderError::Server { status: 503, .. }
        ));
        assert!(
            error(503).is_retryable() && !error(401).is_retryable() && !error(422).is_retryable()
        );
    }

    /// A server answering each call with the next of `answers` (status,
    /// content type, body), the last one for good; and its call count.
    async fn scripted(
        answers: Vec<(u16, &'static str, &'static str)>,
    ) -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().fallback(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let (status, content_type, body) = answers[n.min(answers.len() - 1)];
            async move {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    [(axum::http::header::CONTENT_TYPE, content_type)],
                    body,
                )
            }
        });
        (crate::providers::test_support::serve(app).await, calls)
    }

    fn call(replay: Replay) -> Call {
        Call {
            what: "job status",
            replay,
            error_message: |_| None,
        }
    }

    const PROXY_PAGE: (u16, &str, &str) =
        (200, "text/html", "<html><body>Bad gateway</body></html>");
    const CUT_SHORT: (u16, &str, &str) = (200, "application/json", r#"{"status":"#);

    #[tokio::test]
    async fn regression_f3_a_garbled_answer_to_a_status_poll_is_asked_for_again() {
        let (url, calls) = scripted(vec![
            PROXY_PAGE,
            (200, "application/json", r#"{"status":"done"}"#),
        ])
        .await;
        let http = crate::providers::test_support::fast_http();
        let body = http
            .send_for_json(call(Replay::Always), || Ok(http.api()?.get(url.clone())))
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"status":"done"}"#);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_status_answer_garbled_every_time_fails_as_unreadable_and_can_be_retried() {
        let (url, calls) = scripted(vec![CUT_SHORT]).await;
        let http = crate::providers::test_support::fast_http();
        let error = http
            .send_for_json(call(Replay::Always), || Ok(http.api()?.get(url.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ProviderError::Unreadable {
                    attempts: 2,
                    paid: false,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_retryable());
        let message = error.to_string();
        assert!(
            message.contains("job status could not be read after 2 attempt(s)"),
            "{message}"
        );
        assert!(message.contains(r#"cut short: `{"status":`"#), "{message}");
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the whole budget"
        );
    }

    #[tokio::test]
    async fn a_garbled_answer_to_a_paid_call_is_never_sent_again() {
        for answer in [CUT_SHORT, PROXY_PAGE, (201, "application/json", "{oops}")] {
            let (url, calls) = scripted(vec![answer]).await;
            let http = crate::providers::test_support::fast_http();
            let error = http
                .send_for_json(call(Replay::WhenUnprocessed), || {
                    Ok(http.api()?.post(url.clone()))
                })
                .await
                .unwrap_err();
            assert!(
                matches!(error, ProviderError::Unreadable { paid: true, .. }),
                "{error:?}"
            );
            assert!(
                error.to_string().contains("it was not sent again"),
                "{error}"
            );
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "{answer:?}"
            );
        }
    }

    #[test]
    fn a_deadline_quotes_the_providers_last_status_word_on_one_short_line() {
        let error = ProviderError::Deadline {
            secs: 20,
            last_status: Some("paused".to_owned()),
        };
        assert_eq!(
            error.to_string(),
            "the provider did not finish within 20 s; its last status was “paused”; retry to keep waiting"
        );
        let long = ProviderError::Deadline {
            secs: 1,
            last_status: Some(format!("odd\n{}", "x".repeat(500))),
        };
        let message = long.to_string();
        assert!(
            message.contains("“odd xxx") && message.len() < 160,
            "{message}"
        );
        let silent = ProviderError::Deadline {
            secs: 1,
            last_status: None,
        };
        assert!(!silent.to_string().contains("last status"), "{silent}");
    }
}
