//! The window's side of the local engine: the model picker's entries (with
//! sizes, what is already downloaded, and the non-commercial models behind
//! a toggle), the progress bar of a model download a job started, and the
//! Settings window's "Local engine" section (which back-end runs the
//! models and how to get the faster one, the models on disk with Remove…,
//! and "Import model file…" for machines without internet).
//!
//! Nothing here touches the disk or the network on the UI thread: the
//! models folder is listed on a worker thread at start and again whenever
//! a download, import or removal finishes; imports, removals, the back-end
//! check and the ONNX Runtime installation run on workers too, and every
//! answer comes back through one channel and wakes the window.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egui::RichText;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{Lookup, parse_base_url};
use crate::local::LocalError;
use crate::local::backend::{BackendDescription, BackendKind, BackendPreference};
use crate::local::catalogue::{self, CatalogueModel, ModelFamily};
use crate::local::download::{DownloadProgress, DownloadStage, Downloader, human_bytes};
use crate::local::engine::{ENGINE_VAR, EngineStatus, LocalEngine};
use crate::local::install::{self, RuntimeRelease};
use crate::local::models::{CUSTOM_PREFIX, InstalledModel, ModelOrigin, ModelStore};
use crate::local::runtime::RuntimeStatus;
use crate::paths::AppDirs;
use crate::providers::local::DownloadBoard;
use crate::providers::{ProviderId, RetryPolicy};
use crate::ui::intake::DIALOG_UNAVAILABLE_WITHIN;
use crate::ui::sentence_case;
use crate::ui::setup::Waker;

/// How often to redraw while something downloads, so its bar moves; only
/// while a download runs.
const TICK_WHILE_DOWNLOADING: Duration = Duration::from_millis(100);

/// What to say when no file dialog can be shown for an import.
const NO_FILE_DIALOG: &str = "No file dialog is available on this desktop (the XDG desktop \
                              portal is not running). Type the model file's path into the \
                              Model file field instead.";

/// What the workers answer.
enum Reply {
    /// The models folder as it is now.
    Listed(Vec<InstalledModel>),
    /// The import file dialog closed, after being open this long.
    Picked {
        path: Option<PathBuf>,
        open_for: Duration,
    },
    /// An import finished: the new model's id, or why it failed.
    Imported(Result<String, String>),
    /// A removal finished: the bytes freed, or why it failed.
    Removed {
        id: String,
        result: Result<u64, String>,
    },
    /// The ONNX Runtime download moved on.
    InstallProgress(DownloadProgress),
    /// The ONNX Runtime installation ended.
    Installed(InstallEnd),
    /// Where the engine stands: which back-end, on what.
    Status(EngineStatus),
    /// A model download asked for from the window ended.
    Fetched {
        id: &'static str,
        result: Result<(), LocalError>,
    },
}

/// How an ONNX Runtime installation ended.
enum InstallEnd {
    /// Installed; the library's version.
    Done(String),
    /// The user pressed Cancel; what was downloaded is kept.
    Cancelled,
    /// Why it failed.
    Failed(String),
}

/// A line of news in the Settings section, good or needing attention.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    text: String,
    good: bool,
}

impl Outcome {
    fn good(text: String) -> Outcome {
        Outcome { text, good: true }
    }

    fn problem(text: String) -> Outcome {
        Outcome { text, good: false }
    }
}

/// What the user is filling in to import a model file.
struct ImportDraft {
    /// The file's path, chosen in the dialog or typed.
    path: String,
    family: ModelFamily,
    /// The name it gets (`custom:<name>`); empty takes the file's name.
    name: String,
    /// Whether an imported model of the same name is replaced.
    replace: bool,
}

impl Default for ImportDraft {
    fn default() -> Self {
        ImportDraft {
            path: String::new(),
            family: ModelFamily::Isnet,
            name: String::new(),
            replace: false,
        }
    }
}

/// The ONNX Runtime installation while it runs.
struct Installing {
    progress: Option<DownloadProgress>,
    cancel: CancellationToken,
}

