//! Fake provider servers for end-to-end tests. Each fake listens on
//! `127.0.0.1:0`, speaks its provider's contract from `PROVIDERS.md` (its own
//! error bodies and status sequences), checks what the client sends and refuses
//! what the real service would refuse. They are written from the contract, not
//! from the client code, so that they are a second, independent reading of it.
//!
//! This file holds what every fake shares: the server thread, the [`Fake`]
//! trait the tests drive them through, the request journal, scripted faults,
//! download helpers and the test photos.

#![allow(dead_code)]
// Each test module uses a different part of the fakes.
// A refusal is a whole HTTP response, returned early from checks; its size
// does not matter in a test server.
#![allow(clippy::result_large_err)]

pub mod models;
pub mod removebg;
pub mod removebgvideo;
pub mod removit;
pub mod uploadcare;

use std::collections::{BTreeMap, VecDeque};
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use serde_json::Value;

/// Locks a fake's state, shrugging off poisoning: a panicking handler must not
/// hide the assertion that explains it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// Loopback ports bound before anything is served, so that a fake knows its
/// own URLs (for the links it hands out) while it builds its routers.
pub struct Ports(Vec<std::net::TcpListener>);

impl Ports {
    /// Binds `count` ports on `127.0.0.1` (Uploadcare has three hosts; the
    /// others one).
    pub fn bind(count: usize) -> Ports {
        Ports(
            (0..count)
                .map(|_| {
                    let listener =
                        std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
                    listener
                        .set_nonblocking(true)
                        .expect("make the listener non-blocking");
                    listener
                })
                .collect(),
        )
    }

    /// The base URL of the `index`-th port, without a trailing slash.
    pub fn url(&self, index: usize) -> String {
        let address = self.0[index].local_addr().expect("listener address");
        format!("http://{address}")
    }

    /// Serves each router on its port, in order, from a background thread, so
    /// tests stay plain synchronous functions that run the real binary.
    pub fn serve(self, routers: Vec<Router>) -> Server {
        let urls = (0..self.0.len()).map(|i| self.url(i)).collect();
        let listeners = self.0;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("start the fake's runtime");
            runtime.block_on(async move {
                for (listener, router) in listeners.into_iter().zip(routers) {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("adopt the listener");
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, router).await;
                    });
                }
                let _ = stopped.await;
            });
        });
        Server {
            urls,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// A fake's hosts being served; dropping it stops them.
pub struct Server {
    urls: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The base URL of the `index`-th host, without a trailing slash.
    pub fn url(&self, index: usize) -> String {
        self.urls[index].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the tests ask of every fake, so that one helper can drive any of them.
pub trait Fake {
    /// What this run of the fake does.
    type Script: Default;
    /// The provider's id on the command line.
    const PROVIDER: &'static str;
    /// The variable the CLI takes this provider's URL from.
    const URL_VAR: &'static str;
    /// The variable the CLI takes this provider's (secret) key from.
    const KEY_VAR: &'static str;
    /// The (secret) key the fake accepts.
    const KEY: &'static str;

    /// Starts the fake on loopback ports.
    fn start(script: Self::Script) -> Self;

    /// The URL `URL_VAR` takes.
    fn url(&self) -> String;

    /// What the fake remembers of the client.
    fn ledger(&self) -> &Ledger;

    /// The variables that point the CLI here with the right keys.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (Self::URL_VAR, self.url()),
            (Self::KEY_VAR, Self::KEY.to_owned()),
        ]
    }

    /// Every request received, on any host.
    fn journal(&self) -> &Journal {
        &self.ledger().journal
    }

    /// Calls that cost money (the image call, the upload that queues a job,
    /// the job creation, the add-on's execution) received, answered or not:
    /// what a retry must never repeat once the provider may have acted.
    fn submissions(&self) -> usize {
        self.ledger().submissions.load(Ordering::SeqCst)
    }

    /// The host serving the first job's result when the script gives it a
    /// [`ResultFault`]; `None` for a fake without result links.
    fn result_host(&self) -> Option<&ResultHost> {
        None
    }
}

/// An answer: `Err` is a refusal or a scripted fault, so that handlers can
/// stop at the first with `?`.
pub type Reply = Result<Response, Response>;

// ---------------------------------------------------------------------------
// Requests as seen by a fake
// ---------------------------------------------------------------------------

/// A file part of a multipart body.
#[derive(Debug, Clone)]
pub struct FilePart {
    /// The form field's name (`file`, `image_file`).
    pub field: String,
    /// The file name the client gave.
    pub file_name: Option<String>,
    /// The part's `Content-Type`.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Bytes,
}

/// A decoded form body (multipart or URL-encoded).
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// Text fields; a field sent twice keeps its last value and is listed in
    /// `repeated`.
    pub fields: BTreeMap<String, String>,
    /// File parts in order.
    pub files: Vec<FilePart>,
    /// Names of text fields that were sent more than once.
    pub repeated: Vec<String>,
}

