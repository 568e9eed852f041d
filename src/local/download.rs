//! One resumable, checksummed download, shared by models and the ONNX
//! Runtime installer. Models are hundreds of megabytes fetched over home
//! connections, so a download must survive a dropped connection (the bytes
//! already here are kept in `<dest>.part` and the next request asks only for
//! the rest), must never leave a damaged file where a model belongs (the
//! digest is checked over the whole file before an atomic rename), and must
//! tell an offline user what to do instead of waiting forever.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use md5::Md5;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, RANGE, RETRY_AFTER};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::LocalError;
use super::catalogue::Checksum;
use crate::providers::RetryPolicy;
use crate::providers::http::{check_url_is_secure, parse_retry_after};

/// What to suggest when a model cannot be downloaded at all: the offline
/// way to get one.
pub const MODEL_OFFLINE_HINT: &str =
    "import the model file (Settings → Import model file…, or `cutout models import`)";

/// How often progress is reported at most: often enough for a smooth bar,
/// rarely enough that a fast local download does not flood the UI's channel.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// How many times in a row a connection may fail to open before the user is
/// told they look offline: retrying longer only delays that message.
const CONNECT_ATTEMPTS: u32 = 2;

/// How many times a download may start over from nothing (a server that
/// cannot resume, a part file that no longer fits) before giving up.
const MAX_RESTARTS: u32 = 3;

/// How often a download waiting for another process's download of the same
/// file checks whether that one has finished.
const LOCK_POLL: Duration = Duration::from_millis(250);

/// The digest a download must have. Owned, unlike the catalogue's
/// [`Checksum`], so that digests computed or pinned elsewhere (the runtime
/// installer, tests) fit too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digest {
    /// MD5, as hex.
    Md5(String),
    /// SHA-256, as hex.
    Sha256(String),
}

impl Digest {
    /// The algorithm's name as users see it in messages.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Digest::Md5(_) => "MD5",
            Digest::Sha256(_) => "SHA-256",
        }
    }

    /// The expected digest, lower-case hex.
    pub fn expected_hex(&self) -> String {
        match self {
            Digest::Md5(hex) | Digest::Sha256(hex) => hex.trim().to_ascii_lowercase(),
        }
    }

    /// The digest of a file on disk, lower-case hex. Blocking: reads the
    /// whole file.
    pub fn compute(&self, path: &Path) -> std::io::Result<String> {
        match self {
            Digest::Md5(_) => hash_file::<Md5>(path),
            Digest::Sha256(_) => hash_file::<Sha256>(path),
        }
    }
}

impl From<Checksum> for Digest {
    fn from(checksum: Checksum) -> Digest {
        match checksum {
            Checksum::Md5(hex) => Digest::Md5(hex.to_owned()),
            Checksum::Sha256(hex) => Digest::Sha256(hex.to_owned()),
        }
    }
}

fn hash_file<H: sha2::Digest>(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = H::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What a download is doing, for the words next to its progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadStage {
    /// Another Cutout (a second window, a CLI run) is downloading the same
    /// file; this one waits for it instead of fetching it twice.
    WaitingForOtherDownload,
    /// Bytes are arriving.
    Downloading,
    /// The whole file is here and its digest is being checked (seconds for
    /// a large model).
    Verifying,
}

/// One progress report. Reports come at most ten times a second, plus one
/// as each stage starts and one when the last byte arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadProgress {
    /// What is happening.
    pub stage: DownloadStage,
    /// Bytes on disk so far, those kept from an earlier attempt included.
    pub done_bytes: u64,
    /// The file's whole size, once the server has said it.
    pub total_bytes: Option<u64>,
}

/// One file to fetch.
#[derive(Debug, Clone)]
pub struct DownloadRequest<'a> {
    /// Where from: HTTPS, or plain HTTP to this machine only (tests).
    pub url: &'a Url,
    /// Where the verified file ends up; `<dest>.part` is kept beside it
    /// while downloading, and a hidden lock file (see [`lock_path`]).
    pub dest: &'a Path,
    /// What the file's digest must be.
    pub digest: Digest,
    /// What an offline user can do instead, ending the "cannot reach …"
    /// message ([`MODEL_OFFLINE_HINT`] for models).
    pub offline_hint: &'a str,
}

