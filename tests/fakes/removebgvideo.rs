//! A fake removebgvideo.com (`PROVIDERS.md` §3): local videos go to
//! `POST /v1/uploads` first; `POST /v1/jobs` creates a job (a draft with
//! `auto_start:false`, started by `POST /v1/jobs/{id}/start`); `GET
//! /v1/jobs/{id}` walks `created`/`pending` → `processing` with `progress` →
//! `completed` (with a short-lived `output_url`) or `failed`. Errors are
//! `{"error":{"code","message","request_id"}}`. `/health` needs no key.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Breakage, Fake, Fault, Faults, Ledger, Ports, Reply, ResultFault, ResultHost, Seen, Server,
    lock,
};

/// The key the fake accepts.
pub const KEY: &str = "rbgv-M4xNEVERPRINTk3y-c0de";

const MODELS: [&str; 4] = ["original", "light", "pro", "human"];
const FORMATS: [&str; 6] = ["webm", "mov", "mp4", "gif", "webp", "png_sequence"];
const CREATE_FIELDS: [&str; 8] = [
    "video_url",
    "model",
    "output_format",
    "background",
    "text_prompt",
    "composition",
    "webhook_url",
    "auto_start",
];
const START_FIELDS: [&str; 5] = [
    "model",
    "text_prompt",
    "background",
    "composition",
    "webhook_url",
];
const VIDEO_EXTENSIONS: [&str; 4] = ["mp4", "mov", "webm", "avi"];

/// One answer of a started job before it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `pending` (the docs also say `created` for drafts).
    Pending,
    /// `processing` with this `progress`.
    Processing(u8),
}

/// How a started job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// `completed` with an `output_url`.
    Completed,
    /// `failed` with this `error`.
    Failed(&'static str),
    /// Never ends.
    Never,
}

/// What `/health` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Everything configured.
    Healthy,
    /// Storage is not configured.
    Degraded,
}

/// What this run of the fake does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Answers for `POST /v1/jobs`, after the key check.
    pub create_faults: Vec<Fault>,
    /// Answers for `GET /v1/jobs/{id}`, after the key check.
    pub poll_faults: Vec<Fault>,
    /// Answers for `POST /v1/jobs/{id}/start` (the call that bills), after
    /// the key check and before the job starts.
    pub start_faults: Vec<Fault>,
    /// How many `/start` calls get no answer at all, the connection held
    /// open until the fake stops: a run caught between creating a job and
    /// starting it.
    pub start_stalls: usize,
    /// The answers of a started job before it ends.
    pub steps: Vec<Step>,
    /// How it ends.
    pub ending: Ending,
    /// Jobs the account can pay for.
    pub credits: u32,
    /// Whether output downloads break off.
    pub downloads_break: Breakage,
    /// A fault mode: the first job's `output_url` points at a
    /// [`ResultHost`] that misbehaves this way on every download.
    pub result_fault: Option<ResultFault>,
    /// Forgets jobs, so polls answer 404.
    pub forgets_jobs: bool,
    /// What `/health` says.
    pub health: Health,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            create_faults: Vec::new(),
            poll_faults: Vec::new(),
            start_faults: Vec::new(),
            start_stalls: 0,
            steps: vec![Step::Pending, Step::Processing(30), Step::Processing(70)],
            ending: Ending::Completed,
            credits: 10,
            downloads_break: Breakage::Never,
            result_fault: None,
            forgets_jobs: false,
            health: Health::Healthy,
        }
    }
}

/// A job as the fake keeps it.
#[derive(Debug, Clone)]
pub struct VideoJob {
    /// `video_url` as sent.
    pub video_url: String,
    /// The whole create body.
    pub request: Value,
    /// Whether `/start` was called (or `auto_start` left on).
    pub started: bool,
    /// `GET` answers after the start.
    pub polls: usize,
    /// `output_format`.
    pub output_format: String,
    /// Output downloads so far.
    pub downloads: u32,
}

struct Inner {
    ledger: Ledger,
    base: String,
    create_faults: Faults,
    poll_faults: Faults,
    start_faults: Faults,
    start_stalls: std::sync::atomic::AtomicUsize,
    jobs: Mutex<BTreeMap<String, VideoJob>>,
    uploads: Mutex<BTreeMap<String, usize>>,
    credits: Mutex<u32>,
    script: Script,
    result_host: Option<ResultHost>,
}

