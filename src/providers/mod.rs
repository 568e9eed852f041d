//! Providers: the services (and later the local model) that remove
//! backgrounds. Each lives in its own file behind [`Provider`]; its wire types
//! stay there. The engine only sees this module's types, so adding a provider
//! never touches the scheduler.

#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod local;
pub mod removebg;
mod removebg_params;
pub mod removebgvideo;
pub mod removit;
#[cfg(test)]
pub(crate) mod test_support;
pub mod uploadcare;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::imaging::Background;
use crate::imaging::decode::SourceFormat;
use crate::jobs::job::{InputKind, JobInput};
use crate::secrets::Credentials;

pub use http::{Call, HttpClient, ProviderError, Replay, RetryPolicy};

/// The providers Cutout knows. The string forms are the CLI's `--provider`
/// values and the middle of the environment variable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// The local engine: a model on this machine.
    Local,
    /// Uploadcare's Remove.bg add-on.
    Uploadcare,
    /// removit.eu.
    Removit,
    /// removebgvideo.com, for video.
    Removebgvideo,
    /// remove.bg's own API.
    Removebg,
}

impl ProviderId {
    /// Every provider, in the order they are listed to users.
    pub const ALL: [ProviderId; 5] = [
        ProviderId::Local,
        ProviderId::Uploadcare,
        ProviderId::Removit,
        ProviderId::Removebgvideo,
        ProviderId::Removebg,
    ];

    /// The id as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::Local => "local",
            ProviderId::Uploadcare => "uploadcare",
            ProviderId::Removit => "removit",
            ProviderId::Removebgvideo => "removebgvideo",
            ProviderId::Removebg => "removebg",
        }
    }

    /// `CUTOUT_<ID>`: the prefix of this provider's environment variables.
    pub fn env_prefix(self) -> String {
        format!("CUTOUT_{}", self.as_str().to_ascii_uppercase())
    }

    /// The provider's static description.
    pub fn info(self) -> &'static ProviderInfo {
        match self {
            ProviderId::Local => &local::INFO,
            ProviderId::Uploadcare => &uploadcare::INFO,
            ProviderId::Removit => &removit::INFO,
            ProviderId::Removebgvideo => &removebgvideo::INFO,
            ProviderId::Removebg => &removebg::INFO,
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderId::ALL
            .into_iter()
            .find(|id| id.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let known: Vec<_> = ProviderId::ALL.iter().map(|id| id.as_str()).collect();
                format!("unknown provider `{s}`; choose one of {}", known.join(", "))
            })
    }
}

/// A model a provider offers, shown in pickers and `cutout providers`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ModelInfo {
    /// The value sent to the provider and typed after `--model`.
    pub id: &'static str,
    /// One line on what it is good for, or what it costs.
    pub summary: &'static str,
}

/// The type of a provider option, so front ends can draw a proper control
/// (a checkbox, a drop-down) instead of a text box, and bad values are refused
/// before anything is uploaded.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OptionKind {
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of values.
    Choice {
        /// The allowed values.
        values: &'static [&'static str],
    },
    /// Free text checked by the provider's rule.
    Text {
        /// An example value for help text.
        example: &'static str,
        /// Checks a value, returning what is wrong with it.
        #[serde(skip)]
        validate: fn(&str) -> Result<(), String>,
    },
}

/// One provider-specific option (`--option key=value`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OptionSpec {
    /// The key as typed and, usually, as sent.
    pub key: &'static str,
    /// Its type.
    pub kind: OptionKind,
    /// What it does, in a line.
    pub help: &'static str,
}

impl OptionSpec {
    /// Checks one value against this option's type.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        match self.kind {
            OptionKind::Bool => match value {
                "true" | "false" => Ok(()),
                _ => Err(format!("`{}` takes true or false, not `{value}`", self.key)),
            },
            OptionKind::Choice { values } => {
                if values.contains(&value) {
                    Ok(())
                } else {
                    Err(format!(
                        "`{}` takes one of {}, not `{value}`",
                        self.key,
                        values.join(", ")
                    ))
                }
            }
            OptionKind::Text { validate, .. } => {
                validate(value).map_err(|why| format!("`{}`: {why}", self.key))
            }
        }
    }
}

/// A validated set of provider options, in a stable order.
pub type ProviderOptions = BTreeMap<String, String>;

/// A credential a provider needs, such as an API key.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CredentialSpec {
    /// Short id, used as the keychain entry suffix: `key`, `public_key`.
    pub id: &'static str,
    /// What to call it in the UI.
    pub label: &'static str,
    /// The environment variable that overrides the stored value.
    pub env_var: &'static str,
}