/// Everything the window shows about the local engine. Owned by the app
/// and lent to the form (the model picker) and the Settings window (the
/// "Local engine" section), so both show the same listing of the models
/// folder.
pub struct LocalPanel {
    /// The models folder, or why Cutout has none.
    store: Result<ModelStore, String>,
    /// Cutout's data folder, where the runtime is installed.
    data_dir: Option<PathBuf>,
    /// Where the ONNX Runtime build is downloaded from, or why the
    /// `CUTOUT_RUNTIME_URL` override is unusable.
    runtime_url: Result<Url, String>,
    /// Where catalogue models are downloaded from (the local provider's
    /// `models_url`), or why its override is unusable.
    models_url: Result<Url, String>,
    /// The model the window is downloading (not one a job started), and
    /// how to stop it.
    fetching: Option<(&'static str, CancellationToken)>,
    /// How the last such download ended.
    fetch_outcome: Option<Outcome>,
    retry: RetryPolicy,
    tokio: tokio::runtime::Handle,
    wake: Waker,
    sender: mpsc::Sender<Reply>,
    replies: mpsc::Receiver<Reply>,
    /// The models on disk as last listed; `None` until the first listing.
    installed: Option<Vec<InstalledModel>>,
    /// Whether a listing is running.
    listing: bool,
    /// Whether another listing was asked for while one ran.
    list_again: bool,
    /// The model downloads running at the last frame, to notice one end.
    downloads: Vec<(String, DownloadProgress)>,
    /// Whether the model picker lists models whose licence forbids
    /// commercial use.
    show_non_commercial: bool,
    import: ImportDraft,
    /// Whether the import file dialog is open.
    picking: bool,
    /// Whether the last file dialog could not be shown.
    no_dialog: bool,
    importing: bool,
    import_outcome: Option<Outcome>,
    /// The model whose Remove… waits for an answer.
    confirm_remove: Option<InstalledModel>,
    /// The model being removed.
    removing: Option<String>,
    models_outcome: Option<Outcome>,
    installing: Option<Installing>,
    install_outcome: Option<Outcome>,
    /// The version just installed, until the engine has looked for it.
    installed_version: Option<String>,
    /// Where the engine stood when last asked; `None` until it answers.
    status: Option<EngineStatus>,
    /// Whether the engine is being asked.
    asking_status: bool,
    /// The frame the Settings section was last drawn in, to ask the engine
    /// again each time the window opens.
    section_pass: u64,
}

impl LocalPanel {
    /// Finds the models folder under the data folder `lookup` names
    /// (`CUTOUT_DATA_DIR`, else the platform's) and starts listing it.
    /// Installations run on `tokio`; `wake` repaints the window when a
    /// worker answers.
    pub fn new(
        lookup: Lookup<'_>,
        retry: RetryPolicy,
        tokio: tokio::runtime::Handle,
        wake: Waker,
    ) -> LocalPanel {
        let data_dir = AppDirs::resolve(lookup).map(|dirs| dirs.data_dir().to_owned());
        let runtime_url = match lookup(install::RUNTIME_URL_VAR) {
            Some(text) => parse_base_url(&text).map_err(|why| {
                format!(
                    "{} is not a usable address: {why}",
                    install::RUNTIME_URL_VAR
                )
            }),
            None => Url::parse(install::DEFAULT_RUNTIME_URL).map_err(|e| e.to_string()),
        };
        let models_url = crate::config::endpoints(ProviderId::Local, lookup)
            .map_err(|e| e.to_string())
            .and_then(|endpoints| {
                endpoints
                    .get(crate::providers::local::MODELS_URL_ENDPOINT)
                    .cloned()
                    .ok_or_else(|| "the local provider has no models address".to_owned())
            });
        let (sender, replies) = mpsc::channel();
        let mut panel = LocalPanel {
            models_url,
            fetching: None,
            fetch_outcome: None,
            store: data_dir
                .as_ref()
                .map(|dir| ModelStore::new(dir))
                .map_err(|e| e.to_string()),
            data_dir: data_dir.ok(),
            runtime_url,
            retry,
            tokio,
            wake,
            sender,
            replies,
            installed: None,
            listing: false,
            list_again: false,
            downloads: Vec::new(),
            show_non_commercial: false,
            import: ImportDraft::default(),
            picking: false,
            no_dialog: false,
            importing: false,
            import_outcome: None,
            confirm_remove: None,
            removing: None,
            models_outcome: None,
            installing: None,
            install_outcome: None,
            installed_version: None,
            status: None,
            asking_status: false,
            section_pass: 0,
        };
        panel.list_models();
        panel.refresh_status(false);
        panel
    }

    /// Applies what the workers answered and follows the model downloads
    /// jobs run; keeps the window redrawing while something downloads.
    /// Called every frame; never blocks.
    pub fn receive(&mut self, ctx: &egui::Context) {
        while let Ok(reply) = self.replies.try_recv() {
            self.apply(reply);
        }
        let downloads = DownloadBoard::global().active();
        let ended = self
            .downloads
            .iter()
            .any(|(id, _)| !downloads.iter().any(|(now, _)| now == id));
        self.downloads = downloads;
        if ended {
            self.list_models();
            self.refresh_status(false);
        }
        if !self.downloads.is_empty() || self.installing.is_some() {
            ctx.request_repaint_after(TICK_WHILE_DOWNLOADING);
        }
    }

    fn apply(&mut self, reply: Reply) {
        match reply {
            Reply::Listed(models) => {
                self.installed = Some(models);
                self.listing = false;
                if std::mem::take(&mut self.list_again) {
                    self.list_models();
                }
            }
            Reply::Picked { path, open_for } => {
                self.picking = false;
                match path {
                    Some(path) => {
                        if self.import.name.trim().is_empty() {
                            self.import.name = crate::local::models::name_from_file(&path);
                        }
                        self.import.path = path.display().to_string();
                        self.import_outcome = None;
                    }
                    None => self.no_dialog = open_for < DIALOG_UNAVAILABLE_WITHIN,
                }
            }
            Reply::Imported(result) => {
                self.importing = false;
                self.import_outcome = Some(match result {
                    Ok(id) => {
                        self.import = ImportDraft::default();
                        Outcome::good(format!(
                            "Imported as {id}: pick it under Model when Local is the provider."
                        ))
                    }
                    Err(why) => Outcome::problem(format!("Not imported: {why}")),
                });
                self.list_models();
            }
            Reply::Removed { id, result } => {
                self.removing = None;
                self.models_outcome = Some(match result {
                    Ok(freed) => {
                        Outcome::good(format!("Removed {id}; {} freed.", human_bytes(freed)))
                    }
                    Err(why) => Outcome::problem(format!("{id} was not removed: {why}")),
                });
                self.list_models();
            }
            Reply::InstallProgress(progress) => {
                if let Some(installing) = &mut self.installing {
                    installing.progress = Some(progress);
                }
            }
            Reply::Installed(end) => {
                self.installing = None;
                match end {
                    InstallEnd::Done(version) => {
                        self.installed_version = Some(version);
                        self.refresh_status(true);
                    }
                    InstallEnd::Cancelled => {
                        self.install_outcome = Some(Outcome::problem(
                            "Cancelled. Install again to carry on from what was already \
                             downloaded."
                                .to_owned(),
                        ));
                    }
                    InstallEnd::Failed(why) => {
                        self.install_outcome = Some(Outcome::problem(format!(
                            "ONNX Runtime was not installed: {why}"
                        )));
                    }
                }
            }
            Reply::Fetched { id, result } => {
                self.fetching = None;
                self.fetch_outcome = match result {
                    Ok(()) => None,
                    Err(LocalError::Cancelled) => Some(Outcome::problem(
                        "Download stopped. Start it again to carry on where it stopped.".to_owned(),
                    )),
                    Err(why) => Some(Outcome::problem(format!("{id} was not downloaded: {why}"))),
                };
                self.list_models();
            }
            Reply::Status(status) => {
                self.asking_status = false;
                if let Some(version) = self.installed_version.take() {
                    self.install_outcome = Some(installed_outcome(&version, &status.runtime));
                }
                self.status = Some(status);
            }
        }
    }

