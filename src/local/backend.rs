//! One loaded model, ready to turn pictures into masks, on one of two
//! engines: ONNX Runtime (fast, GPU-capable, a separate library found at
//! run time, see [`runtime`](super::runtime)) or tract (pure Rust, built
//! in, slower), so the local provider works on every machine. Which engine
//! and which execution provider (CPU, CUDA, CoreML, DirectML) a session
//! uses, and why a faster one was not, is recorded in its
//! [`BackendDescription`] for the UI to show: nothing falls back silently.
//!
//! The model is checked when it loads (one float input, NCHW, 3 channels,
//! the family's side; a 1×C×H×W first output), so a model imported with
//! the wrong family fails there with a message saying so, not with a panic
//! or a garbage mask later.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use image::{GrayImage, RgbImage};
use serde::Serialize;

use super::catalogue::Preprocess;
use super::pipeline::{self, InputTensor, Prediction};
use super::runtime::{self, RuntimeStatus};
use super::{LocalError, ResolvedModel};

/// Which engine runs the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendPreference {
    /// ONNX Runtime when its library loads, else tract, with the reason
    /// recorded.
    #[default]
    Auto,
    /// ONNX Runtime or an error saying how to install it.
    OnnxRuntime,
    /// The built-in engine, even where ONNX Runtime is installed.
    Tract,
}

impl BackendPreference {
    /// The id used in settings and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendPreference::Auto => "auto",
            BackendPreference::OnnxRuntime => "onnxruntime",
            BackendPreference::Tract => "tract",
        }
    }
}

impl fmt::Display for BackendPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendPreference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_lowercase()
            .replace(['-', '_', ' '], "")
            .as_str()
        {
            "auto" => Ok(BackendPreference::Auto),
            "onnxruntime" | "ort" => Ok(BackendPreference::OnnxRuntime),
            "tract" => Ok(BackendPreference::Tract),
            _ => Err(format!(
                "unknown engine `{s}`; choose auto, onnxruntime or tract"
            )),
        }
    }
}

/// How sessions are created; one set per [`LocalEngine`](super::engine::LocalEngine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// Which engine.
    pub backend: BackendPreference,
    /// Threads one inference may use; `None` means every core, since one
    /// inference runs at a time.
    pub threads: Option<usize>,
    /// Whether to use the platform's GPU execution provider when ONNX
    /// Runtime offers one.
    pub use_gpu: bool,
    /// Cutout's data directory, whose `runtime/` folder is searched for
    /// ONNX Runtime.
    pub data_dir: Option<PathBuf>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backend: BackendPreference::Auto,
            threads: None,
            use_gpu: true,
            data_dir: None,
        }
    }
}

impl SessionOptions {
    /// The threads one inference uses.
    pub fn thread_count(&self) -> usize {
        self.threads
            .filter(|&threads| threads > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    }
}

/// The engine a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// ONNX Runtime, loaded at run time.
    OnnxRuntime,
    /// tract, built in.
    Tract,
}

/// What a session runs on, in words for the UI and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendDescription {
    /// The engine.
    pub kind: BackendKind,
    /// Its name and version: `ONNX Runtime 1.32.0`, `tract (pure Rust)`.
    pub engine: String,
    /// Where the model runs: `CPU`, `CUDA`, `CoreML`, `DirectML`.
    pub execution_provider: String,
    /// CPU threads one inference uses.
    pub threads: usize,
    /// Why the GPU is not used, where one could have been.
    pub gpu_note: Option<String>,
    /// Why the built-in engine runs instead of ONNX Runtime, when the user
    /// left the choice to Cutout.
    pub fallback_reason: Option<String>,
}

impl BackendDescription {
    /// What to tell a user running on the slower engine by default:
    /// why, and how to get the faster one.
    pub fn upgrade_hint(&self) -> Option<String> {
        self.fallback_reason.as_ref().map(|reason| {
            format!(
                "Using the slower built-in engine because {reason}; {}",
                runtime::INSTALL_HINT
            )
        })
    }
}