/// A base URL a provider talks to, overridable for tests, staging and proxies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EndpointSpec {
    /// Short id: `url`, `api_url`, `upload_url`, `cdn_url`.
    pub id: &'static str,
    /// The environment variable that overrides it.
    pub env_var: &'static str,
    /// The production value; `None` when the provider derives it itself.
    pub default: Option<&'static str>,
}

/// Everything static about a provider: what it offers, needs and accepts.
#[derive(Debug, Serialize)]
pub struct ProviderInfo {
    /// Its id.
    pub id: ProviderId,
    /// Its name as users know it.
    pub name: &'static str,
    /// One line on when to choose it.
    pub summary: &'static str,
    /// Its models; the first is the default.
    pub models: &'static [ModelInfo],
    /// Its options.
    pub options: &'static [OptionSpec],
    /// The kinds of input it takes.
    pub accepts: &'static [InputKind],
    /// The credentials it needs.
    pub credentials: &'static [CredentialSpec],
    /// Its base URLs.
    pub endpoints: &'static [EndpointSpec],
    /// Jobs in flight at once unless the user says otherwise.
    pub default_concurrency: usize,
    /// Whether it has an unauthenticated health endpoint (`cutout health`).
    pub has_health_check: bool,
    /// Whether it runs on this machine: the input never leaves it, nothing
    /// is charged, and it opens the original file itself (no upload copy).
    pub runs_on_this_machine: bool,
    /// How long to keep polling one job before giving up.
    pub poll_deadline_secs: u64,
    /// What it takes as an uploaded image file, so an input over a limit
    /// is converted or downscaled before upload (when the user allows it)
    /// instead of failing after the upload.
    pub input_limits: InputLimits,
}

/// The size and formats of image files a provider takes. A limit left at
/// `None` is one the provider does not document; the provider's own answer
/// then decides. Where the numbers come from is written beside each
/// provider's value.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InputLimits {
    /// The largest file, in bytes.
    pub max_file_bytes: Option<u64>,
    /// The most pixels, width × height.
    pub max_pixels: Option<u64>,
    /// The longest side, in pixels.
    pub max_side_px: Option<u32>,
    /// The image formats it takes as uploads; empty for a video-only
    /// provider.
    pub image_formats: &'static [SourceFormat],
    /// Whether every number and format above is in the provider's contract
    /// (`PROVIDERS.md`); `false` when some come from its public website or
    /// from the service it runs on, and may change without notice.
    pub confirmed: bool,
}

impl InputLimits {
    /// Whether it takes uploads in `format`.
    pub fn takes(&self, format: SourceFormat) -> bool {
        self.image_formats.contains(&format)
    }
}

impl ProviderInfo {
    /// The model used when none is chosen.
    pub fn default_model(&self) -> &'static str {
        self.models[0].id
    }

    /// Whether it takes inputs of this kind.
    pub fn accepts(&self, kind: InputKind) -> bool {
        self.accepts.contains(&kind)
    }

    /// Whether it only takes video, so undecided URLs count as video.
    pub fn takes_only_video(&self) -> bool {
        self.accepts.iter().all(|k| k.is_video())
    }

    /// The option with this key.
    pub fn option(&self, key: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|o| o.key == key)
    }

    /// Checks a model name, saying which ones exist when it is wrong.
    pub fn check_model(&self, model: &str) -> Result<(), String> {
        if self.models.iter().any(|m| m.id == model) {
            return Ok(());
        }
        // The local engine also runs imported models and model files, which
        // no static list can name; whether they exist is checked when the
        // job runs.
        if self.id == ProviderId::Local && local::accepts_model_id(model) {
            return Ok(());
        }
        let known: Vec<_> = self.models.iter().map(|m| m.id).collect();
        Err(format!(
            "{} has no model `{model}`; choose one of {}",
            self.id,
            known.join(", ")
        ))
    }

    /// Checks `key=value` options, saying exactly what is wrong.
    pub fn check_options(&self, options: &ProviderOptions) -> Result<(), String> {
        for (key, value) in options {
            let Some(spec) = self.option(key) else {
                let known: Vec<_> = self.options.iter().map(|o| o.key).collect();
                return Err(format!(
                    "{} has no option `{key}`; its options are {}",
                    self.id,
                    known.join(", ")
                ));
            };
            spec.validate(value)?;
        }
        Ok(())
    }
}

