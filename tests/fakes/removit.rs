//! A fake removit.eu (`PROVIDERS.md` §2): `POST /api/v1/upload` (multipart
//! `file` or JSON `file_url`) queues a job; `GET /api/v1/status?job_id=`
//! walks it through `pending` with rising `progress` to `done` with
//! `final_urls` (or `final_url`), `warnings` and `ignored_variations`.
//! Results are served from `/results/…` without a key, like a CDN.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{
    Breakage, Fake, Fault, Faults, Ledger, Ports, Reply, ResultFault, ResultHost, Seen, Server,
    lock,
};

/// The key the fake accepts.
pub const KEY: &str = "rmv-Z2pNEVERPRINTk3y-92ab";

const MODES: [&str; 3] = ["clipping", "background", "params"];
const DELIVERY: [&str; 2] = ["url", "final_url"];
const FORMATS: [&str; 6] = ["png", "jpg", "jpeg", "psd", "tiff", "webp"];
const FIELDS: [&str; 6] = [
    "file",
    "file_url",
    "mode",
    "params",
    "delivery_mode",
    "output_format",
];

/// What this run of the fake does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Answers for `POST /api/v1/upload`, after the key check.
    pub upload_faults: Vec<Fault>,
    /// Answers for `GET /api/v1/status`, after the key check.
    pub status_faults: Vec<Fault>,
    /// The `progress` of each `pending` answer before `done`.
    pub progress: Vec<u8>,
    /// Keeps answering `pending` forever.
    pub never_finishes: bool,
    /// The variations a `delivery_mode=url` job delivers, in order.
    pub variations: Vec<&'static str>,
    /// `warnings` in the done answer: variation → messages.
    pub warnings: Vec<(&'static str, &'static str)>,
    /// `ignored_variations` in the done answer.
    pub ignored_variations: Vec<&'static str>,
    /// Jobs the account can still pay for.
    pub credits: u32,
    /// Whether result downloads break off.
    pub downloads_break: Breakage,
    /// Result downloads send half their bytes, then nothing more, with the
    /// connection held open until the fake stops.
    pub downloads_stall: bool,
    /// Forgets jobs, so status answers 404 `not_found`.
    pub forgets_jobs: bool,
    /// A fault mode: result links answer 200 with this content type and
    /// body instead of the result (a CDN's error page, say).
    pub results_replaced_by: Option<(&'static str, &'static [u8])>,
    /// A fault mode: result links answer this status (410 for an expired
    /// link, 403 for an expired signature) instead of the result.
    pub results_gone: Option<u16>,
    /// A fault mode: cut-outs come back at this size, not the input's.
    pub delivers_size: Option<(u32, u32)>,
    /// A fault mode: the first job's result links point at a
    /// [`ResultHost`] that misbehaves this way on every download.
    pub result_fault: Option<ResultFault>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            upload_faults: Vec::new(),
            status_faults: Vec::new(),
            progress: vec![10, 45, 80],
            never_finishes: false,
            variations: vec!["clipping"],
            warnings: Vec::new(),
            ignored_variations: Vec::new(),
            credits: 50,
            downloads_break: Breakage::Never,
            downloads_stall: false,
            forgets_jobs: false,
            results_replaced_by: None,
            results_gone: None,
            delivers_size: None,
            result_fault: None,
        }
    }
}

#[derive(Debug)]
struct Job {
    mode: String,
    delivery_mode: String,
    output_format: String,
    polls: usize,
    /// Variation → image bytes.
    results: BTreeMap<String, Vec<u8>>,
    /// Variation → downloads so far.
    downloads: BTreeMap<String, u32>,
}

struct Inner {
    ledger: Ledger,
    base: String,
    upload_faults: Faults,
    status_faults: Faults,
    jobs: Mutex<BTreeMap<String, Job>>,
    credits: Mutex<u32>,
    script: Script,
    status_polls: AtomicUsize,
    result_host: Option<ResultHost>,
}

/// A running fake removit.eu.
pub struct FakeRemovit {
    server: Server,
    inner: Arc<Inner>,
}

