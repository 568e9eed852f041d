//! A fake remove.bg (`PROVIDERS.md` §4): `POST /v1.0/removebg` answers the
//! cut-out's bytes synchronously with `X-Credits-Charged`, `X-Width` and
//! `X-Height`; errors are `{"errors":[{"title","code","detail"}]}`, a bad key
//! is **403**.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Breakage, Fake, Fault, Faults, Gauge, Ledger, Ports, Reply, Seen, Server, lock};

/// The key the fake accepts.
pub const KEY: &str = "rbg-live-Q7kNEVERPRINTk3y-5e1f";

/// The base path remove.bg's API lives under; the client must keep it.
const BASE_PATH: &str = "/v1.0";

/// What this run of the fake does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Answers for `POST /removebg`, after the key check, before normal work.
    pub faults: Vec<Fault>,
    /// Credits on the account; each image costs `charge`.
    pub credits: f64,
    /// Credits charged per image (sent as `X-Credits-Charged`).
    pub charge: f64,
    /// How long each image takes, to observe concurrency.
    pub processing_ms: u64,
    /// Whether remove.bg can find a foreground; when it cannot, it answers
    /// 400 `unknown_foreground`.
    pub finds_foreground: bool,
    /// Whether the image response breaks off mid-way (after charging).
    pub response_breaks: Breakage,
    /// A fault mode: a refused key is quoted back in the error, as some
    /// services do; Cutout must never show or log it.
    pub quotes_refused_keys: bool,
    /// A fault mode: the first this many paid calls get no answer for
    /// [`HANG`] (a server that accepted the connection and went silent).
    pub hangs_first: usize,
    /// A fault mode: cut-outs come back at this size, not the input's.
    pub delivers_size: Option<(u32, u32)>,
}

/// How long a hanging call stays silent: far beyond the read timeout the
/// tests give the client.
pub const HANG: Duration = Duration::from_secs(5);

impl Default for Script {
    fn default() -> Self {
        Script {
            faults: Vec::new(),
            credits: 50.0,
            charge: 1.0,
            processing_ms: 0,
            finds_foreground: true,
            response_breaks: Breakage::Never,
            quotes_refused_keys: false,
            hangs_first: 0,
            delivers_size: None,
        }
    }
}

struct Inner {
    ledger: Ledger,
    faults: Faults,
    credits: Mutex<f64>,
    script: Script,
    answered: AtomicUsize,
    hung: AtomicUsize,
    in_flight: Gauge,
}

/// A running fake remove.bg.
pub struct FakeRemoveBg {
    server: Server,
    inner: Arc<Inner>,
}

impl Fake for FakeRemoveBg {
    type Script = Script;
    const PROVIDER: &'static str = "removebg";
    const URL_VAR: &'static str = "CUTOUT_REMOVEBG_URL";
    const KEY_VAR: &'static str = "CUTOUT_REMOVEBG_KEY";
    const KEY: &'static str = KEY;

    fn start(script: Script) -> FakeRemoveBg {
        let inner = Arc::new(Inner {
            ledger: Ledger::default(),
            faults: Faults::new(&script.faults),
            credits: Mutex::new(script.credits),
            script,
            answered: AtomicUsize::default(),
            hung: AtomicUsize::default(),
            in_flight: Gauge::default(),
        });
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = Ports::bind(1).serve(vec![router]);
        FakeRemoveBg { server, inner }
    }

    /// The base URL with `/v1.0`, as the CLI takes it.
    fn url(&self) -> String {
        format!("{}{BASE_PATH}", self.server.url(0))
    }

    fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }
}

impl FakeRemoveBg {
    /// Images cut out and paid for.
    pub fn charged(&self) -> usize {
        self.inner.answered.load(Ordering::SeqCst)
    }

    /// The most images processed at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.in_flight.max()
    }
}

fn error(status: u16, title: &str, code: &str) -> Response {
    super::json(status, json!({"errors": [{"title": title, "code": code}]}))
}