/// Why `info` cannot take inputs of `kind`, naming the providers that can;
/// `None` when it can.
pub fn refusal(info: &ProviderInfo, kind: InputKind) -> Option<String> {
    if info.accepts(kind) {
        return None;
    }
    let others: Vec<_> = providers_accepting(kind)
        .iter()
        .map(|p| p.as_str())
        .collect();
    Some(format!(
        "{} cannot take {}; use {} instead",
        info.id,
        kind.plural_noun(),
        others.join(" or ")
    ))
}

/// Every provider that can take `kind`, for "use … instead" messages.
pub fn providers_accepting(kind: InputKind) -> Vec<ProviderId> {
    ProviderId::ALL
        .into_iter()
        .filter(|id| id.info().accepts(kind))
        .collect()
}

/// What a provider is given to build a client: resolved base URLs, the
/// credentials it declared, and the shared HTTP client. Cloning it is cheap
/// (the HTTP client is shared) and copies no key out of its secret wrapper.
#[derive(Clone)]
pub struct ProviderConfig {
    /// Base URLs by [`EndpointSpec::id`]; every declared endpoint with a
    /// default is present.
    pub endpoints: BTreeMap<&'static str, Url>,
    /// The credentials by [`CredentialSpec::id`].
    pub credentials: Credentials,
    /// The shared client with the retry policy.
    pub http: HttpClient,
    /// Cutout's data folder, where the local provider keeps its models;
    /// `None` where no local provider is built (key tests).
    pub data_dir: Option<std::path::PathBuf>,
}

impl ProviderConfig {
    /// The base URL with this id, checked here, once for every provider, to
    /// be safe to send keys and files to: HTTPS, or plain HTTP only to this
    /// machine. A missing one is a configuration bug.
    pub fn endpoint(&self, id: &str) -> Result<Url, ProviderError> {
        self.optional_endpoint(id)?
            .ok_or_else(|| ProviderError::Config(format!("no `{id}` base URL is set")))
    }

    /// Like [`endpoint`](Self::endpoint), for a base URL without a default
    /// that may be left unset (Uploadcare's `cdn_url`).
    pub fn optional_endpoint(&self, id: &str) -> Result<Option<Url>, ProviderError> {
        checked_endpoint(&self.endpoints, id)
    }

    /// The credential `id` that `info` declares, or the error that names the
    /// variable to set.
    pub fn credential(
        &self,
        info: &ProviderInfo,
        id: &str,
    ) -> Result<&SecretString, ProviderError> {
        let spec = credential_spec(info, id)?;
        self.credentials
            .get(spec.id)
            .ok_or(ProviderError::MissingCredential {
                provider: info.name,
                provider_id: info.id,
                label: spec.label,
                env_var: spec.env_var,
            })
    }

    /// The credential `id` as a header value marked sensitive, so a key sent
    /// as a header is exposed once, here, and never printed by `Debug` or
    /// reqwest's logs. A key no header can carry fails now, naming its
    /// variable, rather than on the first call.
    pub fn secret_header(
        &self,
        info: &ProviderInfo,
        id: &str,
    ) -> Result<HeaderValue, ProviderError> {
        let spec = credential_spec(info, id)?;
        let secret = self.credential(info, id)?;
        http::sensitive_header(secret.expose_secret(), || {
            format!(
                "the {} {} contains characters that cannot be sent; check {}",
                info.name, spec.label, spec.env_var
            )
        })
    }
}

fn credential_spec(
    info: &ProviderInfo,
    id: &str,
) -> Result<&'static CredentialSpec, ProviderError> {
    info.credentials
        .iter()
        .find(|spec| spec.id == id)
        .ok_or_else(|| {
            ProviderError::Config(format!("{} declares no `{id}` credential", info.name))
        })
}

/// The base URL `id` if set, refused unless it is safe to send data to.
fn checked_endpoint(
    endpoints: &BTreeMap<&'static str, Url>,
    id: &str,
) -> Result<Option<Url>, ProviderError> {
    let Some(url) = endpoints.get(id) else {
        return Ok(None);
    };
    http::check_url_is_secure(url)?;
    Ok(Some(url.clone()))
}

