//! remove.bg's own API (PROVIDERS.md §4). It is synchronous: one multipart
//! call answers with the cut-out image itself, so `submit` finishes the job
//! and there is nothing to poll. Cutout always asks for a transparent PNG and
//! composes backgrounds and output formats itself, the same for every
//! provider, so remove.bg's `bg_color`, `bg_image_url` and `format` choices
//! are not offered.

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::multipart::Form;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::http::{InputFile, endpoint_url, json_amount, parse_answer, provider_words, read_body};
use super::removebg_params::{
    validate_crop_margin, validate_position, validate_roi, validate_scale,
};
use super::{
    AssetSource, Call, CredentialSpec, EndpointSpec, HttpClient, JobReporter, JobRequest,
    JobResult, KeyCheck, ModelInfo, OptionKind, OptionSpec, PollStatus, Provider, ProviderConfig,
    ProviderError, ProviderId, ProviderInfo, Replay, ResultAsset, Submission,
};
use crate::jobs::job::{InputKind, JobInput};

/// The header that carries the key.
const API_KEY_HEADER: &str = "X-Api-Key";

/// How many credits remove.bg billed for the call.
const CREDITS_HEADER: &str = "X-Credits-Charged";

/// Every PNG starts with these bytes.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What remove.bg offers. Its "models" are the output sizes, which is what
/// sets the price.
pub static INFO: ProviderInfo = ProviderInfo {
    id: ProviderId::Removebg,
    name: "remove.bg",
    summary: "Fast, synchronous image background removal; priced by output size",
    models: &[
        ModelInfo {
            id: "auto",
            summary: "highest resolution your plan allows",
        },
        ModelInfo {
            id: "preview",
            summary: "up to 0.25 megapixels, cheapest",
        },
        ModelInfo {
            id: "full",
            summary: "up to 25 megapixels",
        },
        ModelInfo {
            id: "50MP",
            summary: "up to 50 megapixels",
        },
    ],
    options: &[
        OptionSpec {
            key: "type",
            kind: OptionKind::Choice {
                values: &[
                    "auto",
                    "person",
                    "product",
                    "animal",
                    "car",
                    "car_interior",
                    "car_part",
                    "transportation",
                    "graphics",
                    "other",
                ],
            },
            help: "what the foreground is, when detection guesses wrong",
        },
        OptionSpec {
            key: "type_level",
            kind: OptionKind::Choice {
                values: &["none", "1", "2", "latest"],
            },
            help: "how finely the foreground type is classified",
        },
        OptionSpec {
            key: "crop",
            kind: OptionKind::Bool,
            help: "crop away empty regions around the subject",
        },
        OptionSpec {
            key: "crop_margin",
            kind: OptionKind::Text {
                example: "30px",
                validate: validate_crop_margin,
            },
            help: "margin kept around a cropped subject: 1, 2 or 4 values in px or % (needs crop=true)",
        },
        OptionSpec {
            key: "scale",
            kind: OptionKind::Text {
                example: "80%",
                validate: validate_scale,
            },
            help: "subject size relative to the image, 10% to 100%, or original",
        },
        OptionSpec {
            key: "position",
            kind: OptionKind::Text {
                example: "center",
                validate: validate_position,
            },
            help: "where the subject sits: original, center, or 1-2 percentages (horizontal vertical)",
        },
        OptionSpec {
            key: "channels",
            kind: OptionKind::Choice {
                values: &["rgba", "alpha"],
            },
            help: "rgba for the cut-out, alpha for the mask alone",
        },
        OptionSpec {
            key: "roi",
            kind: OptionKind::Text {
                example: "0% 0% 100% 100%",
                validate: validate_roi,
            },
            help: "region that may hold the foreground: x1 y1 x2 y2, each in px or %",
        },
        OptionSpec {
            key: "add_shadow",
            kind: OptionKind::Bool,
            help: "add an artificial drop shadow",
        },
        OptionSpec {
            key: "semitransparency",
            kind: OptionKind::Bool,
            help: "keep see-through parts such as glass semi-transparent",
        },
    ],
    accepts: &[InputKind::ImageFile, InputKind::ImageUrl],
    credentials: &[CredentialSpec {
        id: "key",
        label: "API key",
        env_var: "CUTOUT_REMOVEBG_KEY",
    }],
    endpoints: &[EndpointSpec {
        id: "url",
        env_var: "CUTOUT_REMOVEBG_URL",
        default: Some("https://api.remove.bg/v1.0"),
    }],
    default_concurrency: 4,
    has_health_check: false,
    runs_on_this_machine: false,
    poll_deadline_secs: 120,
    // remove.bg's public API page, not PROVIDERS.md (unconfirmed): uploads
    // up to 22 MB and 25 megapixels, as JPEG, PNG or WebP.
    input_limits: super::InputLimits {
        max_file_bytes: Some(22_000_000),
        max_pixels: Some(25_000_000),
        max_side_px: None,
        image_formats: &[
            crate::imaging::decode::SourceFormat::Jpeg,
            crate::imaging::decode::SourceFormat::Png,
            crate::imaging::decode::SourceFormat::Webp,
        ],
        confirmed: false,
    },
};