/// A running fake removebgvideo.com.
pub struct FakeRemoveBgVideo {
    server: Server,
    inner: Arc<Inner>,
}

impl Fake for FakeRemoveBgVideo {
    type Script = Script;
    const PROVIDER: &'static str = "removebgvideo";
    const URL_VAR: &'static str = "CUTOUT_REMOVEBGVIDEO_URL";
    const KEY_VAR: &'static str = "CUTOUT_REMOVEBGVIDEO_KEY";
    const KEY: &'static str = KEY;

    fn start(script: Script) -> FakeRemoveBgVideo {
        let ports = Ports::bind(1);
        let inner = Arc::new(Inner {
            ledger: Ledger::default(),
            base: ports.url(0),
            create_faults: Faults::new(&script.create_faults),
            poll_faults: Faults::new(&script.poll_faults),
            start_faults: Faults::new(&script.start_faults),
            start_stalls: std::sync::atomic::AtomicUsize::new(script.start_stalls),
            jobs: Mutex::default(),
            uploads: Mutex::default(),
            credits: Mutex::new(script.credits),
            result_host: script.result_fault.map(ResultHost::start),
            script,
        });
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = ports.serve(vec![router]);
        FakeRemoveBgVideo { server, inner }
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

impl FakeRemoveBgVideo {
    /// The jobs created, by id.
    pub fn jobs(&self) -> BTreeMap<String, VideoJob> {
        lock(&self.inner.jobs).clone()
    }

    /// `POST /v1/jobs/{id}/start` calls received, answered or not.
    pub fn start_calls(&self) -> usize {
        self.journal()
            .matching("POST", "/v1/jobs/")
            .iter()
            .filter(|seen| seen.path().ends_with("/start"))
            .count()
    }

    /// The bytes a job's output has, to compare with what was saved.
    pub fn output_of(job_id: &str) -> Vec<u8> {
        super::fake_webm(super::seed_of(job_id))
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let request_id = super::next_id("req");
    super::json(
        status,
        json!({"error": {"code": code, "message": message, "request_id": request_id}}),
    )
}

/// The answer to most malformed requests.
fn invalid(message: &str) -> Response {
    error(400, "invalid_request", message)
}

fn no_credits() -> Response {
    error(
        402,
        "insufficient_credits",
        "Insufficient credits for this job",
    )
}

fn job_not_found() -> Response {
    error(404, "not_found", "Job not found")
}

fn fault_response(fault: &Fault) -> Response {
    match fault.status {
        400 => invalid("Invalid request"),
        401 => error(401, "invalid_api_key", "Invalid API key"),
        402 => no_credits(),
        404 => job_not_found(),
        429 => error(429, "rate_limited", "Too many requests, slow down"),
        504 => error(504, "timeout", "Upstream timed out"),
        status => error(status, "internal_error", "Internal server error"),
    }
}

fn check_key(seen: &Seen) -> Result<(), Response> {
    match seen.header("x-api-key") {
        None => Err(error(
            401,
            "missing_api_key",
            "Missing API key. Send it in the X-Api-Key header.",
        )),
        Some(key) if key == KEY => Ok(()),
        Some(_) => Err(error(401, "invalid_api_key", "Invalid API key")),
    }
}

async fn handle(State(fake): State<Arc<Inner>>, request: Request) -> Reply {
    let seen = fake.ledger.receive("main", request).await;
    let segments = seen.segments();
    if let ["v1", ..] = segments.as_slice()
        && let Err(refusal) = check_key(&seen)
    {
        if segments.get(1) == Some(&"jobs") && seen.method == "POST" && segments.len() == 2 {
            fake.ledger.submitted();
        }
        return Err(refusal);
    }
    match (seen.method.as_str(), segments.as_slice()) {
        ("GET", ["health"]) => Ok(health(&fake)),
        ("POST", ["v1", "uploads"]) => upload(&fake, &seen),
        ("POST", ["v1", "jobs"]) => create(&fake, &seen),
        ("POST", ["v1", "jobs", id, "start"]) => {
            let stalls = fake
                .start_stalls
                .fetch_update(SeqCst, SeqCst, |left| left.checked_sub(1));
            if stalls.is_ok() {
                std::future::pending::<()>().await;
            }
            start(&fake, &seen, id)
        }
        ("GET", ["v1", "jobs", id]) => poll(&fake, id),
        ("GET", ["v1", "usage", "summary"]) => usage(&fake, &seen),
        ("GET", ["uploads", _]) => Ok(super::download("video/mp4", super::fake_mp4(1))),
        ("GET", ["outputs", file]) => output(&fake, file),
        _ => Err(error(404, "not_found", "Not found")),
    }
}

fn health(fake: &Inner) -> Response {
    let storage = fake.script.health == Health::Healthy;
    let status = if storage { "healthy" } else { "degraded" };
    super::json(
        200,
        json!({"status": status, "checks": {"api": "ok", "runpod_configured": true, "r2_configured": storage}}),
    )
}

/// The usage summary over the last `days` (a positive whole number).
fn usage(fake: &Inner, seen: &Seen) -> Reply {
    if let Some(days) = seen.query("days")
        && !days.parse::<u32>().is_ok_and(|d| d > 0)
    {
        return Err(invalid("days must be a positive whole number"));
    }
    let jobs = lock(&fake.jobs);
    let completed = jobs.values().filter(|j| j.started).count();
    Ok(super::json(
        200,
        json!({"total_jobs": jobs.len(), "credits_used": completed * 60, "completed_jobs": completed}),
    ))
}

fn upload(fake: &Inner, seen: &Seen) -> Reply {
    if let Some(e) = &seen.form_error {
        return Err(invalid(&format!("Malformed multipart body: {e}")));
    }
    let file = seen
        .file("file")
        .ok_or_else(|| invalid("A video file is required in the `file` field"))?;
    let name = file.file_name.clone().unwrap_or_default();
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let video_type = file
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("video/"));
    if !VIDEO_EXTENSIONS.contains(&ext.as_str()) && !video_type {
        return Err(invalid(
            "Unsupported file type. Allowed: mp4, mov, webm, avi",
        ));
    }
    if file.bytes.is_empty() {
        return Err(invalid("The uploaded file is empty"));
    }
    let video_id = super::next_id("vid");
    let ext = if ext.is_empty() {
        "mp4".to_owned()
    } else {
        ext
    };
    let base = &fake.base;
    lock(&fake.uploads).insert(video_id.clone(), file.bytes.len());
    Ok(super::json(
        200,
        json!({"success": true, "video_id": video_id, "video_url": format!("{base}/uploads/{video_id}.{ext}"),
               "filename": name, "size": file.bytes.len()}),
    ))
}

fn check_background(background: &Value) -> Result<(), String> {
    let kind = background
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "transparent" => Ok(()),
        "color" if background.get("color").is_some_and(Value::is_string) => Ok(()),
        "image" if background.get("image_url").is_some_and(Value::is_string) => Ok(()),
        "color" => Err("background.color is required for a color background".into()),
        "image" => Err("background.image_url is required for an image background".into()),
        other => Err(format!("Unknown background type `{other}`")),
    }
}

fn check_overrides(body: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    for key in body.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("Unknown field `{key}`"));
        }
    }
    if let Some(model) = body.get("model") {
        match model.as_str() {
            Some(m) if MODELS.contains(&m) => {}
            _ => {
                return Err(format!(
                    "Invalid model {model}; use original, light, pro or human"
                ));
            }
        }
    }
    if let Some(background) = body.get("background") {
        check_background(background)?;
    }
    Ok(())
}