/// Builds the client for `id`. Fails when a credential is missing, with the
/// variable to set.
pub fn build(id: ProviderId, config: ProviderConfig) -> Result<Arc<dyn Provider>, ProviderError> {
    for spec in id.info().credentials {
        config.credential(id.info(), spec.id)?;
    }
    Ok(match id {
        ProviderId::Local => Arc::new(local::Local::new(config)?),
        ProviderId::Uploadcare => Arc::new(uploadcare::Uploadcare::new(config)?),
        ProviderId::Removit => Arc::new(removit::Removit::new(config)?),
        ProviderId::Removebgvideo => Arc::new(removebgvideo::RemoveBgVideo::new(config)?),
        ProviderId::Removebg => Arc::new(removebg::RemoveBg::new(config)?),
    })
}

/// One job as a provider sees it.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The input; files are read by the provider, never written.
    pub input: JobInput,
    /// Its kind, already checked against [`ProviderInfo::accepts`].
    pub kind: InputKind,
    /// A model from [`ProviderInfo::models`].
    pub model: String,
    /// Options checked by [`ProviderInfo::check_options`].
    pub options: ProviderOptions,
    /// The background the user chose. Image providers ignore it (Cutout
    /// composes images itself, the same for every provider); video
    /// providers send it, since only they can compose video.
    pub background: Background,
}

/// Where a provider reports what happens during a call, so the user sees
/// "uploading" and the remote id the moment they are known.
pub trait JobReporter: Send + Sync {
    /// The input is being sent.
    fn uploading(&self);
    /// The provider assigned its id. Report it as soon as it is known, before
    /// any further call, so a crash after this point can resume the job
    /// instead of paying for it again.
    fn remote_id(&self, remote_id: &str);
    /// The provider said something the user should see but that is not an
    /// error.
    fn warning(&self, message: String);
    /// How long the user lets a remote step take, when they set a limit
    /// (`CUTOUT_POLL_DEADLINE_SECS`). The engine applies it to polling; a
    /// provider that waits inside `submit` (Uploadcare fetching an input URL)
    /// applies it there instead of its own limit. `None`: no limit was set.
    fn poll_deadline(&self) -> Option<std::time::Duration> {
        None
    }
}

/// What `submit` ends with.
#[derive(Debug)]
pub enum Submission {
    /// The job runs remotely; poll it with this id.
    Accepted {
        /// The provider's id.
        remote_id: String,
    },
    /// A synchronous provider finished within the call.
    Finished(JobResult),
}

/// A finished job's results and what the provider said about them.
#[derive(Debug, Default)]
pub struct JobResult {
    /// One asset per variation, in the provider's order.
    pub assets: Vec<ResultAsset>,
    /// Credits the provider says it charged.
    pub credits_charged: Option<f64>,
    /// Notes for the user that are not errors (removit's `warnings` and
    /// `ignored_variations`).
    pub warnings: Vec<String>,
}

/// One result file.
#[derive(Debug, Clone)]
pub struct ResultAsset {
    /// The variation name (`compose`, `shadowTop`) for multi-result jobs;
    /// it becomes part of the file name.
    pub variation: Option<String>,
    /// Where the bytes are.
    pub source: AssetSource,
    /// The file extension the provider's format implies (`png`, `webm`), used
    /// when the bytes are saved as they are.
    pub extension: String,
}

/// Where a result's bytes are.
#[derive(Debug, Clone)]
pub enum AssetSource {
    /// To be fetched, without any credentials, from this URL.
    Url(Url),
    /// Already here (synchronous providers answer with the image).
    Bytes(Bytes),
    /// Already decoded: the local engine's cut-out, composed and encoded
    /// straight from memory with no round trip through a file format.
    Pixels(Arc<image::RgbaImage>),
}

/// What one poll found.
#[derive(Debug)]
pub enum PollStatus {
    /// Still working.
    Pending {
        /// 0–100 when the provider reports it.
        progress: Option<u8>,
        /// The provider's own word for where the job stands (`processing`,
        /// or one Cutout does not know, such as `paused`), quoted if the job
        /// never finishes.
        status: Option<String>,
    },
    /// Finished; download these.
    Done(JobResult),
    /// The provider says the job failed.
    Failed {
        /// The provider's words.
        message: String,
    },
}

/// One check of a provider's health endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct HealthCheck {
    /// What was checked (`api`, `storage`).
    pub name: String,
    /// Whether it passed.
    pub healthy: bool,
    /// Extra words from the provider.
    pub detail: Option<String>,
}

/// A provider's answer to a health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The overall status in the provider's words (`healthy`, `degraded`).
    pub status: String,
    /// Whether the provider can take work.
    pub healthy: bool,
    /// The individual checks.
    pub checks: Vec<HealthCheck>,
}

