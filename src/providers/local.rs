//! The local provider: background removal on this machine with an ONNX
//! model from [`crate::local`]. Free, private (the image never leaves the
//! machine) and offline once the model is here. It is synchronous: `submit`
//! downloads the model on first use, runs it and answers with the cut-out's
//! pixels, which the engine composes and encodes like any other result.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use image::RgbaImage;
use url::Url;

use super::{
    AssetSource, EndpointSpec, JobReporter, JobRequest, JobResult, ModelInfo, OptionKind,
    OptionSpec, PollStatus, Provider, ProviderConfig, ProviderError, ProviderId, ProviderInfo,
    ResultAsset, Submission,
};
use crate::imaging::decode::{self, DecodeLimits, SourceFormat};
use crate::jobs::job::{InputKind, JobInput};
use crate::local::catalogue::{self, CatalogueModel, ModelFamily};
use crate::local::download::{DownloadProgress, Downloader};
use crate::local::engine::LocalEngine;
use crate::local::models::ModelStore;
use crate::local::{LocalError, ResolvedModel};

/// The model id that means "the file named by the `model_file` option".
pub const MODEL_FILE: &str = "file";

/// The option naming a model file to run instead of a catalogue model.
pub const MODEL_FILE_OPTION: &str = "model_file";

/// The option naming that file's family, so it is fed correctly.
pub const MODEL_FAMILY_OPTION: &str = "model_family";

/// Every catalogue model whose licence allows commercial use, as pickers
/// show them; the first is the default.
static MODELS: [ModelInfo; offered_count()] = offered_models();

const fn offered_count() -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < catalogue::CATALOGUE.len() {
        if !catalogue::CATALOGUE[i].non_commercial {
            count += 1;
        }
        i += 1;
    }
    count
}

const fn offered_models() -> [ModelInfo; offered_count()] {
    let mut models = [ModelInfo {
        id: "",
        summary: "",
    }; offered_count()];
    let mut next = 0;
    let mut i = 0;
    while i < catalogue::CATALOGUE.len() {
        let model = &catalogue::CATALOGUE[i];
        if !model.non_commercial {
            models[next] = ModelInfo {
                id: model.id,
                summary: model.good_for,
            };
            next += 1;
        }
        i += 1;
    }
    models
}

/// What the local engine offers. Input limits are Cutout's own decoder's:
/// any image it opens, at any size the decoder allows.
/// The endpoint id of the address catalogue models are downloaded from.
pub const MODELS_URL_ENDPOINT: &str = "models_url";

pub static INFO: ProviderInfo = ProviderInfo {
    id: ProviderId::Local,
    name: "Local (this computer)",
    summary: "Free and private: a model runs on this computer, no account, works offline once downloaded",
    models: &MODELS,
    options: &[
        OptionSpec {
            key: MODEL_FILE_OPTION,
            kind: OptionKind::Text {
                example: "/models/my-isnet.onnx",
                validate: validate_model_file,
            },
            help: "run this .onnx file instead of a catalogue model (with model_family)",
        },
        OptionSpec {
            key: MODEL_FAMILY_OPTION,
            kind: OptionKind::Choice {
                values: &["u2net", "isnet", "birefnet"],
            },
            help: "the architecture of model_file, so images are prepared as it expects",
        },
    ],
    accepts: &[InputKind::ImageFile],
    credentials: &[],
    endpoints: &[EndpointSpec {
        id: MODELS_URL_ENDPOINT,
        env_var: "CUTOUT_LOCAL_MODELS_URL",
        default: Some(catalogue::DEFAULT_MODELS_URL),
    }],
    // Inference takes every core, one image at a time; a second job decodes
    // and encodes while the first is in the model.
    default_concurrency: 2,
    has_health_check: false,
    runs_on_this_machine: true,
    // Only reached by a model download on first use.
    poll_deadline_secs: 3600,
    input_limits: super::InputLimits {
        max_file_bytes: None,
        max_pixels: None,
        max_side_px: None,
        // What Cutout's own decoder opens (AVIF and HEIC are not built in).
        image_formats: &[
            SourceFormat::Jpeg,
            SourceFormat::Png,
            SourceFormat::Webp,
            SourceFormat::Tiff,
            SourceFormat::Bmp,
            SourceFormat::Gif,
        ],
        confirmed: true,
    },
};

fn validate_model_file(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("give the path of an .onnx model file".to_owned());
    }
    Ok(())
}

