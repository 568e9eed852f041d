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

use super::{Breakage, Fault, Faults, Journal, Seen, Server, lock};

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
    /// Forgets jobs, so status answers 404 `not_found`.
    pub forgets_jobs: bool,
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
            forgets_jobs: false,
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
    journal: Journal,
    upload_faults: Mutex<Faults>,
    status_faults: Mutex<Faults>,
    jobs: Mutex<BTreeMap<String, Job>>,
    credits: Mutex<u32>,
    script: Script,
    base: Mutex<String>,
    submissions: AtomicUsize,
    status_polls: AtomicUsize,
}

/// A running fake removit.eu.
pub struct FakeRemovit {
    server: Server,
    inner: Arc<Inner>,
}

impl FakeRemovit {
    /// Starts the fake on a loopback port.
    pub fn start(script: Script) -> FakeRemovit {
        let inner = Arc::new(Inner {
            journal: Journal::default(),
            upload_faults: Mutex::new(Faults::new(&script.upload_faults)),
            status_faults: Mutex::new(Faults::new(&script.status_faults)),
            jobs: Mutex::new(BTreeMap::new()),
            credits: Mutex::new(script.credits),
            script,
            base: Mutex::new(String::new()),
            submissions: AtomicUsize::new(0),
            status_polls: AtomicUsize::new(0),
        });
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = Server::start(vec![router]);
        *lock(&inner.base) = server.url(0);
        FakeRemovit { server, inner }
    }

    /// The base URL, as `CUTOUT_REMOVIT_URL` takes it.
    pub fn url(&self) -> String {
        self.server.url(0)
    }

    /// The variables that point the CLI here with the right key.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CUTOUT_REMOVIT_URL", self.url()),
            ("CUTOUT_REMOVIT_KEY", KEY.to_owned()),
        ]
    }

    /// Every request received.
    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    /// `POST /api/v1/upload` calls received, answered or not.
    pub fn submissions(&self) -> usize {
        self.inner.submissions.load(Ordering::SeqCst)
    }

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