    /// Asks the engine where it stands, on a worker thread: the first time,
    /// that looks for and loads the ONNX Runtime library. `look_again`
    /// looks for the library again first (after installing it), so the
    /// next picture uses it without a restart.
    pub fn refresh_status(&mut self, look_again: bool) {
        if self.asking_status && !look_again {
            return;
        }
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("cutout-engine-status".to_owned())
            .spawn(move || {
                let engine = LocalEngine::shared();
                if look_again {
                    engine.retry_runtime();
                }
                let _ = sender.send(Reply::Status(engine.status()));
                wake();
            });
        self.asking_status = spawned.is_ok();
    }

    /// Lists the models folder on a worker thread; a listing asked for
    /// while one runs follows it, so the last change is always seen.
    fn list_models(&mut self) {
        let Ok(store) = &self.store else { return };
        if self.listing {
            self.list_again = true;
            return;
        }
        let store = store.clone();
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("cutout-models-list".to_owned())
            .spawn(move || {
                let _ = sender.send(Reply::Listed(store.installed()));
                wake();
            });
        self.listing = spawned.is_ok();
    }

    /// The model `id` on disk, once the folder has been listed.
    fn on_disk(&self, id: &str) -> Option<&InstalledModel> {
        self.installed.as_ref()?.iter().find(|m| m.id == id)
    }

    /// The local provider's model picker: every catalogue model offered
    /// (and, behind a toggle, the non-commercial ones, flagged), then the
    /// imported ones, each with its size and a ✔ once downloaded; under it,
    /// what the chosen model is good for and whether it downloads first.
    pub fn model_picker_ui(&mut self, ui: &mut egui::Ui, model: &mut String, label: egui::Id) {
        egui::ComboBox::from_id_salt("local model")
            .width(ui.available_width())
            .selected_text(model.as_str())
            .show_ui(ui, |ui| {
                for entry in catalogue::CATALOGUE {
                    if entry.non_commercial && !self.show_non_commercial && *model != entry.id {
                        continue;
                    }
                    let label = catalogue_entry_text(entry, self.listed_size(entry.id));
                    ui.selectable_value(model, entry.id.to_owned(), label)
                        .on_hover_text(format!("{}\nLicence: {}", entry.good_for, entry.licence));
                }
                for imported in self.imported() {
                    let label = format!(
                        "✔ {} — {}, imported",
                        imported.id,
                        human_bytes(imported.size_bytes)
                    );
                    ui.selectable_value(model, imported.id.clone(), label)
                        .on_hover_text(imported_help(imported));
                }
            })
            .response
            .labelled_by(label);
        ui.checkbox(&mut self.show_non_commercial, "Show non-commercial models")
            .on_hover_text(
                "Also list models whose licence forbids commercial use, such as product photos \
                 for a shop",
            );
        self.chosen_model_ui(ui, model);
        self.engine_note_ui(ui, model);
    }

    /// One line under the model: the engine it runs on, and when that is
    /// the slower built-in one, where to get the faster.
    fn engine_note_ui(&self, ui: &mut egui::Ui, model: &str) {
        let Some(status) = &self.status else { return };
        let (text, good) = engine_note(status, model);
        let text = RichText::new(text).small();
        let label = if good {
            ui.label(text.weak())
        } else {
            ui.colored_label(ui.visuals().warn_fg_color, text)
        };
        label.on_hover_text(sentence_case(&status.runtime_text));
    }