impl Fake for FakeRemovit {
    type Script = Script;
    const PROVIDER: &'static str = "removit";
    const URL_VAR: &'static str = "CUTOUT_REMOVIT_URL";
    const KEY_VAR: &'static str = "CUTOUT_REMOVIT_KEY";
    const KEY: &'static str = KEY;

    fn start(script: Script) -> FakeRemovit {
        let ports = Ports::bind(1);
        let inner = Arc::new(Inner {
            ledger: Ledger::default(),
            base: ports.url(0),
            upload_faults: Faults::new(&script.upload_faults),
            status_faults: Faults::new(&script.status_faults),
            jobs: Mutex::default(),
            credits: Mutex::new(script.credits),
            status_polls: AtomicUsize::default(),
            result_host: script.result_fault.map(ResultHost::start),
            script,
        });
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = ports.serve(vec![router]);
        FakeRemovit { server, inner }
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
}

impl FakeRemovit {
    /// Jobs accepted (and so paid for).
    pub fn jobs_created(&self) -> usize {
        lock(&self.inner.jobs).len()
    }

    /// `GET /api/v1/status` calls received.
    pub fn status_polls(&self) -> usize {
        self.inner.status_polls.load(Ordering::SeqCst)
    }

    /// The ids of accepted jobs.
    pub fn job_ids(&self) -> Vec<String> {
        lock(&self.inner.jobs).keys().cloned().collect()
    }
}

fn unauthorized(message: &str) -> Response {
    super::json(401, json!({"error": "unauthorized", "message": message}))
}

fn validation(field: &str, message: &str) -> Response {
    super::json(
        422,
        json!({"error": "validation", "details": {field: [message]}}),
    )
}

fn not_a_choice(field: &str, value: &str) -> Response {
    validation(field, &format!("\"{value}\" is not a valid choice."))
}

fn no_credits() -> Response {
    super::json(402, json!({"error": "insufficient_credits"}))
}

fn not_found() -> Response {
    super::json(404, json!({"error": "not_found"}))
}

fn fault_response(fault: &Fault) -> Response {
    match fault.status {
        401 => unauthorized("API key invalid"),
        402 => no_credits(),
        404 => not_found(),
        422 => validation("file", "Unsupported or corrupt image file."),
        429 => super::json(
            429,
            json!({"error": "rate_limited", "message": "Too many requests"}),
        ),
        500 => super::json(
            500,
            json!({"error": "processing_failed", "message": "Segmentation failed: no subject found"}),
        ),
        status => super::bytes(status, "text/plain", b"upstream unavailable".to_vec()),
    }
}

fn check_key(seen: &Seen) -> Result<(), Response> {
    let key = seen.header("x-api-key").or_else(|| {
        seen.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
    });
    match key {
        None => Err(unauthorized("API key missing")),
        Some(key) if key == KEY => Ok(()),
        Some(_) => Err(unauthorized("API key invalid")),
    }
}

async fn handle(State(fake): State<Arc<Inner>>, request: Request) -> Reply {
    let seen = fake.ledger.receive("main", request).await;
    let segments = seen.segments();
    match (seen.method.as_str(), segments.as_slice()) {
        ("POST", ["api", "v1", "upload"]) => upload(&fake, &seen),
        ("GET", ["api", "v1", "status"]) => status(&fake, &seen),
        ("GET", ["results", job_id, file]) => result(&fake, job_id, file),
        _ => Err(not_found()),
    }
}

/// The upload's fields, from multipart or JSON.
struct Upload {
    fields: BTreeMap<String, String>,
    file: Option<Vec<u8>>,
}

fn read_upload(seen: &Seen) -> Result<Upload, Response> {
    if let Some(form) = &seen.form {
        let mut fields = form.fields.clone();
        for part in &form.files {
            if part.field != "file" {
                fields.insert(part.field.clone(), String::new());
            }
        }
        let file = form
            .files
            .iter()
            .find(|f| f.field == "file")
            .map(|f| f.bytes.to_vec());
        if file.is_none() && fields.contains_key("file") {
            return Err(validation(
                "file",
                "Must be a file upload, not a text field.",
            ));
        }
        return Ok(Upload { fields, file });
    }
    if let Some(error) = &seen.form_error {
        return Err(validation(
            "file",
            &format!("Malformed multipart body: {error}"),
        ));
    }
    if seen.media_type() == "application/json" {
        let Some(Value::Object(map)) = seen.json() else {
            return Err(validation("body", "Malformed JSON."));
        };
        let mut fields = BTreeMap::new();
        for (key, value) in map {
            let Value::String(text) = value else {
                return Err(validation(&key, "Must be a string."));
            };
            fields.insert(key, text);
        }
        return Ok(Upload { fields, file: None });
    }
    Err(validation("file", "Either file or file_url is required."))
}

fn upload(fake: &Inner, seen: &Seen) -> Reply {
    fake.ledger.submitted();
    check_key(seen)?;
    fake.upload_faults.check(fault_response)?;
    let upload = read_upload(seen)?;
    if let Some(key) = upload.fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(validation(key, "Unknown field."));
    }
    let photo = match (&upload.file, upload.fields.get("file_url")) {
        (Some(_), Some(_)) => {
            return Err(validation(
                "file",
                "Provide either file or file_url, not both.",
            ));
        }
        (None, None) => {
            return Err(validation("file", "Either file or file_url is required."));
        }
        (None, Some(url)) if !super::is_web_url(url) => {
            return Err(validation("file_url", "Enter a valid URL."));
        }
        (None, Some(url)) => super::product_shot(
            super::PHOTO_SIZE.0,
            super::PHOTO_SIZE.1,
            super::seed_of(url),
        ),
        (Some(bytes), None) => super::decode(bytes)
            .map_err(|_| validation("file", "Unsupported or corrupt image file."))?,
    };
    let choice = |field: &str, default: &'static str, allowed: &[&str]| {
        super::choice(&upload.fields, field, default, allowed)
            .map(str::to_owned)
            .map_err(|value| not_a_choice(field, value))
    };
    let mode = choice("mode", "clipping", &MODES)?;
    if mode == "params" && upload.fields.get("params").is_none_or(|p| p.is_empty()) {
        return Err(validation(
            "params",
            "This field is required when mode is params.",
        ));
    }
    let delivery_mode = choice("delivery_mode", "url", &DELIVERY)?;
    let output_format = choice("output_format", "png", &FORMATS)?;
    {
        let mut credits = lock(&fake.credits);
        if *credits == 0 {
            return Err(no_credits());
        }
        *credits -= 1;
    }

    let cutout = super::resized(super::cut_out(&photo), fake.script.delivers_size);
    let encode = |variation: &str| -> Vec<u8> {
        let opaque = variation == "compose" || variation == "background";
        match (output_format.as_str(), opaque) {
            ("jpg" | "jpeg", _) => super::jpeg(&super::flatten(&cutout, [255, 255, 255])),
            ("webp", _) => super::webp(&cutout),
            (_, true) => super::png(
                &image::DynamicImage::ImageRgb8(super::flatten(&cutout, [240, 240, 240]))
                    .to_rgba8(),
            ),
            _ => super::png(&cutout),
        }
    };
    let variations: Vec<&str> = if delivery_mode == "final_url" {
        vec!["final"]
    } else {
        fake.script.variations.clone()
    };
    let results = variations
        .iter()
        .map(|v| (v.to_string(), encode(v)))
        .collect();
    let job_id = super::next_id("rmv_job");
    lock(&fake.jobs).insert(
        job_id.clone(),
        Job {
            mode: mode.clone(),
            delivery_mode,
            output_format,
            polls: 0,
            results,
            downloads: BTreeMap::new(),
        },
    );
    Ok(super::json(
        202,
        json!({"job_id": job_id, "status": "queued", "mode": mode}),
    ))
}