impl fmt::Display for BackendDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} · {}", self.engine, self.execution_provider)?;
        if self.execution_provider == "CPU" {
            let plural = if self.threads == 1 { "" } else { "s" };
            write!(f, " · {} thread{plural}", self.threads)?;
        }
        Ok(())
    }
}

/// One model loaded on one engine. Send + Sync: ONNX Runtime's sessions
/// need exclusive access to run, so that one sits behind a mutex; tract's
/// plans run from shared references.
pub struct Session {
    engine: Engine,
    preprocess: Preprocess,
    description: BackendDescription,
    path: PathBuf,
}

enum Engine {
    OnnxRuntime(Mutex<ort::session::Session>),
    Tract(Arc<tract_onnx::prelude::TypedSimplePlan>),
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("path", &self.path)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Loads `model` on the engine `options` asks for and checks that it
    /// takes and gives what its family should.
    pub fn load(model: &ResolvedModel, options: &SessionOptions) -> Result<Session, LocalError> {
        let (kind, fallback_reason) = match options.backend {
            BackendPreference::Tract => (BackendKind::Tract, None),
            preference => match runtime::load(options.data_dir.as_deref()) {
                RuntimeStatus::Loaded { .. } => (BackendKind::OnnxRuntime, None),
                status if preference == BackendPreference::Auto => {
                    (BackendKind::Tract, Some(status.explain()))
                }
                status => {
                    return Err(LocalError::Runtime(format!(
                        "{}; {}, or choose the built-in engine",
                        status.explain(),
                        runtime::INSTALL_HINT
                    )));
                }
            },
        };
        if !model.path.is_file() {
            return Err(LocalError::BadModel {
                reason: "the model file is missing; download or import it again".to_owned(),
                path: model.path.clone(),
            });
        }
        let threads = options.thread_count();
        let (engine, description) = match kind {
            BackendKind::OnnxRuntime => load_onnx_runtime(model, options, threads)?,
            BackendKind::Tract => load_tract(model, threads, fallback_reason)?,
        };
        tracing::info!(model = %model.id, backend = %description, "loaded local model");
        Ok(Session {
            engine,
            preprocess: model.preprocess,
            description,
            path: model.path.clone(),
        })
    }

    /// The mask for `image` (upright sRGB), the picture's size: rembg's
    /// whole pipeline in one call.
    pub fn predict_mask(&self, image: &RgbImage) -> Result<GrayImage, LocalError> {
        let input = pipeline::to_tensor(image, &self.preprocess)?;
        let prediction = self.infer(input)?;
        pipeline::to_mask(&prediction, &self.preprocess, image.width(), image.height())
    }

    /// Runs the model alone, for callers that prepare the input and finish
    /// the mask outside a lock (see [`LocalEngine`](super::engine::LocalEngine)).
    pub fn infer(&self, input: InputTensor) -> Result<Prediction, LocalError> {
        if input.side_px != self.preprocess.size_px {
            return Err(LocalError::Inference(format!(
                "the picture was prepared at {0}×{0} for a model that takes {1}×{1}",
                input.side_px, self.preprocess.size_px
            )));
        }
        match &self.engine {
            Engine::OnnxRuntime(session) => {
                let mut session = session
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                run_onnx_runtime(&mut session, &input)
            }
            Engine::Tract(plan) => run_tract(plan, input),
        }
    }

    /// What this session runs on.
    pub fn description(&self) -> BackendDescription {
        self.description.clone()
    }

    /// How pictures are fed to it.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn bad_model(model: &ResolvedModel, reason: impl Into<String>) -> LocalError {
    LocalError::BadModel {
        reason: reason.into(),
        path: model.path.clone(),
    }
}

/// What the family expects, for messages: `a 1×3×320×320 input (U²-Net)`.
fn expected_input(model: &ResolvedModel) -> String {
    let side = model.preprocess.size_px;
    format!(
        "1×3×{side}×{side} (how {} models are fed)",
        model.family.display_name()
    )
}

const FAMILY_HINT: &str =
    "import it again with the family it was exported as (u2net, isnet or birefnet)";