/// One request as a fake received it, kept in the journal so tests can check
/// exactly what the client sent.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Which of the fake's hosts got it (`api`, `upload`, `cdn`), or `main`.
    pub host: &'static str,
    /// The method.
    pub method: Method,
    /// The URI as received (path and query).
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// The form, when the body was multipart or URL-encoded and parsed.
    pub form: Option<Form>,
    /// Why a multipart body could not be parsed, when it could not.
    pub form_error: Option<String>,
}

impl Seen {
    /// Reads a whole request; multipart and URL-encoded bodies are parsed.
    pub async fn read(host: &'static str, request: Request) -> Seen {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, 256 << 20)
            .await
            .unwrap_or_default();
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (form, form_error) = if content_type.starts_with("multipart/form-data") {
            match parse_multipart(&content_type, body.clone()).await {
                Ok(form) => (Some(form), None),
                Err(e) => (None, Some(e)),
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let mut form = Form::default();
            for (key, value) in url::form_urlencoded::parse(&body) {
                if form
                    .fields
                    .insert(key.to_string(), value.to_string())
                    .is_some()
                {
                    form.repeated.push(key.to_string());
                }
            }
            (Some(form), None)
        } else {
            (None, None)
        };
        Seen {
            host,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            form,
            form_error,
        }
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The path split on `/`, without empty segments.
    pub fn segments(&self) -> Vec<&str> {
        self.uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A query parameter, decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let query = self.uri.query()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Content-Type` without parameters, lower-cased.
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A text field of the form body.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.as_ref()?.fields.get(name).map(String::as_str)
    }

    /// A file part of the form body.
    pub fn file(&self, name: &str) -> Option<&FilePart> {
        self.form.as_ref()?.files.iter().find(|f| f.field == name)
    }

    /// Whether `secret` appears anywhere but in the header `allowed` (URI,
    /// other headers, body): keys must never leak into URLs or bodies.
    pub fn leaks(&self, secret: &str, allowed: Option<&str>) -> bool {
        let in_uri = self.uri.to_string().contains(secret);
        let in_headers = self.headers.iter().any(|(name, value)| {
            Some(name.as_str()) != allowed.map(str::to_ascii_lowercase).as_deref()
                && String::from_utf8_lossy(value.as_bytes()).contains(secret)
        });
        let in_body = String::from_utf8_lossy(&self.body).contains(secret);
        in_uri || in_headers || in_body
    }
}

/// A form field that takes one of `allowed`: its value, `default` when it is
/// absent, or `Err` with the value the fake must refuse.
pub fn choice<'a>(
    fields: &'a BTreeMap<String, String>,
    name: &str,
    default: &'a str,
    allowed: &[&str],
) -> Result<&'a str, &'a str> {
    let value = fields.get(name).map_or(default, String::as_str);
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(value)
    }
}

async fn parse_multipart(content_type: &str, body: Bytes) -> Result<Form, String> {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| e.body_text())?;
    let mut form = Form::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| e.body_text())?;
        if file_name.is_some() {
            form.files.push(FilePart {
                field: name,
                file_name,
                content_type,
                bytes,
            });
        } else {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if form.fields.insert(name.clone(), text).is_some() {
                form.repeated.push(name);
            }
        }
    }
    Ok(form)
}

/// Every request a fake received, in order.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    /// Adds a request.
    pub fn record(&self, seen: &Seen) {
        lock(&self.0).push(seen.clone());
    }

    /// A copy of everything received.
    pub fn all(&self) -> Vec<Seen> {
        lock(&self.0).clone()
    }

    /// The requests with this method whose path starts with `prefix`.
    pub fn matching(&self, method: &str, prefix: &str) -> Vec<Seen> {
        lock(&self.0)
            .iter()
            .filter(|s| s.method.as_str() == method && s.path().starts_with(prefix))
            .cloned()
            .collect()
    }

    /// `(method, path)` of every request, for failure messages and order checks.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.0)
            .iter()
            .map(|s| format!("{} {} {}", s.host, s.method, s.path()))
            .collect()
    }

    /// Panics if `secret` went anywhere except the header `allowed`.
    pub fn assert_secret_only_in(&self, secret: &str, allowed: Option<&str>) {
        for seen in lock(&self.0).iter() {
            assert!(
                !seen.leaks(secret, allowed),
                "the key travelled outside {allowed:?} in {} {}",
                seen.method,
                seen.uri
            );
        }
    }
}

/// What every fake remembers of the client: each request, and how many paid
/// calls it tried.
#[derive(Debug, Default)]
pub struct Ledger {
    journal: Journal,
    submissions: AtomicUsize,
}

impl Ledger {
    /// Reads a request that arrived at `host` and records it.
    pub async fn receive(&self, host: &'static str, request: Request) -> Seen {
        let seen = Seen::read(host, request).await;
        self.journal.record(&seen);
        seen
    }

    /// Counts a paid call, before anything is checked, so that refused calls
    /// count too.
    pub fn submitted(&self) {
        self.submissions.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Scripted faults
// ---------------------------------------------------------------------------

/// A canned failure a fake answers instead of its normal answer: in the
/// provider's own error format for that status, or as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when sent.
    pub retry_after_secs: Option<u64>,
    /// How many calls get it; `u32::MAX` means every call.
    pub times: u32,
    /// What the answer's body is.
    pub shape: Shape,
}

/// What a fault's answer looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The provider's own error body for the status.
    Words,
    /// This body with this content type, whatever the status says: a proxy's
    /// HTML page, JSON cut short, a status word the client has never seen.
    Raw {
        /// The `Content-Type`.
        content_type: &'static str,
        /// The body.
        body: &'static str,
    },
}

/// The page a proxy in front of a provider shows when it has a bad moment.
pub const PROXY_PAGE: &str = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>";

impl Fault {
    /// One call answered with `status`.
    pub const fn status(status: u16) -> Fault {
        Fault {
            status,
            retry_after_secs: None,
            times: 1,
            shape: Shape::Words,
        }
    }

    /// One call answered with `status` and exactly this body: what a proxy,
    /// a bug or a new version of the service might send.
    pub const fn raw(status: u16, content_type: &'static str, body: &'static str) -> Fault {
        Fault {
            shape: Shape::Raw { content_type, body },
            ..Fault::status(status)
        }
    }

    /// One call answered 200 with a proxy's HTML page instead of JSON.
    pub const fn html_page() -> Fault {
        Fault::raw(200, "text/html; charset=utf-8", PROXY_PAGE)
    }

    /// One call answered 200 with `body` as JSON, well formed or not.
    pub const fn json_body(body: &'static str) -> Fault {
        Fault::raw(200, "application/json", body)
    }

    /// A 429 without `Retry-After`.
    pub const fn throttled() -> Fault {
        Fault::status(429)
    }

    /// The same fault for `times` calls.
    pub const fn times(self, times: u32) -> Fault {
        Fault { times, ..self }
    }

    /// The same fault for every call.
    pub const fn always(self) -> Fault {
        Fault {
            times: u32::MAX,
            ..self
        }
    }

    /// Adds `Retry-After: secs`.
    pub const fn retry_after(self, secs: u64) -> Fault {
        Fault {
            retry_after_secs: Some(secs),
            ..self
        }
    }
}

/// Faults handed out one call at a time, in order, before normal answers.
#[derive(Debug, Default)]
pub struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    /// The faults to hand out.
    pub fn new(faults: &[Fault]) -> Faults {
        Faults(Mutex::new(
            faults.iter().copied().filter(|f| f.times > 0).collect(),
        ))
    }

    /// The fault for this call, if any is left.
    fn take(&self) -> Option<Fault> {
        let mut faults = lock(&self.0);
        let front = faults.front_mut()?;
        let fault = *front;
        if front.times != u32::MAX {
            front.times -= 1;
            if front.times == 0 {
                faults.pop_front();
            }
        }
        Some(fault)
    }

    /// `Err` with the fault due for this call, in the provider's own words
    /// (`words`) or its raw body, and with its `Retry-After`; `Ok` when none
    /// is left.
    pub fn check(&self, words: impl FnOnce(&Fault) -> Response) -> Result<(), Response> {
        let Some(fault) = self.take() else {
            return Ok(());
        };
        let answer = match fault.shape {
            Shape::Words => words(&fault),
            Shape::Raw { content_type, body } => {
                bytes(fault.status, content_type, body.as_bytes().to_vec())
            }
        };
        Err(with_retry_after(answer, &fault))
    }
}

/// Counts calls in progress and remembers the most seen at once, to check
/// `--concurrency`.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// Leaves the gauge when dropped.
pub struct GaugeGuard<'a>(&'a Gauge);

impl Gauge {
    /// Enters; the guard leaves.
    pub fn enter(&self) -> GaugeGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self)
    }

    /// The most calls seen at once.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many result downloads break off before the rest succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Breakage {
    /// Every download is whole.
    #[default]
    Never,
    /// The first download of each result breaks off; later ones are whole.
    Once,
    /// Every download breaks off.
    Always,
}

impl Breakage {
    /// Whether download number `attempt` (from 1) of one result breaks.
    pub fn breaks(self, attempt: u32) -> bool {
        match self {
            Breakage::Never => false,
            Breakage::Once => attempt == 1,
            Breakage::Always => true,
        }
    }

    /// Download number `attempt` (from 1) of one result: whole, or broken off
    /// mid-way as scripted.
    pub fn download(self, attempt: u32, content_type: &str, body: Vec<u8>) -> Response {
        if self.breaks(attempt) {
            broken_download(content_type, body)
        } else {
            download(content_type, body)
        }
    }
}

// ---------------------------------------------------------------------------
// A result host that misbehaves at the transport level
// ---------------------------------------------------------------------------

/// How a [`ResultHost`] misbehaves on every download of its result: things a
/// CDN or a proxy in front of one does that an HTTP framework cannot be made
/// to do, so the host writes HTTP/1.1 on a raw socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFault {
    /// Sends the headers with the whole `Content-Length`, half the body, then
    /// closes its side cleanly (FIN, not a reset): a server that died
    /// mid-body, which a client reading to the end of the stream would take
    /// for a whole file.
    HalfClose,
    /// Sends the whole body in `chunks` pieces with `every_ms` before each:
    /// a slow link that keeps moving.
    Trickle {
        /// How many pieces.
        chunks: usize,
        /// The pause before each piece, in milliseconds.
        every_ms: u64,
    },
    /// Sends the headers and half the body, then nothing, holding the
    /// connection open until the client gives up.
    Stall,
    /// Resets the connection (RST) once the request has arrived, before any
    /// answer.
    ResetBeforeHeaders,
}

/// The result a host serves: claimed by the first job that asks.
#[derive(Debug, Default)]
struct Served {
    /// The job (or file) whose result this is.
    owner: String,
    content_type: String,
    body: Vec<u8>,
}

/// A loopback host that serves one job's result (whatever the path) with a
/// [`ResultFault`] on every download, so a fake can point one job's result
/// link here and the others at itself: the fault hits one job of a batch.
pub struct ResultHost {
    address: std::net::SocketAddr,
    served: Arc<Mutex<Option<Served>>>,
    downloads: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ResultHost {
    /// Starts the host on a loopback port, from a background thread; each
    /// connection gets a thread of its own.
    pub fn start(fault: ResultFault) -> ResultHost {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let address = listener.local_addr().expect("listener address");
        let served: Arc<Mutex<Option<Served>>> = Arc::default();
        let downloads = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (served, downloads, stop) = (served.clone(), downloads.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            downloads.fetch_add(1, Ordering::SeqCst);
                            let result = lock(&served)
                                .as_ref()
                                .map(|s| (s.content_type.clone(), s.body.clone()))
                                .unwrap_or_default();
                            std::thread::spawn(move || {
                                let _ = misserve(stream, fault, &result.0, &result.1);
                            });
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                    }
                }
            })
        };
        ResultHost {
            address,
            served,
            downloads,
            stop,
            thread: Some(thread),
        }
    }

    /// Whether `owner`'s result is the one served here: the first owner to
    /// ask claims the host with its result, and keeps it; others get `false`
    /// and serve theirs as usual.
    pub fn claim(&self, owner: &str, content_type: &str, body: &[u8]) -> bool {
        let mut served = lock(&self.served);
        let served = served.get_or_insert_with(|| Served {
            owner: owner.to_owned(),
            content_type: content_type.to_owned(),
            body: body.to_vec(),
        });
        served.owner == owner
    }

    /// The URL of `path` (without a leading slash) on this host.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.address)
    }

    /// The whole result being served (empty until a job claims the host),
    /// to compare with what was saved.
    pub fn body(&self) -> Vec<u8> {
        lock(&self.served)
            .as_ref()
            .map(|s| s.body.clone())
            .unwrap_or_default()
    }

    /// Connections accepted so far: one per download attempt.
    pub fn downloads(&self) -> usize {
        self.downloads.load(Ordering::SeqCst)
    }
}

impl Drop for ResultHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one connection as `fault` says.
fn misserve(
    mut stream: std::net::TcpStream,
    fault: ResultFault,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    use std::io::{Read, Write};
    use std::time::Duration;

    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    if fault == ResultFault::ResetBeforeHeaders {
        // Closing a socket with unread bytes makes the kernel answer with a
        // reset rather than a FIN; peeking waits for the request to arrive
        // without reading it.
        stream.peek(&mut [0u8; 1])?;
        return Ok(());
    }
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let close = if matches!(fault, ResultFault::Trickle { .. }) {
        "Connection: close\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{close}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    match fault {
        ResultFault::HalfClose => {
            stream.write_all(&body[..body.len() / 2])?;
            stream.flush()?;
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        ResultFault::Trickle { chunks, every_ms } => {
            let size = body.len().div_ceil(chunks.max(1)).max(1);
            for piece in body.chunks(size) {
                std::thread::sleep(Duration::from_millis(every_ms));
                stream.write_all(piece)?;
                stream.flush()?;
            }
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        ResultFault::Stall => {
            stream.write_all(&body[..body.len() / 2])?;
            stream.flush()?;
        }
        ResultFault::ResetBeforeHeaders => unreachable!("answered above"),
    }
    // Waits for the client to close, so that closing here sends no reset
    // (and a stalled transfer stays stalled until the client gives up).
    while stream.read(&mut buffer)? > 0 {}
    Ok(())
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// A JSON answer.
pub fn json(status: u16, body: Value) -> Response {
    bytes(status, "application/json", body.to_string().into_bytes())
}

/// Any answer with a body and a content type.
pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a valid content type"),
    );
    response
}

/// Adds a header.
pub fn with_header(mut response: Response, name: &'static str, value: impl ToString) -> Response {
    response.headers_mut().insert(
        name,
        HeaderValue::from_str(&value.to_string()).expect("a valid header value"),
    );
    response
}

/// Adds `Retry-After` when the fault has one.
fn with_retry_after(response: Response, fault: &Fault) -> Response {
    match fault.retry_after_secs {
        Some(secs) => with_header(response, "retry-after", secs),
        None => response,
    }
}

/// A download that announces the whole length, sends the first half, then
/// breaks the connection. The pause lets the server flush the headers and
/// the first half, so the client sees a transfer break off mid-way rather
/// than a connection closed before any answer.
pub fn broken_download(content_type: &str, body: Vec<u8>) -> Response {
    let failure = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the fake broke the download",
        ))
    });
    half_then(content_type, body, failure)
}

/// A download that announces the whole length, sends the first half, then
/// sends nothing more while keeping the connection open until the fake
/// stops: a transfer caught in the middle, for tests that interrupt one.
pub fn stalled_download(content_type: &str, body: Vec<u8>) -> Response {
    half_then(content_type, body, futures_util::stream::pending())
}

/// A download with the whole body's `Content-Length` whose stream is the
/// first half of `body` followed by `rest`.
fn half_then(
    content_type: &str,
    body: Vec<u8>,
    rest: impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    use futures_util::StreamExt;

    let total = body.len();
    let half = Bytes::from(body[..total / 2].to_vec());
    let first = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(half) });
    let mut response = Response::new(Body::from_stream(first.chain(rest)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("a valid content type"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    response
}

/// A whole download with its length.
pub fn download(content_type: &str, body: Vec<u8>) -> Response {
    let length = body.len();
    with_header(bytes(200, content_type, body), "content-length", length)
}

// ---------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh, unique id such as `job_17`.
pub fn next_id(prefix: &str) -> String {
    format!("{prefix}_{}", NEXT_ID.fetch_add(1, Ordering::SeqCst))
}

/// A fresh UUID-shaped id, as Uploadcare uses.
pub fn uuid() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::SeqCst);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        n
    )
}

// ---------------------------------------------------------------------------
// Photos and results
// ---------------------------------------------------------------------------

/// The size of generated test photos.
pub const PHOTO_SIZE: (u32, u32) = (320, 240);

/// A seed from a name, so each photo differs but is the same on every run.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A product shot: a shaded bottle with a cap standing on a light sweep, with
/// a soft contact shadow. Deterministic for a seed.
pub fn product_shot(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let palette = [
        [196.0, 58.0, 44.0],
        [38.0, 104.0, 176.0],
        [56.0, 138.0, 78.0],
        [206.0, 150.0, 36.0],
    ];
    let body = palette[(seed % palette.len() as u64) as usize];
    let (w, h) = (width as f32, height as f32);
    let cx = w * 0.5 + (rng.f32() - 0.5) * w * 0.06;
    let radius = w * (0.12 + rng.f32() * 0.03);
    let neck = radius * 0.42;
    let (cap_top, top, base) = (h * 0.16, h * 0.22, h * 0.80);
    let shoulder = top + (base - top) * 0.3;
    let mut image = RgbImage::new(width, height);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
        // The sweep: lighter at the top, a faint warm tint, a little grain.
        let t = fy / h;
        let grain = (rng.f32() - 0.5) * 3.0;
        let level = 247.0 - 20.0 * t + grain;
        let mut colour = [level, level - 1.0, level - 5.0];
        // A soft contact shadow, offset away from the light.
        let dx = (fx - cx - radius * 0.35) / (radius * 2.2);
        let dy = (fy - base) / (h * 0.05);
        let shadow = 0.42 * (-(dx * dx + dy * dy) * 1.6).exp();
        for c in &mut colour {
            *c *= 1.0 - shadow;
        }
        // The bottle: a cylinder that narrows into a neck, then a dark cap.
        let half_width = if fy >= shoulder && fy <= base {
            radius
        } else if fy >= top && fy < shoulder {
            neck + (radius - neck) * smoothstep(top + (shoulder - top) * 0.4, shoulder, fy)
        } else if fy >= cap_top && fy < top {
            neck * 1.15
        } else {
            0.0
        };
        let coverage = (half_width - (fx - cx).abs() + 0.5).clamp(0.0, 1.0);
        if coverage > 0.0 {
            let nx = ((fx - cx) / half_width).clamp(-1.0, 1.0);
            let nz = (1.0 - nx * nx).sqrt();
            let diffuse = (-0.55 * nx + 0.83 * nz).max(0.0);
            let specular = (-((nx + 0.38) * (nx + 0.38)) / 0.006).exp() * 0.55;
            let occlusion = 1.0 - 0.3 * smoothstep(base - h * 0.05, base, fy);
            let material = if fy < top { [38.0, 38.0, 44.0] } else { body };
            for (c, m) in colour.iter_mut().zip(material) {
                let lit = (m * (0.3 + 0.8 * diffuse) * occlusion + 255.0 * specular).min(255.0);
                *c = *c * (1.0 - coverage) + lit * coverage;
            }
        }
        *pixel = Rgb(colour.map(|c| c.clamp(0.0, 255.0) as u8));
    }
    image
}

/// Writes a product shot to `path`, encoded by its extension (PNG, JPEG or
/// WebP), creating parent folders.
pub fn write_photo(path: &Path) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let photo = product_shot(PHOTO_SIZE.0, PHOTO_SIZE.1, seed_of(&name));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the photo's folder");
    }
    photo.save(path).expect("write the photo");
}

/// Decodes an uploaded image, whatever its format.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    image::load_from_memory(bytes)
        .map(|i| i.to_rgb8())
        .map_err(|e| e.to_string())
}

/// What the fakes do to remove a background: each row's backdrop is taken
/// from its outermost pixels, and alpha rises with the distance from it.
pub fn cut_out(photo: &RgbImage) -> RgbaImage {
    let (width, height) = photo.dimensions();
    let edge = 6.min(width / 2).max(1);
    let mut out = RgbaImage::new(width, height);
    for y in 0..height {
        let mut sum = [0.0f32; 3];
        let columns: Vec<u32> = (0..edge).chain(width - edge..width).collect();
        for &x in &columns {
            let p = photo.get_pixel(x, y);
            for c in 0..3 {
                sum[c] += f32::from(p[c]);
            }
        }
        let backdrop = sum.map(|s| s / columns.len() as f32);
        for x in 0..width {
            let p = photo.get_pixel(x, y);
            let distance = (0..3)
                .map(|c| (f32::from(p[c]) - backdrop[c]).powi(2))
                .sum::<f32>()
                .sqrt();
            let alpha = (smoothstep(14.0, 40.0, distance) * 255.0).round() as u8;
            out.put_pixel(x, y, Rgba([p[0], p[1], p[2], alpha]));
        }
    }
    out
}

/// `cutout` scaled to `size` when one is given: a provider that delivers
/// another size than it was sent.
pub fn resized(cutout: RgbaImage, size: Option<(u32, u32)>) -> RgbaImage {
    match size {
        Some((width, height)) => image::imageops::resize(
            &cutout,
            width,
            height,
            image::imageops::FilterType::Triangle,
        ),
        None => cutout,
    }
}

/// A cut-out flattened onto a colour, as a provider's "compose" variation.
pub fn flatten(cutout: &RgbaImage, background: [u8; 3]) -> RgbImage {
    let mut out = RgbImage::new(cutout.width(), cutout.height());
    for (x, y, p) in cutout.enumerate_pixels() {
        let a = f32::from(p[3]) / 255.0;
        let mix =
            |c: usize| (f32::from(p[c]) * a + f32::from(background[c]) * (1.0 - a)).round() as u8;
        out.put_pixel(x, y, Rgb([mix(0), mix(1), mix(2)]));
    }
    out
}

/// An image's bytes in `format`.
fn encode(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .into()
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encode {format:?}: {e}"));
    out.into_inner()
}

/// PNG bytes of an RGBA image.
pub fn png(image: &RgbaImage) -> Vec<u8> {
    encode(image.clone(), ImageFormat::Png)
}

/// Lossless WebP bytes of an RGBA image.
pub fn webp(image: &RgbaImage) -> Vec<u8> {
    encode(image.clone(), ImageFormat::WebP)
}

/// JPEG bytes of an RGB image.
pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    encode(image.clone(), ImageFormat::Jpeg)
}

/// The cut-out a fake returns for an uploaded image: same size, alpha from
/// the backdrop distance.
pub fn cut_out_upload(bytes: &[u8]) -> Result<RgbaImage, String> {
    decode(bytes).map(|photo| cut_out(&photo))
}

/// The cut-out a fake returns for an image URL it "fetched": a product shot
/// seeded by the URL.
pub fn cut_out_url(url: &str) -> RgbaImage {
    cut_out(&product_shot(PHOTO_SIZE.0, PHOTO_SIZE.1, seed_of(url)))
}

/// A few KB that start like a WebM file (EBML magic), standing in for a
/// processed video.
pub fn fake_webm(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0x1a, 0x45, 0xdf, 0xa3];
    bytes.extend((0..6 * 1024).map(|_| rng.u8(..)));
    bytes
}

/// A few KB that start like an MP4 file (`ftyp` box), standing in for a
/// video on disk.
pub fn fake_mp4(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0, 0, 0, 0x18];
    bytes.extend_from_slice(b"ftypisom");
    bytes.extend((0..4 * 1024).map(|_| rng.u8(..)));
    bytes
}

/// Whether `text` is an absolute http(s) URL.
pub fn is_web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}