fn status(fake: &Inner, seen: &Seen) -> Reply {
    fake.status_polls.fetch_add(1, Ordering::SeqCst);
    check_key(seen)?;
    fake.status_faults.check(fault_response)?;
    let Some(job_id) = seen.query("job_id").filter(|id| !id.is_empty()) else {
        return Err(validation("job_id", "This field is required."));
    };
    if fake.script.forgets_jobs {
        return Err(not_found());
    }
    let mut jobs = lock(&fake.jobs);
    let job = jobs.get_mut(&job_id).ok_or_else(not_found)?;
    let step = job.polls;
    job.polls += 1;
    let pending = fake.script.never_finishes || step < fake.script.progress.len();
    if pending {
        let progress = fake.script.progress.get(step).copied().unwrap_or(50);
        let detail = if step == 0 {
            "queued".to_owned()
        } else {
            format!("pending_{}", job.mode)
        };
        return Ok(super::json(
            200,
            json!({"job_id": job_id, "status": detail, "state": "pending", "mode": job.mode,
                   "progress": progress, "final_url": null}),
        ));
    }
    let ext = job.output_format.clone();
    let misserved = fake.result_host.as_ref().filter(|host| {
        let first = job.results.values().next().cloned().unwrap_or_default();
        host.claim(&job_id, content_type_of(&ext), &first)
    });
    let base = match misserved {
        Some(host) => host.url("results"),
        None => format!("{}/results", fake.base),
    };
    let url_of = |variation: &str| format!("{base}/{job_id}/{variation}.{ext}");
    let mut body = Map::new();
    body.insert("job_id".into(), json!(job_id));
    body.insert("status".into(), json!("done"));
    body.insert("state".into(), json!("done"));
    body.insert("mode".into(), json!(job.mode));
    body.insert("progress".into(), json!(100));
    if job.delivery_mode == "final_url" {
        body.insert("final_url".into(), json!(url_of("final")));
    } else {
        body.insert("final_url".into(), Value::Null);
        let urls: Map<String, Value> = fake
            .script
            .variations
            .iter()
            .map(|v| (v.to_string(), json!(url_of(v))))
            .collect();
        body.insert("final_urls".into(), Value::Object(urls));
        if !fake.script.warnings.is_empty() {
            let mut warnings: Map<String, Value> = Map::new();
            for (variation, message) in &fake.script.warnings {
                let entry = warnings
                    .entry(variation.to_string())
                    .or_insert_with(|| json!([]));
                if let Value::Array(list) = entry {
                    list.push(json!(message));
                }
            }
            body.insert("warnings".into(), Value::Object(warnings));
        }
        if !fake.script.ignored_variations.is_empty() {
            body.insert(
                "ignored_variations".into(),
                json!(fake.script.ignored_variations),
            );
        }
    }
    Ok(super::json(200, Value::Object(body)))
}