fn create(fake: &Inner, seen: &Seen) -> Reply {
    fake.ledger.submitted();
    fake.create_faults.check(fault_response)?;
    if seen.media_type() != "application/json" {
        return Err(invalid("Request body must be JSON"));
    }
    let Some(Value::Object(body)) = seen.json() else {
        return Err(invalid("Request body must be a JSON object"));
    };
    check_overrides(&body, &CREATE_FIELDS).map_err(|message| invalid(&message))?;
    let Some(video_url) = body.get("video_url").and_then(Value::as_str) else {
        return Err(invalid("video_url is required"));
    };
    if !super::is_web_url(video_url) {
        return Err(invalid("video_url must be an http(s) URL"));
    }
    let output_format = match body.get("output_format") {
        None => "webm".to_owned(),
        Some(Value::String(f)) if FORMATS.contains(&f.as_str()) => f.clone(),
        Some(other) => return Err(invalid(&format!("Invalid output_format {other}"))),
    };
    let auto_start = match body.get("auto_start") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(&format!(
                "auto_start must be a boolean, not {other}"
            )));
        }
    };
    {
        let mut credits = lock(&fake.credits);
        if *credits == 0 {
            return Err(no_credits());
        }
        *credits -= 1;
    }
    let id = super::next_id("job");
    lock(&fake.jobs).insert(
        id.clone(),
        VideoJob {
            video_url: video_url.to_owned(),
            request: Value::Object(body.clone()),
            started: auto_start,
            polls: 0,
            output_format,
            downloads: 0,
        },
    );
    let status = if auto_start { "pending" } else { "created" };
    Ok(super::json(
        201,
        json!({"success": true, "id": id, "status": status, "message": "Job created"}),
    ))
}