/// A background-removal service. Implementations are real clients of the
/// contracts in PROVIDERS.md; each keeps its wire types private.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// What it offers and accepts.
    fn info(&self) -> &'static ProviderInfo;

    /// Sends the job. Asynchronous services answer [`Submission::Accepted`];
    /// synchronous ones finish here and answer [`Submission::Finished`].
    /// Must call [`JobReporter::remote_id`] as soon as an id exists.
    async fn submit(
        &self,
        request: &JobRequest,
        report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError>;

    /// Asks how an accepted job is doing. Called every few seconds with
    /// backoff until it is done, failed, or past the deadline.
    async fn poll(
        &self,
        request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError>;
}

/// Checks a provider's health endpoint, which needs no key; `None` for
/// providers without one.
pub async fn check_health(
    id: ProviderId,
    endpoints: &BTreeMap<&'static str, Url>,
    http: &HttpClient,
) -> Option<Result<HealthReport, ProviderError>> {
    match id {
        ProviderId::Removebgvideo => {
            let base = match checked_endpoint(endpoints, "url").transpose()? {
                Ok(base) => base,
                Err(error) => return Some(Err(error)),
            };
            Some(removebgvideo::check_health(http, &base).await)
        }
        ProviderId::Local | ProviderId::Uploadcare | ProviderId::Removit | ProviderId::Removebg => {
            None
        }
    }
}

/// What a successful key test found: the provider accepted the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCheck {
    /// A short note for the user when the answer had one ("42 credits
    /// left"); never contains the key.
    pub detail: Option<String>,
}

/// Checks that `id` accepts the keys in `config` with one cheap,
/// authenticated call that starts no paid work: remove.bg's account, the
/// video service's one-day usage summary, a signed one-file listing of the
/// Uploadcare project, and removit's status of a made-up job (unknown job
/// means the key is fine). Goes through the shared client and its retry
/// policy. A refused key is [`ProviderError::Unauthorized`]; a missing one
/// is [`ProviderError::MissingCredential`].
pub async fn test_key(id: ProviderId, config: &ProviderConfig) -> Result<KeyCheck, ProviderError> {
    for spec in id.info().credentials {
        config.credential(id.info(), spec.id)?;
    }
    let config = config.clone();
    match id {
        ProviderId::Local => Err(ProviderError::Config(
            "the local provider needs no key".to_owned(),
        )),
        ProviderId::Uploadcare => uploadcare::Uploadcare::new(config)?.check_key().await,
        ProviderId::Removit => removit::Removit::new(config)?.check_key().await,
        ProviderId::Removebgvideo => removebgvideo::RemoveBgVideo::new(config)?.check_key().await,
        ProviderId::Removebg => removebg::RemoveBg::new(config)?.check_key().await,
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::config;
    use super::*;

    #[test]
    fn a_missing_credential_names_every_way_to_provide_it() {
        let error = config(&[], &[])
            .secret_header(&removebg::INFO, "key")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "remove.bg needs its API key: add it in Settings or with `cutout keys set removebg`, \
             or set CUTOUT_REMOVEBG_KEY"
        );
    }

    #[test]
    fn a_key_header_is_sensitive_and_an_unsendable_key_is_refused_without_quoting_it() {
        let header = config(&[], &[("key", "rbg_123")])
            .secret_header(&removebg::INFO, "key")
            .unwrap();
        assert!(header.is_sensitive());
        assert_eq!(header, "rbg_123");

        let error = config(&[], &[("key", "rbg\nsecret")])
            .secret_header(&removit::INFO, "key")
            .unwrap_err();
        let message = error.to_string();
        assert_eq!(
            message,
            "the removit.eu API key contains characters that cannot be sent; check CUTOUT_REMOVIT_KEY"
        );
    }

    #[test]
    fn every_endpoint_is_refused_over_plain_http_to_a_remote_host() {
        let remote = Url::parse("http://api.remove.bg/v1.0").unwrap();
        let local = Url::parse("http://127.0.0.1:9/").unwrap();
        let config = config(&[("url", &remote), ("api_url", &local)], &[]);
        assert!(matches!(
            config.endpoint("url"),
            Err(ProviderError::Config(_))
        ));
        assert!(matches!(
            config.optional_endpoint("url"),
            Err(ProviderError::Config(_))
        ));
        assert_eq!(config.endpoint("api_url").unwrap(), local);
        assert_eq!(config.optional_endpoint("cdn_url").unwrap(), None);
        assert!(matches!(
            config.endpoint("cdn_url"),
            Err(ProviderError::Config(_))
        ));
    }
}
