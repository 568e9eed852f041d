//! The local engine: background removal on this machine with an ONNX
//! segmentation model, no account and no network once a model is here.
//!
//! - [`catalogue`]: the rembg models Cutout can download, and how each is fed.
//! - [`pipeline`]: rembg's exact pre- and post-processing (image → tensor,
//!   output → mask).
//! - [`backend`]: the inference session, on ONNX Runtime (loaded at run time)
//!   or, where none is installed, on the pure-Rust `tract`.
//! - [`runtime`]: finding, installing and loading the ONNX Runtime library.
//! - [`download`]: resumable, checksummed downloads with progress.
//! - [`models`]: the models on disk: downloaded, imported, removed.
//! - [`install`]: `cutout runtime install`, the official ONNX Runtime build.
//! - [`engine`]: one session per model, reused across a batch.

pub mod backend;
pub mod catalogue;
pub mod download;
pub mod engine;
pub mod install;
pub mod models;
pub mod pipeline;
pub mod runtime;

use std::path::PathBuf;

/// Everything that can go wrong in the local engine. Messages say what to do
/// next and put paths and URLs last.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The model is in the catalogue but not on this machine.
    #[error(
        "the model {model} is not downloaded yet; run `cutout models download {model}` or pick it in the app to download it"
    )]
    ModelMissing {
        /// Its id.
        model: String,
    },
    /// No model by that name, in the catalogue or imported.
    #[error("unknown local model `{model}`; {hint}")]
    UnknownModel {
        /// What was asked for.
        model: String,
        /// Which models exist.
        hint: String,
    },
    /// The file is not a model this engine can run.
    #[error("{reason}: {}", path.display())]
    BadModel {
        /// What is wrong, in words.
        reason: String,
        /// The model file.
        path: PathBuf,
    },
    /// The model ran but failed or answered something unusable.
    #[error("the model failed: {0}")]
    Inference(String),
    /// A download failed; see the message for what to do.
    #[error("{message}: {url}")]
    Download {
        /// What went wrong and what to do.
        message: String,
        /// The address (never carries a secret).
        url: String,
    },
    /// A downloaded file is not the one published.
    #[error(
        "the download was damaged or replaced (its {algorithm} is {actual}, expected {expected}); it was deleted, try again: {url}"
    )]
    ChecksumMismatch {
        /// `MD5` or `SHA-256`.
        algorithm: &'static str,
        /// What was published.
        expected: String,
        /// What arrived.
        actual: String,
        /// Where from.
        url: String,
    },
    /// The ONNX Runtime library could not be found, installed or loaded.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// A file could not be read or written.
    #[error("{action}: {source}: {}", path.display())]
    Io {
        /// What was being done ("cannot write the model").
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
        /// The file or folder.
        path: PathBuf,
    },
    /// The input image could not be opened.
    #[error(transparent)]
    Image(#[from] crate::imaging::ImagingError),
    /// The user cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl LocalError {
    /// Whether trying again unchanged may succeed: an interrupted download
    /// resumes, everything else would fail the same way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LocalError::Download { .. } | LocalError::ChecksumMismatch { .. }
        )
    }
}

/// A model ready to load: its file and how to feed it. Made by
/// [`models::ModelStore::resolve`] for catalogue and imported models, and by
/// [`ResolvedModel::from_file`] for `--model-file`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedModel {
    /// The id shown to the user and written to the history (`u2net`,
    /// `custom:shoes`, or the file's name).
    pub id: String,
    /// The `.onnx` file.
    pub path: PathBuf,
    /// Its architecture.
    pub family: catalogue::ModelFamily,
    /// How to feed it.
    pub preprocess: catalogue::Preprocess,
}

impl ResolvedModel {
    /// A model file the user points at directly, fed as its family is.
    pub fn from_file(path: PathBuf, family: catalogue::ModelFamily) -> ResolvedModel {
        let id = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_owned());
        ResolvedModel {
            id,
            path,
            family,
            preprocess: family.preprocess(),
        }
    }
}