fn result(fake: &Inner, job_id: &str, file: &str) -> Reply {
    let not_found = || super::bytes(404, "text/plain", b"Not Found".to_vec());
    let mut jobs = lock(&fake.jobs);
    let job = jobs.get_mut(job_id).ok_or_else(not_found)?;
    let variation = file
        .rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_owned();
    let bytes = job.results.get(&variation).cloned().ok_or_else(not_found)?;
    let content_type = content_type_of(&job.output_format);
    let attempt = job.downloads.entry(variation).or_insert(0);
    *attempt += 1;
    if let Some(status) = fake.script.results_gone {
        return Ok(super::bytes(
            status,
            "application/xml",
            b"<Error>Expired</Error>".to_vec(),
        ));
    }
    if let Some((content_type, body)) = fake.script.results_replaced_by {
        return Ok(super::bytes(200, content_type, body.to_vec()));
    }
    if fake.script.downloads_stall {
        return Ok(super::stalled_download(content_type, bytes));
    }
    Ok(fake
        .script
        .downloads_break
        .download(*attempt, content_type, bytes))
}

/// The `Content-Type` results in `output_format` are served with.
fn content_type_of(output_format: &str) -> &'static str {
    match output_format {
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "tiff" => "image/tiff",
        "psd" => "image/vnd.adobe.photoshop",
        _ => "image/png",
    }
}
