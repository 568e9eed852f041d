//! What the providers' unit tests share: a configuration pointing a client at
//! a fake server, job requests, a reporter that records what it is told, and
//! an in-process axum server to play the remote API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use secrecy::SecretString;
use url::Url;

use super::{
    HttpClient, JobReporter, JobRequest, ProviderConfig, ProviderInfo, ProviderOptions, RetryPolicy,
};
use crate::imaging::Background;
use crate::jobs::job::JobInput;
use crate::secrets::Credentials;

/// Lines recorded by a [`Recorder`] and, where a test shares it, by its fake
/// server, so one list shows the order of everything that happened.
pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// A [`JobReporter`] that writes `uploading`, `remote_id <id>` and
/// `warning <message>` lines to its log.
#[derive(Default, Clone)]
pub(crate) struct Recorder(pub(crate) Log);

impl Recorder {
    /// The lines so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl JobReporter for Recorder {
    fn uploading(&self) {
        self.0.lock().unwrap().push("uploading".to_owned());
    }
    fn remote_id(&self, remote_id: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("remote_id {remote_id}"));
    }
    fn warning(&self, message: String) {
        self.0.lock().unwrap().push(format!("warning {message}"));
    }
}

/// A client that retries once, almost at once, so retry paths run in
/// milliseconds.
pub(crate) fn fast_http() -> HttpClient {
    HttpClient::new(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        ..RetryPolicy::default()
    })
}

/// A provider configuration with these base URLs and credentials and
/// [`fast_http`].
pub(crate) fn config(
    endpoints: &[(&'static str, &Url)],
    credentials: &[(&'static str, &str)],
) -> ProviderConfig {
    let mut keys = Credentials::default();
    for (id, value) in credentials {
        keys.insert(id, SecretString::from((*value).to_owned()), "test");
    }
    ProviderConfig {
        endpoints: endpoints
            .iter()
            .map(|(id, url)| (*id, (*url).clone()))
            .collect::<BTreeMap<_, _>>(),
        credentials: keys,
        http: fast_http(),
        data_dir: None,
    }
}

/// `key=value` options.
pub(crate) fn options(pairs: &[(&str, &str)]) -> ProviderOptions {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A job for the provider `info` describes: its default model, a transparent
/// background, and the input's kind as the engine would judge it.
pub(crate) fn request(info: &ProviderInfo, input: JobInput, pairs: &[(&str, &str)]) -> JobRequest {
    let kind = input.kind(info.takes_only_video()).unwrap();
    JobRequest {
        input,
        kind,
        model: info.default_model().to_owned(),
        options: options(pairs),
        background: Background::Transparent,
    }
}

/// A local input named `name` holding `contents`, inside `dir`.
pub(crate) fn file_input(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> JobInput {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    JobInput::File { path, root: None }
}

/// Serves `app` on a free loopback port until the test ends; returns its
/// base URL (`http://127.0.0.1:PORT/`).
pub(crate) async fn serve(app: axum::Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Url::parse(&format!("http://{address}/")).unwrap()
}

/// Logs `METHOD /path?query` for a request reaching a fake; returns the path
/// and query.
pub(crate) fn record(parts: &axum::http::request::Parts, seen: &Log) -> String {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push(format!("{} {path_and_query}", parts.method));
    path_and_query
}

/// A JSON answer with this status.
pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> axum::response::Response {
    (status, axum::Json(body)).into_response()
}

/// The `X-Api-Key` a request carried, or `<none>`.
pub(crate) fn api_key(headers: &HeaderMap) -> String {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("<none>")
        .to_owned()
}
