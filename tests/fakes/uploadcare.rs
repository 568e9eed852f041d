//! A fake Uploadcare with its Remove.bg add-on (`PROVIDERS.md` §1), on three
//! hosts like the real one: Upload (`/base/`, `/from_url/`), REST
//! (`/addons/remove_bg/execute/`, `…/status/`, `/files/{id}/`, and the
//! `/files/?limit=&stored=` listing of the signature example) and CDN
//! (`/{id}/…`).
//!
//! REST requests are checked as the real service checks them: the `Accept`
//! version header, and the `Uploadcare <public>:<signature>` scheme, the HMAC
//! recomputed here (independently of the client) from the method, the body's
//! MD5, the `Content-Type`, the `Date` (within 15 minutes) and the URI. Signed
//! uploads check the `signature`/`expire` pair.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;

use super::{
    Breakage, Fake, Fault, Faults, Ledger, Ports, Reply, ResultFault, ResultHost, Seen, Server,
    lock,
};

/// The project's public key.
pub const PUBLIC_KEY: &str = "ucpub-demo-7a1b2c";
/// The project's secret key, which must never leave the client.
pub const SECRET_KEY: &str = "ucsec-W9dNEVERPRINTk3y-44f0";
/// The only REST API version the fake speaks.
pub const ACCEPT: &str = "application/vnd.uploadcare-v0.7+json";

const PARAMS_BOOL: [&str; 3] = ["crop", "add_shadow", "semitransparency"];
const PARAMS_TEXT: [&str; 7] = [
    "crop_margin",
    "scale",
    "type_level",
    "type",
    "channels",
    "roi",
    "position",
];
const PARAMS_FORBIDDEN: [&str; 4] = ["size", "format", "bg_image_url", "shadow_method"];

/// The REST signature: lowercase hex HMAC-SHA1, keyed by the secret, of
/// method, body MD5, Content-Type, Date and URI joined by `\n`.
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
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signed-upload signature: hex HMAC-SHA256 of `expire`, keyed by the
/// secret.
pub fn upload_signature(secret: &str, expire: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(expire.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// How a Remove.bg request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// `done` with a result file.
    Done,
    /// `error` with this message.
    Error(&'static str),
    /// `in_progress` forever.
    Never,
}

/// What this run of the fake does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Whether the project has signed uploads on (then `signature`/`expire`
    /// are checked; otherwise they are ignored, like the real service).
    pub signed_uploads: bool,
    /// Answers for `POST /base/` after the public-key check.
    pub upload_faults: Vec<Fault>,
    /// Answers for `POST /addons/remove_bg/execute/` after authentication.
    pub execute_faults: Vec<Fault>,
    /// Answers for the status call after authentication.
    pub status_faults: Vec<Fault>,
    /// `in_progress` answers before the ending.
    pub in_progress_polls: usize,
    /// How requests end.
    pub ending: Ending,
    /// `progress` answers of `/from_url/status/` before `success`.
    pub from_url_polls: usize,
    /// Answers for `GET /from_url/status/`, before the token is looked up.
    pub from_url_status_faults: Vec<Fault>,
    /// Whether CDN downloads of results break off.
    pub downloads_break: Breakage,
    /// A fault mode: the first result's `original_file_url` points at a
    /// [`ResultHost`] that misbehaves this way on every download.
    pub result_fault: Option<ResultFault>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            signed_uploads: true,
            upload_faults: Vec::new(),
            execute_faults: Vec::new(),
            status_faults: Vec::new(),
            in_progress_polls: 2,
            ending: Ending::Done,
            from_url_polls: 1,
            from_url_status_faults: Vec::new(),
            downloads_break: Breakage::Never,
            result_fault: None,
        }
    }
}

#[derive(Debug, Clone)]
struct StoredFile {
    bytes: Vec<u8>,
    name: String,
    mime: String,
    downloads: u32,
    is_result: bool,
}

#[derive(Debug, Clone)]
struct RemoveBgRequest {
    target: String,
    polls: usize,
    result: Option<String>,
}

#[derive(Debug, Clone)]
struct FromUrl {
    source_url: String,
    polls: usize,
    file: Option<String>,
}

