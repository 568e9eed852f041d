//! The local engine as the rest of Cutout sees it: one per process, one
//! session per model (created on first use, reused for every later
//! picture), and one inference at a time.
//!
//! One inference already keeps every core busy, so running two at once
//! would only double the memory. Preparing the model's input and scaling
//! the mask back up happen outside that turn, so while one job infers,
//! another can decode, prepare, finish or encode. Memory stays flat across
//! a batch: per picture there is the model-sized input, the model's answer
//! and the full-size mask, each freed when the picture is done, and the
//! session cache holds one session per model file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use image::{GrayImage, RgbImage};
use serde::Serialize;

use super::backend::{BackendDescription, BackendKind, BackendPreference, Session, SessionOptions};
use super::pipeline;
use super::runtime::{self, RuntimeStatus};
use super::{LocalError, ResolvedModel};

/// Chooses the engine for [`LocalEngine::shared`]: `auto` (default),
/// `onnxruntime` or `tract`.
pub const ENGINE_VAR: &str = "CUTOUT_LOCAL_ENGINE";
/// Caps the threads one inference uses for [`LocalEngine::shared`]
/// (default: every core).
pub const THREADS_VAR: &str = "CUTOUT_LOCAL_THREADS";

/// What the UI and `cutout` show about the local engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    /// What the user asked for.
    pub preference: BackendPreference,
    /// Whether ONNX Runtime is loaded, and if not, why.
    pub runtime: RuntimeStatus,
    /// The runtime status in words.
    pub runtime_text: String,
    /// The engine new sessions run on.
    pub backend: BackendKind,
    /// Threads one inference uses on the CPU.
    pub threads: usize,
    /// The sessions loaded now: model id and what it runs on (its
    /// execution provider, and why not the GPU).
    pub sessions: Vec<(String, BackendDescription)>,
    /// What to tell the user when the slower engine runs by default: why,
    /// and `cutout runtime install`.
    pub hint: Option<String>,
}

/// One model file as loaded: its path and what it was when loaded (a
/// model replaced on disk loads again) and how it is fed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    path: PathBuf,
    length: u64,
    modified: Option<SystemTime>,
    preprocess: [u32; 8],
}

impl SessionKey {
    fn of(model: &ResolvedModel) -> Result<SessionKey, LocalError> {
        let metadata = std::fs::metadata(&model.path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                LocalError::BadModel {
                    reason: "the model file is missing; download or import it again".to_owned(),
                    path: model.path.clone(),
                }
            } else {
                LocalError::Io {
                    action: "cannot read the model",
                    source,
                    path: model.path.clone(),
                }
            }
        })?;
        let p = &model.preprocess;
        Ok(SessionKey {
            path: model.path.clone(),
            length: metadata.len(),
            modified: metadata.modified().ok(),
            preprocess: [
                p.size_px,
                u32::from(p.sigmoid),
                p.mean[0].to_bits(),
                p.mean[1].to_bits(),
                p.mean[2].to_bits(),
                p.std[0].to_bits(),
                p.std[1].to_bits(),
                p.std[2].to_bits(),
            ],
        })
    }
}

/// A session being created or created: the slot's lock makes concurrent
/// first uses of one model wait for a single load.
type Slot = Arc<Mutex<Option<(String, Arc<Session>)>>>;