const REMOVE: Call = Call {
    what: "remove background",
    // Every call that reaches remove.bg is billed.
    replay: Replay::WhenUnprocessed,
    error_message,
};

const ACCOUNT: Call = Call {
    what: "account",
    // Reading the balance is free and changes nothing.
    replay: Replay::Always,
    error_message,
};

/// The client for one configured account.
#[derive(Debug)]
pub struct RemoveBg {
    http: HttpClient,
    /// `{base}/removebg`.
    url: Url,
    /// `{base}/account`, for the key test.
    account_url: Url,
    /// The key as a header value marked sensitive, so it is exposed once and
    /// never printed by `Debug` or reqwest's logs.
    key: HeaderValue,
}

impl RemoveBg {
    /// Builds the client. Fails when the key is missing or the base URL would
    /// send it over plain HTTP to another machine.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let base = config.endpoint("url")?;
        let key = config.secret_header(&INFO, "key")?;
        Ok(RemoveBg {
            http: config.http,
            url: endpoint_url(&base, "removebg"),
            account_url: endpoint_url(&base, "account"),
            key,
        })
    }

    /// Tests the key with `GET /account`, which is authenticated but free;
    /// remove.bg refuses a bad key with 403. The balance it answers becomes
    /// the detail ("42 credits and 50 free API calls left").
    pub async fn check_key(&self) -> Result<KeyCheck, ProviderError> {
        let response = self
            .http
            .send(ACCOUNT, || {
                Ok(self
                    .http
                    .api()?
                    .get(self.account_url.clone())
                    .header(API_KEY_HEADER, self.key.clone()))
            })
            .await?;
        let answer = parse_answer("the account check", &read_body(response).await?)?;
        Ok(KeyCheck {
            detail: balance(&answer),
        })
    }
}