/// Checks the model's one input against the family: float32, rank 4,
/// 1 (or any) × 3 × side × side, `None` standing for a dynamic dimension.
fn check_input(
    model: &ResolvedModel,
    count: usize,
    is_float: Option<bool>,
    dims: Option<&[Option<u64>]>,
) -> Result<(), LocalError> {
    if count != 1 {
        return Err(bad_model(
            model,
            format!(
                "the model takes {count} inputs but a background-removal model takes one picture; {FAMILY_HINT}"
            ),
        ));
    }
    if is_float == Some(false) {
        return Err(bad_model(
            model,
            format!("the model's input is not float32 pictures; {FAMILY_HINT}"),
        ));
    }
    let Some(dims) = dims else {
        return Ok(());
    };
    let side = u64::from(model.preprocess.size_px);
    let describe = |dims: &[Option<u64>]| {
        dims.iter()
            .map(|dim| dim.map_or("?".to_owned(), |dim| dim.to_string()))
            .collect::<Vec<_>>()
            .join("×")
    };
    let wanted = [Some(1), Some(3), Some(side), Some(side)];
    let fits = dims.len() == 4
        && dims
            .iter()
            .zip(wanted)
            .all(|(dim, wanted)| dim.is_none() || *dim == wanted);
    if fits {
        Ok(())
    } else {
        Err(bad_model(
            model,
            format!(
                "the model takes {} but Cutout feeds it {}; {FAMILY_HINT}",
                describe(dims),
                expected_input(model)
            ),
        ))
    }
}

/// Checks the first output: float32 and 1×C×H×W (dimensions may be
/// dynamic).
fn check_output(
    model: &ResolvedModel,
    count: usize,
    is_float: Option<bool>,
    rank: Option<usize>,
) -> Result<(), LocalError> {
    if count == 0 {
        return Err(bad_model(model, "the model has no output"));
    }
    if is_float == Some(false) {
        return Err(bad_model(
            model,
            format!("the model's first output is not float32; {FAMILY_HINT}"),
        ));
    }
    match rank {
        Some(rank) if rank != 4 => Err(bad_model(
            model,
            format!(
                "the model's first output has {rank} dimensions but a mask is read from 1×C×H×W; {FAMILY_HINT}"
            ),
        )),
        _ => Ok(()),
    }
}

fn load_onnx_runtime(
    model: &ResolvedModel,
    options: &SessionOptions,
    threads: usize,
) -> Result<(Engine, BackendDescription), LocalError> {
    let version = match runtime::load(options.data_dir.as_deref()) {
        RuntimeStatus::Loaded { version, .. } => version,
        status => return Err(LocalError::Runtime(status.explain())),
    };
    let environment = runtime::environment().ok_or_else(|| {
        LocalError::Runtime("the library loaded but has no environment; restart Cutout".to_owned())
    })?;

    let (gpu, mut gpu_note) = if options.use_gpu {
        gpu_provider()
    } else {
        (None, None)
    };
    let build = |provider: Option<&GpuProvider>| -> Result<ort::session::Session, String> {
        let mut builder = ort::session::Session::builder(environment)
            .map_err(|error| error.to_string())?
            .with_intra_threads(threads)
            .map_err(|error| error.to_string())?
            .with_log_level(ort::logging::LogLevel::Warning)
            .map_err(|error| error.to_string())?;
        if let Some(provider) = provider {
            builder = builder
                .with_execution_providers([provider.dispatch.clone().error_on_failure()])
                .map_err(|error| format!("{} would not start: {error}", provider.name))?;
        }
        builder
            .commit_from_file(&model.path)
            .map_err(|error| error.to_string())
    };
    let (session, execution_provider) = match gpu
        .as_ref()
        .map(|provider| (provider, build(Some(provider))))
    {
        Some((provider, Ok(session))) => (session, provider.name.to_owned()),
        Some((provider, Err(reason))) => {
            tracing::warn!(provider = provider.name, %reason, "GPU execution provider failed; running on the CPU");
            gpu_note = Some(format!("{} could not be used: {reason}", provider.name));
            (
                build(None).map_err(|reason| bad_onnx(model, reason))?,
                "CPU".to_owned(),
            )
        }
        None => (
            build(None).map_err(|reason| bad_onnx(model, reason))?,
            "CPU".to_owned(),
        ),
    };

    let input = session.inputs().first();
    let input_type = input.map(|outlet| outlet.dtype());
    let (is_float, dims) = tensor_facts(input_type);
    check_input(model, session.inputs().len(), is_float, dims.as_deref())?;
    let output_type = session.outputs().first().map(|outlet| outlet.dtype());
    let (is_float, dims) = tensor_facts(output_type);
    check_output(
        model,
        session.outputs().len(),
        is_float,
        dims.map(|dims| dims.len()),
    )?;

    let description = BackendDescription {
        kind: BackendKind::OnnxRuntime,
        engine: format!("ONNX Runtime {version}"),
        execution_provider,
        threads,
        gpu_note,
        fallback_reason: None,
    };
    Ok((Engine::OnnxRuntime(Mutex::new(session)), description))
}