    /// The line under the picker: what the model is good for, and whether
    /// it is here or downloads when Start is pressed.
    fn chosen_model_ui(&self, ui: &mut egui::Ui, model: &str) {
        let weak = |text: String| RichText::new(text).small().weak();
        if let Some(entry) = catalogue::find(model) {
            ui.label(weak(entry.good_for.to_owned()));
            if entry.non_commercial {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    RichText::new(format!("Non-commercial use only ({})", entry.licence)).small(),
                );
            }
            match (&self.installed, self.on_disk(model)) {
                (_, Some(here)) => {
                    ui.label(weak(format!(
                        "✔ On this computer ({})",
                        human_bytes(here.size_bytes)
                    )));
                }
                (Some(_), None) => {
                    ui.label(weak(format!(
                        "Downloads once when you press Start (about {})",
                        approx_size(entry)
                    )));
                }
                (None, None) => {}
            }
        } else if let Some(imported) = self.on_disk(model) {
            ui.label(weak(imported_help(imported)));
        } else if self.installed.is_some() && model.starts_with(CUSTOM_PREFIX) {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                RichText::new(format!(
                    "{model} is not on this computer any more: import it again in Settings, or \
                     pick another model"
                ))
                .small(),
            );
        }
    }

    /// The size to show for catalogue model `id`: on disk when it is here.
    fn listed_size(&self, id: &str) -> Option<u64> {
        self.on_disk(id).map(|m| m.size_bytes)
    }

    fn imported(&self) -> impl Iterator<Item = &InstalledModel> {
        self.installed
            .iter()
            .flatten()
            .filter(|m| matches!(m.origin, ModelOrigin::Imported { .. }))
    }

    /// Downloads the catalogue model `id` now, on the tokio runtime, so a
    /// first batch does not start with a wait; its progress shows like a
    /// job's download, and a job needing it meanwhile waits for it.
    pub fn download_model(&mut self, id: &'static str) {
        if self.fetching.is_some() {
            return;
        }
        let (Some(data_dir), Some(model)) = (self.data_dir.clone(), catalogue::find(id)) else {
            self.fetch_outcome = Some(Outcome::problem(match &self.store {
                Err(why) => format!("Models cannot be kept on this machine: {why}"),
                Ok(_) => format!("{id} is not a model Cutout knows"),
            }));
            return;
        };
        let url = match &self.models_url {
            Ok(url) => url.clone(),
            Err(why) => {
                self.fetch_outcome = Some(Outcome::problem(why.clone()));
                return;
            }
        };
        let downloader = Downloader::new(self.retry.clone());
        let cancel = CancellationToken::new();
        self.fetching = Some((model.id, cancel.clone()));
        self.fetch_outcome = None;
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        self.tokio.spawn(async move {
            let result = crate::providers::local::download_model(
                &data_dir,
                &url,
                &downloader,
                model,
                &cancel,
            )
            .await
            .map(drop);
            let _ = sender.send(Reply::Fetched {
                id: model.id,
                result,
            });
            wake();
        });
    }

    /// The model `id`'s download as a button, a progress bar with Stop, or
    /// "ready": for the welcome, where a new user can fetch the default
    /// model before the first batch.
    pub fn model_download_ui(&mut self, ui: &mut egui::Ui, id: &'static str) {
        let size = catalogue::find(id).map(approx_size).unwrap_or_default();
        if let Some(model) = self.on_disk(id) {
            ui.colored_label(
                crate::ui::success_color(ui.visuals()),
                format!(
                    "✔ The model is on this computer ({}).",
                    human_bytes(model.size_bytes)
                ),
            );
            return;
        }
        let running = self.downloads.iter().find(|(running, _)| running == id);
        match (running, &self.fetching) {
            (Some((_, progress)), fetching) => {
                download_ui(ui, &format!("model {id}"), progress);
                if let Some((_, cancel)) = fetching
                    && ui.button("Stop download").clicked()
                {
                    cancel.cancel();
                }
            }
            (None, Some(_)) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Starting the download…");
                });
            }
            (None, None) => {
                if ui
                    .button(format!("⬇ Download the model now ({size})"))
                    .on_hover_text(format!("{id}, from the rembg project's releases on GitHub"))
                    .clicked()
                {
                    self.download_model(id);
                }
            }
        }
        if let Some(outcome) = &self.fetch_outcome {
            outcome_ui(ui, outcome);
        }
    }

    /// The engine's last answer and the models on disk (id, bytes), for
    /// "Copy diagnostics".
    pub fn diagnostics(&self) -> (Option<EngineStatus>, Vec<(String, u64)>) {
        let models = self
            .installed
            .iter()
            .flatten()
            .map(|m| (m.id.clone(), m.size_bytes))
            .collect();
        (self.status.clone(), models)
    }

    /// One progress bar per model download running, for the main window
    /// beside Start: jobs waiting for the model show as processing, and
    /// this says why they take a while.
    pub fn downloads_ui(&self, ui: &mut egui::Ui) {
        for (id, progress) in &self.downloads {
            download_ui(ui, &format!("model {id}"), progress);
        }
    }

    /// The Settings window's "Local engine" section.
    pub fn settings_section_ui(&mut self, ui: &mut egui::Ui) {
        let pass = ui.ctx().cumulative_pass_nr();
        if pass > self.section_pass + 1 {
            // The window has just opened: the engine may have loaded models
            // or found the runtime since.
            self.refresh_status(false);
        }
        self.section_pass = pass;
        ui.label(RichText::new("Local engine").heading());
        ui.label(
            RichText::new(
                "Runs a background-removal model on this computer: free, private, and offline \
                 once the model is here.",
            )
            .weak(),
        );
        self.backend_ui(ui);
        ui.add_space(6.0);
        self.models_ui(ui);
        ui.add_space(6.0);
        self.import_ui(ui);
        self.confirm_remove_ui(ui.ctx());
    }

    /// Which back-end runs the models, and the button that installs the
    /// faster one.
    fn backend_ui(&mut self, ui: &mut egui::Ui) {
        let Some(status) = &self.status else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("Looking for ONNX Runtime…").weak());
            });
            return;
        };
        // The engine is the process's; of its models, those in this
        // models folder are the ones the window runs.
        let sessions: Vec<&(String, BackendDescription)> = status
            .sessions
            .iter()
            .filter(|(id, _)| self.on_disk(id).is_some())
            .collect();
        let engine = engine_line(status, &sessions);
        outcome_ui(ui, &engine).on_hover_text(sentence_case(&status.runtime_text));
        for (id, description) in sessions {
            let mut line = format!(
                "{id}: {}",
                where_it_runs(&description.execution_provider, description.threads)
            );
            if let Some(note) = &description.gpu_note {
                line.push_str(&format!(" — {note}"));
            }
            ui.label(RichText::new(line).small().weak());
        }
        let offer_install =
            !status.runtime.is_loaded() && status.preference != BackendPreference::Tract;
        if !offer_install && self.installing.is_none() {
            if let Some(outcome) = &self.install_outcome {
                outcome_ui(ui, outcome);
            }
            return;
        }
        if let Some(installing) = &self.installing {
            let progress = installing.progress.unwrap_or(DownloadProgress {
                stage: DownloadStage::Downloading,
                done_bytes: 0,
                total_bytes: None,
            });
            download_ui(ui, "ONNX Runtime", &progress);
            if ui.button("Cancel").clicked() {
                installing.cancel.cancel();
            }
        } else {
            let enabled = self.data_dir.is_some() && self.runtime_url.is_ok();
            let button = ui
                .add_enabled(enabled, egui::Button::new("Install ONNX Runtime"))
                .on_hover_text(format!(
                    "Download Microsoft's official ONNX Runtime {} (about 20 MB) into Cutout's \
                     data folder; models then run several times faster",
                    install::ORT_VERSION
                ));
            if let Err(why) = &self.runtime_url {
                outcome_ui(ui, &Outcome::problem(why.clone()));
            }
            if button.clicked() {
                self.install_runtime();
            }
        }
        if let Some(outcome) = &self.install_outcome {
            outcome_ui(ui, outcome);
        }
    }

    /// Starts the ONNX Runtime installation on the engine's runtime.
    fn install_runtime(&mut self) {
        let (Some(data_dir), Ok(base_url)) = (self.data_dir.clone(), self.runtime_url.clone())
        else {
            return;
        };
        let prepared = RuntimeRelease::official(&base_url)
            .map(|release| (release, Downloader::new(self.retry.clone())));
        let (release, downloader) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                self.install_outcome = Some(Outcome::problem(sentence_case(&e.to_string())));
                return;
            }
        };
        let cancel = CancellationToken::new();
        self.installing = Some(Installing {
            progress: None,
            cancel: cancel.clone(),
        });
        self.install_outcome = None;
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        self.tokio.spawn(async move {
            let progress = {
                let sender = sender.clone();
                move |progress: DownloadProgress| {
                    let _ = sender.send(Reply::InstallProgress(progress));
                }
            };
            let result =
                install::install(&downloader, &release, &data_dir, &progress, &cancel).await;
            let end = match result {
                Ok(installed) => InstallEnd::Done(installed.version),
                Err(LocalError::Cancelled) => InstallEnd::Cancelled,
                Err(e) => InstallEnd::Failed(e.to_string()),
            };
            let _ = sender.send(Reply::Installed(end));
            wake();
        });
    }

    /// The models on disk, each with its size and Remove….
    fn models_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(RichText::new("Models on this computer").strong());
        let store = match &self.store {
            Ok(store) => store,
            Err(why) => {
                outcome_ui(
                    ui,
                    &Outcome::problem(format!("Cutout has no folder to keep models in: {why}")),
                );
                return;
            }
        };
        ui.label(
            RichText::new(format!("In {}", store.dir().display()))
                .small()
                .weak(),
        );
        match &self.installed {
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(RichText::new("Looking at the models folder…").weak());
                });
            }
            Some(models) if models.is_empty() && self.downloads.is_empty() => {
                ui.label(
                    RichText::new(
                        "None yet: the model you pick downloads the first time you press Start.",
                    )
                    .weak(),
                );
            }
            Some(models) => {
                let mut remove = None;
                egui::Grid::new("local models")
                    .num_columns(3)
                    .spacing([16.0, 6.0])
                    .show(ui, |ui| {
                        for model in models {
                            ui.label(&model.id).on_hover_text(installed_help(model));
                            ui.label(human_bytes(model.size_bytes));
                            let busy = self.removing.as_deref() == Some(model.id.as_str());
                            let button = ui
                                .add_enabled(
                                    self.removing.is_none(),
                                    egui::Button::new(if busy {
                                        "Removing…"
                                    } else {
                                        "Remove…"
                                    }),
                                )
                                .on_hover_text(format!("Delete {} from this computer", model.id));
                            if button.clicked() {
                                remove = Some(model.clone());
                            }
                            ui.end_row();
                        }
                        for (id, progress) in &self.downloads {
                            ui.label(id);
                            ui.label(RichText::new(download_state(progress)).weak());
                            ui.label("");
                            ui.end_row();
                        }
                    });
                if remove.is_some() {
                    self.confirm_remove = remove;
                }
            }
        }
        if let Some(outcome) = &self.models_outcome {
            outcome_ui(ui, outcome);
        }
    }

    /// Asks before deleting a model, saying what it frees and how to get
    /// it back.
    fn confirm_remove_ui(&mut self, ctx: &egui::Context) {
        let Some(model) = &self.confirm_remove else {
            return;
        };
        let mut choice = None;
        let modal = egui::Modal::new(egui::Id::unique("remove local model")).show(ctx, |ui| {
            ui.set_width(380.0);
            ui.heading("Remove model?");
            ui.add_space(4.0);
            ui.label(format!(
                "Remove {} and free {}?",
                model.id,
                human_bytes(model.size_bytes)
            ));
            let back = match model.origin {
                ModelOrigin::Catalogue(_) => "It downloads again the next time a job uses it.",
                ModelOrigin::Imported { .. } => {
                    "Your original file is kept; import it again to use this model."
                }
            };
            ui.label(RichText::new(back).weak());
            ui.add_space(12.0);
            if let Some(answer) = crate::ui::confirm_buttons_ui(ui, "Remove") {
                choice = Some(answer);
            }
        });
        if choice.is_none() && modal.should_close() {
            choice = Some(false);
        }
        let Some(remove) = choice else { return };
        let Some(model) = self.confirm_remove.take() else {
            return;
        };
        if remove {
            self.remove(model);
        }
    }

    /// Deletes `model` on a worker thread, and lets go of it in the
    /// engine so its memory is freed too.
    fn remove(&mut self, model: InstalledModel) {
        let Ok(store) = &self.store else { return };
        let store = store.clone();
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        self.models_outcome = None;
        let id = model.id.clone();
        let worker_id = model.id;
        let path = model.path;
        let spawned = std::thread::Builder::new()
            .name("cutout-models-remove".to_owned())
            .spawn(move || {
                LocalEngine::shared().forget(&path);
                let result = store.remove(&worker_id).map_err(|e| e.to_string());
                let _ = sender.send(Reply::Removed {
                    id: worker_id,
                    result,
                });
                wake();
            });
        match spawned {
            Ok(_) => self.removing = Some(id),
            Err(e) => {
                self.models_outcome = Some(Outcome::problem(format!(
                    "{id} was not removed: Cutout could not start a thread ({e})"
                )));
            }
        }
    }

    /// "Import model file…": a file (from the dialog, or typed where there
    /// is no dialog), its family, and the name it gets.
    fn import_ui(&mut self, ui: &mut egui::Ui) {
        egui::CollapsingHeader::new(RichText::new("Import model file…").strong())
            .id_salt("import model file")
            .default_open(false)
            .show(ui, |ui| self.import_form_ui(ui));
    }

    fn import_form_ui(&mut self, ui: &mut egui::Ui) {
        ui.label(
            RichText::new(
                "For computers without internet, or a model of your own: Cutout copies an \
                 .onnx file into its models folder. Your file is only read.",
            )
            .weak(),
        );
        let enabled = self.store.is_ok() && !self.importing;
        ui.add_enabled_ui(enabled, |ui| {
            egui::Grid::new("import model")
                .num_columns(2)
                .spacing([8.0, 6.0])
                .show(ui, |ui| {
                    let label = ui.label("Model file");
                    ui.horizontal(|ui| {
                        let choose = ui.add_enabled(!self.picking, egui::Button::new("Choose…"));
                        if choose.clicked() {
                            self.pick_file(ui.ctx().clone());
                        }
                        ui.add(
                            egui::TextEdit::singleline(&mut self.import.path)
                                .hint_text("/path/to/model.onnx")
                                .desired_width(f32::INFINITY),
                        )
                        .labelled_by(label.id);
                    });
                    ui.end_row();

                    let label = ui.label("Family");
                    ui.vertical(|ui| {
                        egui::ComboBox::from_id_salt("import family")
                            .selected_text(self.import.family.display_name())
                            .show_ui(ui, |ui| {
                                for family in ModelFamily::ALL {
                                    ui.selectable_value(
                                        &mut self.import.family,
                                        family,
                                        family.display_name(),
                                    )
                                    .on_hover_text(family_help(family));
                                }
                            })
                            .response
                            .labelled_by(label.id);
                        ui.label(
                            RichText::new(family_help(self.import.family))
                                .small()
                                .weak(),
                        );
                    });
                    ui.end_row();

                    let label = ui.label("Name");
                    ui.vertical(|ui| {
                        ui.add(
                            egui::TextEdit::singleline(&mut self.import.name)
                                .hint_text("taken from the file's name")
                                .desired_width(f32::INFINITY),
                        )
                        .labelled_by(label.id);
                        let name = self.import.name.trim();
                        let shown = if name.is_empty() { "<name>" } else { name };
                        ui.label(
                            RichText::new(format!(
                                "Listed as {CUSTOM_PREFIX}{}; lower-case letters, digits, - _ .",
                                shown.strip_prefix(CUSTOM_PREFIX).unwrap_or(shown)
                            ))
                            .small()
                            .weak(),
                        );
                    });
                    ui.end_row();
                });
            ui.checkbox(
                &mut self.import.replace,
                "Replace an imported model of the same name",
            );
            ui.horizontal(|ui| {
                let ready = !self.import.path.trim().is_empty();
                let button = ui
                    .add_enabled(ready, egui::Button::new("Import"))
                    .on_disabled_hover_text("Choose or type the model file first");
                if button.clicked() {
                    self.start_import();
                }
                if self.importing {
                    ui.spinner();
                    ui.label("Copying the model…");
                }
            });
        });
        if self.no_dialog {
            outcome_ui(ui, &Outcome::problem(NO_FILE_DIALOG.to_owned()));
        }
        if let Some(outcome) = &self.import_outcome {
            outcome_ui(ui, outcome);
        }
    }

    /// Runs the file dialog on its own thread, so the window keeps drawing.
    fn pick_file(&mut self, ctx: egui::Context) {
        let sender = self.sender.clone();
        let start = Path::new(self.import.path.trim())
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(Path::to_owned);
        let spawned = std::thread::Builder::new()
            .name("cutout-model-dialog".to_owned())
            .spawn(move || {
                let opened = Instant::now();
                let mut dialog = rfd::FileDialog::new()
                    .set_title("Choose an ONNX model file")
                    .add_filter("ONNX models", &["onnx"]);
                if let Some(start) = start {
                    dialog = dialog.set_directory(start);
                }
                let path = dialog.pick_file();
                let _ = sender.send(Reply::Picked {
                    path,
                    open_for: opened.elapsed(),
                });
                ctx.request_repaint();
            });
        self.picking = spawned.is_ok();
        self.no_dialog = spawned.is_err();
    }

    /// Copies the chosen file into the models folder on a worker thread.
    fn start_import(&mut self) {
        let Ok(store) = &self.store else { return };
        let store = store.clone();
        let source = PathBuf::from(self.import.path.trim());
        let name = Some(self.import.name.trim().to_owned()).filter(|n| !n.is_empty());
        let family = self.import.family;
        let replace = self.import.replace;
        let sender = self.sender.clone();
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name("cutout-models-import".to_owned())
            .spawn(move || {
                let result = store
                    .import(&source, name.as_deref(), family, replace)
                    .map(|model| model.id)
                    .map_err(|e| import_error_text(&e.to_string()));
                let _ = sender.send(Reply::Imported(result));
                wake();
            });
        match spawned {
            Ok(_) => {
                self.importing = true;
                self.import_outcome = None;
                self.no_dialog = false;
            }
            Err(e) => {
                self.import_outcome = Some(Outcome::problem(format!(
                    "Not imported: Cutout could not start a thread ({e})"
                )));
            }
        }
    }
}