/// The process's local engine. Cheap to create; models load on first use.
#[derive(Debug)]
pub struct LocalEngine {
    options: Mutex<SessionOptions>,
    sessions: Mutex<HashMap<SessionKey, Slot>>,
    turn: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one job must not stop every later one.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalEngine {
    /// An engine with these options.
    pub fn new(options: SessionOptions) -> LocalEngine {
        LocalEngine {
            options: Mutex::new(options),
            sessions: Mutex::new(HashMap::new()),
            turn: Mutex::new(()),
        }
    }

    /// The engine the whole process shares, so that a model loads once
    /// however many providers or batches use it. Its options come from the
    /// environment: Cutout's data directory (`CUTOUT_DATA_DIR` or the
    /// platform's), [`ENGINE_VAR`] and [`THREADS_VAR`].
    pub fn shared() -> Arc<LocalEngine> {
        static SHARED: OnceLock<Arc<LocalEngine>> = OnceLock::new();
        Arc::clone(SHARED.get_or_init(|| {
            let lookup = |name: &str| std::env::var(name).ok();
            Arc::new(LocalEngine::new(options_from(&lookup)))
        }))
    }

    /// The options sessions are created with.
    pub fn options(&self) -> SessionOptions {
        lock(&self.options).clone()
    }

    /// Changes the options (from the settings window); loaded sessions are
    /// dropped so the next picture uses the new ones.
    pub fn set_options(&self, options: SessionOptions) {
        *lock(&self.options) = options;
        lock(&self.sessions).clear();
    }

    /// The session for `model`, loading it on first use. Concurrent first
    /// uses load it once; a failed load is not remembered, so a fixed file
    /// loads on the next try.
    pub fn session(&self, model: &ResolvedModel) -> Result<Arc<Session>, LocalError> {
        let key = SessionKey::of(model)?;
        let slot = {
            let mut sessions = lock(&self.sessions);
            if !sessions.contains_key(&key) {
                // An older copy of the same file, or the same file fed
                // differently, is not used again: drop it.
                sessions.retain(|existing, _| existing.path != key.path);
            }
            Arc::clone(sessions.entry(key).or_default())
        };
        let mut slot = lock(&slot);
        if let Some((_, session)) = &*slot {
            return Ok(Arc::clone(session));
        }
        let session = Arc::new(Session::load(model, &self.options())?);
        *slot = Some((model.id.clone(), Arc::clone(&session)));
        Ok(session)
    }

    /// The mask for `image` (upright sRGB) under `model`, at the picture's
    /// size. Waits for its turn only for the inference itself.
    pub fn cut_out(
        &self,
        model: &ResolvedModel,
        image: &RgbImage,
    ) -> Result<GrayImage, LocalError> {
        let session = self.session(model)?;
        let input = pipeline::to_tensor(image, session.preprocess())?;
        let prediction = {
            let _turn = lock(&self.turn);
            session.infer(input)?
        };
        pipeline::to_mask(
            &prediction,
            session.preprocess(),
            image.width(),
            image.height(),
        )
    }

    /// Drops the sessions of a model file (removed or replaced), freeing
    /// its memory.
    pub fn forget(&self, model_path: &Path) {
        lock(&self.sessions).retain(|key, _| key.path != model_path);
    }

    /// Looks for ONNX Runtime again (after `cutout runtime install`); when
    /// it now loads, sessions on the built-in engine are dropped so the next
    /// picture uses the faster one.
    pub fn retry_runtime(&self) -> RuntimeStatus {
        let options = self.options();
        let status = runtime::retry(options.data_dir.as_deref());
        if status.is_loaded() && options.backend != BackendPreference::Tract {
            lock(&self.sessions).retain(|_, slot| {
                lock(slot)
                    .as_ref()
                    .is_none_or(|(_, session)| session.description().kind != BackendKind::Tract)
            });
        }
        status
    }

    /// Where the engine stands, for the UI and `cutout`: looks for ONNX
    /// Runtime if that was not done yet (even with the built-in engine
    /// chosen, so the UI can say the faster one is there), but loads no
    /// model.
    pub fn status(&self) -> EngineStatus {
        let options = self.options();
        let runtime = runtime::load(options.data_dir.as_deref());
        let backend = match options.backend {
            BackendPreference::Tract => BackendKind::Tract,
            _ if runtime.is_loaded() => BackendKind::OnnxRuntime,
            BackendPreference::Auto => BackendKind::Tract,
            BackendPreference::OnnxRuntime => BackendKind::OnnxRuntime,
        };
        let hint =
            (options.backend == BackendPreference::Auto && !runtime.is_loaded()).then(|| {
                format!(
                    "Using the slower built-in engine because {}; {}",
                    runtime.explain(),
                    runtime::INSTALL_HINT
                )
            });
        let slots: Vec<Slot> = lock(&self.sessions).values().cloned().collect();
        let mut sessions: Vec<(String, BackendDescription)> = slots
            .iter()
            .filter_map(|slot| {
                lock(slot)
                    .as_ref()
                    .map(|(id, session)| (id.clone(), session.description()))
            })
            .collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        EngineStatus {
            preference: options.backend,
            runtime_text: runtime.explain(),
            runtime,
            backend,
            threads: options.thread_count(),
            sessions,
            hint,
        }
    }
}

/// The shared engine's options from the environment; a bad value is
/// logged and ignored.
fn options_from(lookup: crate::config::Lookup<'_>) -> SessionOptions {
    let mut options = SessionOptions {
        data_dir: crate::paths::AppDirs::resolve(lookup)
            .ok()
            .map(|dirs| dirs.data_dir().to_owned()),
        ..SessionOptions::default()
    };
    if let Some(value) = lookup(ENGINE_VAR) {
        match value.parse() {
            Ok(backend) => options.backend = backend,
            Err(error) => tracing::warn!("{ENGINE_VAR}: {error}; using auto"),
        }
    }
    if let Some(value) = lookup(THREADS_VAR) {
        match value.trim().parse::<usize>() {
            Ok(threads) if threads > 0 => options.threads = Some(threads),
            _ => tracing::warn!(
                "{THREADS_VAR}: `{value}` is not a positive number of threads; using every core"
            ),
        }
    }
    options
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

    fn tract_engine() -> LocalEngine {
        LocalEngine::new(SessionOptions {
            backend: BackendPreference::Tract,
            threads: Some(1),
            ..SessionOptions::default()
        })
    }

    #[test]
    fn a_model_loads_once_and_is_reused_for_every_picture() {
        let engine = tract_engine();
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let first = engine.session(&model).unwrap();
        let picture = RgbImage::from_pixel(40, 30, image::Rgb([10, 200, 30]));
        engine.cut_out(&model, &picture).unwrap();
        let again = engine.session(&model).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(engine.status().sessions.len(), 1);
    }

    #[test]
    fn concurrent_first_uses_create_one_session() {
        let engine = Arc::new(tract_engine());
        let model = ResolvedModel::from_file(fixture("tiny-u2net.onnx"), ModelFamily::U2net);
        let sessions: Vec<Arc<Session>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| engine.session(&model).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        assert!(
            sessions
                .windows(2)
                .all(|pair| Arc::ptr_eq(&pair[0], &pair[1]))
        );
    }

    #[test]
    fn a_model_fed_as_another_family_gets_its_own_session_and_the_old_one_is_dropped() {
        let engine = tract_engine();
        let path = fixture("tiny-isnet.onnx");
        let isnet = ResolvedModel::from_file(path.clone(), ModelFamily::Isnet);
        let birefnet = ResolvedModel::from_file(path.clone(), ModelFamily::Birefnet);
        let first = engine.session(&isnet).unwrap();
        let second = engine.session(&birefnet).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(engine.status().sessions.len(), 1);
        engine.forget(&path);
        assert!(engine.status().sessions.is_empty());
    }

    #[test]
    fn a_missing_model_file_is_reported_with_its_path() {
        let engine = tract_engine();
        let model = ResolvedModel::from_file(fixture("no-such-model.onnx"), ModelFamily::U2net);
        let error = engine.session(&model).unwrap_err();
        assert!(matches!(error, LocalError::BadModel { .. }), "{error}");
        assert!(error.to_string().contains("no-such-model.onnx"), "{error}");
    }

    #[test]
    fn the_status_names_the_built_in_engine_when_it_is_chosen() {
        let status = tract_engine().status();
        assert_eq!(status.backend, BackendKind::Tract);
        assert_eq!(status.preference, BackendPreference::Tract);
        assert_eq!(status.threads, 1);
        assert!(status.hint.is_none());
    }

    #[test]
    fn options_come_from_the_environment_and_bad_values_are_ignored() {
        let lookup = |name: &str| match name {
            "CUTOUT_CONFIG_DIR" => Some("/tmp/cutout-config".to_owned()),
            "CUTOUT_DATA_DIR" => Some("/tmp/cutout-data".to_owned()),
            ENGINE_VAR => Some("tract".to_owned()),
            THREADS_VAR => Some("3".to_owned()),
            _ => None,
        };
        let options = options_from(&lookup);
        assert_eq!(options.backend, BackendPreference::Tract);
        assert_eq!(options.threads, Some(3));
        assert_eq!(options.data_dir, Some(PathBuf::from("/tmp/cutout-data")));

        let bad = |name: &str| match name {
            ENGINE_VAR => Some("quantum".to_owned()),
            THREADS_VAR => Some("zero".to_owned()),
            _ => None,
        };
        let options = options_from(&bad);
        assert_eq!(options.backend, BackendPreference::Auto);
        assert_eq!(options.threads, None);
    }
}