fn error_with_detail(status: u16, title: &str, code: &str, detail: &str) -> Response {
    super::json(
        status,
        json!({"errors": [{"title": title, "code": code, "detail": detail}]}),
    )
}

fn fault_response(fault: &Fault) -> Response {
    match fault.status {
        429 => {
            let response = error(429, "Rate limit exceeded", "rate_limit_exceeded");
            let response = super::with_header(response, "x-ratelimit-limit", 500);
            super::with_header(response, "x-ratelimit-remaining", 0)
        }
        400 => error(
            400,
            "Could not identify foreground in image. For details and recommendations see https://www.remove.bg/supported-images.",
            "unknown_foreground",
        ),
        402 => error(402, "Insufficient credits", "insufficient_credits"),
        403 => error(403, "API Key invalid", "auth_failed"),
        // Gateways in front of the API answer HTML.
        502..=504 => super::bytes(
            fault.status,
            "text/html",
            format!(
                "<html><body><h1>{} Service Unavailable</h1></body></html>",
                fault.status
            )
            .into_bytes(),
        ),
        status => error(status, "Internal server error", "internal_error"),
    }
}

const SOURCES: [&str; 3] = ["image_file", "image_file_b64", "image_url"];
const OPTIONS: [&str; 17] = [
    "size",
    "type",
    "type_level",
    "format",
    "roi",
    "crop",
    "crop_margin",
    "scale",
    "position",
    "channels",
    "bg_color",
    "bg_image_url",
    "bg_image_file",
    "add_shadow",
    "semitransparency",
    "shadow_type",
    "shadow_opacity",
];
const SIZES: [&str; 9] = [
    "preview", "small", "regular", "medium", "hd", "full", "4k", "50MP", "auto",
];
const FORMATS: [&str; 4] = ["auto", "png", "jpg", "zip"];

/// The request's parameters, whatever the encoding: multipart, form or JSON.
struct Params {
    text: std::collections::BTreeMap<String, String>,
    file: Option<Vec<u8>>,
}

fn params(seen: &Seen) -> Result<Params, Response> {
    if let Some(form) = &seen.form {
        let file = form
            .files
            .iter()
            .find(|f| f.field == "image_file")
            .map(|f| f.bytes.to_vec());
        let mut text = form.fields.clone();
        for extra in form.files.iter().filter(|f| f.field != "image_file") {
            text.insert(extra.field.clone(), String::new());
        }
        return Ok(Params { text, file });
    }
    if let Some(error) = &seen.form_error {
        return Err(error_with_detail(
            400,
            "Invalid multipart body",
            "invalid_request",
            error,
        ));
    }
    if seen.media_type() == "application/json" {
        let Some(Value::Object(map)) = seen.json() else {
            return Err(error(400, "Invalid JSON body", "invalid_request"));
        };
        let text = map
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        return Ok(Params { text, file: None });
    }
    Err(error(400, "No image given", "missing_source"))
}

async fn handle(State(fake): State<Arc<Inner>>, request: Request) -> Reply {
    let seen = fake.ledger.receive("main", request).await;
    let path = seen
        .path()
        .strip_prefix(BASE_PATH)
        .unwrap_or("/not-under-base-path");
    match (seen.method.as_str(), path) {
        ("POST", "/removebg") => remove_background(&fake, &seen).await,
        ("GET", "/account") => account(&fake, &seen),
        _ => Err(error(404, "Not Found", "not_found")),
    }
}

fn check_key(fake: &Inner, seen: &Seen) -> Result<(), Response> {
    match seen.header("x-api-key") {
        None => Err(error(403, "Missing API Key", "auth_failed")),
        Some(key) if key == KEY => Ok(()),
        Some(key) if fake.script.quotes_refused_keys => Err(error(
            403,
            &format!("API Key invalid: {key}"),
            "auth_failed",
        )),
        Some(_) => Err(error(403, "API Key invalid", "auth_failed")),
    }
}