/// The balance in an account answer
/// (`{"data":{"attributes":{"credits":{"total"},"api":{"free_calls"}}}}`),
/// whichever parts are there.
fn balance(answer: &Value) -> Option<String> {
    let attributes = answer.pointer("/data/attributes")?;
    let amount = |pointer: &str| json_amount(attributes.pointer(pointer)?);
    let parts: Vec<String> = [
        amount("/credits/total").map(|n| format!("{n} credits")),
        amount("/api/free_calls").map(|n| format!("{n} free API calls")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| format!("{} left", parts.join(" and ")))
}

/// The image as it is sent: a file read once, so every retry sends the same
/// bytes without touching the disk again, or a link remove.bg fetches.
enum ImageSource {
    File(InputFile),
    Url(String),
}

#[async_trait]
impl Provider for RemoveBg {
    fn info(&self) -> &'static ProviderInfo {
        &INFO
    }

    async fn submit(
        &self,
        request: &JobRequest,
        report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError> {
        if request.options.contains_key("crop_margin")
            && request.options.get("crop").map(String::as_str) != Some("true")
        {
            report.warning("crop_margin only applies with crop=true; it is ignored".to_owned());
        }
        report.uploading();
        let image = match &request.input {
            JobInput::File { path, .. } => ImageSource::File(InputFile::read(path).await?),
            JobInput::Url(url) => ImageSource::Url(url.to_string()),
        };
        let fields = text_fields(request);

        let response = self
            .http
            .send(REMOVE, || {
                let mut form = match &image {
                    ImageSource::File(file) => Form::new().part("image_file", file.part()?),
                    ImageSource::Url(url) => Form::new().text("image_url", url.clone()),
                };
                for (name, value) in &fields {
                    form = form.text(name.clone(), value.clone());
                }
                Ok(self
                    .http
                    .api()?
                    .post(self.url.clone())
                    .header(API_KEY_HEADER, self.key.clone())
                    .multipart(form))
            })
            .await?;

        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let credits = header(CREDITS_HEADER);
        let content_type = header(CONTENT_TYPE.as_str());
        let body = read_image(response)
            .await
            .map_err(|e| ProviderError::Network {
                message: format!("the image broke off while arriving: {}", e.without_url()),
                attempts: 1,
            })?;
        finished(body, credits.as_deref(), content_type.as_deref()).map(Submission::Finished)
    }

    async fn poll(
        &self,
        _request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError> {
        Err(ProviderError::Protocol(format!(
            "remove.bg answers within the submit call, so there is no job `{remote_id}` to poll"
        )))
    }
}

/// The largest answer whose announced length is reserved up front: a full
/// 50-megapixel PNG fits; a larger announced length grows as it arrives.
const RESERVE_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Reads the image into one buffer of the announced length. Collecting it
/// with `bytes()` gathers the pieces and then copies them into one, which
/// for a 14 MB cut-out held twice its size per job in flight.
async fn read_image(mut response: reqwest::Response) -> reqwest::Result<Bytes> {
    let announced = response
        .content_length()
        .unwrap_or(0)
        .min(RESERVE_MAX_BYTES);
    let mut image = Vec::with_capacity(announced as usize);
    while let Some(piece) = response.chunk().await? {
        image.extend_from_slice(&piece);
    }
    Ok(Bytes::from(image))
}

/// The text fields sent beside the image: the size (the model), PNG output,
/// then each option the user set, in a stable order.
fn text_fields(request: &JobRequest) -> Vec<(String, String)> {
    let mut fields = vec![
        ("size".to_owned(), request.model.clone()),
        ("format".to_owned(), "png".to_owned()),
    ];
    fields.extend(
        request
            .options
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "size" | "format"))
            .map(|(name, value)| (name.clone(), value.trim().to_owned())),
    );
    fields
}

/// Turns a 200 answer into the job's result, making sure it is really the
/// PNG that was asked for and not, say, a proxy's error page.
fn finished(
    body: Bytes,
    credits_header: Option<&str>,
    content_type: Option<&str>,
) -> Result<JobResult, ProviderError> {
    if !body.starts_with(PNG_SIGNATURE) {
        return Err(ProviderError::Protocol(format!(
            "expected a PNG image but got {} bytes of {}",
            body.len(),
            content_type.map_or_else(|| "an unnamed type".to_owned(), provider_words)
        )));
    }
    Ok(JobResult {
        assets: vec![ResultAsset {
            variation: None,
            source: AssetSource::Bytes(body),
            extension: "png".to_owned(),
        }],
        credits_charged: credits_header
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|credits| credits.is_finite() && *credits >= 0.0),
        warnings: Vec::new(),
    })
}

// ---- error bodies -----------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Pulls the messages out of `{"errors":[{"title","code","detail"}]}`:
/// `title: detail (code)`, several joined by `; `.
fn error_message(body: &[u8]) -> Option<String> {
    let body: ErrorBody = serde_json::from_slice(body).ok()?;
    let messages: Vec<String> = body.errors.into_iter().filter_map(describe).collect();
    (!messages.is_empty()).then(|| messages.join("; "))
}