/// A download's progress: what is downloading on a line of its own (the
/// side panel is narrow), then a bar saying how far it is: "Downloading
/// model isnet-general-use", "45% (80 of 179 MB)".
fn download_ui(ui: &mut egui::Ui, what: &str, progress: &DownloadProgress) {
    let (title, amount) = download_words(what, progress);
    ui.add(egui::Label::new(RichText::new(title).small()).wrap());
    let bar = match (progress.stage, progress.total_bytes) {
        (DownloadStage::Downloading, Some(total)) if total > 0 => {
            egui::ProgressBar::new((progress.done_bytes as f32 / total as f32).clamp(0.0, 1.0))
        }
        _ => egui::ProgressBar::new(0.0).animate(true),
    };
    ui.add(bar.text(amount.unwrap_or_default()));
}

/// What a download is doing, and how far it is when that is known.
fn download_words(what: &str, progress: &DownloadProgress) -> (String, Option<String>) {
    match progress.stage {
        DownloadStage::WaitingForOtherDownload => (
            format!("Waiting for another Cutout that is downloading {what}…"),
            None,
        ),
        DownloadStage::Verifying => (format!("Checking the downloaded {what}…"), None),
        DownloadStage::Downloading => {
            let amount = match progress.total_bytes {
                Some(total) if total > 0 => {
                    let percent = (progress.done_bytes.min(total) * 100) / total;
                    format!("{percent}% ({})", bytes_of(progress.done_bytes, total))
                }
                _ => human_bytes(progress.done_bytes),
            };
            (format!("Downloading {what}"), Some(amount))
        }
    }
}