/// Downloads files for the local engine. Its own client, because unlike the
/// providers' API client it must follow redirects across hosts (GitHub
/// release assets redirect to a CDN) and it never carries credentials.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Downloader {
    /// Built on the first download: building reads the system's
    /// certificates, which the window's start-up need not wait for, and a
    /// machine without them can still use the models it has.
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    policy: RetryPolicy,
}

/// The partial file beside `dest` that a download writes into and resumes
/// from.
pub fn part_path(dest: &Path) -> PathBuf {
    with_suffix(dest, ".part")
}

/// The lock file beside `dest` that keeps two processes from writing the
/// same part file: hidden, and left in place afterwards (deleting a lock
/// file another process may be waiting on would let two downloads run).
pub fn lock_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.lock"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// How one request ended, when it did not fail.
enum Attempt {
    /// Every byte is in the part file.
    Complete,
    /// The part file cannot be continued; empty it and ask for everything.
    StartOver,
}

/// How one request failed.
struct Failure {
    error: LocalError,
    retryable: bool,
    /// The connection never opened: the user may be offline.
    unreachable: bool,
    /// Bytes arrived before the failure, so the next attempt is a fresh
    /// chance rather than a repeat.
    progressed: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn permanent(error: LocalError) -> Failure {
        Failure {
            error,
            retryable: false,
            unreachable: false,
            progressed: false,
            retry_after: None,
        }
    }

    fn transient(error: LocalError) -> Failure {
        Failure {
            retryable: true,
            ..Failure::permanent(error)
        }
    }
}

impl From<LocalError> for Failure {
    fn from(error: LocalError) -> Failure {
        Failure::permanent(error)
    }
}

impl Downloader {
    /// A downloader retrying per `policy` (the app's shared one, so tests
    /// and users tune every retry with the same `CUTOUT_RETRY_*` knobs).
    pub fn new(policy: RetryPolicy) -> Downloader {
        Downloader {
            client: Arc::default(),
            policy,
        }
    }

    /// The HTTP client, built the first time it is needed.
    fn client(&self) -> Result<&reqwest::Client, LocalError> {
        let built = self.client.get_or_init(|| {
            Downloader::build_client(&self.policy)
                .map_err(|e| format!("cannot start the HTTP client: {e}"))
        });
        built
            .as_ref()
            .map_err(|why| LocalError::Runtime(why.clone()))
    }

    fn build_client(policy: &RetryPolicy) -> reqwest::Result<reqwest::Client> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if check_url_is_secure(attempt.url()).is_err() {
                attempt.error("redirected to an address that is not HTTPS")
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder()
            .user_agent(concat!("cutout/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(policy.read_timeout)
            .redirect(redirects)
            .build()
    }

    /// Fetches `request.url` into `request.dest`, resuming a part file left
    /// by an interrupted attempt, and returns the file's size. The file
    /// appears at `dest` only once whole and verified; a digest mismatch
    /// deletes the part file. A broken connection is retried (resuming) as
    /// long as bytes keep arriving; when the retries run out the part file
    /// stays, so the next call resumes. Cancelling keeps the part file too.
    pub async fn download(
        &self,
        request: &DownloadRequest<'_>,
        progress: &(dyn Fn(DownloadProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<u64, LocalError> {
        let url = request.url;
        check_url_is_secure(url).map_err(|_| LocalError::Download {
            message:
                "refusing to download over plain HTTP from another machine; use an https address"
                    .to_owned(),
            url: url.to_string(),
        })?;
        let dest = request.dest;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|source| LocalError::Io {
                    action: "cannot create the download folder",
                    source,
                    path: dir.to_owned(),
                })?;
        }
        let (_lock, waited) = lock(dest, progress, cancel).await?;
        if waited && tokio::fs::try_exists(dest).await.unwrap_or(false) {
            // Another process fetched it while this one waited.
            let size = verify(request, dest, progress).await?;
            return Ok(size);
        }

        let part = part_path(dest);
        let mut failures = 0u32;
        let mut restarts = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(LocalError::Cancelled);
            }
            match self.attempt(request, &part, progress, cancel).await {
                Ok(Attempt::Complete) => break,
                Ok(Attempt::StartOver) => {
                    restarts += 1;
                    if restarts > MAX_RESTARTS {
                        return Err(LocalError::Download {
                            message: "the server keeps sending the file from a different place \
                                      than asked; try again later"
                                .to_owned(),
                            url: url.to_string(),
                        });
                    }
                    truncate(&part).await?;
                }
                Err(failure) => {
                    if failure.progressed {
                        failures = 0;
                    }
                    failures += 1;
                    let limit = if failure.unreachable {
                        CONNECT_ATTEMPTS.min(self.policy.max_attempts)
                    } else {
                        self.policy.max_attempts
                    };
                    if !failure.retryable || failures >= limit {
                        return Err(failure.error);
                    }
                    if let Some(wait) = failure.retry_after
                        && wait > self.policy.max_retry_after
                    {
                        return Err(failure.error);
                    }
                    let delay = self.policy.delay(failures, failure.retry_after);
                    tracing::debug!(%url, failures, ?delay, error = %failure.error, "retrying download");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => return Err(LocalError::Cancelled),
                    }
                }
            }
        }

        let size = verify(request, &part, progress).await?;
        tokio::fs::rename(&part, dest)
            .await
            .map_err(|source| LocalError::Io {
                action: "cannot move the finished download into place",
                source,
                path: dest.to_owned(),
            })?;
        Ok(size)
    }