fn start(fake: &Inner, seen: &Seen, id: &str) -> Reply {
    fake.start_faults.check(fault_response)?;
    if !seen.body.is_empty() {
        let Some(Value::Object(body)) = seen.json() else {
            return Err(invalid("Request body must be a JSON object"));
        };
        check_overrides(&body, &START_FIELDS).map_err(|message| invalid(&message))?;
    }
    let mut jobs = lock(&fake.jobs);
    let job = jobs.get_mut(id).ok_or_else(job_not_found)?;
    if job.started {
        return Err(invalid("Job has already been started"));
    }
    job.started = true;
    Ok(super::json(
        200,
        json!({"success": true, "id": id, "status": "pending", "message": "Job started"}),
    ))
}

fn poll(fake: &Inner, id: &str) -> Reply {
    fake.poll_faults.check(fault_response)?;
    if fake.script.forgets_jobs {
        return Err(job_not_found());
    }
    let base = &fake.base;
    let mut jobs = lock(&fake.jobs);
    let job = jobs.get_mut(id).ok_or_else(job_not_found)?;
    let (status, progress, output_url, failure, billing) = if !job.started {
        ("created", json!(0), Value::Null, Value::Null, "pending")
    } else {
        let step = job.polls;
        job.polls += 1;
        match (fake.script.steps.get(step), &fake.script.ending) {
            (Some(Step::Pending), _) | (None, Ending::Never) => {
                ("pending", json!(0), Value::Null, Value::Null, "pending")
            }
            (Some(Step::Processing(p)), _) => {
                ("processing", json!(p), Value::Null, Value::Null, "pending")
            }
            (None, Ending::Completed) => {
                let file = format!("outputs/{id}.{}", job.output_format);
                let content_type = content_type_of(&job.output_format);
                let url = match &fake.result_host {
                    Some(host)
                        if host.claim(id, content_type, &FakeRemoveBgVideo::output_of(id)) =>
                    {
                        host.url(&file)
                    }
                    _ => format!("{base}/{file}"),
                };
                ("completed", json!(100), json!(url), Value::Null, "charged")
            }
            (None, Ending::Failed(message)) => {
                ("failed", json!(0), Value::Null, json!(message), "refunded")
            }
        }
    };
    Ok(super::json(
        200,
        json!({"id": id, "status": status, "progress": progress, "output_url": output_url, "error": failure,
               "created_at": "2025-01-01T00:00:00Z", "duration_seconds": 4.2, "billing_status": billing}),
    ))
}

fn output(fake: &Inner, file: &str) -> Reply {
    let id = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let mut jobs = lock(&fake.jobs);
    let job = jobs.get_mut(id).ok_or_else(|| {
        super::bytes(
            404,
            "application/xml",
            b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
        )
    })?;
    job.downloads += 1;
    let content_type = content_type_of(&job.output_format);
    let bytes = FakeRemoveBgVideo::output_of(id);
    Ok(fake
        .script
        .downloads_break
        .download(job.downloads, content_type, bytes))
}

/// The `Content-Type` outputs in `output_format` are served with.
fn content_type_of(output_format: &str) -> &'static str {
    match output_format {
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "png_sequence" => "application/zip",
        _ => "video/webm",
    }
}