fn describe(error: WireError) -> Option<String> {
    let present = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (title, code, detail) = (
        present(error.title),
        present(error.code),
        present(error.detail),
    );
    let head = match (title, detail) {
        (Some(title), Some(detail)) if title != detail => format!("{title}: {detail}"),
        (Some(text), Some(_)) => text,
        (Some(text), None) | (None, Some(text)) => text,
        (None, None) => return code,
    };
    Some(match code {
        Some(code) => format!("{head} ({code})"),
        None => head,
    })
}

/// Runs every parser of remove.bg's answers on `data` and returns the words
/// each would put in front of a user, for the fuzz targets
/// ([`super::fuzzing`]), so no wire type leaves this file. `data` is an
/// `X-Credits-Charged` (and `Content-Type`) value, a newline, then the body.
pub(crate) fn parse_any(data: &[u8]) -> Vec<String> {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&[][..], data),
    };
    let header = String::from_utf8_lossy(header);
    let result = finished(Bytes::copy_from_slice(body), Some(&header), Some(&header));
    let account = parse_answer("the account check", body);
    let mut words = super::fuzzing::outcome_words(&result);
    words.extend(super::fuzzing::outcome_words(&account));
    words.extend(account.ok().as_ref().and_then(balance));
    words.push(super::http::refusal_message(
        REMOVE,
        reqwest::StatusCode::BAD_REQUEST,
        body,
        &[],
    ));
    words
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::extract::{Multipart, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use serde_json::json;

    use super::*;
    use crate::imaging::Background;
    use crate::providers::test_support::{
        Log, Recorder, api_key, config, file_input, options, serve,
    };

    const TINY_PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// A job with a colour chosen, which remove.bg must not be sent: Cutout
    /// composes backgrounds itself.
    fn request(input: JobInput, options: &[(&str, &str)]) -> JobRequest {
        let mut request = crate::providers::test_support::request(&INFO, input, options);
        request.background = Background::Color([1, 2, 3]);
        request
    }

    fn url_request(options: &[(&str, &str)]) -> JobRequest {
        request(
            JobInput::Url(Url::parse("https://example.com/cat.jpg").unwrap()),
            options,
        )
    }

    #[test]
    fn info_lists_auto_first_and_accepts_only_images() {
        assert_eq!(INFO.default_model(), "auto");
        assert!(INFO.accepts(InputKind::ImageFile) && INFO.accepts(InputKind::ImageUrl));
        assert!(!INFO.accepts(InputKind::VideoFile) && !INFO.accepts(InputKind::VideoUrl));
        assert_eq!(INFO.credentials[0].env_var, "CUTOUT_REMOVEBG_KEY");
        assert_eq!(
            INFO.endpoints[0].default,
            Some("https://api.remove.bg/v1.0")
        );
        assert!(INFO.check_model("50MP").is_ok());
    }

    #[test]
    fn every_documented_option_value_passes_its_check() {
        let good = options(&[
            ("type", "car_interior"),
            ("type_level", "latest"),
            ("crop", "true"),
            ("crop_margin", "10px 5%"),
            ("scale", "80%"),
            ("position", "50% 100%"),
            ("channels", "alpha"),
            ("roi", "10px 10px 90% 90%"),
            ("add_shadow", "false"),
            ("semitransparency", "true"),
        ]);
        assert_eq!(INFO.check_options(&good), Ok(()));
    }

    #[test]
    fn the_form_asks_for_the_chosen_size_as_png_plus_each_option() {
        let request = url_request(&[
            ("type", "product"),
            ("crop", "true"),
            ("crop_margin", " 5% "),
        ]);
        let fields = text_fields(&request);
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("size", "auto"),
                ("format", "png"),
                ("crop", "true"),
                ("crop_margin", "5%"),
                ("type", "product"),
            ]
        );
    }

    #[test]
    fn a_png_answer_becomes_one_asset_with_the_credits_charged() {
        let result = finished(
            Bytes::from_static(TINY_PNG),
            Some("0.25"),
            Some("image/png"),
        )
        .unwrap();
        assert_eq!(result.assets.len(), 1);
        assert_eq!(result.assets[0].extension, "png");
        assert!(result.assets[0].variation.is_none());
        assert!(
            matches!(&result.assets[0].source, AssetSource::Bytes(b) if b.as_ref() == TINY_PNG)
        );
        assert_eq!(result.credits_charged, Some(0.25));
        assert!(result.warnings.is_empty());

        let unbilled = finished(Bytes::from_static(TINY_PNG), Some("n/a"), None).unwrap();
        assert_eq!(unbilled.credits_charged, None);
    }

    #[test]
    fn a_200_that_is_not_a_png_is_a_protocol_error() {
        let error = finished(
            Bytes::from_static(b"<html>captive portal</html>"),
            None,
            Some("text/html"),
        )
        .unwrap_err();
        let ProviderError::Protocol(message) = error else {
            panic!("expected a protocol error, got {error:?}");
        };
        assert!(message.contains("text/html"), "{message}");
    }

    #[test]
    fn error_bodies_become_title_detail_and_code() {
        let read = |v: serde_json::Value| error_message(v.to_string().as_bytes());
        assert_eq!(
            read(json!({"errors": [{
                "title": "Could not identify foreground in image. For details and recommendations see https://www.remove.bg/supported-images.",
                "code": "unknown_foreground"
            }]}))
            .unwrap(),
            "Could not identify foreground in image. For details and recommendations see https://www.remove.bg/supported-images. (unknown_foreground)"
        );
        assert_eq!(
            read(json!({"errors": [
                {"title": "Invalid parameter", "code": "invalid_parameter", "detail": "size must be one of preview, full, auto"},
                {"title": "Missing image"}
            ]}))
            .unwrap(),
            "Invalid parameter: size must be one of preview, full, auto (invalid_parameter); Missing image"
        );
        assert_eq!(
            read(json!({"errors": [{"code": "auth_failed"}]})).unwrap(),
            "auth_failed"
        );
        assert_eq!(read(json!({"errors": []})), None);
        assert_eq!(read(json!({"errors": [{}]})), None);
        assert_eq!(error_message(b"Bad Gateway"), None);
    }

    // ---- against a fake server ----------------------------------------------

    async fn fake_server(log: Log) -> Url {
        async fn removebg(
            State(log): State<Log>,
            headers: HeaderMap,
            mut form: Multipart,
        ) -> axum::response::Response {
            let key = api_key(&headers);
            let mut fields = Vec::new();
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap_or_default().to_owned();
                match field.file_name().map(str::to_owned) {
                    Some(file) => {
                        let mime = field.content_type().unwrap_or_default().to_owned();
                        let length = field.bytes().await.unwrap().len();
                        fields.push(format!("{name}={file}:{mime}:{length}"));
                    }
                    None => fields.push(format!("{name}={}", field.text().await.unwrap())),
                }
            }
            log.lock()
                .unwrap()
                .push(format!("key={key} {}", fields.join(",")));
            if key != "rbg_test_key" {
                let body = json!({"errors": [{"title": "API Key invalid", "code": "auth_failed"}]});
                return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            }
            (
                [("content-type", "image/png"), ("x-credits-charged", "1")],
                TINY_PNG,
            )
                .into_response()
        }
        async fn account(State(log): State<Log>, headers: HeaderMap) -> axum::response::Response {
            let key = api_key(&headers);
            log.lock().unwrap().push(format!("account key={key}"));
            if key != "rbg_test_key" {
                let body = json!({"errors": [{"title": "API Key invalid", "code": "auth_failed"}]});
                return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            }
            let body = json!({"data": {"attributes": {
                "credits": {"total": 42, "subscription": 40, "payg": 2, "enterprise": 0},
                "api": {"free_calls": 50, "sizes": "all"}
            }}});
            axum::Json(body).into_response()
        }
        let app = Router::new()
            .route("/v1.0/removebg", post(removebg))
            .route("/v1.0/account", axum::routing::get(account))
            .with_state(log);
        serve(app).await.join("v1.0").unwrap()
    }

    fn client(base: &Url, key: &str) -> RemoveBg {
        RemoveBg::new(config(&[("url", base)], &[("key", key)])).unwrap()
    }

    #[tokio::test]
    async fn a_local_image_is_sent_as_image_file_and_the_png_comes_back() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let request = request(
            file_input(&dir, "cat.jpg", &[0xff; 1234]),
            &[("crop_margin", "10px"), ("type", "animal")],
        );

        let submission = client(&base, "rbg_test_key")
            .submit(&request, &Recorder(log.clone()))
            .await
            .unwrap();
        let Submission::Finished(result) = submission else {
            panic!("expected a finished job, got {submission:?}");
        };
        assert_eq!(result.credits_charged, Some(1.0));
        assert!(
            matches!(&result.assets[0].source, AssetSource::Bytes(b) if b.as_ref() == TINY_PNG)
        );
        assert_eq!(
            log.lock().unwrap().as_slice(),
            [
                "warning crop_margin only applies with crop=true; it is ignored",
                "uploading",
                "key=rbg_test_key image_file=cat.jpg:image/jpeg:1234,size=auto,format=png,crop_margin=10px,type=animal",
            ]
        );
    }

    #[tokio::test]
    async fn an_image_url_is_passed_on_and_a_403_means_a_bad_key() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let error = client(&base, "wrong")
            .submit(&url_request(&[]), &Recorder(log.clone()))
            .await
            .unwrap_err();
        let ProviderError::Unauthorized { message } = error else {
            panic!("expected unauthorized, got {error:?}");
        };
        assert_eq!(message, "API Key invalid (auth_failed)");
        assert_eq!(
            log.lock().unwrap().last().unwrap(),
            "key=wrong image_url=https://example.com/cat.jpg,size=auto,format=png"
        );
    }

    #[tokio::test]
    async fn an_unreadable_input_is_an_io_error_naming_the_file() {
        let base = Url::parse("http://127.0.0.1:9/v1.0").unwrap();
        let missing = std::env::temp_dir().join("cutout-no-such-image.png");
        let request = request(
            JobInput::File {
                path: missing.clone(),
                root: None,
            },
            &[],
        );
        let error = client(&base, "k")
            .submit(&request, &Recorder(Log::default()))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ProviderError::Io { action: "cannot read the input", path, .. } if *path == missing),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn polling_a_synchronous_provider_is_a_protocol_error() {
        let base = Url::parse("http://127.0.0.1:9/v1.0").unwrap();
        let error = client(&base, "k")
            .poll(&url_request(&[]), "x")
            .await
            .unwrap_err();
        assert!(matches!(error, ProviderError::Protocol(_)));
    }

    #[test]
    fn the_balance_is_read_from_whichever_parts_the_account_answer_has() {
        let read = |v: serde_json::Value| balance(&v);
        assert_eq!(
            read(json!({"data": {"attributes": {"credits": {"total": 42.5}, "api": {"free_calls": "3"}}}}))
                .as_deref(),
            Some("42.5 credits and 3 free API calls left")
        );
        assert_eq!(
            read(json!({"data": {"attributes": {"credits": {"total": 0}}}})).as_deref(),
            Some("0 credits left")
        );
        assert_eq!(read(json!({"data": {"attributes": {}}})), None);
        assert_eq!(read(json!({"unexpected": true})), None);
    }

    #[tokio::test]
    async fn the_key_test_reads_the_free_account_route_and_reports_the_balance() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let check = client(&base, "rbg_test_key").check_key().await.unwrap();
        assert_eq!(
            check.detail.as_deref(),
            Some("42 credits and 50 free API calls left")
        );
        assert_eq!(log.lock().unwrap().as_slice(), ["account key=rbg_test_key"]);
    }

    #[tokio::test]
    async fn a_refused_key_fails_the_key_test_as_unauthorized_without_retrying() {
        let log = Log::default();
        let base = fake_server(log.clone()).await;
        let error = client(&base, "wrong").check_key().await.unwrap_err();
        let ProviderError::Unauthorized { message } = error else {
            panic!("expected unauthorized, got {error:?}");
        };
        assert_eq!(message, "API Key invalid (auth_failed)");
        assert_eq!(log.lock().unwrap().len(), 1);
    }
}