    /// One request: continues the part file from where it ends.
    async fn attempt(
        &self,
        request: &DownloadRequest<'_>,
        part: &Path,
        progress: &(dyn Fn(DownloadProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Attempt, Failure> {
        let url = request.url;
        let download_error = |message: String| LocalError::Download {
            message,
            url: url.to_string(),
        };
        let mut offset = match tokio::fs::metadata(part).await {
            Ok(meta) => meta.len(),
            Err(_) => 0,
        };
        let mut builder = self.client()?.get(url.clone());
        if offset > 0 {
            builder = builder.header(RANGE, format!("bytes={offset}-"));
        }
        let sent = tokio::select! {
            sent = builder.send() => sent,
            () = cancel.cancelled() => return Err(LocalError::Cancelled.into()),
        };
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return Err(transport_failure(&e, request, offset, false)),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let total = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = content_range(&headers);
                match range {
                    Some((Some(start), total)) if start == offset => {
                        total.or_else(|| content_length(&headers).map(|len| offset + len))
                    }
                    _ => return Ok(Attempt::StartOver),
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    // The server ignored the range and sends everything.
                    truncate(part).await?;
                    offset = 0;
                }
                content_length(&headers)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                return match content_range(&headers) {
                    Some((None, Some(total))) if total == offset => Ok(Attempt::Complete),
                    _ => Ok(Attempt::StartOver),
                };
            }
            status => return Err(status_failure(status, &headers, request)),
        };

        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .await
            .map_err(|source| write_error(source, part))?;
        let mut done = offset;
        let mut last_report: Option<Instant> = None;
        let mut report = |done: u64, force: bool| {
            if force || last_report.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL) {
                last_report = Some(Instant::now());
                progress(DownloadProgress {
                    stage: DownloadStage::Downloading,
                    done_bytes: done,
                    total_bytes: total,
                });
            }
        };
        report(done, true);
        loop {
            let chunk = tokio::select! {
                chunk = response.chunk() => chunk,
                () = cancel.cancelled() => {
                    let _ = file.flush().await;
                    return Err(LocalError::Cancelled.into());
                }
            };
            match chunk {
                Ok(Some(bytes)) => {
                    file.write_all(&bytes)
                        .await
                        .map_err(|source| write_error(source, part))?;
                    done += bytes.len() as u64;
                    report(done, false);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = file.flush().await;
                    return Err(transport_failure(&e, request, done, done > offset));
                }
            }
        }
        file.flush()
            .await
            .map_err(|source| write_error(source, part))?;
        file.sync_all()
            .await
            .map_err(|source| write_error(source, part))?;
        report(done, true);
        if let Some(total) = total
            && done != total
        {
            if done > total {
                return Ok(Attempt::StartOver);
            }
            let mut failure = Failure::transient(download_error(format!(
                "the download ended early, after {} of {}; run it again to continue from there",
                human_bytes(done),
                human_bytes(total)
            )));
            failure.progressed = done > offset;
            return Err(failure);
        }
        Ok(Attempt::Complete)
    }
}