struct Inner {
    ledger: Ledger,
    api_base: String,
    cdn_base: String,
    script: Script,
    upload_faults: Faults,
    execute_faults: Faults,
    status_faults: Faults,
    from_url_status_faults: Faults,
    files: Mutex<BTreeMap<String, StoredFile>>,
    requests: Mutex<BTreeMap<String, RemoveBgRequest>>,
    tokens: Mutex<BTreeMap<String, FromUrl>>,
    status_polls: AtomicUsize,
    result_host: Option<ResultHost>,
}

#[derive(Clone)]
struct Host {
    inner: Arc<Inner>,
    name: &'static str,
}

/// A running fake Uploadcare.
pub struct FakeUploadcare {
    server: Server,
    inner: Arc<Inner>,
}

/// Its paid call is `POST /addons/remove_bg/execute/`; `url` is the REST
/// API's.
impl Fake for FakeUploadcare {
    type Script = Script;
    const PROVIDER: &'static str = "uploadcare";
    const URL_VAR: &'static str = "CUTOUT_UPLOADCARE_API_URL";
    const KEY_VAR: &'static str = "CUTOUT_UPLOADCARE_SECRET_KEY";
    const KEY: &'static str = SECRET_KEY;

    /// Starts the three hosts on loopback ports.
    fn start(script: Script) -> FakeUploadcare {
        let ports = Ports::bind(3);
        let inner = Arc::new(Inner {
            ledger: Ledger::default(),
            api_base: ports.url(0),
            cdn_base: ports.url(2),
            upload_faults: Faults::new(&script.upload_faults),
            execute_faults: Faults::new(&script.execute_faults),
            status_faults: Faults::new(&script.status_faults),
            from_url_status_faults: Faults::new(&script.from_url_status_faults),
            result_host: script.result_fault.map(ResultHost::start),
            script,
            files: Mutex::default(),
            requests: Mutex::default(),
            tokens: Mutex::default(),
            status_polls: AtomicUsize::default(),
        });
        let router = |name: &'static str| {
            Router::new().fallback(handle).with_state(Host {
                inner: inner.clone(),
                name,
            })
        };
        let server = ports.serve(vec![router("api"), router("upload"), router("cdn")]);
        FakeUploadcare { server, inner }
    }

    fn url(&self) -> String {
        self.server.url(0)
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    fn result_host(&self) -> Option<&ResultHost> {
        self.inner.result_host.as_ref()
    }

    /// Both hosts the CLI needs and both keys; the CDN is left to
    /// `original_file_url`.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (Self::URL_VAR, self.url()),
            ("CUTOUT_UPLOADCARE_UPLOAD_URL", self.server.url(1)),
            ("CUTOUT_UPLOADCARE_PUBLIC_KEY", PUBLIC_KEY.to_owned()),
            (Self::KEY_VAR, SECRET_KEY.to_owned()),
        ]
    }
}

impl FakeUploadcare {
    /// Status calls received.
    pub fn status_polls(&self) -> usize {
        self.inner.status_polls.load(Ordering::SeqCst)
    }

    /// The Remove.bg request ids issued.
    pub fn request_ids(&self) -> Vec<String> {
        lock(&self.inner.requests).keys().cloned().collect()
    }
}

// ---------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------

fn detail(status: u16, text: &str) -> Response {
    super::json(status, json!({"detail": text}))
}

fn rest_fault(fault: &Fault) -> Response {
    match fault.status {
        429 => {
            let secs = fault.retry_after_secs.unwrap_or(15);
            let unit = if secs == 1 { "second" } else { "seconds" };
            detail(
                429,
                &format!("Request was throttled. Expected available in {secs} {unit}."),
            )
        }
        status @ 400..=499 => detail(status, "Bad request."),
        status => super::bytes(
            status,
            "text/html",
            format!("<h1>Server Error ({status})</h1>").into_bytes(),
        ),
    }
}

fn upload_error(seen: &Seen, status: u16, code: &str, content: &str) -> Response {
    if seen.query("jsonerrors").as_deref() == Some("1") {
        super::json(
            status,
            json!({"error": {"content": content, "status_code": status, "error_code": code}}),
        )
    } else {
        super::bytes(
            status,
            "text/plain",
            format!("[HTTP {status}] {content}").into_bytes(),
        )
    }
}

