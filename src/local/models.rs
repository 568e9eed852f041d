//! The models on this machine, under `<data dir>/models/`: catalogue models
//! as `<id>.onnx`, downloaded on first use; models the user imported (for
//! machines without internet, or their own exports) as `custom/<name>.onnx`
//! with a `custom/<name>.toml` beside it that records the family, so Cutout
//! knows how to feed it. Imported models have the id `custom:<name>`.
//!
//! Nothing here ever moves or changes a user's file: imports are copies,
//! written to a temporary file in the same folder and renamed into place.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::catalogue::{self, CatalogueModel, ModelFamily};
use super::download::{self, DownloadProgress, DownloadRequest, Downloader, MODEL_OFFLINE_HINT};
use super::{LocalError, ResolvedModel};
use crate::providers::http::endpoint_url;

/// What an imported model's id starts with, so it can never collide with a
/// catalogue id.
pub const CUSTOM_PREFIX: &str = "custom:";

/// The longest name an imported model may have.
const MAX_NAME_LEN: usize = 64;

/// Where a model on disk came from.
#[derive(Debug, Clone)]
pub enum ModelOrigin {
    /// Downloaded from the catalogue.
    Catalogue(&'static CatalogueModel),
    /// Imported by the user.
    Imported {
        /// The name of the file it was copied from, to remind the user.
        original_file_name: String,
        /// When, as an RFC 3339 timestamp.
        imported_at: String,
    },
}

/// A model that is on this machine and ready to use.
#[derive(Debug, Clone)]
pub struct InstalledModel {
    /// `isnet-general-use`, or `custom:<name>` for an imported one.
    pub id: String,
    /// The `.onnx` file.
    pub path: PathBuf,
    /// Its size on disk, for "frees 176 MB".
    pub size_bytes: u64,
    /// Its architecture.
    pub family: ModelFamily,
    /// Downloaded or imported.
    pub origin: ModelOrigin,
}

/// What `custom/<name>.toml` holds.
#[derive(Debug, Serialize, Deserialize)]
struct ImportRecord {
    /// The family's id (`u2net`, `isnet`, `birefnet`).
    family: String,
    original_file_name: String,
    imported_at: String,
}

/// The models folder. Cheap to clone; clones share the record of downloads
/// in flight, so one app-wide store downloads each model once however many
/// jobs ask for it at the same moment.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
    in_flight: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl ModelStore {
    /// The store under `data_dir` (see [`crate::paths::AppDirs::data_dir`]).
    /// Nothing is created until a model is downloaded or imported.
    pub fn new(data_dir: &Path) -> ModelStore {
        ModelStore {
            dir: data_dir.join("models"),
            in_flight: Arc::default(),
        }
    }

    /// The models folder, to show users where their disk space went.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a catalogue model lives once downloaded.
    pub fn model_path(&self, model: &CatalogueModel) -> PathBuf {
        self.dir.join(format!("{}.onnx", model.id))
    }

    fn custom_dir(&self) -> PathBuf {
        self.dir.join("custom")
    }

    fn custom_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.custom_dir();
        (
            dir.join(format!("{name}.onnx")),
            dir.join(format!("{name}.toml")),
        )
    }

    /// Whether the catalogue model `id` (or the imported `custom:<name>`)
    /// is on disk.
    pub fn is_downloaded(&self, id: &str) -> bool {
        if let Some(name) = id.strip_prefix(CUSTOM_PREFIX) {
            return valid_name(name).is_ok() && {
                let (model, record) = self.custom_paths(name);
                model.is_file() && record.is_file()
            };
        }
        catalogue::find(id).is_some_and(|model| self.model_path(model).is_file())
    }

