//! A remove.bg (`PROVIDERS.md` §4) that answers as fast as loopback allows:
//! the cut-out it returns is encoded once, before the clock starts, so what
//! is timed is the client, not the fake. It reads every upload to the end,
//! checks the key, and counts how many calls it works on at once: above
//! `limit` it answers 429 the way remove.bg does, so a client that overshoots
//! its concurrency is seen, not hidden.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// The key this fake accepts.
pub const KEY: &str = "bench-key-not-a-secret";

/// How the fake behaves for one measurement.
pub struct Behaviour {
    /// The PNG every successful call answers, and its size in pixels.
    pub result: Bytes,
    pub result_size: (u32, u32),
    /// How long each image "takes" at the provider.
    pub processing: Duration,
    /// Calls the account may have in flight; more are refused with 429.
    pub limit: usize,
}

struct Inner {
    behaviour: Behaviour,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    answered: AtomicUsize,
    over_limit: AtomicUsize,
}

/// A running fake; dropping it stops the server.
pub struct FakeRemoveBg {
    inner: Arc<Inner>,
    base_url: String,
    _runtime: tokio::runtime::Runtime,
}

impl FakeRemoveBg {
    /// Serves on a free loopback port from a runtime of its own (two
    /// threads, as many as the machine the figures are taken on has cores).
    pub fn start(behaviour: Behaviour) -> FakeRemoveBg {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("start the fake's runtime");
        let inner = Arc::new(Inner {
            behaviour,
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            over_limit: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/v1.0/removebg", post(remove_background))
            .route("/v1.0/account", get(account))
            .with_state(inner.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("the fake's address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeRemoveBg {
            inner,
            base_url: format!("http://{address}/v1.0"),
            _runtime: runtime,
        }
    }

    /// What `CUTOUT_REMOVEBG_URL` takes.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Images answered with a cut-out.
    pub fn answered(&self) -> usize {
        self.inner.answered.load(Ordering::SeqCst)
    }

    /// Calls refused because the client had `limit` in flight already.
    pub fn over_limit(&self) -> usize {
        self.inner.over_limit.load(Ordering::SeqCst)
    }

    /// The most calls worked on at once.
    pub fn most_in_flight(&self) -> usize {
        self.inner.most_in_flight.load(Ordering::SeqCst)
    }
}

/// Leaves the in-flight count when the call ends, however it ends.
struct Busy<'a>(&'a Inner);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    let body = format!(r#"{{"errors":[{{"title":"{code}","code":"{code}"}}]}}"#);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn remove_background(
    State(fake): State<Arc<Inner>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(StatusCode::FORBIDDEN, "auth_failed");
    }
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _busy = Busy(&fake);
    fake.most_in_flight.fetch_max(now, Ordering::SeqCst);
    if now > fake.behaviour.limit {
        fake.over_limit.fetch_add(1, Ordering::SeqCst);
        let mut refusal = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded");
        refusal
            .headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().expect("a header value"));
        return refusal;
    }
    let mut image_bytes = 0;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let is_image = field.name() == Some("image_file");
                match field.bytes().await {
                    Ok(bytes) if is_image => image_bytes += bytes.len(),
                    Ok(_) => {}
                    Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_request"),
                }
            }
            Ok(None) => break,
            Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_request"),
        }
    }
    if image_bytes == 0 {
        return error(StatusCode::BAD_REQUEST, "missing_source");
    }
    if !fake.behaviour.processing.is_zero() {
        tokio::time::sleep(fake.behaviour.processing).await;
    }
    fake.answered.fetch_add(1, Ordering::SeqCst);
    let (width, height) = fake.behaviour.result_size;
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE.as_str(), "image/png".to_owned()),
            ("x-credits-charged", "1".to_owned()),
            ("x-width", width.to_string()),
            ("x-height", height.to_string()),
        ],
        fake.behaviour.result.clone(),
    )
        .into_response()
}

async fn account(headers: HeaderMap) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(StatusCode::FORBIDDEN, "auth_failed");
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"data":{"attributes":{"credits":{"total":100000},"api":{"free_calls":50}}}}"#,
    )
        .into_response()
}