/// A download in the models list: "downloading, 45% (80 of 179 MB)".
fn download_state(progress: &DownloadProgress) -> String {
    match download_words("", progress) {
        (_, Some(amount)) => format!("downloading, {amount}"),
        _ if progress.stage == DownloadStage::Verifying => "checking the download…".to_owned(),
        _ => "another Cutout is downloading it…".to_owned(),
    }
}

/// A download's progress in one line: "Downloading model
/// isnet-general-use — 45% (80 of 179 MB)".
#[cfg(test)]
fn download_text(what: &str, progress: &DownloadProgress) -> String {
    match download_words(what, progress) {
        (title, Some(amount)) => format!("{title} — {amount}"),
        (title, None) => title,
    }
}

/// "80 of 179 MB", or "1.2 of 4.6 MB" for small files.
fn bytes_of(done: u64, total: u64) -> String {
    let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
    if total >= 10_000_000 {
        format!("{:.0} of {:.0} MB", mb(done), mb(total))
    } else {
        format!("{:.1} of {:.1} MB", mb(done), mb(total))
    }
}

/// A catalogue model's size before it is downloaded: "179 MB".
fn approx_size(model: &CatalogueModel) -> String {
    format!("{:.0} MB", model.approx_bytes as f64 / 1_000_000.0)
}