    /// Every model on disk: downloaded catalogue models in catalogue order,
    /// then imported ones by name. An imported model whose record cannot be
    /// read is left out (and logged) rather than failing the whole list.
    pub fn installed(&self) -> Vec<InstalledModel> {
        let mut found = Vec::new();
        for model in catalogue::CATALOGUE {
            let path = self.model_path(model);
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.is_file()
            {
                found.push(InstalledModel {
                    id: model.id.to_owned(),
                    path,
                    size_bytes: meta.len(),
                    family: model.family,
                    origin: ModelOrigin::Catalogue(model),
                });
            }
        }
        let mut names: Vec<String> = std::fs::read_dir(self.custom_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".toml")?;
                valid_name(stem).ok().map(|_| stem.to_owned())
            })
            .collect();
        names.sort();
        for name in names {
            match self.imported(&name) {
                Ok(model) => found.push(model),
                Err(e) => tracing::warn!("skipping the imported model {name}: {e}"),
            }
        }
        found
    }

    /// The imported model `name`, read from its record.
    fn imported(&self, name: &str) -> Result<InstalledModel, LocalError> {
        let (path, record_path) = self.custom_paths(name);
        let text = std::fs::read_to_string(&record_path).map_err(|source| LocalError::Io {
            action: "cannot read the imported model's record",
            source,
            path: record_path.clone(),
        })?;
        let bad_record = |reason: String| LocalError::BadModel {
            reason: format!(
                "the imported model's record is damaged ({reason}); import the model again with --replace"
            ),
            path: record_path.clone(),
        };
        let record: ImportRecord = toml::from_str(&text).map_err(|e| bad_record(e.to_string()))?;
        let family: ModelFamily = record.family.parse().map_err(bad_record)?;
        let meta = std::fs::metadata(&path).map_err(|source| LocalError::Io {
            action: "cannot find the imported model's file; import it again",
            source,
            path: path.clone(),
        })?;
        Ok(InstalledModel {
            id: format!("{CUSTOM_PREFIX}{name}"),
            path,
            size_bytes: meta.len(),
            family,
            origin: ModelOrigin::Imported {
                original_file_name: record.original_file_name,
                imported_at: record.imported_at,
            },
        })
    }

    /// The model `id`, ready to load: a downloaded catalogue model or an
    /// imported one. A catalogue model not yet here is
    /// [`LocalError::ModelMissing`] (the caller may download it); anything
    /// else unknown is [`LocalError::UnknownModel`] listing what exists.
    pub fn resolve(&self, id: &str) -> Result<ResolvedModel, LocalError> {
        let id = id.trim();
        if let Some(model) = catalogue::find(id) {
            let path = self.model_path(model);
            if !path.is_file() {
                return Err(LocalError::ModelMissing {
                    model: model.id.to_owned(),
                });
            }
            return Ok(ResolvedModel {
                id: model.id.to_owned(),
                path,
                family: model.family,
                preprocess: model.preprocess,
            });
        }
        if let Some(name) = id.strip_prefix(CUSTOM_PREFIX)
            && valid_name(name).is_ok()
            && self.custom_paths(name).1.is_file()
        {
            let model = self.imported(name)?;
            return Ok(ResolvedModel {
                id: model.id,
                path: model.path,
                family: model.family,
                preprocess: model.family.preprocess(),
            });
        }
        Err(LocalError::UnknownModel {
            model: id.to_owned(),
            hint: self.known_ids_hint(id),
        })
    }

    /// "choose one of …" for an unknown id, pointing at `custom:<id>` when
    /// the user forgot the prefix of an imported model.
    fn known_ids_hint(&self, asked: &str) -> String {
        let imported: Vec<String> = self
            .installed()
            .into_iter()
            .filter(|m| matches!(m.origin, ModelOrigin::Imported { .. }))
            .map(|m| m.id)
            .collect();
        let prefixed = format!("{CUSTOM_PREFIX}{asked}");
        if imported.contains(&prefixed) {
            return format!(
                "did you mean `{prefixed}`? Imported models start with `{CUSTOM_PREFIX}`"
            );
        }
        let mut ids: Vec<String> = catalogue::CATALOGUE
            .iter()
            .map(|m| m.id.to_owned())
            .collect();
        ids.extend(imported);
        format!(
            "choose one of {} (see `cutout models list --all`)",
            ids.join(", ")
        )
    }

    /// Downloads `model` from `base_url` (the rembg release, or the
    /// `CUTOUT_LOCAL_MODELS_URL` override) unless it is already here, and
    /// returns its path. Callers asking for the same model at the same time
    /// share one download: the later ones wait and find the file. Another
    /// process downloading it too is kept apart by the download's lock file.
    pub async fn download(
        &self,
        downloader: &Downloader,
        base_url: &Url,
        model: &CatalogueModel,
        progress: &(dyn Fn(DownloadProgress) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<PathBuf, LocalError> {
        let gate = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            in_flight.entry(model.id.to_owned()).or_default().clone()
        };
        let _turn = tokio::select! {
            turn = gate.lock() => turn,
            () = cancel.cancelled() => return Err(LocalError::Cancelled),
        };
        let dest = self.model_path(model);
        if dest.is_file() {
            return Ok(dest);
        }
        let url = endpoint_url(base_url, model.file_name);
        let request = DownloadRequest {
            url: &url,
            dest: &dest,
            digest: model.checksum.into(),
            offline_hint: MODEL_OFFLINE_HINT,
        };
        downloader.download(&request, progress, cancel).await?;
        Ok(dest)
    }

    /// Copies the ONNX file at `source` into the store as `custom:<name>`,
    /// fed as `family`. The name defaults to the file's name. The user's
    /// file is only read. Refuses a file that is not an ONNX model, and a
    /// name already taken unless `replace` is set. Blocking: copies the file.
    pub fn import(
        &self,
        source: &Path,
        name: Option<&str>,
        family: ModelFamily,
        replace: bool,
    ) -> Result<ResolvedModel, LocalError> {
        let name = match name {
            Some(name) => {
                let name = name.trim();
                let name = name.strip_prefix(CUSTOM_PREFIX).unwrap_or(name);
                valid_name(name).map_err(|reason| LocalError::BadModel {
                    reason: format!("cannot import it as `{name}`: {reason}"),
                    path: source.to_owned(),
                })?;
                name.to_owned()
            }
            None => name_from_file(source),
        };
        check_onnx(source)?;
        let (model_path, record_path) = self.custom_paths(&name);
        if !replace && (model_path.exists() || record_path.exists()) {
            return Err(LocalError::BadModel {
                reason: format!(
                    "a model named `{CUSTOM_PREFIX}{name}` is already imported; choose another \
                     name with --name, or replace it with --replace"
                ),
                path: source.to_owned(),
            });
        }
        let dir = self.custom_dir();
        std::fs::create_dir_all(&dir).map_err(|source| LocalError::Io {
            action: "cannot create the models folder",
            source,
            path: dir.clone(),
        })?;

        let write_error = |source: std::io::Error| LocalError::Io {
            action: "cannot copy the model into Cutout's models folder",
            source,
            path: model_path.clone(),
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".import-")
            .suffix(".onnx.tmp")
            .tempfile_in(&dir)
            .map_err(write_error)?;
        let mut input = std::fs::File::open(source).map_err(|e| read_error(e, source))?;
        std::io::copy(&mut input, temp.as_file_mut()).map_err(write_error)?;
        temp.as_file().sync_all().map_err(write_error)?;

        let record = ImportRecord {
            family: family.as_str().to_owned(),
            original_file_name: source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            imported_at: jiff::Timestamp::now().to_string(),
        };
        let text = toml::to_string(&record).map_err(|e| LocalError::Io {
            action: "cannot write the imported model's record",
            source: std::io::Error::other(e.to_string()),
            path: record_path.clone(),
        })?;
        let record_error = |source: std::io::Error| LocalError::Io {
            action: "cannot write the imported model's record",
            source,
            path: record_path.clone(),
        };
        let mut record_temp = tempfile::Builder::new()
            .prefix(".import-")
            .suffix(".toml.tmp")
            .tempfile_in(&dir)
            .map_err(record_error)?;
        std::io::Write::write_all(record_temp.as_file_mut(), text.as_bytes())
            .map_err(record_error)?;
        record_temp.as_file().sync_all().map_err(record_error)?;

        // The model first, then its record: a model is listed only once its
        // record is there, so a crash between the two leaves nothing half
        // imported on show.
        if replace {
            temp.persist(&model_path)
                .map_err(|e| write_error(e.error))?;
        } else {
            temp.persist_noclobber(&model_path)
                .map_err(|e| write_error(e.error))?;
        }
        record_temp
            .persist(&record_path)
            .map_err(|e| record_error(e.error))?;

        Ok(ResolvedModel {
            id: format!("{CUSTOM_PREFIX}{name}"),
            path: model_path,
            family,
            preprocess: family.preprocess(),
        })
    }

    /// Deletes the model `id` (and any unfinished download of it) and
    /// returns the bytes freed; 0 when a catalogue model was not here.
    pub fn remove(&self, id: &str) -> Result<u64, LocalError> {
        let id = id.trim();
        let files: Vec<PathBuf> = if let Some(model) = catalogue::find(id) {
            let path = self.model_path(model);
            vec![download::part_path(&path), path]
        } else if let Some(name) = id.strip_prefix(CUSTOM_PREFIX)
            && valid_name(name).is_ok()
            && self.custom_paths(name).1.exists()
        {
            let (model, record) = self.custom_paths(name);
            // The record last: until it goes, the model is still listed and
            // can be removed again if this stops halfway.
            vec![model, record]
        } else {
            return Err(LocalError::UnknownModel {
                model: id.to_owned(),
                hint: self.known_ids_hint(id),
            });
        };
        let mut freed = 0;
        for path in files {
            let size = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(LocalError::Io {
                        action: "cannot remove the model",
                        source,
                        path,
                    });
                }
            };
            match std::fs::remove_file(&path) {
                Ok(()) => freed += size,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(LocalError::Io {
                        action: "cannot remove the model (is it in use?)",
                        source,
                        path,
                    });
                }
            }
        }
        Ok(freed)
    }
}