fn upload_fault(seen: &Seen, fault: &Fault) -> Response {
    match fault.status {
        429 => upload_error(seen, 429, "RequestThrottledError", "Request was throttled."),
        status => upload_error(
            seen,
            status,
            "InternalServerError",
            "Internal server error.",
        ),
    }
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

async fn handle(State(host): State<Host>, request: Request) -> Reply {
    let fake = &host.inner;
    let seen = fake.ledger.receive(host.name, request).await;
    let segments = seen.segments();
    let slash = seen.path().ends_with('/');
    match (host.name, seen.method.as_str(), segments.as_slice()) {
        ("upload", "POST", ["base"]) if slash => base_upload(fake, &seen),
        ("upload", "POST", ["from_url"]) if slash => from_url(fake, &seen),
        ("upload", "GET", ["from_url", "status"]) if slash => from_url_status(fake, &seen),
        ("upload", _, _) => Err(upload_error(&seen, 404, "NotFound", "Not found.")),
        ("api", method, path) => {
            if let Err(refusal) = check_rest_auth(&seen) {
                if method == "POST" && path == ["addons", "remove_bg", "execute"] {
                    fake.ledger.submitted();
                }
                return Err(refusal);
            }
            match (method, path) {
                ("POST", ["addons", "remove_bg", "execute"]) if slash => execute(fake, &seen),
                ("GET", ["addons", "remove_bg", "execute", "status"]) if slash => {
                    status(fake, &seen)
                }
                ("GET", ["files"]) if slash => file_list(fake, &seen),
                ("GET", ["files", id]) if slash => file_info(fake, id),
                _ => Err(detail(404, "Not found.")),
            }
        }
        ("cdn", "GET", [id, ..]) => cdn(fake, id),
        _ => Err(super::bytes(404, "text/plain", b"Not Found".to_vec())),
    }
}

// ---------------------------------------------------------------------------
// REST authentication
// ---------------------------------------------------------------------------

fn check_rest_auth(seen: &Seen) -> Result<(), Response> {
    if seen.header("accept") != Some(ACCEPT) {
        return Err(detail(
            406,
            "Incorrect Accept header provided. Make sure to specify API version. Refer to REST API docs for details.",
        ));
    }
    let Some(authorization) = seen.header("authorization") else {
        return Err(detail(401, "Authentication credentials were not provided."));
    };
    if authorization.starts_with("Uploadcare.Simple ") {
        return Err(detail(
            401,
            "Simple authentication over HTTP is forbidden. Please, use HTTPS or signed requests instead.",
        ));
    }
    let Some((public_key, signature)) = authorization
        .strip_prefix("Uploadcare ")
        .and_then(|param| param.split_once(':'))
    else {
        return Err(detail(401, "Incorrect authentication credentials."));
    };
    if public_key != PUBLIC_KEY {
        return Err(detail(401, "Incorrect authentication credentials."));
    }
    let Some(date) = seen.header("date") else {
        return Err(detail(401, "Date header is required for signed requests."));
    };
    let fresh = date.ends_with(" GMT")
        && httpdate::parse_http_date(date).is_ok_and(|sent| {
            let now = SystemTime::now();
            let skew = now.duration_since(sent).unwrap_or_else(|e| e.duration());
            skew <= Duration::from_secs(15 * 60)
        });
    if !fresh {
        return Err(detail(
            401,
            "Date header is not within 15 minutes of the server time.",
        ));
    }
    let content_type = seen.header("content-type").unwrap_or_default();
    let uri = seen
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let expected = rest_signature(
        SECRET_KEY,
        seen.method.as_str(),
        &seen.body,
        content_type,
        date,
        uri,
    );
    if signature != expected {
        return Err(detail(
            401,
            "Invalid signature. Please check your Secret key.",
        ));
    }
    if seen.method == "POST" && seen.media_type() != "application/json" {
        return Err(detail(
            415,
            &format!("Unsupported media type \"{content_type}\" in request."),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Upload API
// ---------------------------------------------------------------------------

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The public key and, for signed projects, the signature pair.
fn check_upload_credentials(fake: &Inner, seen: &Seen, key_field: &str) -> Result<(), Response> {
    let refuse = |status, code, content: &str| Err(upload_error(seen, status, code, content));
    let Some(public_key) = seen.field(key_field).filter(|k| !k.is_empty()) else {
        return refuse(
            403,
            "PublicKeyRequiredError",
            &format!("{key_field} is required."),
        );
    };
    if public_key != PUBLIC_KEY {
        return refuse(
            403,
            "ProjectPublicKeyInvalidError",
            &format!("{key_field} is invalid."),
        );
    }
    if !fake.script.signed_uploads {
        return Ok(());
    }
    let Some(signature) = seen.field("signature").filter(|s| !s.is_empty()) else {
        return refuse(400, "SignatureRequiredError", "signature is required.");
    };
    let Some(expire) = seen.field("expire").filter(|s| !s.is_empty()) else {
        return refuse(400, "ExpireRequiredError", "expire is required.");
    };
    let Ok(expire_secs) = expire.parse::<u64>() else {
        return refuse(
            400,
            "ExpireInvalidError",
            "expire must be a UNIX timestamp.",
        );
    };
    if expire_secs < now_secs() {
        return refuse(403, "SignatureExpirationError", "Expired signature.");
    }
    if signature != upload_signature(SECRET_KEY, expire) {
        return refuse(403, "SignatureInvalidError", "Invalid signature.");
    }
    Ok(())
}

fn check_store(seen: &Seen, field: &str) -> Result<(), Response> {
    match seen.field(field) {
        None | Some("0" | "1" | "auto") => Ok(()),
        Some(other) => Err(upload_error(
            seen,
            400,
            "UploadcareStoreInvalidError",
            &format!("{field} must be 0, 1 or auto, not {other}."),
        )),
    }
}

/// Keeps an uploaded (or fetched) file and returns its id.
fn store(fake: &Inner, bytes: Vec<u8>, name: String, mime: String, is_result: bool) -> String {
    let id = super::uuid();
    let file = StoredFile {
        bytes,
        name,
        mime,
        downloads: 0,
        is_result,
    };
    lock(&fake.files).insert(id.clone(), file);
    id
}

fn base_upload(fake: &Inner, seen: &Seen) -> Reply {
    let no_files = || {
        upload_error(
            seen,
            400,
            "RequestFileRequiredError",
            "Request does not contain files.",
        )
    };
    let files = match &seen.form {
        Some(form) if seen.media_type() == "multipart/form-data" => form.files.clone(),
        _ => return Err(no_files()),
    };
    check_upload_credentials(fake, seen, "UPLOADCARE_PUB_KEY")?;
    fake.upload_faults
        .check(|fault| upload_fault(seen, fault))?;
    check_store(seen, "UPLOADCARE_STORE")?;
    if files.is_empty() {
        return Err(no_files());
    }
    let mut answer = serde_json::Map::new();
    for part in files {
        if part.bytes.is_empty() {
            return Err(upload_error(
                seen,
                400,
                "FileSizeLimitExceededError",
                "The file is empty.",
            ));
        }
        let name = part.file_name.clone().unwrap_or_else(|| "file".to_owned());
        let mime = part
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let id = store(fake, part.bytes.to_vec(), name, mime, false);
        answer.insert(part.field, json!(id));
    }
    Ok(super::json(200, Value::Object(answer)))
}

fn from_url(fake: &Inner, seen: &Seen) -> Reply {
    let no_source = || {
        upload_error(
            seen,
            400,
            "SourceURLRequiredError",
            "source_url is required.",
        )
    };
    if seen.form.is_none() {
        return Err(no_source());
    }
    check_upload_credentials(fake, seen, "pub_key")?;
    check_store(seen, "store")?;
    let source_url = seen
        .field("source_url")
        .filter(|u| !u.is_empty())
        .ok_or_else(no_source)?;
    if !super::is_web_url(source_url) {
        return Err(upload_error(
            seen,
            400,
            "SourceURLParserError",
            "Failed to parse URL.",
        ));
    }
    let token = super::uuid();
    lock(&fake.tokens).insert(
        token.clone(),
        FromUrl {
            source_url: source_url.to_owned(),
            polls: 0,
            file: None,
        },
    );
    Ok(super::json(200, json!({"type": "token", "token": token})))
}

fn from_url_status(fake: &Inner, seen: &Seen) -> Reply {
    fake.from_url_status_faults
        .check(|fault| upload_fault(seen, fault))?;
    let token = seen.query("token").unwrap_or_default();
    let mut tokens = lock(&fake.tokens);
    let Some(job) = tokens.get_mut(&token) else {
        return Ok(super::json(200, json!({"status": "unknown"})));
    };
    job.polls += 1;
    if job.polls <= fake.script.from_url_polls {
        return Ok(super::json(
            200,
            json!({"status": "progress", "done": 1024, "total": 4096}),
        ));
    }
    let id = job.file.get_or_insert_with(|| {
        let photo = super::product_shot(
            super::PHOTO_SIZE.0,
            super::PHOTO_SIZE.1,
            super::seed_of(&job.source_url),
        );
        let name = job
            .source_url
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("download")
            .to_owned();
        store(fake, super::jpeg(&photo), name, "image/jpeg".into(), false)
    });
    let files = lock(&fake.files);
    let file = &files[id.as_str()];
    Ok(super::json(
        200,
        json!({"status": "success", "uuid": id, "file_id": id, "filename": file.name,
               "original_filename": file.name, "size": file.bytes.len(), "is_image": true,
               "is_stored": false, "mime_type": file.mime}),
    ))
}

// ---------------------------------------------------------------------------
// REST: the add-on and files
// ---------------------------------------------------------------------------

fn check_params(params: &Value) -> Result<(), String> {
    let Value::Object(params) = params else {
        return Err("params: Expected a dictionary of items.".into());
    };
    for (key, value) in params {
        if PARAMS_FORBIDDEN.contains(&key.as_str()) {
            return Err(format!("params: Unexpected parameter `{key}`."));
        }
        if PARAMS_BOOL.contains(&key.as_str()) {
            if !value.is_boolean() {
                return Err(format!("params.{key}: Must be a valid boolean."));
            }
        } else if PARAMS_TEXT.contains(&key.as_str()) {
            let Some(text) = value.as_str() else {
                return Err(format!("params.{key}: Not a valid string."));
            };
            let allowed: &[&str] = match key.as_str() {
                "type_level" => &["none", "1", "2", "latest"],
                "type" => &["auto", "person", "product", "car"],
                "channels" => &["rgba", "alpha"],
                _ => &[],
            };
            if !allowed.is_empty() && !allowed.contains(&text) {
                return Err(format!("params.{key}: \"{text}\" is not a valid choice."));
            }
        } else {
            return Err(format!("params: Unexpected parameter `{key}`."));
        }
    }
    Ok(())
}

fn execute(fake: &Inner, seen: &Seen) -> Reply {
    fake.ledger.submitted();
    fake.execute_faults.check(rest_fault)?;
    let Some(Value::Object(body)) = seen.json() else {
        return Err(detail(400, "JSON parse error."));
    };
    if let Some(key) = body.keys().find(|k| *k != "target" && *k != "params") {
        return Err(detail(400, &format!("Unexpected field `{key}`.")));
    }
    let Some(target) = body.get("target").and_then(Value::as_str) else {
        return Err(detail(400, "target: This field is required."));
    };
    if !lock(&fake.files).contains_key(target) {
        return Err(detail(400, "target: File not found."));
    }
    if let Some(params) = body.get("params") {
        check_params(params).map_err(|message| detail(400, &message))?;
    }
    let request_id = super::uuid();
    lock(&fake.requests).insert(
        request_id.clone(),
        RemoveBgRequest {
            target: target.to_owned(),
            polls: 0,
            result: None,
        },
    );
    Ok(super::json(200, json!({"request_id": request_id})))
}

fn status(fake: &Inner, seen: &Seen) -> Reply {
    fake.status_polls.fetch_add(1, Ordering::SeqCst);
    fake.status_faults.check(rest_fault)?;
    let Some(request_id) = seen.query("request_id").filter(|id| !id.is_empty()) else {
        return Err(detail(400, "request_id: This field is required."));
    };
    let mut requests = lock(&fake.requests);
    let request = requests
        .get_mut(&request_id)
        .ok_or_else(|| detail(404, "Not found."))?;
    request.polls += 1;
    if request.polls <= fake.script.in_progress_polls || fake.script.ending == Ending::Never {
        return Ok(super::json(200, json!({"status": "in_progress"})));
    }
    if let Ending::Error(message) = &fake.script.ending {
        return Ok(super::json(
            200,
            json!({"status": "error", "error": message, "result": {"error": message}}),
        ));
    }
    let result_id = match &request.result {
        Some(id) => id.clone(),
        None => {
            let Some(source) = lock(&fake.files).get(&request.target).cloned() else {
                return Ok(super::json(
                    200,
                    json!({"status": "error", "error": "Source file was removed."}),
                ));
            };
            let Ok(cutout) = super::cut_out_upload(&source.bytes) else {
                return Ok(super::json(
                    200,
                    json!({"status": "error", "error": "Failed to read image."}),
                ));
            };
            let stem = source
                .name
                .rsplit_once('.')
                .map_or(source.name.as_str(), |(s, _)| s);
            let name = format!("{stem}.png");
            let id = store(fake, super::png(&cutout), name, "image/png".into(), true);
            request.result = Some(id.clone());
            id
        }
    };
    Ok(super::json(
        200,
        json!({"status": "done", "result": {"file_id": result_id}}),
    ))
}

/// The paginated file listing: `limit` 1–1000 (default 100), `stored`
/// `true`/`false` to filter. Inputs are uploaded with `store=0` and results
/// are not stored either, so `stored=true` lists nothing.
fn file_list(fake: &Inner, seen: &Seen) -> Reply {
    let limit = match seen.query("limit") {
        None => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(detail(
                    400,
                    "limit: Ensure this value is between 1 and 1000.",
                ));
            }
        },
    };
    let stored = match seen.query("stored").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(detail(400, "stored: Must be a valid boolean.")),
    };
    let files = lock(&fake.files);
    let listed: Vec<Value> = files
        .iter()
        .filter(|_| stored != Some(true))
        .map(|(id, file)| {
            json!({"uuid": id, "original_filename": file.name, "mime_type": file.mime,
                   "size": file.bytes.len(), "datetime_stored": null})
        })
        .collect();
    let total = listed.len();
    let results: Vec<Value> = listed.into_iter().take(limit).collect();
    Ok(super::json(
        200,
        json!({"next": null, "previous": null, "total": total, "per_page": limit, "results": results}),
    ))
}

fn file_info(fake: &Inner, id: &str) -> Reply {
    let files = lock(&fake.files);
    let file = files.get(id).ok_or_else(|| detail(404, "Not found."))?;
    let (cdn, api) = (&fake.cdn_base, &fake.api_base);
    let misserved = fake
        .result_host
        .as_ref()
        .filter(|host| file.is_result && host.claim(id, &file.mime, &file.bytes));
    let original_file_url = match misserved {
        Some(host) => host.url(&format!("{id}/{}", file.name)),
        None => format!("{cdn}/{id}/{}", file.name),
    };
    Ok(super::json(
        200,
        json!({
            "uuid": id,
            "original_file_url": original_file_url,
            "original_filename": file.name,
            "mime_type": file.mime,
            "size": file.bytes.len(),
            "is_image": true,
            "is_ready": true,
            "datetime_uploaded": "2025-01-01T00:00:00.000000Z",
            "datetime_stored": null,
            "datetime_removed": null,
            "url": format!("{api}/files/{id}/"),
            "metadata": {},
            "appdata": {},
            "content_info": {"mime": {"mime": file.mime}},
        }),
    ))
}

fn cdn(fake: &Inner, id: &str) -> Reply {
    let mut files = lock(&fake.files);
    let file = files
        .get_mut(id)
        .ok_or_else(|| super::bytes(404, "text/plain", b"Not Found".to_vec()))?;
    file.downloads += 1;
    let breakage = if file.is_result {
        fake.script.downloads_break
    } else {
        Breakage::Never
    };
    Ok(breakage.download(file.downloads, &file.mime, file.bytes.clone()))
}