/// A catalogue model's entry in the picker: "✔ isnet-general-use — 179.2
/// MB" once here, else "isnet-general-use — 179 MB, downloads on first
/// use"; non-commercial ones say so. `on_disk` is its size when here.
fn catalogue_entry_text(model: &CatalogueModel, on_disk: Option<u64>) -> String {
    let flag = if model.non_commercial {
        " · non-commercial only"
    } else {
        ""
    };
    match on_disk {
        Some(size) => format!("✔ {} — {}{flag}", model.id, human_bytes(size)),
        None => format!(
            "{} — {}, downloads on first use{flag}",
            model.id,
            approx_size(model)
        ),
    }
}

/// The hover text of an imported model.
fn imported_help(model: &InstalledModel) -> String {
    match &model.origin {
        ModelOrigin::Imported {
            original_file_name, ..
        } => format!(
            "Imported from {original_file_name}; fed as {}",
            model.family.display_name()
        ),
        ModelOrigin::Catalogue(entry) => entry.good_for.to_owned(),
    }
}

/// The hover text of a model in the Settings list.
fn installed_help(model: &InstalledModel) -> String {
    match &model.origin {
        ModelOrigin::Catalogue(entry) => format!("{}\nLicence: {}", entry.good_for, entry.licence),
        ModelOrigin::Imported { .. } => imported_help(model),
    }
}

/// Which models belong to a family, so a user importing a file can tell.
fn family_help(family: ModelFamily) -> &'static str {
    match family {
        ModelFamily::U2net => {
            "U²-Net: u2net, u2netp, u2net_human_seg, silueta and their fine-tunes (320 px input)"
        }
        ModelFamily::Isnet => "IS-Net (DIS): isnet-general-use, isnet-anime (1024 px input)",
        ModelFamily::Birefnet => {
            "BiRefNet: birefnet-general, birefnet-general-lite and other BiRefNet exports \
             (1024 px input)"
        }
    }
}

/// The import error in the window's words: the store speaks of the
/// command line's flags.
fn import_error_text(message: &str) -> String {
    message
        .replace(
            "choose another name with --name, or replace it with --replace",
            "type another name, or tick \"Replace an imported model of the same name\"",
        )
        .replace("with --replace", "with \"Replace\" ticked")
}

/// A result line with its icon and colour.
fn outcome_ui(ui: &mut egui::Ui, outcome: &Outcome) -> egui::Response {
    let (icon, color) = if outcome.good {
        ("✔ ", crate::ui::success_color(ui.visuals()))
    } else {
        ("⚠ ", ui.visuals().warn_fg_color)
    };
    ui.add(egui::Label::new(RichText::new(format!("{icon}{}", outcome.text)).color(color)).wrap())
}

/// "on the CPU (2 threads)", "on the GPU (CUDA)".
fn where_it_runs(execution_provider: &str, threads: usize) -> String {
    if execution_provider == "CPU" {
        let plural = if threads == 1 { "" } else { "s" };
        format!("on the CPU ({threads} thread{plural})")
    } else {
        format!("on the GPU ({execution_provider})")
    }
}

/// The Settings section's line about the engine: which back-end runs the
/// models, and on what; or why the faster one is not in use.
fn engine_line(status: &EngineStatus, sessions: &[&(String, BackendDescription)]) -> Outcome {
    match (&status.runtime, status.backend) {
        (RuntimeStatus::Loaded { version, .. }, BackendKind::OnnxRuntime) => {
            let places: Vec<String> = sessions
                .iter()
                .map(|(_, d)| where_it_runs(&d.execution_provider, d.threads))
                .fold(Vec::new(), |mut seen, place| {
                    if !seen.contains(&place) {
                        seen.push(place);
                    }
                    seen
                });
            if places.is_empty() {
                Outcome::good(format!(
                    "ONNX Runtime {version} is ready: a model runs on a GPU when one is usable, \
                     else on the CPU; which one shows here once a model has run"
                ))
            } else {
                Outcome::good(format!("ONNX Runtime {version} {}", places.join(" and ")))
            }
        }
        (_, BackendKind::Tract) if status.preference == BackendPreference::Tract => {
            Outcome::good(format!(
                "Built-in engine (tract) on the CPU ({} threads), as {ENGINE_VAR} asks",
                status.threads
            ))
        }
        (runtime, BackendKind::Tract) => Outcome::problem(format!(
            "Built-in engine (tract) on the CPU, slower — ONNX Runtime is not in use: {}. \
             Install it for models several times faster.",
            runtime_reason(runtime)
        )),
        (runtime, BackendKind::OnnxRuntime) => Outcome::problem(format!(
            "{ENGINE_VAR} asks for ONNX Runtime, but {}: local jobs fail until it is installed",
            runtime_reason(runtime)
        )),
    }
}

/// Why ONNX Runtime is not loaded, without the long list of places
/// searched (that is in the hover text).
fn runtime_reason(runtime: &RuntimeStatus) -> String {
    match runtime {
        RuntimeStatus::Loaded { version, .. } => format!("ONNX Runtime {version} is loaded"),
        RuntimeStatus::NotFound { .. } => "it was not found on this computer".to_owned(),
        RuntimeStatus::Failed { reason, .. } => {
            format!("the library found cannot be used ({reason})")
        }
    }
}