fn fault_response(fault: &Fault) -> Response {
    let response = match fault.status {
        401 => unauthorized("API key invalid"),
        402 => super::json(402, json!({"error": "insufficient_credits"})),
        404 => super::json(404, json!({"error": "not_found"})),
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
    };
    super::with_retry_after(response, fault)
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

async fn handle(State(fake): State<Arc<Inner>>, request: Request) -> Response {
    let seen = Seen::read("main", request).await;
    fake.journal.record(&seen);
    let segments = seen.segments();
    match (seen.method.as_str(), segments.as_slice()) {
        ("POST", ["api", "v1", "upload"]) => upload(&fake, &seen),
        ("GET", ["api", "v1", "status"]) => status(&fake, &seen),
        ("GET", ["results", job_id, file]) => result(&fake, job_id, file),
        _ => super::json(404, json!({"error": "not_found"})),
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

fn upload(fake: &Inner, seen: &Seen) -> Response {
    fake.submissions.fetch_add(1, Ordering::SeqCst);
    if let Err(refusal) = check_key(seen) {
        return refusal;
    }
    let fault = lock(&fake.upload_faults).take();
    if let Some(fault) = fault {
        return fault_response(&fault);
    }
    let upload = match read_upload(seen) {
        Ok(upload) => upload,
        Err(refusal) => return refusal,
    };
    for key in upload.fields.keys() {
        if !FIELDS.contains(&key.as_str()) {
            return validation(key, "Unknown field.");
        }
    }
    let file_url = upload.fields.get("file_url");
    let photo = match (&upload.file, file_url) {
        (Some(_), Some(_)) => {
            return validation("file", "Provide either file or file_url, not both.");
        }
        (None, None) => return validation("file", "Either file or file_url is required."),
        (None, Some(url)) if !super::is_web_url(url) => {
            return validation("file_url", "Enter a valid URL.");
        }
        (None, Some(url)) => super::product_shot(
            super::PHOTO_SIZE.0,
            super::PHOTO_SIZE.1,
            super::seed_of(url),
        ),
        (Some(bytes), None) => match super::decode(bytes) {
            Ok(photo) => photo,
            Err(_) => return validation("file", "Unsupported or corrupt image file."),
        },
    };
    let mode = upload
        .fields
        .get("mode")
        .cloned()
        .unwrap_or_else(|| "clipping".to_owned());
    if !MODES.contains(&mode.as_str()) {
        return validation("mode", &format!("\"{mode}\" is not a valid choice."));
    }
    if mode == "params" && upload.fields.get("params").is_none_or(|p| p.is_empty()) {
        return validation("params", "This field is required when mode is params.");
    }
    let delivery_mode = upload
        .fields
        .get("delivery_mode")
        .cloned()
        .unwrap_or_else(|| "url".to_owned());
    if !DELIVERY.contains(&delivery_mode.as_str()) {
        return validation(
            "delivery_mode",
            &format!("\"{delivery_mode}\" is not a valid choice."),
        );
    }
    let output_format = upload
        .fields
        .get("output_format")
        .cloned()
        .unwrap_or_else(|| "png".to_owned());
    if !FORMATS.contains(&output_format.as_str()) {
        return validation(
            "output_format",
            &format!("\"{output_format}\" is not a valid choice."),
        );
    }
    {
        let mut credits = lock(&fake.credits);
        if *credits == 0 {
            return super::json(402, json!({"error": "insufficient_credits"}));
        }
        *credits -= 1;
    }

    let cutout = super::cut_out(&photo);
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
    super::json(
        202,
        json!({"job_id": job_id, "status": "queued", "mode": mode}),
    )
}

fn status(fake: &Inner, seen: &Seen) -> Response {
    fake.status_polls.fetch_add(1, Ordering::SeqCst);
    if let Err(refusal) = check_key(seen) {
        return refusal;
    }
    let fault = lock(&fake.status_faults).take();
    if let Some(fault) = fault {
        return fault_response(&fault);
    }
    let Some(job_id) = seen.query("job_id").filter(|id| !id.is_empty()) else {
        return validation("job_id", "This field is required.");
    };
    if fake.script.forgets_jobs {
        return super::json(404, json!({"error": "not_found"}));
    }
    let mut jobs = lock(&fake.jobs);
    let Some(job) = jobs.get_mut(&job_id) else {
        return super::json(404, json!({"error": "not_found"}));
    };
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
        return super::json(
            200,
            json!({"job_id": job_id, "status": detail, "state": "pending", "mode": job.mode,
                   "progress": progress, "final_url": null}),
        );
    }
    let base = lock(&fake.base).clone();
    let ext = job.output_format.clone();
    let url_of = |variation: &str| format!("{base}/results/{job_id}/{variation}.{ext}");
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
    super::json(200, Value::Object(body))
}

fn result(fake: &Inner, job_id: &str, file: &str) -> Response {
    let mut jobs = lock(&fake.jobs);
    let Some(job) = jobs.get_mut(job_id) else {
        return super::bytes(404, "text/plain", b"Not Found".to_vec());
    };
    let variation = file
        .rsplit_once('.')
        .map_or(file, |(stem, _)| stem)
        .to_owned();
    let Some(bytes) = job.results.get(&variation).cloned() else {
        return super::bytes(404, "text/plain", b"Not Found".to_vec());
    };
    let content_type = match job.output_format.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "tiff" => "image/tiff",
        "psd" => "image/vnd.adobe.photoshop",
        _ => "image/png",
    };
    let attempt = job.downloads.entry(variation).or_insert(0);
    *attempt += 1;
    if fake.script.downloads_break.breaks(*attempt) {
        super::broken_download(content_type, bytes)
    } else {
        super::download(content_type, bytes)
    }
}