/// Checks the digest of `path` (the part file, or a file another process
/// finished) and returns its size. A mismatch deletes the file.
async fn verify(
    request: &DownloadRequest<'_>,
    path: &Path,
    progress: &(dyn Fn(DownloadProgress) + Send + Sync),
) -> Result<u64, LocalError> {
    let size = tokio::fs::metadata(path)
        .await
        .map(|meta| meta.len())
        .map_err(|source| LocalError::Io {
            action: "cannot read the download",
            source,
            path: path.to_owned(),
        })?;
    progress(DownloadProgress {
        stage: DownloadStage::Verifying,
        done_bytes: size,
        total_bytes: Some(size),
    });
    let digest = request.digest.clone();
    let owned = path.to_owned();
    let actual = tokio::task::spawn_blocking(move || digest.compute(&owned))
        .await
        .map_err(|e| LocalError::Io {
            action: "cannot check the download",
            source: std::io::Error::other(e.to_string()),
            path: path.to_owned(),
        })?
        .map_err(|source| LocalError::Io {
            action: "cannot read the download to check it",
            source,
            path: path.to_owned(),
        })?;
    let expected = request.digest.expected_hex();
    if actual != expected {
        let _ = tokio::fs::remove_file(path).await;
        return Err(LocalError::ChecksumMismatch {
            algorithm: request.digest.algorithm(),
            expected,
            actual,
            url: request.url.to_string(),
        });
    }
    Ok(size)
}

/// Takes the lock beside `dest`, waiting (and saying so) while another
/// process holds it. Returns the open lock file, which holds the lock until
/// dropped, and whether it had to wait.
async fn lock(
    dest: &Path,
    progress: &(dyn Fn(DownloadProgress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<(std::fs::File, bool), LocalError> {
    let path = lock_path(dest);
    let io = |source| LocalError::Io {
        action: "cannot create the download's lock file",
        source,
        path: path.clone(),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let mut waited = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok((file, waited)),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !waited {
                    progress(DownloadProgress {
                        stage: DownloadStage::WaitingForOtherDownload,
                        done_bytes: 0,
                        total_bytes: None,
                    });
                }
                waited = true;
                tokio::select! {
                    () = tokio::time::sleep(LOCK_POLL) => {}
                    () = cancel.cancelled() => return Err(LocalError::Cancelled),
                }
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io(source)),
        }
    }
}

async fn truncate(part: &Path) -> Result<(), LocalError> {
    match tokio::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(part)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(write_error(source, part)),
    }
}

fn write_error(source: std::io::Error, part: &Path) -> LocalError {
    LocalError::Io {
        action: "cannot write the download",
        source,
        path: part.to_owned(),
    }
}