/// Whether `model` names a model the local provider can run: one in the
/// catalogue (non-commercial ones included, when asked for by name), an
/// imported `custom:<name>`, or [`MODEL_FILE`].
pub fn accepts_model_id(model: &str) -> bool {
    model == MODEL_FILE
        || catalogue::find(model).is_some()
        || model
            .strip_prefix(crate::local::models::CUSTOM_PREFIX)
            .is_some_and(|name| !name.is_empty())
}

/// The model downloads in progress, shared by every local provider built
/// in this process, so the window and the CLI can draw a progress bar for a
/// download started by a job.
#[derive(Debug, Default)]
pub struct DownloadBoard {
    active: Mutex<Vec<(String, DownloadProgress)>>,
}

impl DownloadBoard {
    /// The board of this process.
    pub fn global() -> &'static DownloadBoard {
        static BOARD: OnceLock<DownloadBoard> = OnceLock::new();
        BOARD.get_or_init(DownloadBoard::default)
    }

    /// Every download now running, by model id.
    pub fn active(&self) -> Vec<(String, DownloadProgress)> {
        self.lock().clone()
    }

    fn update(&self, model: &str, progress: DownloadProgress) {
        let mut active = self.lock();
        match active.iter_mut().find(|(id, _)| id == model) {
            Some(entry) => entry.1 = progress,
            None => active.push((model.to_owned(), progress)),
        }
    }

    fn finished(&self, model: &str) {
        self.lock().retain(|(id, _)| id != model);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, DownloadProgress)>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The model store for `data_dir`, one per process, so every provider built
/// over it (the window rebuilds providers when settings change) shares one
/// download per model.
fn shared_store(data_dir: &Path) -> Arc<ModelStore> {
    static STORES: Mutex<Vec<Arc<ModelStore>>> = Mutex::new(Vec::new());
    let mut stores = STORES.lock().unwrap_or_else(|p| p.into_inner());
    let models_dir = ModelStore::new(data_dir).dir().to_owned();
    if let Some(store) = stores.iter().find(|s| s.dir() == models_dir) {
        return Arc::clone(store);
    }
    let store = Arc::new(ModelStore::new(data_dir));
    stores.push(Arc::clone(&store));
    store
}

/// The local provider: a model store, the shared engine and where models
/// are downloaded from.
#[derive(Debug)]
pub struct Local {
    store: Arc<ModelStore>,
    engine: Arc<LocalEngine>,
    models_url: Url,
    downloader: Downloader,
}

impl Local {
    /// Builds the provider over the data directory in `config`. The engine
    /// (and with it every loaded model) is shared by the whole process, so
    /// rebuilding the provider when settings change keeps loaded models.
    pub fn new(config: ProviderConfig) -> Result<Local, ProviderError> {
        let data_dir = config.data_dir.clone().ok_or_else(|| {
            ProviderError::Config(
                "the local provider needs Cutout's data folder for its models".to_owned(),
            )
        })?;
        let models_url = config.endpoint(MODELS_URL_ENDPOINT)?;
        Ok(Local {
            engine: LocalEngine::shared(),
            store: shared_store(&data_dir),
            models_url,
            downloader: Downloader::new(config.http.policy().clone()),
        })
    }

    /// The model a job asks for, downloaded first when it is a catalogue
    /// model not yet on this machine.
    async fn model_for(&self, request: &JobRequest) -> Result<ResolvedModel, ProviderError> {
        if request.model == MODEL_FILE {
            let path = request.options.get(MODEL_FILE_OPTION).ok_or_else(|| {
                ProviderError::Config(format!(
                    "model `{MODEL_FILE}` needs the {MODEL_FILE_OPTION} option (--model-file)"
                ))
            })?;
            let family: ModelFamily = request
                .options
                .get(MODEL_FAMILY_OPTION)
                .ok_or_else(|| {
                    ProviderError::Config(format!(
                        "a model file needs its family: set {MODEL_FAMILY_OPTION} (--model-family u2net|isnet|birefnet)"
                    ))
                })?
                .parse()
                .map_err(ProviderError::Config)?;
            return Ok(ResolvedModel::from_file(PathBuf::from(path), family));
        }
        match self.store.resolve(&request.model) {
            Err(LocalError::ModelMissing { .. }) => {
                let model =
                    catalogue::find(&request.model).ok_or_else(|| LocalError::UnknownModel {
                        model: request.model.clone(),
                        hint: "see `cutout models list`".to_owned(),
                    })?;
                self.download(model).await?;
                Ok(self.store.resolve(&request.model)?)
            }
            other => Ok(other?),
        }
    }