/// The line under the model picker: what `model` runs on (once it has
/// run, else the engine), and whether that is the slower built-in engine.
fn engine_note(status: &EngineStatus, model: &str) -> (String, bool) {
    if let Some((_, description)) = status.sessions.iter().find(|(id, _)| id == model) {
        let slow = description.kind == BackendKind::Tract;
        let mut text = format!(
            "Runs on {} {}",
            description.engine,
            where_it_runs(&description.execution_provider, description.threads)
        );
        if slow && status.preference != BackendPreference::Tract {
            text.push_str(" — Settings can install the faster ONNX Runtime");
        }
        return (text, !slow || status.preference == BackendPreference::Tract);
    }
    match (&status.runtime, status.backend) {
        (RuntimeStatus::Loaded { version, .. }, BackendKind::OnnxRuntime) => {
            (format!("Runs on ONNX Runtime {version}"), true)
        }
        (_, BackendKind::Tract) if status.preference == BackendPreference::Tract => {
            ("Runs on the built-in engine (tract)".to_owned(), true)
        }
        (_, BackendKind::Tract) => (
            "Runs on the slower built-in engine — Settings can install ONNX Runtime".to_owned(),
            false,
        ),
        (runtime, BackendKind::OnnxRuntime) => (
            format!("ONNX Runtime is asked for, but {}", runtime_reason(runtime)),
            false,
        ),
    }
}

/// What to say once ONNX Runtime `version` is installed and the engine
/// has looked for it again.
fn installed_outcome(version: &str, runtime: &RuntimeStatus) -> Outcome {
    match runtime {
        RuntimeStatus::Loaded { .. } => Outcome::good(format!(
            "ONNX Runtime {version} is installed; the next picture uses it."
        )),
        other => Outcome::problem(format!(
            "ONNX Runtime {version} is installed but cannot be used yet ({}). Restart Cutout to \
             use it.",
            runtime_reason(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(
        stage: DownloadStage,
        done_bytes: u64,
        total_bytes: Option<u64>,
    ) -> DownloadProgress {
        DownloadProgress {
            stage,
            done_bytes,
            total_bytes,
        }
    }

    #[test]
    fn a_download_says_the_model_the_percentage_and_the_megabytes() {
        let p = progress(DownloadStage::Downloading, 80_600_000, Some(179_000_000));
        assert_eq!(
            download_text("model isnet-general-use", &p),
            "Downloading model isnet-general-use — 45% (81 of 179 MB)"
        );
        let small = progress(DownloadStage::Downloading, 1_200_000, Some(4_600_000));
        assert_eq!(
            download_text("model u2netp", &small),
            "Downloading model u2netp — 26% (1.2 of 4.6 MB)"
        );
        let unknown = progress(DownloadStage::Downloading, 2_500_000, None);
        assert_eq!(
            download_text("model u2netp", &unknown),
            "Downloading model u2netp — 2.5 MB"
        );
        let checking = progress(DownloadStage::Verifying, 5, Some(5));
        assert_eq!(
            download_text("model u2netp", &checking),
            "Checking the downloaded model u2netp…"
        );
    }

    #[test]
    fn picker_entries_show_the_size_and_whether_the_model_is_here() {
        let default = catalogue::find(catalogue::DEFAULT_MODEL).unwrap();
        assert_eq!(
            catalogue_entry_text(default, None),
            "isnet-general-use — 179 MB, downloads on first use"
        );
        assert_eq!(
            catalogue_entry_text(default, Some(178_912_000)),
            "✔ isnet-general-use — 178.9 MB"
        );
        let bria = catalogue::find("bria-rmbg").unwrap();
        assert!(catalogue_entry_text(bria, None).ends_with("· non-commercial only"));
    }

    fn status(runtime: RuntimeStatus, backend: BackendKind) -> EngineStatus {
        EngineStatus {
            preference: BackendPreference::Auto,
            runtime_text: runtime.explain(),
            runtime,
            backend,
            threads: 4,
            sessions: Vec::new(),
            hint: None,
        }
    }

    #[test]
    fn the_engine_line_names_the_back_end_and_where_each_model_runs() {
        let loaded = RuntimeStatus::Loaded {
            path: PathBuf::from("/rt/libonnxruntime.so.1.32.0"),
            version: "1.32.0".to_owned(),
        };
        let mut ort = status(loaded, BackendKind::OnnxRuntime);
        assert!(
            engine_line(&ort, &[])
                .text
                .starts_with("ONNX Runtime 1.32.0 is ready")
        );
        let on_gpu = (
            "isnet-general-use".to_owned(),
            BackendDescription {
                kind: BackendKind::OnnxRuntime,
                engine: "ONNX Runtime 1.32.0".to_owned(),
                execution_provider: "CUDA".to_owned(),
                threads: 4,
                gpu_note: None,
                fallback_reason: None,
            },
        );
        ort.sessions.push(on_gpu.clone());
        assert_eq!(
            engine_line(&ort, &[&on_gpu]),
            Outcome::good("ONNX Runtime 1.32.0 on the GPU (CUDA)".to_owned())
        );
        assert_eq!(
            engine_note(&ort, "isnet-general-use"),
            (
                "Runs on ONNX Runtime 1.32.0 on the GPU (CUDA)".to_owned(),
                true
            )
        );
    }

    #[test]
    fn the_slower_built_in_engine_is_never_silent_and_says_how_to_get_the_faster_one() {
        let missing = RuntimeStatus::NotFound {
            searched: vec![PathBuf::from("/data/runtime")],
        };
        let tract = status(missing, BackendKind::Tract);
        let line = engine_line(&tract, &[]);
        assert!(!line.good);
        assert!(
            line.text.contains("Built-in engine (tract)"),
            "{}",
            line.text
        );
        assert!(line.text.contains("not found"), "{}", line.text);
        assert!(line.text.contains("Install it"), "{}", line.text);
        let (note, good) = engine_note(&tract, "u2netp");
        assert!(!good);
        assert!(note.contains("Settings can install ONNX Runtime"), "{note}");
    }

    #[test]
    fn import_errors_speak_of_the_window_not_of_command_line_flags() {
        let text = import_error_text(
            "a model named `custom:x` is already imported; choose another name with --name, \
             or replace it with --replace: /m/x.onnx",
        );
        assert!(text.contains("type another name, or tick"), "{text}");
        assert!(!text.contains("--"), "{text}");
    }
}