fn bad_onnx(model: &ResolvedModel, reason: String) -> LocalError {
    bad_model(
        model,
        format!("ONNX Runtime cannot load the model ({reason}); download or import it again"),
    )
}

/// Whether an ONNX Runtime value type is a float32 tensor, and its
/// dimensions (`None` for dynamic ones).
fn tensor_facts(
    value_type: Option<&ort::value::ValueType>,
) -> (Option<bool>, Option<Vec<Option<u64>>>) {
    match value_type {
        Some(ort::value::ValueType::Tensor { ty, shape, .. }) => (
            Some(*ty == ort::value::TensorElementType::Float32),
            Some(shape.iter().map(|&dim| u64::try_from(dim).ok()).collect()),
        ),
        Some(_) => (Some(false), None),
        None => (None, None),
    }
}

/// The platform's GPU execution provider, when this ONNX Runtime build has
/// one.
struct GpuProvider {
    name: &'static str,
    dispatch: ort::ep::ExecutionProviderDispatch,
}

/// The GPU provider to try, or why there is none.
fn gpu_provider() -> (Option<GpuProvider>, Option<String>) {
    use ort::ep::ExecutionProvider;

    let mut offered: Vec<(
        &'static str,
        ort::Result<bool>,
        ort::ep::ExecutionProviderDispatch,
    )> = Vec::new();
    if cfg!(target_os = "macos") {
        offered.push((
            "CoreML",
            ort::ep::CoreML::is_available(),
            ort::ep::CoreML::default().build(),
        ));
    } else {
        offered.push((
            "CUDA",
            ort::ep::CUDA::is_available(),
            ort::ep::CUDA::default().build(),
        ));
        if cfg!(target_os = "windows") {
            offered.push((
                "DirectML",
                ort::ep::DirectML::is_available(),
                ort::ep::DirectML::default().build(),
            ));
        }
    }
    let names: Vec<&str> = offered.iter().map(|(name, _, _)| *name).collect();
    for (name, available, dispatch) in offered {
        if matches!(available, Ok(true)) {
            return (Some(GpuProvider { name, dispatch }), None);
        }
    }
    (
        None,
        Some(format!(
            "this ONNX Runtime build has no {} support",
            names.join(" or ")
        )),
    )
}

fn run_onnx_runtime(
    session: &mut ort::session::Session,
    input: &InputTensor,
) -> Result<Prediction, LocalError> {
    let failed = |error: ort::Error| LocalError::Inference(error.to_string());
    let tensor = ort::value::TensorRef::from_array_view((input.shape(), input.data.as_slice()))
        .map_err(|error| LocalError::Inference(error.to_string()))?;
    let outputs = session.run(ort::inputs![tensor]).map_err(failed)?;
    if outputs.len() == 0 {
        return Err(LocalError::Inference(
            "the model answered nothing".to_owned(),
        ));
    }
    let (shape, values) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(|error| LocalError::Inference(error.to_string()))?;
    let shape: Vec<usize> = shape
        .iter()
        .map(|&dim| usize::try_from(dim).unwrap_or(0))
        .collect();
    pipeline::first_channel(values, &shape)
}