/// `Content-Length`, when given.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL` as (START, TOTAL), or
/// `bytes */TOTAL` (a 416's) as (None, TOTAL); a `*` total is `None`.
fn content_range(headers: &HeaderMap) -> Option<(Option<u64>, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?.trim();
    let rest = value.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        range => Some(range.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
}

/// A refused or failed HTTP answer, in words that say what to do.
fn status_failure(status: StatusCode, headers: &HeaderMap, request: &DownloadRequest) -> Failure {
    let code = status.as_u16();
    let hint = request.offline_hint;
    let error = |message: String| LocalError::Download {
        message,
        url: request.url.to_string(),
    };
    match code {
        404 | 410 => Failure::permanent(error(format!(
            "the server has no such file (HTTP {code}); check the download address \
             (a CUTOUT_*_URL setting), update Cutout, or {hint}"
        ))),
        401 | 403 => Failure::permanent(error(format!(
            "the server refused the download (HTTP {code}); check the download address, or {hint}"
        ))),
        408 | 429 | 500..=599 => {
            let mut failure = Failure::transient(error(format!(
                "the server could not send the file (HTTP {code}); try again later, or {hint}"
            )));
            failure.retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
            failure
        }
        _ => Failure::permanent(error(format!(
            "the server answered HTTP {code} instead of the file; check the download address, or {hint}"
        ))),
    }
}

/// A request that broke: before it was answered (`progressed` false) or
/// mid-body.
fn transport_failure(
    error: &reqwest::Error,
    request: &DownloadRequest,
    done_bytes: u64,
    progressed: bool,
) -> Failure {
    let url = request.url;
    let host = url.host_str().unwrap_or("the server");
    let make = |message: String| LocalError::Download {
        message,
        url: url.to_string(),
    };
    if error.is_connect() {
        let mut failure = Failure::transient(make(format!(
            "cannot reach {host} — check the internet connection, or {}",
            request.offline_hint
        )));
        failure.unreachable = true;
        return failure;
    }
    let kept = if done_bytes > 0 {
        format!(
            "; the {} already here are kept and the next try continues from them",
            human_bytes(done_bytes)
        )
    } else {
        String::new()
    };
    let what = if error.is_timeout() {
        "the server stopped answering".to_owned()
    } else if error.is_body() || error.is_decode() {
        "the connection broke off".to_owned()
    } else {
        format!("the download failed ({})", root_cause(error))
    };
    let mut failure = Failure::transient(make(format!("{what}{kept}")));
    failure.progressed = progressed;
    failure
}

fn root_cause(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    root.unwrap_or_else(|| "no details".to_owned())
}

/// A byte count as people read it: "12.3 MB".
pub fn human_bytes(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{:.1} kB", bytes as f64 / 1_000.0)
    } else {
        format!("{:.1} MB", bytes as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! A fake file server on 127.0.0.1 (also used by the model store's and
    //! the installer's tests) and the download's behaviour against it.

    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex, MutexGuard};

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::extract::{Request, State};
    use axum::http::{HeaderValue, StatusCode as Status, header};
    use axum::response::Response;
    use sha2::Digest as _;

    use super::*;

    /// What the fake does to the next request for a file, instead of
    /// answering it properly.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Fault {
        /// Announces the whole length but sends only this many bytes of
        /// what was asked, then breaks the connection.
        CutAfter(usize),
        /// Answers 200 with the whole file, whatever range was asked.
        IgnoreRange,
        /// Answers this status with no file.
        Status(u16),
    }

    #[derive(Default)]
    struct Files {
        files: HashMap<String, Vec<u8>>,
        faults: VecDeque<Fault>,
        /// Each request's path and `Range` header, in order.
        requests: Vec<(String, Option<String>)>,
    }

    /// Serves files by path, honouring `Range: bytes=N-` as a CDN does,
    /// with scripted faults. Lives as long as the test's runtime.
    pub(crate) struct FakeFiles {
        /// Base URL, ending in `/`.
        pub(crate) url: Url,
        state: Arc<Mutex<Files>>,
    }

    fn lock_files(state: &Mutex<Files>) -> MutexGuard<'_, Files> {
        state.lock().unwrap_or_else(|p| p.into_inner())
    }

    impl FakeFiles {
        pub(crate) async fn start() -> FakeFiles {
            let state = Arc::new(Mutex::new(Files::default()));
            let app = Router::new().fallback(serve).with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            FakeFiles {
                url: Url::parse(&format!("http://{address}/")).unwrap(),
                state,
            }
        }

        /// Publishes `bytes` at `/<name>` and returns its URL.
        pub(crate) fn publish(&self, name: &str, bytes: Vec<u8>) -> Url {
            lock_files(&self.state)
                .files
                .insert(format!("/{name}"), bytes);
            self.url.join(name).unwrap()
        }

        /// The next request (of any file) meets `fault`.
        pub(crate) fn then(&self, fault: Fault) {
            lock_files(&self.state).faults.push_back(fault);
        }

        /// Each request's `Range` header, in order.
        pub(crate) fn ranges(&self) -> Vec<Option<String>> {
            lock_files(&self.state)
                .requests
                .iter()
                .map(|(_, range)| range.clone())
                .collect()
        }
    }

    async fn serve(State(state): State<Arc<Mutex<Files>>>, request: Request) -> Response {
        let path = request.uri().path().to_owned();
        let range = request
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (file, fault) = {
            let mut files = lock_files(&state);
            files.requests.push((path.clone(), range.clone()));
            let fault = files.faults.pop_front();
            (files.files.get(&path).cloned(), fault)
        };
        let reply = |status: u16, body: Body| {
            Response::builder()
                .status(Status::from_u16(status).unwrap())
                .body(body)
                .unwrap()
        };
        if let Some(Fault::Status(code)) = fault {
            return reply(code, Body::from("scripted failure"));
        }
        let Some(file) = file else {
            return reply(404, Body::from("Not Found"));
        };
        let len = file.len();
        let start = match (&range, fault) {
            (_, Some(Fault::IgnoreRange)) | (None, _) => None,
            (Some(range), _) => {
                let from = range
                    .strip_prefix("bytes=")
                    .and_then(|r| r.strip_suffix('-'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .expect("the client asks for `bytes=N-`");
                if from >= len {
                    let mut response = reply(416, Body::empty());
                    response.headers_mut().insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{len}")).unwrap(),
                    );
                    return response;
                }
                Some(from)
            }
        };
        let body = file[start.unwrap_or(0)..].to_vec();
        let announced = body.len();
        let body = match fault {
            Some(Fault::CutAfter(n)) => {
                use futures_util::StreamExt as _;
                let sent = Bytes::copy_from_slice(&body[..n.min(announced)]);
                // The break comes a moment after the bytes, as on a real
                // network: an immediate error would make the server drop
                // the bytes it had not flushed yet.
                let cut = futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "cut",
                    ))
                });
                let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(sent)]).chain(cut);
                Body::from_stream(chunks)
            }
            _ => Body::from(body),
        };
        let mut response = reply(if start.is_some() { 206 } else { 200 }, body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
        if let Some(start) = start {
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{len}", len - 1)).unwrap(),
            );
        }
        response
    }

    /// Fast retries, so tests that retry do not wait.
    pub(crate) fn quick_downloader() -> Downloader {
        Downloader::new(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
            read_timeout: Duration::from_secs(60),
        })
    }

    /// Bytes that look like nothing in particular, `len` long.
    pub(crate) fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    pub(crate) fn md5_of(bytes: &[u8]) -> Digest {
        Digest::Md5(hex::encode(Md5::digest(bytes)))
    }

    pub(crate) fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::Sha256(hex::encode(Sha256::digest(bytes)))
    }

    /// Runs one download of `url` into `dest`, collecting the progress.
    async fn fetch(
        url: &Url,
        dest: &Path,
        digest: Digest,
    ) -> (Result<u64, LocalError>, Vec<DownloadProgress>) {
        let seen = Mutex::new(Vec::new());
        let request = DownloadRequest {
            url,
            dest,
            digest,
            offline_hint: MODEL_OFFLINE_HINT,
        };
        let outcome = quick_downloader()
            .download(
                &request,
                &|p| seen.lock().unwrap().push(p),
                &CancellationToken::new(),
            )
            .await;
        (outcome, seen.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_download_reports_progress_and_lands_verified_at_its_destination() {
        let fake = FakeFiles::start().await;
        let bytes = payload(300_000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("models/model.onnx");

        let (outcome, seen) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 300_000);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert!(!part_path(&dest).exists());
        let downloading: Vec<_> = seen
            .iter()
            .filter(|p| p.stage == DownloadStage::Downloading)
            .collect();
        assert_eq!(downloading.first().unwrap().done_bytes, 0);
        assert_eq!(downloading.last().unwrap().done_bytes, 300_000);
        assert!(downloading.iter().all(|p| p.total_bytes == Some(300_000)));
        assert!(
            downloading
                .windows(2)
                .all(|w| w[0].done_bytes <= w[1].done_bytes),
            "progress never goes back: {seen:?}"
        );
        assert_eq!(seen.last().unwrap().stage, DownloadStage::Verifying);
        assert_eq!(fake.ranges(), [None]);
    }

    #[tokio::test]
    async fn sha256_digests_are_checked_too() {
        let fake = FakeFiles::start().await;
        let bytes = payload(1000);
        let url = fake.publish("runtime.whl", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("runtime.whl");

        let (outcome, _) = fetch(&url, &dest, sha256_of(&bytes)).await;
        assert_eq!(outcome.unwrap(), 1000);

        let other = dir.path().join("other.whl");
        let (outcome, _) = fetch(&url, &other, sha256_of(b"something else")).await;
        assert!(matches!(
            outcome,
            Err(LocalError::ChecksumMismatch {
                algorithm: "SHA-256",
                ..
            })
        ));
        assert!(!other.exists());
    }

    #[tokio::test]
    async fn a_file_with_the_wrong_digest_is_deleted_and_never_lands() {
        let fake = FakeFiles::start().await;
        let bytes = payload(5000);
        let url = fake.publish("model.onnx", bytes);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        let published = md5_of(b"the real model");

        let (outcome, _) = fetch(&url, &dest, published.clone()).await;

        let error = outcome.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("damaged or replaced"), "{text}");
        assert!(text.contains(&published.expected_hex()), "{text}");
        assert!(text.ends_with(url.as_str()), "the URL comes last: {text}");
        assert!(!dest.exists());
        assert!(!part_path(&dest).exists());
    }

    #[tokio::test]
    async fn a_download_cut_off_halfway_resumes_with_a_range_request() {
        let fake = FakeFiles::start().await;
        let bytes = payload(200_000);
        let url = fake.publish("model.onnx", bytes.clone());
        fake.then(Fault::CutAfter(100_000));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 200_000);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert_eq!(
            fake.ranges(),
            [None, Some("bytes=100000-".to_owned())],
            "the second request asks only for the rest"
        );
    }

    #[tokio::test]
    async fn a_part_file_left_by_an_earlier_run_is_continued_not_refetched() {
        let fake = FakeFiles::start().await;
        let bytes = payload(50_000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), &bytes[..20_000]).unwrap();

        let (outcome, seen) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 50_000);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert_eq!(fake.ranges(), [Some("bytes=20000-".to_owned())]);
        assert_eq!(
            seen[0].done_bytes, 20_000,
            "progress starts at what was kept"
        );
    }

    #[tokio::test]
    async fn a_server_that_ignores_the_range_is_read_from_the_start() {
        let fake = FakeFiles::start().await;
        let bytes = payload(30_000);
        let url = fake.publish("model.onnx", bytes.clone());
        fake.then(Fault::IgnoreRange);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), &bytes[..10_000]).unwrap();

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 30_000);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes, "nothing doubled");
    }

    #[tokio::test]
    async fn a_part_file_longer_than_the_file_starts_over() {
        let fake = FakeFiles::start().await;
        let bytes = payload(10_000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), payload(12_000)).unwrap();

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 10_000);
        assert_eq!(std::fs::read(&dest).unwrap(), bytes);
        assert_eq!(fake.ranges(), [Some("bytes=12000-".to_owned()), None]);
    }

    #[tokio::test]
    async fn a_whole_part_file_is_verified_without_fetching_it_again() {
        let fake = FakeFiles::start().await;
        let bytes = payload(10_000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), &bytes).unwrap();

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 10_000);
        assert_eq!(fake.ranges(), [Some("bytes=10000-".to_owned())]);
    }

    #[tokio::test]
    async fn a_missing_file_says_so_and_suggests_importing() {
        let fake = FakeFiles::start().await;
        let url = fake.url.join("gone.onnx").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("gone.onnx");

        let (outcome, _) = fetch(&url, &dest, md5_of(b"")).await;

        let text = outcome.unwrap_err().to_string();
        assert!(text.contains("HTTP 404"), "{text}");
        assert!(text.contains("cutout models import"), "{text}");
        assert!(text.ends_with(url.as_str()), "{text}");
        assert_eq!(fake.ranges().len(), 1, "a 404 is not retried");
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn a_server_error_is_retried() {
        let fake = FakeFiles::start().await;
        let bytes = payload(1000);
        let url = fake.publish("model.onnx", bytes.clone());
        fake.then(Fault::Status(503));
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;

        assert_eq!(outcome.unwrap(), 1000);
        assert_eq!(fake.ranges().len(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_server_reads_as_offline_with_what_to_do() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/u2net.onnx")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("u2net.onnx");

        let (outcome, _) = fetch(&url, &dest, md5_of(b"")).await;

        let text = outcome.unwrap_err().to_string();
        assert!(
            text.starts_with("cannot reach 127.0.0.1 — check the internet connection"),
            "{text}"
        );
        assert!(text.contains("Import model file"), "{text}");
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn plain_http_to_another_machine_is_refused_before_connecting() {
        let url = Url::parse("http://example.com/u2net.onnx").unwrap();
        let dir = tempfile::tempdir().unwrap();

        let (outcome, _) = fetch(&url, &dir.path().join("u2net.onnx"), md5_of(b"")).await;

        assert!(outcome.unwrap_err().to_string().contains("https"));
    }

    #[tokio::test]
    async fn when_retries_run_out_the_part_file_stays_for_the_next_run() {
        let fake = FakeFiles::start().await;
        let bytes = payload(40_000);
        let url = fake.publish("model.onnx", bytes.clone());
        for _ in 0..3 {
            fake.then(Fault::Status(500));
        }
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), &bytes[..1000]).unwrap();

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;
        assert!(outcome.unwrap_err().to_string().contains("HTTP 500"));
        assert_eq!(std::fs::read(part_path(&dest)).unwrap(), &bytes[..1000]);

        let (outcome, _) = fetch(&url, &dest, md5_of(&bytes)).await;
        assert_eq!(outcome.unwrap(), 40_000);
        assert_eq!(
            fake.ranges().last().unwrap().as_deref(),
            Some("bytes=1000-")
        );
    }

    #[tokio::test]
    async fn a_cancelled_download_keeps_its_part_file() {
        let fake = FakeFiles::start().await;
        let bytes = payload(1000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        std::fs::write(part_path(&dest), &bytes[..10]).unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let request = DownloadRequest {
            url: &url,
            dest: &dest,
            digest: md5_of(&bytes),
            offline_hint: MODEL_OFFLINE_HINT,
        };

        let outcome = quick_downloader()
            .download(&request, &|_| {}, &cancel)
            .await;

        assert!(matches!(outcome, Err(LocalError::Cancelled)));
        assert!(!dest.exists());
        assert_eq!(std::fs::read(part_path(&dest)).unwrap(), &bytes[..10]);
    }

    #[tokio::test]
    async fn a_download_waits_for_another_process_fetching_the_same_file_and_uses_its_result() {
        let fake = FakeFiles::start().await;
        let bytes = payload(5_000);
        let url = fake.publish("model.onnx", bytes.clone());
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("model.onnx");
        let other = std::fs::File::create(lock_path(&dest)).unwrap();
        other.lock().unwrap();
        let (waiting, waited) = tokio::sync::oneshot::channel();
        let waiting = Mutex::new(Some(waiting));
        let task = {
            let (url, dest, digest) = (url.clone(), dest.clone(), md5_of(&bytes));
            tokio::spawn(async move {
                let request = DownloadRequest {
                    url: &url,
                    dest: &dest,
                    digest,
                    offline_hint: MODEL_OFFLINE_HINT,
                };
                let progress = |p: DownloadProgress| {
                    if p.stage == DownloadStage::WaitingForOtherDownload
                        && let Some(waiting) = waiting.lock().unwrap().take()
                    {
                        let _ = waiting.send(());
                    }
                };
                quick_downloader()
                    .download(&request, &progress, &CancellationToken::new())
                    .await
            })
        };

        waited.await.unwrap();
        std::fs::write(&dest, &bytes).unwrap();
        drop(other);
        let outcome = task.await.unwrap();

        assert_eq!(outcome.unwrap(), 5_000);
        assert!(fake.ranges().is_empty(), "nothing fetched twice");
    }

    #[test]
    fn content_ranges_are_read_as_servers_write_them() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(CONTENT_RANGE, value.parse().unwrap());
            map
        };
        assert_eq!(
            content_range(&headers("bytes 100-199/200")),
            Some((Some(100), Some(200)))
        );
        assert_eq!(
            content_range(&headers("bytes 0-9/*")),
            Some((Some(0), None))
        );
        assert_eq!(
            content_range(&headers("bytes */200")),
            Some((None, Some(200)))
        );
        assert_eq!(content_range(&headers("items 1-2/3")), None);
    }
}