/// Why `name` cannot name an imported model, if it cannot: it becomes a
/// file name on every platform, so only lower-case letters, digits, `-`,
/// `_` and `.`, starting with a letter or digit.
fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("names are at most {MAX_NAME_LEN} characters"));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !starts_well || !name.chars().all(allowed) {
        return Err(
            "use lower-case letters, digits, `-`, `_` and `.`, starting with a letter or digit"
                .to_owned(),
        );
    }
    Ok(())
}

/// A valid name made from a file's name: `My Shoes v2.onnx` → `my-shoes-v2`.
/// Public so the window can fill in the same name the import will use.
pub fn name_from_file(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    let name: String = name
        .trim_matches(|c| c == '-' || c == '.' || c == '_')
        .chars()
        .take(MAX_NAME_LEN)
        .collect();
    if valid_name(&name).is_ok() {
        name
    } else {
        "model".to_owned()
    }
}

fn read_error(source: std::io::Error, path: &Path) -> LocalError {
    LocalError::Io {
        action: "cannot read the model file",
        source,
        path: path.to_owned(),
    }
}

/// Refuses files that are surely not ONNX models, cheaply: an ONNX file is
/// a protobuf `ModelProto` whose first field is `ir_version` (field 1, a
/// varint: tag byte 0x08) holding a small number. A renamed picture, a zip
/// or a PyTorch checkpoint fails this at once instead of deep inside the
/// runtime.
fn check_onnx(path: &Path) -> Result<(), LocalError> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(e, path))?;
    if !meta.is_file() {
        return Err(LocalError::BadModel {
            reason: "this is a folder, not a model file; choose the .onnx file".to_owned(),
            path: path.to_owned(),
        });
    }
    let mut head = [0u8; 2];
    let mut file = std::fs::File::open(path).map_err(|e| read_error(e, path))?;
    let read = file.read(&mut head).map_err(|e| read_error(e, path))?;
    let looks_like_onnx = read == 2 && head[0] == 0x08 && (1..=0x7f).contains(&head[1]);
    if !looks_like_onnx {
        return Err(LocalError::BadModel {
            reason: "this is not an ONNX model file (rembg's models, or an export with \
                     torch.onnx.export, are); choose the .onnx file"
                .to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::local::catalogue::Checksum;
    use crate::local::download::Digest;
    use crate::local::download::tests::{FakeFiles, md5_of, payload, quick_downloader};

    /// The start of an ONNX file as exporters write it (`ir_version` 8),
    /// then some bytes.
    fn onnx_bytes() -> Vec<u8> {
        let mut bytes = vec![0x08, 0x08, 0x12, 0x07];
        bytes.extend_from_slice(b"pytorch and more");
        bytes
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// A catalogue entry for a file the test publishes, so the success path
    /// runs against a fake (the real entries' digests are of real models).
    fn test_model(bytes: &[u8]) -> &'static CatalogueModel {
        let Digest::Md5(hex) = md5_of(bytes) else {
            unreachable!()
        };
        let base = catalogue::find("u2netp").unwrap();
        Box::leak(Box::new(CatalogueModel {
            file_name: "u2netp-test.onnx",
            checksum: Checksum::Md5(Box::leak(hex.into_boxed_str())),
            ..*base
        }))
    }

    #[test]
    fn a_catalogue_model_that_is_not_here_is_missing_and_an_unknown_one_lists_the_choices() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());

        assert!(matches!(
            store.resolve("u2net"),
            Err(LocalError::ModelMissing { model }) if model == "u2net"
        ));
        let error = store.resolve("sam").unwrap_err().to_string();
        assert!(error.contains("unknown local model `sam`"), "{error}");
        assert!(error.contains("isnet-general-use"), "{error}");
        assert!(!store.is_downloaded("u2net"));
    }

    #[test]
    fn a_downloaded_catalogue_model_resolves_with_its_own_preprocessing() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let model = catalogue::find("bria-rmbg").unwrap();
        write(&store.model_path(model), &onnx_bytes());

        let resolved = store.resolve("bria-rmbg").unwrap();

        assert_eq!(resolved.path, data.path().join("models/bria-rmbg.onnx"));
        assert_eq!(resolved.preprocess, model.preprocess);
        assert!(store.is_downloaded("bria-rmbg"));
        let installed = store.installed();
        assert_eq!(installed.len(), 1);
        assert_eq!(installed[0].size_bytes, onnx_bytes().len() as u64);
    }

    #[test]
    fn an_import_copies_the_file_and_leaves_the_original_untouched() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let source = data.path().join("My Shoes v2.onnx");
        write(&source, &onnx_bytes());
        let before = std::fs::metadata(&source).unwrap().modified().unwrap();

        let resolved = store
            .import(&source, None, ModelFamily::Isnet, false)
            .unwrap();

        assert_eq!(resolved.id, "custom:my-shoes-v2");
        assert_eq!(resolved.family, ModelFamily::Isnet);
        assert_eq!(resolved.preprocess, ModelFamily::Isnet.preprocess());
        assert_eq!(std::fs::read(&resolved.path).unwrap(), onnx_bytes());
        assert_eq!(std::fs::read(&source).unwrap(), onnx_bytes());
        assert_eq!(
            std::fs::metadata(&source).unwrap().modified().unwrap(),
            before
        );
        assert_eq!(store.resolve("custom:my-shoes-v2").unwrap(), resolved);
        let installed = store.installed();
        assert_eq!(installed.len(), 1);
        assert!(matches!(
            &installed[0].origin,
            ModelOrigin::Imported { original_file_name, .. } if original_file_name == "My Shoes v2.onnx"
        ));
        let leftovers: Vec<_> = std::fs::read_dir(store.dir().join("custom"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_file_that_is_not_onnx_is_refused() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let picture = data.path().join("shoes.onnx");
        write(&picture, b"\x89PNG\r\n\x1a\n not a model");
        let empty = data.path().join("empty.onnx");
        write(&empty, b"");

        for path in [&picture, &empty] {
            let error = store
                .import(path, Some("shoes"), ModelFamily::U2net, false)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not an ONNX model file"), "{error}");
        }
        assert!(store.installed().is_empty());
    }

    #[test]
    fn a_name_in_use_is_refused_unless_replacing() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let first = data.path().join("a.onnx");
        write(&first, &onnx_bytes());
        let second = data.path().join("b.onnx");
        let mut other = onnx_bytes();
        other.extend_from_slice(b"newer");
        write(&second, &other);
        store
            .import(&first, Some("shoes"), ModelFamily::U2net, false)
            .unwrap();

        let error = store
            .import(&second, Some("shoes"), ModelFamily::Isnet, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("already imported"), "{error}");
        assert!(error.contains("--replace"), "{error}");
        assert_eq!(
            store.resolve("custom:shoes").unwrap().family,
            ModelFamily::U2net
        );

        let replaced = store
            .import(&second, Some("shoes"), ModelFamily::Isnet, true)
            .unwrap();
        assert_eq!(replaced.family, ModelFamily::Isnet);
        assert_eq!(std::fs::read(&replaced.path).unwrap(), other);
    }

    #[test]
    fn names_that_cannot_be_file_names_everywhere_are_refused() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let source = data.path().join("a.onnx");
        write(&source, &onnx_bytes());
        for bad in [
            "",
            "../up",
            "a/b",
            "Shoes",
            ".hidden",
            "con:1",
            &"x".repeat(65),
        ] {
            let outcome = store.import(&source, Some(bad), ModelFamily::U2net, false);
            assert!(
                matches!(outcome, Err(LocalError::BadModel { .. })),
                "{bad:?}"
            );
        }
        assert!(!store.dir().join("up.onnx").exists());
        assert_eq!(name_from_file(Path::new("../Été 2024!.onnx")), "t-2024");
        assert_eq!(name_from_file(Path::new("---.onnx")), "model");
        assert_eq!(
            name_from_file(Path::new("/m/My Model (v2).onnx")),
            "my-model-v2"
        );
        assert_eq!(
            name_from_file(Path::new("isnet_fine.tuned.onnx")),
            "isnet_fine.tuned"
        );
    }

    #[test]
    fn forgetting_the_custom_prefix_gets_a_hint() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let source = data.path().join("a.onnx");
        write(&source, &onnx_bytes());
        store
            .import(&source, Some("shoes"), ModelFamily::U2net, false)
            .unwrap();

        let error = store.resolve("shoes").unwrap_err().to_string();

        assert!(error.contains("did you mean `custom:shoes`"), "{error}");
    }

    #[test]
    fn removing_frees_the_files_and_says_how_much() {
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let model = catalogue::find("u2net").unwrap();
        write(&store.model_path(model), &[0u8; 1000]);
        write(&download::part_path(&store.model_path(model)), &[0u8; 10]);
        let source = data.path().join("a.onnx");
        write(&source, &onnx_bytes());
        store
            .import(&source, Some("shoes"), ModelFamily::U2net, false)
            .unwrap();

        assert_eq!(store.remove("u2net").unwrap(), 1010);
        assert_eq!(store.remove("u2net").unwrap(), 0);
        assert!(store.remove("custom:shoes").unwrap() > onnx_bytes().len() as u64);
        assert!(store.installed().is_empty());
        assert!(source.exists(), "the user's own file stays");
        assert!(matches!(
            store.remove("custom:shoes"),
            Err(LocalError::UnknownModel { .. })
        ));
    }

    #[tokio::test]
    async fn a_download_lands_where_resolve_finds_it() {
        let fake = FakeFiles::start().await;
        let bytes = payload(20_000);
        fake.publish("u2netp-test.onnx", bytes.clone());
        let model = test_model(&bytes);
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());

        let path = store
            .download(
                &quick_downloader(),
                &fake.url,
                model,
                &|_| {},
                &CancellationToken::new(),
            )
            .await
            .unwrap();

        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let resolved = store.resolve("u2netp").unwrap();
        assert_eq!(resolved.path, path);
        assert_eq!(resolved.preprocess, model.preprocess);
    }

    #[tokio::test]
    async fn two_callers_downloading_the_same_model_share_one_download() {
        let fake = FakeFiles::start().await;
        let bytes = payload(200_000);
        fake.publish("u2netp-test.onnx", bytes.clone());
        let model = test_model(&bytes);
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());
        let downloader = quick_downloader();
        let reports = AtomicUsize::new(0);
        let cancel = CancellationToken::new();
        let progress = |_: DownloadProgress| {
            reports.fetch_add(1, Ordering::Relaxed);
        };

        let (first, second) = tokio::join!(
            store.download(&downloader, &fake.url, model, &progress, &cancel),
            store.download(&downloader, &fake.url, model, &progress, &cancel),
        );

        assert_eq!(first.unwrap(), second.unwrap());
        assert_eq!(fake.ranges().len(), 1, "one request for two callers");
        assert!(reports.load(Ordering::Relaxed) > 0);
    }

    #[tokio::test]
    async fn a_damaged_download_leaves_no_model_behind() {
        let fake = FakeFiles::start().await;
        fake.publish("u2netp-test.onnx", payload(5_000));
        let model = test_model(b"the published model");
        let data = tempfile::tempdir().unwrap();
        let store = ModelStore::new(data.path());

        let error = store
            .download(
                &quick_downloader(),
                &fake.url,
                model,
                &|_| {},
                &CancellationToken::new(),
            )
            .await
            .unwrap_err();

        assert!(matches!(
            error,
            LocalError::ChecksumMismatch {
                algorithm: "MD5",
                ..
            }
        ));
        assert!(!store.is_downloaded("u2netp"));
        assert!(!download::part_path(&store.model_path(model)).exists());
    }
}