fn load_tract(
    model: &ResolvedModel,
    threads: usize,
    fallback_reason: Option<String>,
) -> Result<(Engine, BackendDescription), LocalError> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::Factoid;

    let side = model.preprocess.size_px as usize;
    let mut inference = tract_onnx::onnx().model_for_path(&model.path).map_err(|error| {
        bad_model(
            model,
            format!("this is not an ONNX model Cutout can read ({error}); download or import it again"),
        )
    })?;

    let count = inference.inputs.len();
    let fact = inference.input_fact(0).ok();
    let is_float = fact
        .and_then(|fact| fact.datum_type.concretize())
        .map(|dt| dt == f32::datum_type());
    let dims: Option<Vec<Option<u64>>> = fact.filter(|fact| !fact.shape.is_open()).map(|fact| {
        fact.shape
            .dims()
            .map(|dim| {
                dim.concretize()
                    .and_then(|dim| dim.to_i64().ok())
                    .and_then(|dim| u64::try_from(dim).ok())
            })
            .collect()
    });
    check_input(model, count, is_float, dims.as_deref())?;
    if inference.outputs.is_empty() {
        return Err(bad_model(model, "the model has no output"));
    }
    // Only the first output is read; dropping the others lets tract skip
    // whatever computes only them.
    let first = inference.outputs[0];
    let typed = inference
        .select_output_outlets(&[first])
        .and_then(|()| inference.with_input_fact(0, f32::fact([1, 3, side, side]).into()))
        .and_then(|inference| inference.into_optimized())
        .map_err(|error| {
            bad_model(
                model,
                format!(
                    "the model does not accept {}: {error}; {FAMILY_HINT}",
                    expected_input(model)
                ),
            )
        })?;
    let output = typed.output_fact(0).ok();
    let is_float = output.map(|fact| fact.datum_type == f32::datum_type());
    let rank = output.map(|fact| fact.rank());
    check_output(model, typed.outputs.len(), is_float, rank)?;

    let executor = (threads > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|n| format!("cutout-tract-{n}"))
                .build()
                .ok()
        })
        .flatten()
        .map(|pool| multithread::Executor::MultiThread(Arc::new(pool)));
    let used_threads = if executor.is_some() { threads } else { 1 };
    let options = RunOptions {
        executor,
        ..RunOptions::default()
    };
    let plan = typed
        .into_runnable_with_options(&options)
        .map_err(|error| bad_model(model, format!("tract cannot run the model: {error}")))?;
    let description = BackendDescription {
        kind: BackendKind::Tract,
        engine: "tract (pure Rust)".to_owned(),
        execution_provider: "CPU".to_owned(),
        threads: used_threads,
        gpu_note: None,
        fallback_reason,
    };
    Ok((Engine::Tract(plan), description))
}