fn account(fake: &Inner, seen: &Seen) -> Reply {
    check_key(fake, seen)?;
    let credits = *lock(&fake.credits);
    Ok(super::json(
        200,
        json!({"data": {"attributes": {
            "credits": {"total": credits, "subscription": 0, "payg": credits, "enterprise": 0},
            "api": {"free_calls": 50, "sizes": "all"}
        }}}),
    ))
}

fn invalid_value(name: &str, value: &str) -> Response {
    let title = format!("Invalid value for {name}");
    error_with_detail(400, &title, "invalid_parameter", value)
}

async fn remove_background(fake: &Inner, seen: &Seen) -> Reply {
    fake.ledger.submitted();
    check_key(fake, seen)?;
    fake.faults.check(fault_response)?;
    let params = params(seen)?;
    let given = SOURCES
        .iter()
        .filter(|s| params.text.contains_key(**s) || (**s == "image_file" && params.file.is_some()))
        .count();
    match given {
        0 => return Err(error(400, "No image given", "missing_source")),
        1 => {}
        _ => {
            return Err(error(
                400,
                "Multiple sources given: Please provide either the image_url, image_file or image_file_b64 parameter.",
                "multiple_sources",
            ));
        }
    }
    let known = |key: &&String| SOURCES.contains(&key.as_str()) || OPTIONS.contains(&key.as_str());
    if let Some(key) = params.text.keys().find(|key| !known(key)) {
        return Err(error_with_detail(
            400,
            "Unknown parameter",
            "invalid_parameter",
            key,
        ));
    }
    super::choice(&params.text, "size", "preview", &SIZES).map_err(|v| invalid_value("size", v))?;
    let format = super::choice(&params.text, "format", "auto", &FORMATS)
        .map_err(|v| invalid_value("format", v))?;
    if *lock(&fake.credits) < fake.script.charge {
        return Err(error(402, "Insufficient credits", "insufficient_credits"));
    }

    let _busy = fake.in_flight.enter();
    if fake.hung.fetch_add(1, Ordering::SeqCst) < fake.script.hangs_first {
        tokio::time::sleep(HANG).await;
    }
    if fake.script.processing_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fake.script.processing_ms)).await;
    }
    let cutout = if let Some(file) = &params.file {
        super::cut_out_upload(file)
            .map_err(|_| error(400, "Failed to read image", "invalid_file_type"))?
    } else if let Some(url) = params.text.get("image_url") {
        if !super::is_web_url(url) {
            return Err(error(400, "Invalid image_url", "invalid_image_url"));
        }
        super::cut_out_url(url)
    } else {
        return Err(error(
            400,
            "image_file_b64 is not supported by this fake",
            "invalid_parameter",
        ));
    };
    if !fake.script.finds_foreground {
        return Err(fault_response(&Fault::status(400)));
    }
    let cutout = super::resized(cutout, fake.script.delivers_size);
    *lock(&fake.credits) -= fake.script.charge;
    let attempt = fake.answered.fetch_add(1, Ordering::SeqCst) as u32 + 1;
    let (width, height) = cutout.dimensions();
    let (content_type, body) = if format == "jpg" {
        (
            "image/jpeg",
            super::jpeg(&super::flatten(&cutout, [255, 255, 255])),
        )
    } else {
        ("image/png", super::png(&cutout))
    };
    let response = fake
        .script
        .response_breaks
        .download(attempt, content_type, body);
    let headers = [
        ("x-credits-charged", fake.script.charge.to_string()),
        ("x-width", width.to_string()),
        ("x-height", height.to_string()),
        ("x-type", "product".to_owned()),
        ("x-ratelimit-limit", "500".to_owned()),
        ("x-ratelimit-remaining", "499".to_owned()),
    ];
    Ok(headers
        .into_iter()
        .fold(response, |response, (name, value)| {
            super::with_header(response, name, value)
        }))
}