    async fn download(&self, model: &'static CatalogueModel) -> Result<(), LocalError> {
        // A cancelled job drops this future, which stops the download and
        // keeps its part file for the next try; nothing else cancels it.
        let never = tokio_util::sync::CancellationToken::new();
        download_shared(
            &self.store,
            &self.downloader,
            &self.models_url,
            model,
            &never,
        )
        .await
        .map(drop)
    }
}

/// Downloads a catalogue model into the store every provider over
/// `data_dir` shares, with its progress on the [`DownloadBoard`]: what the
/// window's "Download the model now" runs, so a job that needs the same
/// model meanwhile waits for this download instead of starting another.
pub async fn download_model(
    data_dir: &Path,
    models_url: &Url,
    downloader: &Downloader,
    model: &'static CatalogueModel,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<PathBuf, LocalError> {
    let store = shared_store(data_dir);
    download_shared(&store, downloader, models_url, model, cancel).await
}

async fn download_shared(
    store: &ModelStore,
    downloader: &Downloader,
    models_url: &Url,
    model: &'static CatalogueModel,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<PathBuf, LocalError> {
    let board = DownloadBoard::global();
    let progress = |progress: DownloadProgress| board.update(model.id, progress);
    let result = store
        .download(downloader, models_url, model, &progress, cancel)
        .await;
    board.finished(model.id);
    result
}

#[async_trait]
impl Provider for Local {
    fn info(&self) -> &'static ProviderInfo {
        &INFO
    }

    async fn submit(
        &self,
        request: &JobRequest,
        _report: &dyn JobReporter,
    ) -> Result<Submission, ProviderError> {
        let JobInput::File { path, .. } = &request.input else {
            return Err(ProviderError::Config(
                "the local provider takes image files; download the image first".to_owned(),
            ));
        };
        let model = self.model_for(request).await?;
        let engine = Arc::clone(&self.engine);
        let path = path.clone();
        let cutout = tokio::task::spawn_blocking(move || cut_out(&engine, &model, &path))
            .await
            .map_err(|e| ProviderError::Local(LocalError::Inference(e.to_string())))??;
        Ok(Submission::Finished(JobResult {
            assets: vec![ResultAsset {
                variation: None,
                source: AssetSource::Pixels(Arc::new(cutout)),
                extension: "png".to_owned(),
            }],
            credits_charged: None,
            warnings: Vec::new(),
        }))
    }

    async fn poll(
        &self,
        _request: &JobRequest,
        remote_id: &str,
    ) -> Result<PollStatus, ProviderError> {
        Err(ProviderError::Protocol(format!(
            "the local provider finishes within the submit call, so there is no job `{remote_id}` to poll"
        )))
    }
}

/// Opens the image upright in sRGB, runs the model on it and returns it with
/// the model's mask as its alpha. The original colours are kept; any alpha
/// the input had is replaced by the mask.
fn cut_out(
    engine: &LocalEngine,
    model: &ResolvedModel,
    path: &std::path::Path,
) -> Result<RgbaImage, ProviderError> {
    let decoded = decode::open(path, &DecodeLimits::default()).map_err(LocalError::from)?;
    let rgb = decoded.image.into_rgb8();
    let mask = engine.cut_out(model, &rgb)?;
    let (width, height) = rgb.dimensions();
    let mut pixels = rgb.into_raw();
    // Grow the RGB buffer to RGBA in place, from the back, so a 24 MP photo
    // never needs a second full-size copy.
    let count = (width as usize) * (height as usize);
    pixels.resize(count * 4, 0);
    for i in (0..count).rev() {
        let (r, g, b) = (pixels[i * 3], pixels[i * 3 + 1], pixels[i * 3 + 2]);
        pixels[i * 4..i * 4 + 4].copy_from_slice(&[r, g, b, mask.as_raw()[i]]);
    }
    RgbaImage::from_raw(width, height, pixels).ok_or_else(|| {
        ProviderError::Local(LocalError::Inference(
            "the cut-out does not match the image's size".to_owned(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_catalogue_model_is_listed_default_first() {
        assert_eq!(INFO.default_model(), catalogue::DEFAULT_MODEL);
        let listed: Vec<_> = INFO.models.iter().map(|m| m.id).collect();
        let offered: Vec<_> = catalogue::offered().map(|m| m.id).collect();
        assert_eq!(listed, offered);
    }

    #[test]
    fn model_ids_the_local_provider_accepts() {
        assert!(accepts_model_id("u2netp"));
        assert!(accepts_model_id("bria-rmbg"));
        assert!(accepts_model_id("custom:shoes"));
        assert!(accepts_model_id(MODEL_FILE));
        assert!(!accepts_model_id("custom:"));
        assert!(!accepts_model_id("auto"));
    }
}
