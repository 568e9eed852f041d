//! A fake download host for `cutout models download` and `cutout runtime
//! install`: serves whatever file a test publishes under any path (GitHub's
//! release assets and PyPI's wheels are plain files), honours
//! `Range: bytes=N-` as a CDN does, and records each request's path and
//! `Range`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{Ports, Server, lock};

#[derive(Default)]
struct Host {
    /// The bytes served for every path.
    file: Vec<u8>,
    /// Each request's path and `Range` header, in order.
    requests: Vec<(String, Option<String>)>,
}

/// The fake host; dropping it stops it.
pub struct FakeFileHost {
    server: Server,
    host: Arc<Mutex<Host>>,
}

impl FakeFileHost {
    /// Serves `file` under every path.
    pub fn start(file: Vec<u8>) -> FakeFileHost {
        let host = Arc::new(Mutex::new(Host {
            file,
            requests: Vec::new(),
        }));
        let router = Router::new().fallback(serve).with_state(host.clone());
        let server = Ports::bind(1).serve(vec![router]);
        FakeFileHost { server, host }
    }

    /// The base URL, with a trailing slash, for `CUTOUT_*_URL`.
    pub fn url(&self) -> String {
        format!("{}/", self.server.url(0))
    }

    /// The paths asked for, in order.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.host)
            .requests
            .iter()
            .map(|(path, _)| path.clone())
            .collect()
    }
}

async fn serve(State(host): State<Arc<Mutex<Host>>>, request: Request) -> Response {
    let range = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let file = {
        let mut host = lock(&host);
        host.requests
            .push((request.uri().path().to_owned(), range.clone()));
        host.file.clone()
    };
    let len = file.len();
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let mut response = Response::new(Body::empty());
    match start {
        Some(start) if start >= len => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("a header value"),
            );
        }
        Some(start) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{}/{len}", len - 1))
                    .expect("a header value"),
            );
            *response.body_mut() = Body::from(file[start..].to_vec());
        }
        None => *response.body_mut() = Body::from(file),
    }
    response
}