fn run_tract(
    plan: &Arc<tract_onnx::prelude::TypedSimplePlan>,
    input: InputTensor,
) -> Result<Prediction, LocalError> {
    use tract_onnx::prelude::*;

    let failed = |error: TractError| LocalError::Inference(error.to_string());
    let shape = input.shape();
    let tensor: Tensor =
        tract_ndarray::Array4::from_shape_vec((shape[0], shape[1], shape[2], shape[3]), input.data)
            .map_err(|error| LocalError::Inference(error.to_string()))?
            .into();
    let outputs = plan.run(tvec![tensor.into()]).map_err(failed)?;
    let output = outputs
        .first()
        .ok_or_else(|| LocalError::Inference("the model answered nothing".to_owned()))?;
    let view = output.to_plain_array_view::<f32>().map_err(failed)?;
    let shape = view.shape().to_vec();
    match view.as_slice() {
        Some(values) => pipeline::first_channel(values, &shape),
        None => {
            let values: Vec<f32> = view.iter().copied().collect();
            pipeline::first_channel(&values, &shape)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::catalogue::ModelFamily;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models")
            .join(name)
    }

    fn options(backend: BackendPreference) -> SessionOptions {
        SessionOptions {
            backend,
            threads: Some(1),
            use_gpu: false,
            data_dir: None,
        }
    }

    #[test]
    fn engine_choices_parse_from_what_users_type() {
        assert_eq!("auto".parse(), Ok(BackendPreference::Auto));
        assert_eq!("ONNX-Runtime".parse(), Ok(BackendPreference::OnnxRuntime));
        assert_eq!("ort".parse(), Ok(BackendPreference::OnnxRuntime));
        assert_eq!(" tract ".parse(), Ok(BackendPreference::Tract));
        let error = "gpu".parse::<BackendPreference>().unwrap_err();
        assert!(error.contains("auto, onnxruntime or tract"), "{error}");
    }

    #[test]
    fn a_description_reads_engine_processor_and_threads() {
        let mut description = BackendDescription {
            kind: BackendKind::OnnxRuntime,
            engine: "ONNX Runtime 1.32.0".to_owned(),
            execution_provider: "CPU".to_owned(),
            threads: 2,
            gpu_note: None,
            fallback_reason: None,
        };
        assert_eq!(
            description.to_string(),
            "ONNX Runtime 1.32.0 · CPU · 2 threads"
        );
        assert_eq!(description.upgrade_hint(), None);
        description.execution_provider = "CUDA".to_owned();
        assert_eq!(description.to_string(), "ONNX Runtime 1.32.0 · CUDA");
    }

    #[test]
    fn auto_uses_onnx_runtime_when_it_loads_and_otherwise_says_why_not() {
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let session = Session::load(&model, &options(BackendPreference::Auto)).unwrap();
        let description = session.description();
        match runtime::load(None) {
            RuntimeStatus::Loaded { version, .. } => {
                assert_eq!(description.kind, BackendKind::OnnxRuntime);
                assert_eq!(description.engine, format!("ONNX Runtime {version}"));
                assert_eq!(description.fallback_reason, None);
            }
            status => {
                assert_eq!(description.kind, BackendKind::Tract);
                assert_eq!(description.fallback_reason, Some(status.explain()));
                let hint = description.upgrade_hint().unwrap();
                assert!(hint.contains("cutout runtime install"), "{hint}");
            }
        }
    }

    #[test]
    fn asking_for_onnx_runtime_without_it_is_an_error_that_says_how_to_install_it() {
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let result = Session::load(&model, &options(BackendPreference::OnnxRuntime));
        if runtime::load(None).is_loaded() {
            assert_eq!(result.unwrap().description().kind, BackendKind::OnnxRuntime);
        } else {
            let error = result.unwrap_err();
            assert!(matches!(error, LocalError::Runtime(_)), "{error}");
            assert!(
                error.to_string().contains("cutout runtime install"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_whole_pipeline_runs_in_one_call() {
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let session = Session::load(&model, &options(BackendPreference::Tract)).unwrap();
        let picture = RgbImage::from_fn(64, 48, |x, _| {
            if x < 32 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mask = session.predict_mask(&picture).unwrap();
        assert_eq!(mask.dimensions(), (64, 48));
        assert_eq!(mask.get_pixel(5, 20).0[0], 0);
        assert_eq!(mask.get_pixel(60, 20).0[0], 255);
    }

    #[test]
    fn a_picture_prepared_for_another_size_is_refused() {
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let session = Session::load(&model, &options(BackendPreference::Tract)).unwrap();
        let input = InputTensor {
            side_px: 16,
            data: vec![0.0; 3 * 16 * 16],
        };
        let error = session.infer(input).unwrap_err();
        assert!(error.to_string().contains("16×16"), "{error}");
    }

    #[test]
    fn input_checks_name_what_the_model_takes_and_what_it_is_fed() {
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::Birefnet);
        let dims = [Some(1), Some(3), Some(320), Some(320)];
        let error = check_input(&model, 1, Some(true), Some(&dims)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("takes 1×3×320×320"), "{text}");
        assert!(
            text.contains("1×3×1024×1024 (how BiRefNet models are fed)"),
            "{text}"
        );
        // Dynamic sizes fit any side.
        let dynamic = [None, Some(3), None, None];
        assert!(check_input(&model, 1, Some(true), Some(&dynamic)).is_ok());
        // One channel, two inputs, integers: refused.
        let grey = [Some(1), Some(1), None, None];
        assert!(check_input(&model, 1, Some(true), Some(&grey)).is_err());
        assert!(check_input(&model, 2, Some(true), Some(&dynamic)).is_err());
        assert!(check_input(&model, 1, Some(false), Some(&dynamic)).is_err());
    }
}
